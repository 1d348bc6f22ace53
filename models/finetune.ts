/**
 * Fine-tuning a shipped face network, as the seed fine-tuned VGGFace's last blocks: the last
 * block of mobilefacenet (ArcFace), initialised from its shipped weights, trained together with
 * the linear probe's head on our wasm engine. The frozen trunk runs once per face in the face
 * stage (`mobilefacenet-trunk`, its 7×7×128 activation), so training runs only the block.
 */
import { tf } from "./engine.ts";
import { FACE_NETWORKS, loadFaceNetwork, MOBILEFACENET_CUT_SHAPE } from "./faces/face_networks.ts";
import {
  ChannelPrelu,
  GlobalDepthwise,
  Pointwise,
  Standardise,
  UnitLength,
} from "./tuned_layers.ts";

/** The face-stage output the tuned model reads. */
export const TUNED_NETWORK = "mobilefacenet-trunk" as const;

/** Values per face the tuned model reads (the trunk's 7×7×128 activation). */
export const TUNED_INPUT_LENGTH = FACE_NETWORKS[TUNED_NETWORK].length;

const PREFIX = "MobileFaceNet/MobileFaceNet/Conv2d_7";
const LOGITS = "MobileFaceNet/Logits";

/**
 * The shipped weights of mobilefacenet's last block, by the graph's node names: the 1×1
 * expansion (its batch norm folded into the bias) with PReLU, the GDC, and the two linear 1×1
 * layers to the 192-d embedding (the graph then scales it to unit length).
 */
export const SHIPPED_BLOCK = {
  expandKernel: `${PREFIX}/Conv2D_weights`,
  expandBias: `${PREFIX}/Conv2D_bn_offset`,
  /** The graph's PReLU is relu(x) + m·(x − |x|), which is a slope of 2m below zero. */
  halfSlope: `${PREFIX}/mul`,
  gdcKernel: `${LOGITS}/SeparableConv2d/depthwise_weights`,
  gdcBias: `${LOGITS}/SeparableConv2d/depthwise_bn_offset`,
  linearKernel: `${LOGITS}/Conv/Conv2D_weights`,
  linearBias: `${LOGITS}/Conv/Conv2D_bn_offset`,
  embedKernel: `${LOGITS}/LinearConv1x1/Conv2D_weights`,
  embedBias: `${LOGITS}/LinearConv1x1/Conv2D_bn_offset`,
} as const;

export interface TunedOptions {
  /**
   * Learning-rate multiplier of the shipped block against the fresh head (Caffe's `lr_mult`):
   * the block starts from trained weights, and the head standardises embeddings that differ
   * by a hundredth of their length, so a step that is small for the block is large for the
   * head's input (at 0.01 training diverges on congress dev).
   * @default 0.001
   */
  blockRate?: number;
  /**
   * L2 penalty on the head's weights, as the linear probe's.
   * @default 0.01
   */
  l2?: number;
  /**
   * The training faces' trunk activations, whose shipped embeddings fix the head's
   * standardisation (mean and std per value).
   * @default [] (no standardisation: mean 0, std 1)
   */
  standardiseOn?: readonly Float32Array[];
  /**
   * Seed for the head's initialiser.
   * @default undefined (random)
   */
  seed?: number;
}

/**
 * Defaults chosen on congress set=dev, 5-fold (`bench:congress --set dev --folds 5 --models
 * mobilefacenet-tuned`), with the pipeline's epochs, patience and Adam rate: block rate 1e-5
 * 58.5 %, 1e-4 57.5 %, 3e-4 57.5 %, 1e-3 62.0 %, 3e-3 59.5 %, 1e-2 50.0 % (it diverges); at 1e-3
 * the head's L2 0.001 gave 60.0 %, 0.01 62.0 %, 0.1 59.5 %. The CIs are ±7 points on 200 faces,
 * so these differ by noise, except where it diverges.
 */
export const TUNED_DEFAULTS = { blockRate: 0.001, l2: 0.01 } as const;

/**
 * The last block alone, trunk activation (flat, 6272 values) to the unit-length embedding
 * scaled to √192, its layers' weights still to be set (`setShippedBlock`).
 */
function blockLayers(blockRate: number): tf.layers.Layer[] {
  const [height, width, channels] = MOBILEFACENET_CUT_SHAPE;
  return [
    tf.layers.reshape({ targetShape: [height, width, channels], inputShape: [TUNED_INPUT_LENGTH] }),
    new Pointwise({ units: 512, rate: blockRate, inputGradient: false, name: "tuned_expand" }),
    new ChannelPrelu({ rate: blockRate, name: "tuned_prelu" }),
    new GlobalDepthwise({ rate: blockRate, name: "tuned_gdc" }),
    new Pointwise({ units: 512, rate: blockRate, name: "tuned_linear" }),
    new Pointwise({
      units: FACE_NETWORKS.mobilefacenet.length,
      rate: blockRate,
      name: "tuned_embed",
    }),
    new UnitLength({ name: "tuned_unit" }),
  ];
}

