/**
 * Trains the seed CNN on the native engine: one ONNX Runtime session runs the whole training
 * step (cnn_graph.ts), a second the forward pass for validation; the weights and Adam's
 * moments stay here as typed arrays between steps, and convert to and from tfjs' layouts only
 * when the caller asks (each epoch's best weights, the final model). On more than one thread
 * the step can instead be data-parallel (cnn_data_parallel.ts): the batch's gradients from
 * this thread and replica workers, summed, then Adam here (adam.ts).
 */
import {
  CNN_GRAPH_SIZES,
  CNN_WEIGHT_NAMES,
  cnnForwardGraph,
  cnnTrainingGraph,
  cnnWeightShapes,
} from "./cnn_graph.ts";
import type { AdamSettings } from "./cnn_graph.ts";
import { createSession, type OrtModule, type OrtSession, type OrtTensor } from "./onnx_runtime.ts";
import { DataParallelGradients } from "./cnn_data_parallel.ts";
import { adamUpdate } from "./adam.ts";

/** A tfjs conv kernel [kh, kw, in, out] as ONNX's [out, in, kh, kw]. */
export function kernelToOnnx(values: Float32Array, shape: readonly number[]): Float32Array {
  const [kh, kw, inputs, outputs] = shape as [number, number, number, number];
  const result = new Float32Array(values.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < inputs; i++) {
        for (let o = 0; o < outputs; o++) {
          result[((o * inputs + i) * kh + y) * kw + x] =
            values[((y * kw + x) * inputs + i) * outputs + o]!;
        }
      }
    }
  }
  return result;
}

/** An ONNX conv kernel [out, in, kh, kw] as tfjs' [kh, kw, in, out]. */
export function kernelToTfjs(values: Float32Array, shape: readonly number[]): Float32Array {
  const [outputs, inputs, kh, kw] = shape as [number, number, number, number];
  const result = new Float32Array(values.length);
  for (let o = 0; o < outputs; o++) {
    for (let i = 0; i < inputs; i++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          result[((y * kw + x) * inputs + i) * outputs + o] =
            values[((o * inputs + i) * kh + y) * kw + x]!;
        }
      }
    }
  }
  return result;
}

/** Conv kernels are the 4-D weights; dense kernels and biases keep their layout. */
const isConvKernel = (shape: readonly number[]) => shape.length === 4;

/**
 * A dropout mask as tfjs' Dropout layer makes one: each unit kept with probability 1 − rate
 * and then scaled by 1 / (1 − rate), or zeroed.
 */
export function dropoutMask(
  length: number,
  rate: number,
  random: () => number = Math.random,
): Float32Array {
  const keep = 1 - rate;
  const mask = new Float32Array(length);
  for (let i = 0; i < length; i++) mask[i] = Math.floor(random() + keep) / keep;
  return mask;
}

/** How more than one thread shares a step. */
export type NativeParallelism = "intra-op" | "data";

export interface NativeCnnOptions extends AdamSettings {
  /** Threads that compute each step. @default 1 */
  threads?: number;
  /**
   * How `threads` > 1 share a step: `intra-op`, ONNX Runtime's own threads inside the one-graph
   * step; `data`, the batch split between this thread and `threads − 1` replica workers
   * (cnn_data_parallel.ts), each on one thread, their gradients summed into one Adam update
   * here. Where no worker starts, `data` falls back to `intra-op` and `parallelism` says why.
   * @default "intra-op"
   */
  parallelism?: NativeParallelism;
  /** The Dropout layer's rate. @default 0.5 (the seed's) */
  dropoutRate?: number;
  /** Draws the dropout masks. @default Math.random (dropout stays random, as in tfjs) */
  random?: () => number;
}

/** What one step reports: the batch's mean loss (before the update) and its predictions. */
export interface NativeStep {
  loss: number;
  probabilities: Float32Array;
}

/** tfjs weights (`model.getWeights()` order and layouts) in ONNX's layouts, checked. */
function onnxWeights(
  classes: number,
  tfjsWeights: readonly { values: Float32Array; shape: readonly number[] }[],
): Float32Array[] {
  const shapes = cnnWeightShapes(classes);
  if (tfjsWeights.length !== shapes.length) {
    throw new RangeError(
      `NativeCnnTrainer: the seed CNN has ${shapes.length} weights, got ${tfjsWeights.length}`,
    );
  }
  return tfjsWeights.map(({ values, shape }, i) => {
    const size = shapes[i]!.reduce((a, b) => a * b, 1);
    if (values.length !== size) {
      throw new RangeError(
        `NativeCnnTrainer: ${CNN_WEIGHT_NAMES[i]} has ${values.length} values, expected ${size}`,
      );
    }
    return isConvKernel(shape) ? kernelToOnnx(values, shape) : values.slice();
  });
}

