/**
 * GPU check: can facefield train the seed study's CNN (models/cnn.ts) on a GPU through
 * `@tensorflow/tfjs-backend-webgpu` under Deno, how fast, and do its numbers agree with the
 * cpu backend's?
 *
 * It trains on synthetic images with `model.fit` (whole epochs) and with a `trainOnBatch` loop
 * (how models/train.ts trains: one loss read-back per batch), prints one JSON line per figure,
 * then runs the same weights on the same input on webgpu, cpu and (when its binaries are found)
 * facefield's wasm engine, and compares predictions and gradients.
 *
 *   deno task gpu:check [--images 512] [--epochs 3] [--batches 32,128]
 *     [--allow-fallback] [--no-wasm]
 *
 * Not part of the test suite: it needs a WebGPU adapter, which CI and most dev machines lack.
 * Exit codes: 0 ok; 1 numerics outside tolerance; 2 no WebGPU adapter; 3 only a software
 * (fallback) adapter and no --allow-fallback; 64 bad options.
 */
import "@tensorflow/tfjs-backend-webgpu";
import { parseArgs } from "node:util";
import { engineInfo, initEngine, tf } from "../../models/engine.ts";
import { buildCnn, CNN_INPUT_SIZE } from "../../models/cnn.ts";

const CLASSES = 4;
const SEED = 7;
/** Softmax outputs of float32 kernels that sum in another order differ by ~1e-6; 1e-4 is slack. */
const PROBABILITY_TOLERANCE = 1e-4;
/** Gradients relative to the largest gradient of the same weight tensor. */
const GRADIENT_TOLERANCE = 1e-3;

type Backend = "webgpu" | "cpu" | "wasm";

interface CheckOptions {
  /** Synthetic training images per epoch. @default 512 */
  images: number;
  /** Timed epochs (after one warm-up epoch). @default 3 */
  epochs: number;
  /** Batch sizes to time. @default [32, 128] */
  batches: number[];
  /** Accept a software adapter (llvmpipe, lavapipe): for trying the script without a GPU. @default false */
  allowFallback: boolean;
  /** Skip the wasm engine (its timing and numerics). @default false */
  noWasm: boolean;
}

function exit(code: number, message: string): never {
  console.error(`gpu_check: ${message}`);
  Deno.exit(code);
}

function readOptions(args: string[]): CheckOptions {
  const { values } = parseArgs({
    args,
    options: {
      images: { type: "string", default: "512" },
      epochs: { type: "string", default: "3" },
      batches: { type: "string", default: "32,128" },
      "allow-fallback": { type: "boolean", default: false },
      "no-wasm": { type: "boolean", default: false },
    },
  });
  const positive = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1) {
      exit(64, `'--${name}' must be a positive integer: got '${text}'`);
    }
    return value;
  };
  const images = positive("images", values.images);
  const batches = values.batches.split(",").map((text) => positive("batches", text.trim()));
  const tooLarge = batches.find((batch) => batch > images);
  if (tooLarge !== undefined) {
    exit(64, `batch ${tooLarge} is larger than '--images' ${images}: an epoch would be empty`);
  }
  return {
    images,
    epochs: positive("epochs", values.epochs),
    batches,
    allowFallback: values["allow-fallback"],
    noWasm: values["no-wasm"],
  };
}

function line(record: Record<string, unknown>): void {
  console.log(JSON.stringify(record));
}

const round = (value: number, digits = 1) => Number(value.toFixed(digits));