/** Sets the block's layers of `model` to the shipped weights, each stored ÷ its rate. */
async function setShippedBlock(model: tf.LayersModel, blockRate: number): Promise<void> {
  const graph = await loadFaceNetwork("mobilefacenet");
  const shipped = graph.weights as unknown as Record<string, tf.Tensor[]>;
  const get = (name: string) => {
    const tensor = shipped[name]?.[0];
    if (!tensor) throw new Error(`mobilefacenet.json lacks the weight '${name}'`);
    return tensor;
  };
  const flat = (name: string, shape: number[]) => get(name).reshape(shape);
  const values: [string, tf.Tensor[]][] = tf.tidy(() =>
    [
      ["tuned_expand", [
        flat(SHIPPED_BLOCK.expandKernel, [128, 512]),
        get(SHIPPED_BLOCK.expandBias),
      ]],
      ["tuned_prelu", [get(SHIPPED_BLOCK.halfSlope).mul(2)]],
      ["tuned_gdc", [flat(SHIPPED_BLOCK.gdcKernel, [7, 7, 512]), get(SHIPPED_BLOCK.gdcBias)]],
      ["tuned_linear", [
        flat(SHIPPED_BLOCK.linearKernel, [512, 512]),
        get(SHIPPED_BLOCK.linearBias),
      ]],
      ["tuned_embed", [flat(SHIPPED_BLOCK.embedKernel, [512, 192]), get(SHIPPED_BLOCK.embedBias)]],
    ].map((
      [layer, tensors],
    ) => [layer as string, (tensors as tf.Tensor[]).map((t) => t.div(blockRate))])
  );
  try {
    for (const [name, tensors] of values) model.getLayer(name).setWeights(tensors);
  } finally {
    tf.dispose(values.flatMap(([, tensors]) => tensors));
  }
}

/**
 * mobilefacenet's last block with its shipped weights, trunk activation → the shipped
 * embedding scaled to length √192 (what the linear probe reads). Not compiled.
 */
export async function buildShippedBlock(blockRate = 1): Promise<tf.Sequential> {
  const model = tf.sequential({ name: "facefield_tuned_block" });
  for (const layer of blockLayers(blockRate)) model.add(layer);
  await setShippedBlock(model, blockRate);
  return model;
}

/**
 * The tuned model: mobilefacenet's last block from its shipped weights, then the linear
 * probe's head (a fixed standardisation and Dense(classes) + softmax), trained together.
 * Not compiled.
 */
export async function buildTunedMobileFaceNet(
  classes: number,
  options: TunedOptions = {},
): Promise<tf.Sequential> {
  const {
    blockRate = TUNED_DEFAULTS.blockRate,
    l2 = TUNED_DEFAULTS.l2,
    standardiseOn = [],
    seed,
  } = options;
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(
      `Cannot build a tuned model as 'classes' must be an integer ≥ 2: got ${classes}`,
    );
  }
  if (!(blockRate > 0 && blockRate <= 1)) {
    throw new RangeError(
      `Cannot build a tuned model as 'blockRate' must be in (0, 1]: got ${blockRate}`,
    );
  }
  if (!(l2 >= 0 && Number.isFinite(l2))) {
    throw new RangeError(`Cannot build a tuned model as 'l2' must be ≥ 0: got ${l2}`);
  }
  const model = tf.sequential({ name: "facefield_tuned" });
  for (const layer of blockLayers(blockRate)) model.add(layer);
  model.add(new Standardise({ name: "tuned_standardise" }));
  model.add(tf.layers.dense({
    units: classes,
    activation: "softmax",
    kernelInitializer: tf.initializers.glorotUniform({ seed }),
    kernelRegularizer: l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined,
  }));
  await setShippedBlock(model, blockRate);
  if (standardiseOn.length > 0) await setStandardisation(model, standardiseOn);
  return model;
}

/** Fixes the head's standardisation to the shipped embeddings of `inputs` (trunk activations). */
async function setStandardisation(
  model: tf.LayersModel,
  inputs: readonly Float32Array[],
): Promise<void> {
  const block = await buildShippedBlock();
  const length = FACE_NETWORKS.mobilefacenet.length;
  const sum = new Float64Array(length);
  const squares = new Float64Array(length);
  try {
    for (let start = 0; start < inputs.length; start += 128) {
      const batch = inputs.slice(start, start + 128);
      const values = tf.tidy(() => {
        const flat = new Float32Array(batch.length * TUNED_INPUT_LENGTH);
        batch.forEach((input, i) => flat.set(input, i * TUNED_INPUT_LENGTH));
        const x = tf.tensor2d(flat, [batch.length, TUNED_INPUT_LENGTH]);
        return (block.predict(x) as tf.Tensor).dataSync();
      });
      for (let i = 0; i < values.length; i++) {
        sum[i % length]! += values[i]!;
        squares[i % length]! += values[i]! * values[i]!;
      }
    }
  } finally {
    block.dispose();
  }
  const mean = Float32Array.from(sum, (total) => total / inputs.length);
  const inverseStd = Float32Array.from(squares, (total, i) => {
    const variance = Math.max(total / inputs.length - mean[i]! * mean[i]!, 0);
    return 1 / Math.sqrt(variance + 1e-6);
  });
  const weights = [tf.tensor1d(mean), tf.tensor1d(inverseStd)];
  model.getLayer("tuned_standardise").setWeights(weights);
  tf.dispose(weights);
}
