/**
 * What trains a model batch by batch, on whichever engine: the CNN on ONNX Runtime's native
 * trainer where it loads, else tfjs (over replica workers when asked for more threads), every
 * other kind with tfjs' `trainOnBatch`. train.ts runs the epochs over one.
 */
import { tf } from "../engine.ts";
import type { FaceStore, StoredFace } from "../dataset.ts";
import { type ModelKind, type Preprocessing, scaledPixels } from "../classifier.ts";
import { ShareBalancer } from "./replicas.ts";
import { nativeEngine } from "../native/onnx_runtime.ts";
import { NativeCnnTrainer } from "../native/cnn_training.ts";
import { evaluateFaces, FaceScores, labelledBatches } from "./evaluate_faces.ts";
import { dataParallelStep, startReplicas } from "./data_parallel.ts";

/**
 * How one batch trains: returns its loss sum and correct count. A step that computes off this
 * thread calls `meanwhile` once it has let go of the batch, so the next one is made meanwhile.
 */
export type BatchStep = (
  xs: tf.Tensor,
  ys: tf.Tensor,
  meanwhile: () => void,
) => Promise<{ lossSum: number; correct: number }>;

/** What trains a model batch by batch, on whichever engine. */
export interface Trainer {
  step: BatchStep;
  /** Mean loss and accuracy of the current weights on faces (null without any). */
  evaluate(
    store: FaceStore,
    faces: readonly StoredFace[],
    preprocessing: Preprocessing,
    classes: readonly string[],
  ): Promise<{ loss: number; accuracy: number } | null>;
  /** The current weights, in `model.getWeights()` order and tfjs' layouts. */
  weights(): Float32Array[];
  /** Whether the weights live outside the tfjs model, which must get them at the end. */
  holdsWeights: boolean;
  /** The engine line of the metadata. */
  engine: string;
  close(): Promise<void>;
}

/** Correct answers in a batch: rows of probabilities against one-hot labels. */
function countCorrect(probabilities: Float32Array, labels: Float32Array, classes: number): number {
  let correct = 0;
  for (let row = 0; row * classes < labels.length; row++) {
    let predicted = 0;
    let actual = 0;
    for (let c = 1; c < classes; c++) {
      if (probabilities[row * classes + c]! > probabilities[row * classes + predicted]!) {
        predicted = c;
      }
      if (labels[row * classes + c]! > labels[row * classes + actual]!) actual = c;
    }
    if (predicted === actual) correct++;
  }
  return correct;
}

/** The CNN on ONNX Runtime: weights and Adam's state live in the native trainer. */
async function nativeTrainer(
  model: tf.LayersModel,
  classes: number,
  settings: { learningRate: number; workers: number },
): Promise<Trainer | string> {
  const native = await nativeEngine();
  if (!native.ok) return native.reason;
  let trainer: NativeCnnTrainer;
  try {
    trainer = await NativeCnnTrainer.create(
      native.ort,
      classes,
      model.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape })),
      { learningRate: settings.learningRate, threads: settings.workers, parallelism: "data" },
    );
  } catch (error) {
    // A library that loads but cannot build the session (an old binary, say): train on wasm.
    return `ONNX Runtime could not build the training step: ${(error as Error).message}`;
  }
  return {
    step: async (xs, ys, meanwhile) => {
      const labels = ys.dataSync() as Float32Array;
      // The next batch is cut and augmented while the replica workers compute.
      const { loss, probabilities } = await trainer.step(
        xs.dataSync() as Float32Array,
        labels,
        undefined,
        meanwhile,
      );
      return {
        lossSum: loss * xs.shape[0]!,
        correct: countCorrect(probabilities, labels, classes),
      };
    },
    evaluate: async (store, faces, preprocessing, classes) => {
      if (preprocessing.input !== "crop") throw new TypeError("the native CNN takes crops");
      const { size, channels, scale } = preprocessing;
      const scores = new FaceScores();
      for (const { batch, labels } of labelledBatches(faces, classes, 128)) {
        const samples = batch.map((face) => store.sample(face, preprocessing));
        const probabilities = await trainer.predict(
          scaledPixels(samples, size * size * channels, scale),
        );
        const width = classes.length;
        labels.forEach((label, i) =>
          scores.add(probabilities.subarray(i * width, (i + 1) * width), label)
        );
      }
      return scores.result();
    },
    weights: () => trainer.tfjsWeights(),
    holdsWeights: true,
    engine: `onnxruntime-node ${native.version} cpu${threadsLine(trainer.parallelism)} (native)`,
    close: () => trainer.release(),
  };
}

/** How the native trainer's threads share a step, for the engine line. */
function threadsLine({ kind, threads, fallback }: NativeCnnTrainer["parallelism"]): string {
  if (threads === 1) return "";
  if (kind === "data") {
    return `, ${threads} threads (data-parallel: this one and ${threads - 1} replica worker${
      threads > 2 ? "s" : ""
    })`;
  }
  return `, ${threads} intra-op threads${fallback ? ` (data-parallel not used: ${fallback})` : ""}`;
}

/**
 * The trainer for a model of `kind`: the CNN on the native engine where it loads (else on
 * tfjs, saying why in the engine line), over replica workers on wasm when asked for more than
 * one thread; every other kind with tfjs' `trainOnBatch`.
 */
export async function startTrainer(
  kind: ModelKind,
  model: tf.LayersModel,
  classes: number,
  settings: { learningRate: number; workers: number; engine: "native" | "wasm" },
): Promise<Trainer> {
  let fallback = "";
  if (kind === "cnn" && settings.engine === "native") {
    const native = await nativeTrainer(model, classes, settings);
    if (typeof native !== "string") return native;
    fallback = ` (native engine not used: ${native})`;
  }
  const replicas = kind === "cnn" && settings.workers > 1 && tf.getBackend() === "wasm"
    ? await startReplicas(settings.workers - 1, classes)
    : [];
  const balancer = new ShareBalancer(replicas.length + 1);
  const threads = replicas.length + 1;
  return {
    step: async (xs, ys, meanwhile) => {
      if (replicas.length > 0) {
        return await dataParallelStep(model, replicas, balancer, xs, ys, meanwhile);
      }
      const [loss, accuracy] = await model.trainOnBatch(xs, ys) as number[];
      const size = xs.shape[0]!;
      return { lossSum: loss! * size, correct: accuracy! * size };
    },
    evaluate: (store, faces, preprocessing, classes) =>
      Promise.resolve(evaluateFaces(model, store, faces, preprocessing, classes)),
    weights: () => model.getWeights().map((w) => w.dataSync().slice() as Float32Array),
    holdsWeights: false,
    engine: `tfjs ${tf.version.tfjs} ${tf.getBackend()}${
      threads > 1 ? `, ${threads} threads` : ""
    }${fallback}`,
    close: () => {
      for (const replica of replicas) replica.terminate();
      return Promise.resolve();
    },
  };
}
