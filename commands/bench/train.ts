/**
 * bench:train — training throughput of the seed study's CNN on our engines (tfjs wasm with the
 * fast gradient kernels; ONNX Runtime, the native one), on tfjs' stock cpu backend, and on
 * PyTorch (the peer), in one run so the figures share the machine's load at that moment; each
 * with its achieved GFLOP/s and share of the machine's peak; then the fine-tuning figures of
 * `mobilefacenet-tuned`.
 */
import { initEngine, tf } from "../../models/engine.ts";
import { type Command, intOption, log, type ParsedValues } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { machineLoad } from "./peer.ts";
import { buildCnn } from "../../models/cnn.ts";
import { trainingWork } from "../../models/flops.ts";
import { achieved, type MachinePeak, machinePeak } from "./machine_peak.ts";
import { measureTrunkCost, measureTunedTraining } from "./train_tuned.ts";
import { nativeEngine } from "../../models/native/onnx_runtime.ts";
import {
  CLASSES,
  type EngineFigure,
  measureNativeSteps,
  measurePytorch,
  measureTfjs,
  measureTrainLoop,
  type PeerFigure,
  profileStep,
  ratio,
} from "./train_measures.ts";

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
