/**
 * The layers of a fine-tuned face network's last block, written with ops that have gradients
 * on the wasm backend (matmuls, sums, products: wasm has no depthwise-conv gradient), and
 * registered for tfjs' serialisation so a saved tuned model loads again.
 *
 * Each weighted layer takes a `rate`, the learning-rate multiplier of Caffe's `lr_mult`: it
 * stores its weights divided by `rate` and multiplies them back in the forward pass. Adam's
 * step does not depend on a gradient's scale, so a stored weight moves by about the learning
 * rate per step and the weight the layer uses by `rate` times that: the shipped block learns
 * slower than the fresh head on top of it, from one optimizer.
 */
import { tf } from "./engine.ts";

type Kwargs = tf.serialization.ConfigDict;

interface RateConfig {
  /** Learning-rate multiplier of the layer's weights (its stored weights are true ÷ rate). */
  rate: number;
  name?: string;
}

function checkRate(rate: unknown): number {
  if (typeof rate !== "number" || !(rate > 0 && Number.isFinite(rate))) {
    throw new RangeError(`a tuned layer's 'rate' must be a positive number: got ${rate}`);
  }
  return rate;
}

function only(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0]! : inputs;
}

/**
 * a · b, whose gradients transpose explicitly: wasm's matmul with a transposed operand (what
 * tfjs' own MatMul gradient asks for) ran 3–7× slower than a transpose and a plain matmul.
 * `needInput` false leaves a's gradient zero: the block's first layer reads data.
 */
function product(needInput: boolean): (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D {
  return tf.customGrad((a, b, save) => {
    (save as tf.GradSaveFunc)([a as tf.Tensor2D, b as tf.Tensor2D]);
    return {
      value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
      gradFunc: (dy, [a, b]) => [
        needInput ? tf.matMul(dy as tf.Tensor2D, tf.transpose(b!)) : tf.zerosLike(a!),
        tf.matMul(tf.transpose(a!), dy as tf.Tensor2D),
      ],
    };
  }) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;
}

/** A 1×1 convolution (or a dense layer on vectors): a matmul over the last axis, plus a bias. */
export class Pointwise extends tf.layers.Layer {
  static className = "FacefieldPointwise";
  readonly units: number;
  readonly rate: number;
  /** Whether the layer's input needs a gradient (false where it reads frozen data). */
  readonly inputGradient: boolean;
  readonly #product: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;
  #kernel?: tf.LayerVariable;
  #bias?: tf.LayerVariable;

  constructor(config: RateConfig & { units: number; inputGradient?: boolean }) {
    super({ name: config.name });
    this.units = config.units;
    this.rate = checkRate(config.rate);
    this.inputGradient = config.inputGradient ?? true;
    this.#product = product(this.inputGradient);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const depth = shape.at(-1)!;
    this.#kernel = this.addWeight(
      "kernel",
      [depth!, this.units],
      "float32",
      tf.initializers.zeros(),
    );
    this.#bias = this.addWeight("bias", [this.units], "float32", tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [...shape.slice(0, -1), this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = only(inputs);
      const depth = x.shape.at(-1)!;
      const flat = x.reshape([-1, depth]) as tf.Tensor2D;
      const kernel = this.#kernel!.read().mul(this.rate) as tf.Tensor2D;
      const y = this.#product(flat, kernel).add(this.#bias!.read().mul(this.rate));
      return y.reshape([...x.shape.slice(0, -1), this.units]);
    });
  }

  override getConfig(): Kwargs {
    return {
      ...super.getConfig(),
      units: this.units,
      rate: this.rate,
      inputGradient: this.inputGradient,
    };
  }
}

/** PReLU with one slope per channel (the last axis): max(x, 0) + slope · min(x, 0). */
export class ChannelPrelu extends tf.layers.Layer {
  static className = "FacefieldChannelPrelu";
  readonly rate: number;
  #slope?: tf.LayerVariable;

  constructor(config: RateConfig) {
    super({ name: config.name });
    this.rate = checkRate(config.rate);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    this.#slope = this.addWeight("slope", [shape.at(-1)!], "float32", tf.initializers.zeros());
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = only(inputs);
      const positive = tf.relu(x);
      return positive.add(x.sub(positive).mul(this.#slope!.read().mul(this.rate)));
    });
  }

  override getConfig(): Kwargs {
    return { ...super.getConfig(), rate: this.rate };
  }
}

/**
 * MobileFaceNet's global depthwise convolution (GDC): a depthwise kernel as large as its input,
 * so each channel is a weighted sum over the whole map, plus a bias: [n, h, w, c] → [n, c].
 */
export class GlobalDepthwise extends tf.layers.Layer {
  static className = "FacefieldGlobalDepthwise";
  readonly rate: number;
  #kernel?: tf.LayerVariable;
  #bias?: tf.LayerVariable;

  constructor(config: RateConfig) {
    super({ name: config.name });
    this.rate = checkRate(config.rate);
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const [, height, width, channels] = shape as number[];
    this.#kernel = this.addWeight(
      "kernel",
      [height!, width!, channels!],
      "float32",
      tf.initializers.zeros(),
    );
    this.#bias = this.addWeight("bias", [channels!], "float32", tf.initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [shape[0]!, shape.at(-1)!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const weighted = only(inputs).mul(this.#kernel!.read().mul(this.rate));
      return weighted.sum([1, 2]).add(this.#bias!.read().mul(this.rate));
    });
  }

  override getConfig(): Kwargs {
    return { ...super.getConfig(), rate: this.rate };
  }
}

/**
 * Scales each vector to length √n: the network's unit-length embedding, at the scale the
 * linear probe reads it (unit variance per value on average).
 */
export class UnitLength extends tf.layers.Layer {
  static className = "FacefieldUnitLength";

  constructor(config: { name?: string } = {}) {
    super({ name: config.name });
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = only(inputs);
      const length = x.square().sum(-1, true).add(1e-10).rsqrt();
      return x.mul(length).mul(Math.sqrt(x.shape.at(-1)!));
    });
  }
}

/**
 * (x − mean) / std per value, with the mean and std fixed when the model is built (from the
 * training faces through the shipped block) and saved with it, never updated. Batch
 * normalisation would not do here: the embeddings of different faces differ by about a
 * hundredth of their length, so while the block learns, its running mean lags behind by more
 * than that spread and every validation face lands on one side.
 */
export class Standardise extends tf.layers.Layer {
  static className = "FacefieldStandardise";
  #mean?: tf.LayerVariable;
  #inverseStd?: tf.LayerVariable;

  constructor(config: { name?: string } = {}) {
    super({ name: config.name });
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const depth = [shape.at(-1)!];
    this.#mean = this.addWeight(
      "mean",
      depth,
      "float32",
      tf.initializers.zeros(),
      undefined,
      false,
    );
    this.#inverseStd = this.addWeight(
      "inverse_std",
      depth,
      "float32",
      tf.initializers.ones(),
      undefined,
      false,
    );
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => only(inputs).sub(this.#mean!.read()).mul(this.#inverseStd!.read()));
  }
}

for (const layer of [Pointwise, ChannelPrelu, GlobalDepthwise, UnitLength, Standardise]) {
  tf.serialization.registerClass(layer);
}
