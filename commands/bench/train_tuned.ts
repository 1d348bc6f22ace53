/**
 * bench:train's fine-tuning figures: training steps of `mobilefacenet-tuned` (mobilefacenet's
 * last block and the probe's head) on synthetic trunk activations, and the frozen trunk's cost
 * per face, which the face stage pays once per face.
 */
import { tf } from "../../models/engine.ts";
import { embedFaceAll, type GraphNetworkName } from "../../models/faces/face_networks.ts";
import { buildTunedMobileFaceNet, TUNED_INPUT_LENGTH } from "../../models/finetune.ts";
import { trainingWork } from "../../models/flops.ts";
import { achieved, type MachinePeak } from "./machine_peak.ts";

/** Training images per second of the tuned model, raw steps on this thread, and its GFLOP/s. */
export async function measureTunedTraining(
  { batchSize, images, epochs, peak }: {
    batchSize: number;
    images: number;
    epochs: number;
    peak: MachinePeak | undefined;
  },
): Promise<Record<string, unknown>> {
  await tf.setBackend("wasm");
  const model = await buildTunedMobileFaceNet(2);
  model.compile({ optimizer: tf.train.adam(1e-3), loss: "categoricalCrossentropy" });
  const [inputs, labels] = tf.tidy(() => [
    tf.randomNormal([images, TUNED_INPUT_LENGTH], 0, 10, "float32", 3),
    tf.oneHot(tf.randomUniform([images], 0, 2, "int32", 4) as tf.Tensor1D, 2).toFloat(),
  ]);
  const batches = Math.floor(images / batchSize);
  const run = async (count: number) => {
    const start = performance.now();
    for (let b = 0; b < count; b++) {
      const [xs, ys] = tf.tidy(() => [
        inputs!.slice(b % batches * batchSize, batchSize),
        labels!.slice(b % batches * batchSize, batchSize),
      ]);
      await model.trainOnBatch(xs!, ys!);
      tf.dispose([xs!, ys!]);
    }
    return (performance.now() - start) / 1000;
  };
  try {
    await run(batches);
    const seconds = await run(batches * epochs);
    const imagesPerS = batches * epochs * batchSize / seconds;
    const work = trainingWork(model);
    return {
      engine: "facefield mobilefacenet-tuned (last block + head, tfjs wasm, 1 thread)",
      images_per_s: Math.round(imagesPerS * 10) / 10,
      batch: batchSize,
      trainable_params: model.trainableWeights.reduce((sum, w) => sum + w.read().size, 0),
      mflop_per_image: Math.round(work.flops / 1e4) / 100,
      ...achieved(imagesPerS, work.flops, 1, peak),
    };
  } finally {
    model.optimizer.dispose();
    model.dispose();
    tf.dispose([inputs!, labels!]);
  }
}

/**
 * The face stage's cost per face of mobilefacenet's outputs (one 112 px chip, after warm-up):
 * the embedding alone, the trunk alone, and both from one inference as a run with the probe
 * and the tuned model asks for them.
 */
export async function measureTrunkCost(faces: number): Promise<Record<string, unknown>> {
  await tf.setBackend("wasm");
  const chips = Array.from(
    { length: Math.min(faces, 8) },
    (_, i) => tf.randomUniform([112, 112, 3], 0, 255, "float32", 10 + i) as tf.Tensor3D,
  );
  const time = async (names: GraphNetworkName[]) => {
    await embedFaceAll(names, chips[0]!);
    const start = performance.now();
    for (let i = 0; i < faces; i++) await embedFaceAll(names, chips[i % chips.length]!);
    return Math.round((performance.now() - start) / faces * 100) / 100;
  };
  try {
    const embedding = await time(["mobilefacenet"]);
    const trunk = await time(["mobilefacenet-trunk"]);
    const both = await time(["mobilefacenet", "mobilefacenet-trunk"]);
    return {
      engine: "mobilefacenet's frozen trunk in the face stage (tfjs wasm, 1 thread, per face)",
      faces,
      embedding_ms_per_face: embedding,
      trunk_ms_per_face: trunk,
      embedding_and_trunk_ms_per_face: both,
      trunk_extra_over_embedding_ms: Math.round((both - embedding) * 100) / 100,
    };
  } finally {
    tf.dispose(chips);
  }
}
