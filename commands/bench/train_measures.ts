/**
 * bench:train's measurements, one engine each, on synthetic 64×64 faces: raw training steps on
 * tfjs (wasm with our gradient kernels, stock cpu) and on ONNX Runtime's native trainer, the
 * whole training loop (trainClassifier), one step's top kernels, and the PyTorch peer script.
 */
import { engineInfo, tf } from "../../models/engine.ts";
import { FaceStore } from "../../models/dataset.ts";
import { trainClassifier } from "../../models/training/train.ts";
import { seededRandom } from "../../models/augment.ts";
import { peerEnvironment } from "./peer.ts";
import { buildCnn } from "../../models/cnn.ts";
import { sharedPath } from "../../core/shared_data.ts";
import { nativeEngine } from "../../models/native/onnx_runtime.ts";
import { NativeCnnTrainer, type NativeParallelism } from "../../models/native/cnn_training.ts";

const IMAGE_SIZE = 64;
export const CLASSES = 4;

/** The torch script beside the repo (../shared), as the issue names it. */
const TORCH_SCRIPT = sharedPath("bench/torch_cnn.py");
const PYTHON = "/usr/bin/python3";

/** The seed's CNN (models/cnn.ts), compiled as the seed compiled it: Adam, cross-entropy. */
function buildSeedCnn(classes: number): tf.Sequential {
  const model = buildCnn(classes);
  model.compile({ optimizer: tf.train.adam(), loss: "categoricalCrossentropy" });
  return model;
}

interface SyntheticData {
  images: tf.Tensor4D;
  labels: tf.Tensor2D;
}

function syntheticData(count: number): SyntheticData {
  const [images, labels] = tf.tidy(() => [
    tf.randomUniform([count, IMAGE_SIZE, IMAGE_SIZE, 1], 0, 1, "float32", 1) as tf.Tensor4D,
    tf.oneHot(tf.randomUniform([count], 0, CLASSES, "int32", 2) as tf.Tensor1D, CLASSES)
      .toFloat() as tf.Tensor2D,
  ]);
  return { images: images as tf.Tensor4D, labels: labels as tf.Tensor2D };
}

/** Trains on `batches` consecutive batches; returns the seconds it took. */
async function trainBatches(
  model: tf.Sequential,
  data: SyntheticData,
  batchSize: number,
  batches: number,
): Promise<number> {
  const count = data.images.shape[0];
  const start = performance.now();
  for (let b = 0; b < batches; b++) {
    const offset = (b * batchSize) % (count - batchSize + 1);
    const [xs, ys] = tf.tidy(() => [
      data.images.slice(offset, batchSize),
      data.labels.slice(offset, batchSize),
    ]);
    await model.trainOnBatch(xs!, ys!);
    tf.dispose([xs!, ys!]);
  }
  return (performance.now() - start) / 1000;
}

export interface EngineFigure {
  engine: string;
  images_per_s: number;
  [key: string]: unknown;
}

export async function measureTfjs(
  backend: "wasm" | "cpu",
  { batchSize, warmupBatches, timedBatches, images }: {
    batchSize: number;
    warmupBatches: number;
    timedBatches: number;
    images: number;
  },
): Promise<EngineFigure> {
  await tf.setBackend(backend);
  const data = syntheticData(Math.max(images, batchSize));
  const model = buildSeedCnn(CLASSES);
  try {
    await trainBatches(model, data, batchSize, warmupBatches);
    const seconds = await trainBatches(model, data, batchSize, timedBatches);
    return {
      engine: backend === "wasm" ? "facefield (tfjs wasm + fast kernels)" : "tfjs cpu (stock)",
      images_per_s: round(timedBatches * batchSize / seconds),
      batch: batchSize,
      timed_batches: timedBatches,
      warmup_batches: warmupBatches,
      params: model.countParams(),
      ...(backend === "wasm" ? { engine_info: engineInfo() } : {}),
    };
  } finally {
    model.optimizer.dispose();
    model.dispose();
    tf.dispose([data.images, data.labels]);
  }
}