/** Finds the adapter tfjs' webgpu backend will ask for (high-performance), or exits saying why not. */
async function findAdapter(allowFallback: boolean): Promise<GPUAdapterInfo> {
  if (!("gpu" in navigator)) {
    exit(2, "no WebGPU in this runtime (navigator.gpu is missing); Deno ≥ 2 has it built in");
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (adapter === null) {
    exit(
      2,
      "no WebGPU adapter found (navigator.gpu.requestAdapter() gave null): no GPU, or no " +
        "Vulkan loader/driver (libvulkan.so.1 and the vendor's ICD, see VK_DRIVER_FILES)",
    );
  }
  const { info } = adapter;
  line({
    check: "adapter",
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    fallback: info.isFallbackAdapter,
    max_storage_buffer_binding_size: adapter.limits.maxStorageBufferBindingSize,
    max_buffer_size: adapter.limits.maxBufferSize,
  });
  if (info.isFallbackAdapter && !allowFallback) {
    exit(
      3,
      `only a software fallback adapter was found ('${info.description}'); pass ` +
        "--allow-fallback to run on it anyway (slow, and says nothing about a GPU)",
    );
  }
  return info;
}

/** Switches tfjs to `backend`; facefield's own engine set-up (fast kernels) for wasm. */
async function useBackend(backend: Backend): Promise<void> {
  if (backend === "wasm") await initEngine({ backend: "wasm" });
  if (!(await tf.setBackend(backend))) {
    throw new Error(`tfjs could not start its '${backend}' backend`);
  }
  await tf.ready();
}

function syntheticData(count: number): { images: tf.Tensor4D; labels: tf.Tensor2D } {
  return tf.tidy(() => ({
    images: tf.randomUniform([count, CNN_INPUT_SIZE, CNN_INPUT_SIZE, 1], 0, 1, "float32", 1),
    labels: tf.oneHot(tf.randomUniform([count], 0, CLASSES, "int32", 2) as tf.Tensor1D, CLASSES)
      .toFloat() as tf.Tensor2D,
  }));
}

function compiledCnn(): tf.Sequential {
  const model = buildCnn(CLASSES, { seed: SEED });
  model.compile({ optimizer: tf.train.adam(), loss: "categoricalCrossentropy" });
  return model;
}

/** Waits for every queued GPU command by reading back one value that depends on the model. */
async function settle(model: tf.Sequential): Promise<void> {
  const weights = model.getWeights();
  await weights[weights.length - 1]!.data();
}

async function trainOnBatches(
  model: tf.Sequential,
  data: { images: tf.Tensor4D; labels: tf.Tensor2D },
  batch: number,
): Promise<void> {
  const count = data.images.shape[0];
  for (let offset = 0; offset + batch <= count; offset += batch) {
    const [xs, ys] = tf.tidy(() => [
      data.images.slice(offset, batch),
      data.labels.slice(offset, batch),
    ]);
    await model.trainOnBatch(xs!, ys!);
    tf.dispose([xs!, ys!]);
  }
}

/** Images per second of `fit` epochs and of a `trainOnBatch` loop, after one warm-up epoch each. */
async function timeTraining(
  backend: Backend,
  device: string,
  options: CheckOptions,
): Promise<tf.Tensor[] | undefined> {
  await useBackend(backend);
  const data = syntheticData(options.images);
  let trainedWeights: tf.Tensor[] | undefined;
  try {
    for (const batch of options.batches) {
      for (const loop of ["fit", "trainOnBatch"] as const) {
        const model = compiledCnn();
        const epoch = () =>
          loop === "fit"
            ? model.fit(data.images, data.labels, { batchSize: batch, epochs: 1, verbose: 0 })
            : trainOnBatches(model, data, batch);
        await epoch();
        await settle(model);
        const start = performance.now();
        for (let e = 0; e < options.epochs; e++) await epoch();
        await settle(model);
        const seconds = (performance.now() - start) / 1000;
        const trained = options.epochs * Math.floor(options.images / batch) * batch;
        line({
          engine: backend === "wasm"
            ? "facefield wasm (tfjs wasm + fast kernels)"
            : `tfjs ${backend}`,
          device,
          batch,
          loop,
          images_per_s: round(trained / seconds),
          images: trained,
          seconds: round(seconds, 3),
        });
        if (backend === "webgpu" && trainedWeights === undefined) {
          trainedWeights = await Promise.all(
            model.getWeights().map(async (w) => tf.tensor(await w.data(), w.shape)),
          );
        }
        model.optimizer.dispose();
        model.dispose();
      }
    }
  } finally {
    tf.dispose([data.images, data.labels]);
  }
  return trainedWeights;
}

interface WeightsOnHost {
  values: Float32Array[];
  shapes: number[][];
}

async function toHost(weights: tf.Tensor[]): Promise<WeightsOnHost> {
  return {
    values: await Promise.all(weights.map(async (w) => new Float32Array(await w.data()))),
    shapes: weights.map((w) => w.shape),
  };
}

interface Outputs {
  probabilities: Float32Array;
  gradients: Float32Array[];
}

/** Predictions and loss gradients (no dropout) of the given weights on the given batch. */
async function runModel(
  backend: Backend,
  weights: WeightsOnHost,
  input: Float32Array,
  labels: Float32Array,
): Promise<Outputs> {
  await useBackend(backend);
  const model = buildCnn(CLASSES);
  const batch = labels.length / CLASSES;
  const tensors = weights.values.map((values, i) => tf.tensor(values, weights.shapes[i]));
  const xs = tf.tensor4d(input, [batch, CNN_INPUT_SIZE, CNN_INPUT_SIZE, 1]);
  const ys = tf.tensor2d(labels, [batch, CLASSES]);
  try {
    model.setWeights(tensors);
    const predicted = model.predict(xs) as tf.Tensor;
    const probabilities = new Float32Array(await predicted.data());
    predicted.dispose();
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(ys, model.apply(xs, { training: false }) as tf.Tensor),
      variables,
    );
    const gradients = await Promise.all(
      variables.map(async (v) => new Float32Array(await grads[v.name]!.data())),
    );
    tf.dispose([value, ...Object.values(grads)]);
    return { probabilities, gradients };
  } finally {
    tf.dispose([...tensors, xs, ys]);
    model.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function argmaxAgreement(a: Float32Array, b: Float32Array): number {
  let agree = 0;
  const rows = a.length / CLASSES;
  const argmax = (p: Float32Array, row: number) => {
    let best = 0;
    for (let c = 1; c < CLASSES; c++) {
      if (p[row * CLASSES + c]! > p[row * CLASSES + best]!) best = c;
    }
    return best;
  };
  for (let row = 0; row < rows; row++) if (argmax(a, row) === argmax(b, row)) agree++;
  return agree / rows;
}

/**
 * Largest gradient difference, relative to the largest gradient in the same weight tensor, and
 * which weight tensor (its index in `model.trainableWeights`) it is in.
 */
function maxRelativeGradientDiff(a: Float32Array[], b: Float32Array[]): [number, number] {
  let max = 0;
  let worst = 0;
  a.forEach((ga, i) => {
    let scale = 1e-12;
    for (const g of ga) scale = Math.max(scale, Math.abs(g));
    const relative = maxAbsDiff(ga, b[i]!) / scale;
    if (relative > max) [max, worst] = [relative, i];
  });
  return [max, worst];
}

/** Same weights, same input on every backend; returns false when one is outside tolerance. */
async function compareNumerics(
  label: string,
  weights: WeightsOnHost,
  backends: Backend[],
): Promise<boolean> {
  const batch = 64;
  // A fixed, smooth input (not random) so a rerun anywhere sees exactly these pixels.
  const input = new Float32Array(batch * CNN_INPUT_SIZE * CNN_INPUT_SIZE);
  for (let i = 0; i < input.length; i++) input[i] = 0.5 + 0.5 * Math.sin(i * 0.0137 + (i % 97));
  const labels = new Float32Array(batch * CLASSES);
  for (let row = 0; row < batch; row++) labels[row * CLASSES + (row % CLASSES)] = 1;

  const reference = await runModel("cpu", weights, input, labels);
  let ok = true;
  for (const backend of backends) {
    const outputs = await runModel(backend, weights, input, labels);
    const probabilityDiff = maxAbsDiff(outputs.probabilities, reference.probabilities);
    const [gradientDiff, worst] = maxRelativeGradientDiff(outputs.gradients, reference.gradients);
    const within = probabilityDiff <= PROBABILITY_TOLERANCE && gradientDiff <= GRADIENT_TOLERANCE;
    ok &&= within;
    line({
      check: "numerics",
      weights: label,
      backend,
      against: "cpu",
      images: batch,
      max_abs_diff_probabilities: probabilityDiff,
      argmax_agreement: argmaxAgreement(outputs.probabilities, reference.probabilities),
      max_rel_diff_gradients: gradientDiff,
      worst_gradient: weights.shapes[worst]!.length === 1
        ? `bias ${worst} [${weights.shapes[worst]}]`
        : `kernel ${worst} [${weights.shapes[worst]}]`,
      within_tolerance: within,
    });
  }
  return ok;
}

async function wasmAvailable(noWasm: boolean): Promise<boolean> {
  if (noWasm) return false;
  try {
    await initEngine({ backend: "wasm" });
    line({ check: "wasm engine", ...engineInfo() });
    return true;
  } catch (error) {
    line({ check: "wasm engine", skipped: `binaries not found: ${(error as Error).message}` });
    return false;
  }
}

async function main(): Promise<void> {
  const options = readOptions(Deno.args);
  const adapter = await findAdapter(options.allowFallback);
  const device = adapter.description || `${adapter.vendor} ${adapter.device}`;
  await useBackend("webgpu");
  line({ check: "tfjs", backend: tf.getBackend(), tfjs: tf.version.tfjs, deno: Deno.version.deno });

  const withWasm = await wasmAvailable(options.noWasm);
  const trained = await timeTraining("webgpu", device, options);
  if (withWasm) await timeTraining("wasm", `cpu, ${engineInfo().threads} thread(s)`, options);

  const backends: Backend[] = withWasm ? ["webgpu", "wasm"] : ["webgpu"];
  await useBackend("cpu");
  const seedWeights = compiledCnn();
  const initial = await toHost(seedWeights.getWeights());
  seedWeights.dispose();
  let ok = await compareNumerics("seed", initial, backends);
  if (trained !== undefined) {
    ok = await compareNumerics("trained on webgpu", await toHost(trained), backends) && ok;
    tf.dispose(trained);
  }
  if (!ok) {
    exit(
      1,
      "a backend's predictions or gradients differ from cpu beyond tolerance" +
        (adapter.isFallbackAdapter
          ? " (llvmpipe stops a shader's loops after ~65,000 iterations, which cuts short the " +
            "first conv's filter gradient: webgpu's Conv2DBackpropFilter loops over batch × 62 × 62)"
          : ""),
    );
  }
}

if (import.meta.main) await main();