/** How a trainer's steps actually run: on how many threads, which way, and why if not as asked. */
export interface NativeParallelismUsed {
  kind: NativeParallelism;
  threads: number;
  /** Why `data` was asked for and `intra-op` is used. */
  fallback?: string;
}

/** How a step computes: the one-graph session, or the data-parallel threads. */
type Stepper = { kind: "one-graph"; session: OrtSession } | {
  kind: "data";
  parallel: DataParallelGradients;
};

/** The seed CNN's weights, Adam's state and a training session on ONNX Runtime. */
export class NativeCnnTrainer {
  readonly #ort: OrtModule;
  readonly #stepper: Stepper;
  readonly #forward: OrtSession;
  readonly #classes: number;
  readonly #shapes: number[][];
  readonly #dropoutRate: number;
  readonly #random: () => number;
  readonly #adam: AdamSettings;
  readonly parallelism: NativeParallelismUsed;
  #weights: Float32Array[];
  #m: Float32Array[];
  #v: Float32Array[];
  #step = 0;

  private constructor(
    ort: OrtModule,
    [stepper, forward, parallelism]: [Stepper, OrtSession, NativeParallelismUsed],
    classes: number,
    weights: Float32Array[],
    options: NativeCnnOptions,
  ) {
    this.#ort = ort;
    this.#stepper = stepper;
    this.#forward = forward;
    this.parallelism = parallelism;
    const { learningRate, beta1, beta2, epsilon } = options;
    this.#adam = { learningRate, beta1, beta2, epsilon };
    this.#classes = classes;
    this.#shapes = cnnWeightShapes(classes);
    this.#dropoutRate = options.dropoutRate ?? 0.5;
    this.#random = options.random ?? Math.random;
    this.#weights = weights;
    this.#m = weights.map((w) => new Float32Array(w.length));
    this.#v = weights.map((w) => new Float32Array(w.length));
  }

  /**
   * A trainer starting from tfjs weights (`model.getWeights()` order and layouts, e.g. the
   * freshly initialised model's), with Adam's moments at zero.
   */
  static async create(
    ort: OrtModule,
    classes: number,
    tfjsWeights: readonly { values: Float32Array; shape: readonly number[] }[],
    options: NativeCnnOptions = {},
  ): Promise<NativeCnnTrainer> {
    const weights = onnxWeights(classes, tfjsWeights);
    const threads = options.threads ?? 1;
    // Two threads on two cores that other work shares: spinning would steal their turns.
    const sessionOptions = { threads, spinning: false };
    const forward = await createSession(ort, cnnForwardGraph(classes), sessionOptions);
    let fallback: string | undefined;
    if (threads > 1 && options.parallelism === "data") {
      const parallel = await DataParallelGradients.start(ort, classes, threads - 1);
      if (typeof parallel !== "string") {
        const used = { kind: "data", threads: parallel.threads } as const;
        const stepper = { kind: "data", parallel } as const;
        return new NativeCnnTrainer(ort, [stepper, forward, used], classes, weights, options);
      }
      fallback = parallel;
    }
    const session = await createSession(ort, cnnTrainingGraph(classes, options), sessionOptions);
    const used = { kind: "intra-op", threads, ...(fallback ? { fallback } : {}) } as const;
    const stepper = { kind: "one-graph", session } as const;
    return new NativeCnnTrainer(ort, [stepper, forward, used], classes, weights, options);
  }

  /** Adam updates made so far. */
  get steps(): number {
    return this.#step;
  }