/** A native raw-steps row's engine line: how its threads share the step. */
function nativeStepsEngine(parallelism: NativeCnnTrainer["parallelism"]): string {
  const { kind, threads, fallback } = parallelism;
  if (kind === "data") {
    return `native (onnxruntime-node, data-parallel: the gradient graph on this thread and ${
      threads - 1
    } replica worker${
      threads > 2 ? "s" : ""
    }, one ORT thread each, Adam in JS, ${threads} threads)`;
  }
  const how = threads > 1 ? `${threads} intra-op threads` : "1 thread";
  return `native (onnxruntime-node, whole step as one graph, ${how}${
    fallback ? `; data-parallel not used: ${fallback}` : ""
  })`;
}

/**
 * The raw training steps on the native engine (models/native/), the same synthetic batches as
 * the wasm steps: on one thread the whole step as one ONNX Runtime graph; on more, that graph
 * on ORT's intra-op threads, or data-parallel over replica workers (what trainClassifier uses).
 */
export async function measureNativeSteps(
  threads: number,
  parallelism: NativeParallelism,
  { batchSize, warmupBatches, timedBatches, images }: {
    batchSize: number;
    warmupBatches: number;
    timedBatches: number;
    images: number;
  },
): Promise<EngineFigure | { engine: string; unavailable: string }> {
  const native = await nativeEngine();
  if (!native.ok) {
    return {
      engine: nativeStepsEngine({ kind: parallelism, threads }),
      unavailable: native.reason,
    };
  }
  const data = syntheticData(Math.max(images, batchSize));
  const model = buildCnn(CLASSES);
  const trainer = await NativeCnnTrainer.create(
    native.ort,
    CLASSES,
    model.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape })),
    { threads, parallelism },
  );
  const pixels = data.images.dataSync() as Float32Array;
  const labels = data.labels.dataSync() as Float32Array;
  const count = data.images.shape[0];
  const run = async (batches: number) => {
    const start = performance.now();
    for (let b = 0; b < batches; b++) {
      const offset = (b * batchSize) % (count - batchSize + 1);
      await trainer.step(
        pixels.subarray(offset * IMAGE_SIZE * IMAGE_SIZE, (offset + batchSize) * IMAGE_SIZE ** 2),
        labels.subarray(offset * CLASSES, (offset + batchSize) * CLASSES),
      );
    }
    return (performance.now() - start) / 1000;
  };
  try {
    await run(warmupBatches);
    const seconds = await run(timedBatches);
    return {
      engine: nativeStepsEngine(trainer.parallelism),
      workers: threads,
      parallelism: trainer.parallelism.kind,
      images_per_s: round(timedBatches * batchSize / seconds),
      batch: batchSize,
      timed_batches: timedBatches,
      warmup_batches: warmupBatches,
      onnxruntime: native.version,
    };
  } finally {
    await trainer.release();
    model.dispose();
    tf.dispose([data.images, data.labels]);
  }
}

/**
 * A store of random 64×64 grayscale crops in four classes: `train` training faces and a tenth
 * as many validation faces, as the pipeline would hand to `trainClassifier`.
 */
function syntheticStore(train: number): FaceStore {
  const store = new FaceStore({ crops: { size: IMAGE_SIZE, channels: 1 } });
  const random = seededRandom(7);
  const total = train + Math.max(CLASSES, Math.round(train / 10));
  for (let i = 0; i < total; i++) {
    const crop = new Uint8Array(IMAGE_SIZE * IMAGE_SIZE);
    for (let j = 0; j < crop.length; j++) crop[j] = Math.floor(random() * 256);
    store.addStored({
      id: `synthetic${String(i).padStart(6, "0")}`,
      category: `class${i % CLASSES}`,
      split: i < train ? "train" : "val",
      fold: null,
      identity: `person${i}`,
      crop,
      descriptor: new Float32Array(0),
      source: "",
    });
  }
  return store;
}

/**
 * The real training loop: `trainClassifier("cnn")` with augmentation, batches from the
 * FaceStore, per-epoch validation and best-weights bookkeeping; one warm-up epoch, then the
 * timed ones (their seconds include validation).
 */
