/**
 * bench:train — training throughput of the seed study's CNN on our engines (tfjs wasm with the
 * fast gradient kernels; ONNX Runtime, the native one), on tfjs' stock cpu backend, and on
 * PyTorch (the peer), in one run so the figures share the machine's load at that moment; each
 * with its achieved GFLOP/s and share of the machine's peak; then the fine-tuning figures of
 * `mobilefacenet-tuned`.
 */
import { engineInfo, initEngine, tf } from "../../models/engine.ts";
import { type Command, intOption, log, type ParsedValues } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { FaceStore } from "../../models/dataset.ts";
import { trainClassifier } from "../../models/training/train.ts";
import { seededRandom } from "../../models/augment.ts";
import { machineLoad, peerEnvironment } from "./peer.ts";
import { buildCnn } from "../../models/cnn.ts";
import { sharedPath } from "../../core/shared_data.ts";
import { trainingWork } from "../../models/flops.ts";
import { achieved, type MachinePeak, machinePeak } from "./machine_peak.ts";
import { measureTrunkCost, measureTunedTraining } from "./train_tuned.ts";
import { nativeEngine } from "../../models/native/onnx_runtime.ts";
import { NativeCnnTrainer, type NativeParallelism } from "../../models/native/cnn_training.ts";

const IMAGE_SIZE = 64;
const CLASSES = 4;

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

interface EngineFigure {
  engine: string;
  images_per_s: number;
  [key: string]: unknown;
}