  /**
   * One Adam step on a batch: `images` [n, 64, 64, 1] scaled as the model takes them, `labels`
   * [n, classes] one-hot. A fresh dropout mask is drawn unless one is given. `meanwhile` runs
   * on this thread while the step's other threads may still compute (after this thread's part:
   * a session's run blocks the thread that calls it).
   */
  async step(
    images: Float32Array,
    labels: Float32Array,
    mask?: Float32Array,
    meanwhile: () => void = () => {},
  ): Promise<NativeStep> {
    const { input, dense } = CNN_GRAPH_SIZES;
    const faces = labels.length / this.#classes;
    if (!Number.isInteger(faces) || faces < 1 || images.length !== faces * input * input) {
      throw new RangeError(
        `NativeCnnTrainer.step: ${images.length} pixels and ${labels.length} labels do not make ` +
          `a batch of ${input}×${input} faces over ${this.#classes} classes`,
      );
    }
    const dropout = mask ?? dropoutMask(faces * dense, this.#dropoutRate, this.#random);
    if (dropout.length !== faces * dense) {
      throw new RangeError(
        `NativeCnnTrainer.step: a mask of ${dropout.length}, not ${faces * dense}`,
      );
    }
    const stepper = this.#stepper;
    if (stepper.kind === "one-graph") {
      const result = await this.#oneGraphStep(stepper.session, images, labels, dropout);
      meanwhile();
      return result;
    }
    const { gradients, lossSum, probabilities } = await stepper.parallel.gradients(
      this.#weights,
      { images, labels, mask: dropout },
      meanwhile,
    );
    const slots = this.#weights.map((weight, i) => ({ weight, m: this.#m[i]!, v: this.#v[i]! }));
    adamUpdate(slots, gradients, ++this.#step, this.#adam);
    return { loss: lossSum / faces, probabilities };
  }

  /** The whole step, forward, backward and Adam, as one run of the training graph. */
  async #oneGraphStep(
    session: OrtSession,
    images: Float32Array,
    labels: Float32Array,
    mask: Float32Array,
  ): Promise<NativeStep> {
    const { input, dense } = CNN_GRAPH_SIZES;
    const faces = labels.length / this.#classes;
    const Tensor = this.#ort.Tensor;
    const feeds: Record<string, OrtTensor> = {
      images: new Tensor("float32", images, [faces, input, input, 1]),
      labels: new Tensor("float32", labels, [faces, this.#classes]),
      dropout_mask: new Tensor("float32", mask, [faces, dense]),
      step: new Tensor("float32", Float32Array.of(this.#step + 1), []),
    };
    CNN_WEIGHT_NAMES.forEach((name, i) => {
      const dims = this.#shapes[i]!;
      feeds[name] = new Tensor("float32", this.#weights[i]!, dims);
      feeds[`${name}_m`] = new Tensor("float32", this.#m[i]!, dims);
      feeds[`${name}_v`] = new Tensor("float32", this.#v[i]!, dims);
    });
    const results = await session.run(feeds);
    const data = (name: string) => results[name]!.data as Float32Array;
    this.#weights = CNN_WEIGHT_NAMES.map((name) => data(`${name}_next`));
    this.#m = CNN_WEIGHT_NAMES.map((name) => data(`${name}_m_next`));
    this.#v = CNN_WEIGHT_NAMES.map((name) => data(`${name}_v_next`));
    this.#step++;
    return { loss: data("loss")[0]!, probabilities: data("probabilities") };
  }

  /**
   * The current weights' predictions (no dropout) for `images` [n, 64, 64, 1]: n rows of
   * class probabilities, flat.
   */
  async predict(images: Float32Array): Promise<Float32Array> {
    const { input } = CNN_GRAPH_SIZES;
    const faces = images.length / (input * input);
    if (!Number.isInteger(faces) || faces < 1) {
      throw new RangeError(`NativeCnnTrainer.predict: ${images.length} pixels are not whole faces`);
    }
    const Tensor = this.#ort.Tensor;
    const feeds: Record<string, OrtTensor> = {
      images: new Tensor("float32", images, [faces, input, input, 1]),
    };
    CNN_WEIGHT_NAMES.forEach((name, i) => {
      feeds[name] = new Tensor("float32", this.#weights[i]!, this.#shapes[i]!);
    });
    const { probabilities } = await this.#forward.run(feeds);
    return probabilities!.data as Float32Array;
  }

  /** The current weights in tfjs' `model.getWeights()` order and layouts. */
  tfjsWeights(): Float32Array[] {
    return this.#toTfjs(this.#weights);
  }

  /** Adam's first and second moments, in the weights' order and tfjs' layouts. */
  moments(): { m: Float32Array[]; v: Float32Array[] } {
    return { m: this.#toTfjs(this.#m), v: this.#toTfjs(this.#v) };
  }

  #toTfjs(tensors: Float32Array[]): Float32Array[] {
    return tensors.map((values, i) => {
      const shape = this.#shapes[i]!;
      return isConvKernel(shape) ? kernelToTfjs(values, shape) : values.slice();
    });
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    const stepper = this.#stepper;
    await Promise.all([
      stepper.kind === "one-graph" ? stepper.session.release() : stepper.parallel.release(),
      this.#forward.release(),
    ]);
  }
}