export async function measureTrainLoop(
  { batchSize, epochs, images, workers, engine }: {
    batchSize: number;
    epochs: number;
    images: number;
    workers: number;
    engine: "native" | "wasm";
  },
): Promise<EngineFigure> {
  await tf.setBackend("wasm");
  const store = syntheticStore(images);
  const seconds: number[] = [];
  const { classifier } = await trainClassifier("cnn", store, {
    epochs: epochs + 1,
    patience: epochs + 1,
    batchSize,
    augment: true,
    workers,
    engine,
    onEpoch: (stats) => seconds.push(stats.seconds),
  });
  const trainedOn = classifier.metadata.engine;
  classifier.dispose();
  const timed = seconds.slice(1).reduce((a, b) => a + b, 0);
  const dataParallel = engine === "native" && /data-parallel:/.test(trainedOn);
  return {
    engine: `facefield trainClassifier (cnn on ${engine}${
      dataParallel ? " data-parallel" : ""
    }, augment, validation each epoch, ${workers} thread${workers > 1 ? "s" : ""})`,
    trained_on: trainedOn,
    engine_kind: engine,
    parallelism: engine === "native" && workers > 1
      ? (dataParallel ? "data" : "intra-op")
      : undefined,
    workers,
    images_per_s: round(images * epochs / timed),
    batch: batchSize,
    train_faces: images,
    val_faces: store.select({ split: "val" }).length,
    timed_epochs: epochs,
    first_epoch_s: round(seconds[0] ?? 0),
  };
}

/** The top kernels of one training step, by time, after a warm-up step. */
export async function profileStep(batchSize: number): Promise<string[]> {
  await tf.setBackend("wasm");
  const data = syntheticData(batchSize);
  const model = buildSeedCnn(CLASSES);
  try {
    await trainBatches(model, data, batchSize, 2);
    const profile = await tf.profile(async () => {
      await model.trainOnBatch(data.images, data.labels);
    });
    const byKernel = new Map<string, { ms: number; calls: number }>();
    const byCall = new Map<string, { ms: number; calls: number }>();
    let total = 0;
    for (const kernel of profile.kernels) {
      const ms = Number(kernel.kernelTimeMs);
      total += ms;
      const call = `${kernel.name} ${JSON.stringify(kernel.inputShapes)}`;
      for (const [map, key] of [[byKernel, kernel.name], [byCall, call]] as const) {
        const entry = map.get(key) ?? { ms: 0, calls: 0 };
        entry.ms += ms;
        entry.calls++;
        map.set(key, entry);
      }
    }
    const rows = (map: Map<string, { ms: number; calls: number }>, limit: number) =>
      [...map].sort((a, b) => b[1].ms - a[1].ms).slice(0, limit).map(([key, { ms, calls }]) =>
        `${ms.toFixed(1).padStart(8)} ms ${(100 * ms / total).toFixed(1).padStart(5)} %  ${
          String(calls).padStart(3)
        }×  ${key}`
      );
    return [
      `kernel profile of one training step (batch ${batchSize}, wasm): ${
        total.toFixed(1)
      } ms in ${profile.kernels.length} kernel calls`,
      "by kernel:",
      ...rows(byKernel, 15),
      "by kernel and input shapes:",
      ...rows(byCall, 25),
    ];
  } finally {
    model.optimizer.dispose();
    model.dispose();
    tf.dispose([data.images, data.labels]);
  }
}

export interface PeerFigure {
  peer: string;
  threads: number;
  images_per_s: number;
  [key: string]: unknown;
}

/** Runs the PyTorch peer script; undefined with a reason when it cannot run here. */
export async function measurePytorch(
  threads: number,
  images: number,
): Promise<PeerFigure | { unavailable: string }> {
  const script = TORCH_SCRIPT;
  try {
    await Deno.stat(script);
  } catch {
    return { unavailable: `no peer script at ${script}` };
  }
  let output;
  try {
    output = await new Deno.Command(PYTHON, {
      args: [script, "--threads", String(threads), "--images", String(images)],
      env: peerEnvironment(),
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    return { unavailable: `cannot run ${PYTHON}: ${(error as Error).message}` };
  }
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) {
    const missingTorch = /No module named 'torch'/.test(stderr);
    return {
      unavailable: missingTorch
        ? "python3-torch is not installed (apt-get install -y python3-torch)"
        : `torch_cnn.py failed: ${stderr.trim().split("\n").at(-1)}`,
    };
  }
  const line = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  return JSON.parse(line) as PeerFigure;
}

export function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** a / b to three significant decimals, as a plain JSON number. */
export function ratio(a: number, b: number): number {
  return Number((a / b).toPrecision(3));
}
