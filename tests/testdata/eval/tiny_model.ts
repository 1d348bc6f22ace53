/**
 * A small trained model for the predict tests: the embedding head fitted for a few epochs on the
 * descriptors of face-api's demo faces, saved in the classifier's format. Seconds, not minutes.
 */
import { join } from "node:path";
import { initEngine, tf } from "../../../models/engine.ts";
import { extractFaces } from "../../../models/faces/faces.ts";
import {
  LayersClassifier,
  MODEL_FORMAT,
  type ModelMetadata,
  saveClassifier,
} from "../../../models/classifier.ts";
import { buildEmbeddingHead, EMBEDDING_PREPROCESSING } from "../../../models/embedding.ts";
import { demoImagePaths } from "../../../models/faces/package_files.ts";

export const TINY_CLASSES = ["left", "right"];

/** Trains and saves the tiny model in `dir`; faces of the first three demo photos are "left". */
export async function makeTinyModel(dir: string): Promise<ModelMetadata> {
  await initEngine();
  const descriptors: Float32Array[] = [];
  const labels: number[] = [];
  for (const [i, path] of demoImagePaths().slice(0, 4).entries()) {
    const { faces } = await extractFaces(await Deno.readFile(path), { allFaces: true });
    for (const face of faces) {
      descriptors.push(face.descriptor);
      labels.push(i < 2 ? 0 : 1);
    }
  }
  const model = buildEmbeddingHead(TINY_CLASSES.length, { seed: 1 });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
  const x = tf.tensor2d(descriptors.flatMap((d) => [...d]), [descriptors.length, 128]);
  const y = tf.oneHot(tf.tensor1d(labels, "int32"), TINY_CLASSES.length);
  await model.fit(x, y, { epochs: 20, batchSize: 8, verbose: 0, shuffle: false });
  tf.dispose([x, y]);
  const counts = { left: labels.filter((l) => l === 0).length, right: 0 };
  counts.right = labels.length - counts.left;
  const metadata: ModelMetadata = {
    format: MODEL_FORMAT,
    kind: "embedding",
    classes: TINY_CLASSES,
    inputShape: [128],
    preprocessing: EMBEDDING_PREPROCESSING,
    data: {
      counts: { train: counts, val: {}, test: {} },
      identities: labels.length,
      folds: null,
      testFold: null,
      sources: ["face-api demo"],
    },
    history: [],
    bestEpoch: 20,
    createdAt: new Date().toISOString(),
    engine: `tfjs ${tf.version_core} ${tf.getBackend()}`,
  };
  const classifier = new LayersClassifier(model, metadata);
  await saveClassifier(classifier, dir);
  classifier.dispose();
  return metadata;
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? join(Deno.makeTempDirSync(), "model");
  await makeTinyModel(dir);
  console.log(dir);
}