async function measureTfjs(
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
async function measureNativeSteps(
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
async function measureTrainLoop(
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
async function profileStep(batchSize: number): Promise<string[]> {
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

interface PeerFigure {
  peer: string;
  threads: number;
  images_per_s: number;
  [key: string]: unknown;
}

/** Runs the PyTorch peer script; undefined with a reason when it cannot run here. */
async function measurePytorch(
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

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/** a / b to three significant decimals, as a plain JSON number. */
function ratio(a: number, b: number): number {
  return Number((a / b).toPrecision(3));
}

/** Floating-point operations of one training image through the seed CNN (models/flops.ts). */
function cnnTrainingFlops(): number {
  const model = buildCnn(CLASSES);
  const { flops } = trainingWork(model);
  model.dispose();
  return flops;
}

/** The machine's peak, then the fine-tuning figures: the tuned block's steps, the trunk's cost. */
async function emitPeakAndFineTuning(
  { batchSize, images, epochs, peak, cnnFlops }: {
    batchSize: number;
    images: number;
    epochs: number;
    peak: MachinePeak | undefined;
    cnnFlops: number;
  },
): Promise<void> {
  emit({
    machine_peak_gflop_per_s: peak
      ? {
        wasm_simd128_per_core: peak.wasmSimd128PerCore,
        wasm_simd128_all_cores: peak.wasmSimd128PerCore * peak.cores,
        [`${peak.nativeSimd}_per_core`]: peak.nativePerCore,
        [`${peak.nativeSimd}_all_cores`]: peak.nativePerCore * peak.cores,
        formula: peak.formula,
        note: "wasm can use only the SIMD-128 peak; PyTorch (oneDNN) the native one",
      }
      : "unknown: /proc/cpuinfo names no clock",
    cnn_mflop_per_image: Math.round(cnnFlops / 1e4) / 100,
    cnn_flops_counted: "conv and dense multiply-adds ×2: forward, weight gradients, and " +
      "input gradients of every layer but the first; activations, pooling and Adam left out",
  });
  log(`training ${epochs} timed epoch(s) of mobilefacenet-tuned's block on ${images} faces…`);
  emit(await measureTunedTraining({ batchSize, images, epochs, peak }));
  log("timing mobilefacenet's trunk per face…");
  emit(await measureTrunkCost(50));
}

function emit(record: Record<string, unknown>): void {
  console.log(JSON.stringify({ ...record, ...machineLoad() }));
}

/** The native engine's figures against the native peak only (the wasm one does not bind it). */
function nativeShare(rate: Record<string, number>): Record<string, number> {
  const { share_of_wasm_simd128_peak: _, ...rest } = rate;
  return rest;
}

/** The ratio of a figure to PyTorch's on as many threads, where PyTorch ran. */
function vsPytorch(
  figure: EngineFigure,
  threads: number,
  peerFigures: Map<number, PeerFigure | { unavailable: string }>,
): Record<string, number> {
  const peer = peerFigures.get(threads);
  return peer && "images_per_s" in peer
    ? { vs_pytorch_same_threads: ratio(figure.images_per_s, peer.images_per_s) }
    : {};
}

/**
 * The CNN's lines: the raw steps (wasm, native on 1 and 2 threads), the real loops on both
 * engines and PyTorch, each with its GFLOP/s and share of the peak, and the ratios between
 * them.
 */
function emitCnnFigures({ ours, native, loops, peerFigures, cnnFlops, peak }: {
  ours: EngineFigure;
  native: (EngineFigure | { engine: string; unavailable: string })[];
  loops: EngineFigure[];
  peerFigures: Map<number, PeerFigure | { unavailable: string }>;
  cnnFlops: number;
  peak: MachinePeak | undefined;
}): void {
  const pytorchRatios: Record<string, number> = {};
  for (const [threads, figure] of peerFigures) {
    if ("images_per_s" in figure) {
      pytorchRatios[`vs_pytorch_${threads}_thread${threads > 1 ? "s" : ""}`] = ratio(
        ours.images_per_s,
        figure.images_per_s,
      );
    }
  }
  emit({ ...ours, ...achieved(ours.images_per_s, cnnFlops, 1, peak), ...pytorchRatios });
  // By threads and how they share a step: the loop on 2 threads compares with its own kind.
  const nativeSteps = new Map<string, EngineFigure>();
  for (const figure of native) {
    if ("unavailable" in figure) {
      emit(figure);
      continue;
    }
    const threads = figure.workers as number;
    nativeSteps.set(`${threads} ${figure.parallelism}`, figure);
    emit({
      ...figure,
      ...nativeShare(achieved(figure.images_per_s, cnnFlops, threads, peak)),
      vs_wasm_raw_steps: ratio(figure.images_per_s, ours.images_per_s),
      ...vsPytorch(figure, threads, peerFigures),
    });
  }
  for (const loop of loops) {
    const threads = loop.workers as number;
    const native = loop.engine_kind === "native";
    const raw = native ? nativeSteps.get(`${threads} ${loop.parallelism ?? "intra-op"}`) : ours;
    const rate = achieved(loop.images_per_s, cnnFlops, threads, peak);
    emit({
      ...loop,
      ...(native ? nativeShare(rate) : rate),
      ...(raw ? { vs_raw_steps: ratio(loop.images_per_s, raw.images_per_s) } : {}),
      ...vsPytorch(loop, threads, peerFigures),
    });
  }
  for (const [threads, figure] of peerFigures) {
    const rate = "images_per_s" in figure
      ? achieved(figure.images_per_s, cnnFlops, threads, peak)
      : {};
    emit({ engine: `pytorch (${threads} thread${threads > 1 ? "s" : ""})`, ...figure, ...rate });
  }
}

async function runBenchTrain(values: ParsedValues): Promise<number> {
  const images = intOption(values, "images", 512, { min: 32, max: 100_000 });
  const epochs = intOption(values, "epochs", 2, { min: 1, max: 100 });
  const batchSize = intOption(values, "batch", 32, { min: 1, max: 1024 });
  const cpuBatches = intOption(values, "cpu-batches", 2, { min: 0, max: 1000 });
  if (images < batchSize) fail(`--images (${images}) must be at least --batch (${batchSize})`, 2);
  const batchesPerEpoch = Math.floor(images / batchSize);

  await initEngine();
  if (values.profile) {
    for (const line of await profileStep(batchSize)) console.log(line);
    return 0;
  }

  const peak = await machinePeak();
  const cnnFlops = cnnTrainingFlops();
  const peers = values["skip-peer"] ? [] : [1, 2];
  const peerFigures = new Map<number, PeerFigure | { unavailable: string }>();
  // Peer and ours alternate so both see the machine's load of the same minutes.
  if (peers.includes(1)) peerFigures.set(1, await measurePytorch(1, images));
  log(`training ${epochs} timed epoch(s) of ${images} images on wasm…`);
  const ours = await measureTfjs("wasm", {
    batchSize,
    // Two epochs: the first steps of a process run ~30 % slower (JIT, wasm heap growth).
    warmupBatches: 2 * batchesPerEpoch,
    timedBatches: batchesPerEpoch * epochs,
    images,
  });
  const native = [];
  const nativeKinds = [[1, "intra-op"], [2, "intra-op"], [2, "data"]] as const;
  for (const [threads, parallelism] of nativeKinds) {
    log(
      `training ${epochs} timed epoch(s) of ${images} images on the native engine, ${threads} thread(s)${
        threads > 1 ? ` (${parallelism})` : ""
      }…`,
    );
    native.push(
      await measureNativeSteps(threads, parallelism, {
        batchSize,
        warmupBatches: batchesPerEpoch,
        timedBatches: batchesPerEpoch * epochs,
        images,
      }),
    );
  }
  const loops: EngineFigure[] = [];
  const nativeLoads = (await nativeEngine()).ok;
  for (const engine of nativeLoads ? ["wasm", "native"] as const : ["wasm"] as const) {
    for (const workers of [1, 2]) {
      log(
        `training ${epochs} timed epoch(s) of ${images} faces through trainClassifier on ${engine}, ${workers} thread(s)…`,
      );
      loops.push(await measureTrainLoop({ batchSize, epochs, images, workers, engine }));
    }
  }
  if (peers.includes(2)) peerFigures.set(2, await measurePytorch(2, images));

  emitCnnFigures({ ours, native, loops, peerFigures, cnnFlops, peak });
  if (!values["skip-tuned"]) {
    await emitPeakAndFineTuning({ batchSize, images, epochs, peak, cnnFlops });
  }
  if (cpuBatches > 0) {
    const cpuBatch = Math.min(8, batchSize);
    log(`training ${cpuBatches} batch(es) of ${cpuBatch} on tfjs' cpu backend…`);
    const cpu = await measureTfjs("cpu", {
      batchSize: cpuBatch,
      warmupBatches: 1,
      timedBatches: cpuBatches,
      images: cpuBatch * 2,
    });
    emit({
      ...cpu,
      note: `estimate from ${cpuBatches} batch(es) of ${cpuBatch} after 1 warm-up batch`,
      vs_ours: ratio(cpu.images_per_s, ours.images_per_s),
    });
    await tf.setBackend("wasm");
  }
  return 0;
}

export const benchTrainCommand: Command = {
  name: "bench:train",
  summary: "measure CNN training throughput: our engine vs tfjs cpu vs PyTorch",
  usage: `
usage: deno task bench:train [--images N] [--epochs N] [--batch N] [--cpu-batches N]
                             [--skip-peer] [--skip-tuned] [--profile]

Trains the seed study's CNN (64×64×1, three conv blocks, 92,868 parameters) on synthetic data
with Adam and cross-entropy: warm-up epochs (two for the raw steps, the process's first; one
for each loop), then the timed epochs. Prints one JSON line per engine with images_per_s:
ours (tfjs wasm + fast kernels, raw training steps on one thread),
the native engine's raw steps (ONNX Runtime from onnxruntime-node: the whole step, forward,
backward and Adam, as one graph on 1 thread and on 2 intra-op threads; and data-parallel on 2
threads: the gradient-only graph on this thread and a replica worker, one ORT thread each,
their gradients summed into one Adam update in JS), the real loop (trainClassifier on a
synthetic FaceStore: augmentation, validation each epoch) on wasm (1 thread, and 2 over a
replica worker) and on the native engine (1 thread, and 2 data-parallel), PyTorch on 1 and 2
threads (via
../shared/bench/torch_cnn.py with Debian's python3-torch, measured in the same run, with the
ratio ours/pytorch), and tfjs' stock cpu backend (a few batches of 8: it is ~300× slower).
Each CNN line carries gflop_per_s (its FLOPs per image counted from the layer shapes: forward,
weight and input gradients) and its share of the peak of as many cores as it used: the
wasm-SIMD-128 peak (what our engine can reach) and the AVX-512 (or AVX2) peak that PyTorch can
use; the machine_peak line says how they were computed (/proc/cpuinfo: cores × clock × lanes ×
2 for FMA). Then fine-tuning: mobilefacenet-tuned's raw training steps (its last block and
head on synthetic trunk activations, 1 thread, with GFLOP/s), and the frozen trunk's cost per
face in the face stage (alone, and with the embedding from the same inference).

On both engines the second core comes from data-parallel replicas (TrainOptions.workers: each
Deno worker runs its own tfjs wasm, or its own one-thread ONNX Runtime session, on a share of
every batch, gradients summed into one Adam update). On the native engine ORT's own intra-op
threads gain only ~1.15× on this small CNN (several of its ops run on one thread), and a
session's run blocks the JS thread that calls it, so two sessions need two JS threads. On wasm
the replicas stand in for tfjs' threaded wasm build: tfjs turns that build off outside browsers
(tfjs#3830), and forced on under Deno its emscripten pthread workers fail to start
(ERR_WORKER_PATH). It would also thread only XNNPACK's own kernels, not the JS gradient kernels.
Measured on 2 cores with the machine otherwise idle: 2 wasm threads train ~1.4–1.7× faster
than 1.

options:
  --images N       synthetic images per epoch (default 512)
  --epochs N       timed epochs (default 2)
  --batch N        batch size (default 32)
  --cpu-batches N  batches timed on tfjs' cpu backend, 0 to skip (default 2)
  --skip-peer      do not run PyTorch
  --skip-tuned     do not measure mobilefacenet-tuned's fine-tuning
  --profile        instead: the top kernels by time of one training step on wasm
`,
  options: {
    images: { type: "string" },
    epochs: { type: "string" },
    batch: { type: "string" },
    "cpu-batches": { type: "string" },
    "skip-peer": { type: "boolean" },
    "skip-tuned": { type: "boolean" },
    profile: { type: "boolean" },
  },
  run: runBenchTrain,
};
