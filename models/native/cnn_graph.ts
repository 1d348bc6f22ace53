/**
 * The seed CNN (models/cnn.ts) as ONNX graphs for the native engine: one training step
 * (forward, backward with plain ONNX ops, Adam as tfjs' AdamOptimizer does it) and a forward
 * pass for prediction. Weights travel as graph inputs and outputs in ONNX's layouts:
 * conv kernels [out, in, kh, kw], images NCHW; the dense kernels keep tfjs' [in, out], and
 * Flatten runs over (h, w, c) as tfjs' does, so they need no conversion.
 */
import { type Dim, OnnxDataType, OnnxGraph } from "./onnx_graph.ts";
import {
  blockBackward,
  blockForward,
  type BlockShape,
  type BlockTensors,
  firstBlockBackward,
  firstBlockForward,
} from "./conv_blocks.ts";

/** The seed CNN's fixed sizes. */
export const CNN_GRAPH_SIZES = {
  input: 64,
  filters: 32,
  kernel: 3,
  blocks: 3,
  dense: 64,
  /** Side of the last block's pooled map: 64 → 62 → 31 → 29 → 14 → 12 → 6. */
  lastSide: 6,
} as const;

/** The trainable tensors, in tfjs' `model.getWeights()` order. */
export const CNN_WEIGHT_NAMES = [
  "conv1_kernel",
  "conv1_bias",
  "conv2_kernel",
  "conv2_bias",
  "conv3_kernel",
  "conv3_bias",
  "dense1_kernel",
  "dense1_bias",
  "dense2_kernel",
  "dense2_bias",
] as const;

/** Each weight's ONNX shape for a CNN over `classes` classes. */
export function cnnWeightShapes(classes: number): number[][] {
  const { filters, kernel, dense, lastSide } = CNN_GRAPH_SIZES;
  return [
    [filters, 1, kernel, kernel],
    [filters],
    [filters, filters, kernel, kernel],
    [filters],
    [filters, filters, kernel, kernel],
    [filters],
    [lastSide * lastSide * filters, dense],
    [dense],
    [dense, classes],
    [classes],
  ];
}

/** Adam's settings, with Keras' (and tfjs') defaults. */
export interface AdamSettings {
  /** @default 0.001 */
  learningRate?: number;
  /** @default 0.9 */
  beta1?: number;
  /** @default 0.999 */
  beta2?: number;
  /** @default 1e-7 (tfjs' float32 epsilon, what `tf.train.adam()` takes when given none) */
  epsilon?: number;
}

/** tfjs clips probabilities to [ε, 1 − ε] before the log of its cross-entropy. */
const CROSS_ENTROPY_EPSILON = 1e-7;

/** What the forward pass leaves for the backward pass. */
interface ForwardTensors {
  blocks: BlockTensors[];
  flat: string;
  hidden: string;
  dropped: string;
  probabilities: string;
}

/** Each conv block's geometry: 64 → 62 → 31, 31 → 29 → 14, 14 → 12 → 6. */
function blockShapes(): BlockShape[] {
  const { input, filters } = CNN_GRAPH_SIZES;
  const shapes: BlockShape[] = [];
  let side: number = input;
  for (let block = 0; block < CNN_GRAPH_SIZES.blocks; block++) {
    shapes.push({ channels: block === 0 ? 1 : filters, side, filters });
    side = Math.floor((side - 2) / 2);
  }
  return shapes;
}

/** The conv blocks, Flatten in tfjs' (h, w, c) order, the dense layers and softmax. */
function forward(
  graph: OnnxGraph,
  x: string,
  weights: readonly string[],
  dropoutMask: string | null,
): ForwardTensors {
  const { input, filters, lastSide } = CNN_GRAPH_SIZES;
  // NHWC with one channel holds the same floats as NCHW.
  let current = graph.node("Reshape", [x, graph.int64s("image_shape", [-1, 1, input, input])]);
  const blocks = blockShapes().map((shape, block) => {
    const [kernel, bias] = [weights[2 * block]!, weights[2 * block + 1]!];
    const tensors = block === 0
      ? firstBlockForward(graph, current, kernel, bias, shape)
      : blockForward(graph, current, kernel, bias, shape);
    current = tensors.pooled;
    return tensors;
  });
  const flat = graph.node("Reshape", [
    graph.node("Transpose", [current], { perm: [0, 2, 3, 1] }),
    graph.int64s("flat_shape", [-1, lastSide * lastSide * filters]),
  ]);
  const hidden = graph.node("Relu", [graph.node("Gemm", [flat, weights[6]!, weights[7]!])]);
  const dropped = dropoutMask ? graph.node("Mul", [hidden, dropoutMask]) : hidden;
  const logits = graph.node("Gemm", [dropped, weights[8]!, weights[9]!]);
  const probabilities = graph.node("Softmax", [logits], { axis: -1 });
  return { blocks, flat, hidden, dropped, probabilities };
}

/**
 * The categorical cross-entropy as tfjs computes it (clipped probabilities): the batch's mean,
 * or its sum over the faces.
 */
function crossEntropy(
  graph: OnnxGraph,
  probabilities: string,
  labels: string,
  reduce: "ReduceMean" | "ReduceSum" = "ReduceMean",
): string {
  const clipped = graph.node("Clip", [
    probabilities,
    graph.floats("ce_min", [CROSS_ENTROPY_EPSILON], []),
    graph.floats("ce_max", [1 - CROSS_ENTROPY_EPSILON], []),
  ]);
  const perFace = graph.node("ReduceSum", [
    graph.node("Mul", [labels, graph.node("Log", [clipped])]),
    graph.int64s("class_axis", [1]),
  ], { keepdims: 0 });
  return graph.node("Neg", [graph.node(reduce, [perFace], { keepdims: 0 })]);
}

/** The batch's faces, as a float tensor [1]. */
function facesIn(graph: OnnxGraph, x: string): string {
  return graph.node("Cast", [graph.node("Shape", [x], { start: 0, end: 1 })], {
    to: OnnxDataType.FLOAT,
  });
}

/**
 * Every weight's gradient of the cross-entropy summed over the batch and divided by `faces`
 * (the batch's own size for its mean; a whole batch's size for one share of it), in
 * CNN_WEIGHT_NAMES order.
 */
function backward(
  graph: OnnxGraph,
  tensors: ForwardTensors,
  { labels, dropoutMask, faces }: { labels: string; dropoutMask: string; faces: string },
  weights: readonly string[],
): string[] {
  const { filters, lastSide } = CNN_GRAPH_SIZES;
  // Softmax and cross-entropy together: (p − y) / n.
  const logits = graph.node("Div", [graph.node("Sub", [tensors.probabilities, labels]), faces]);
  const batchAxis = graph.int64s("batch_axis", [0]);
  const sumRows = (t: string) => graph.node("ReduceSum", [t, batchAxis], { keepdims: 0 });
  const dense2 = graph.node("Gemm", [tensors.dropped, logits], { transA: 1 });
  const droppedGradient = graph.node("Gemm", [logits, weights[8]!], { transB: 1 });
  const zero = graph.floats("zero", [0], []);
  const hiddenGradient = graph.node("Where", [
    graph.node("Greater", [tensors.hidden, zero]),
    graph.node("Mul", [droppedGradient, dropoutMask]),
    zero,
  ]);
  const dense1 = graph.node("Gemm", [tensors.flat, hiddenGradient], { transA: 1 });
  const flatGradient = graph.node("Gemm", [hiddenGradient, weights[6]!], { transB: 1 });
  let gradient = graph.node("Transpose", [
    graph.node("Reshape", [
      flatGradient,
      graph.int64s("nhwc_shape", [-1, lastSide, lastSide, filters]),
    ]),
  ], { perm: [0, 3, 1, 2] });
  const convs: string[][] = [];
  for (let block = CNN_GRAPH_SIZES.blocks - 1; block > 0; block--) {
    const conv = blockBackward(graph, gradient, tensors.blocks[block]!, weights[2 * block]!, true);
    convs.unshift([conv.kernel, conv.bias]);
    gradient = conv.input!;
  }
  const first = firstBlockBackward(graph, gradient, tensors.blocks[0]!);
  convs.unshift([first.kernel, first.bias]);
  return [...convs.flat(), dense1, sumRows(hiddenGradient), dense2, sumRows(logits)];
}

/**
 * One Adam update per weight, as tfjs' AdamOptimizer makes it: moments first, then
 * w − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε). Returns the new weights and moments.
 */
function adam(
  graph: OnnxGraph,
  step: string,
  parameters: { weight: string; m: string; v: string; gradient: string }[],
  settings: AdamSettings,
): { weight: string; m: string; v: string }[] {
  const { learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7 } = settings;
  const scalar = (stem: string, value: number) => graph.floats(stem, [value], []);
  const one = scalar("one_f", 1);
  const correction = (beta: number, stem: string) =>
    graph.node("Sub", [one, graph.node("Pow", [scalar(stem, beta), step])]);
  const correction1 = correction(beta1, "beta1");
  const correction2 = correction(beta2, "beta2");
  const [b1, c1, b2, c2] = [beta1, 1 - beta1, beta2, 1 - beta2].map((v) => scalar("adam_c", v));
  const rate = scalar("learning_rate", learningRate);
  const eps = scalar("epsilon", epsilon);
  return parameters.map(({ weight, m, v, gradient }) => {
    const mNext = graph.node("Add", [
      graph.node("Mul", [m, b1!]),
      graph.node("Mul", [gradient, c1!]),
    ]);
    const vNext = graph.node("Add", [
      graph.node("Mul", [v, b2!]),
      graph.node("Mul", [graph.node("Mul", [gradient, gradient]), c2!]),
    ]);
    const corrected = graph.node("Div", [mNext, correction1]);
    const scale = graph.node("Add", [
      graph.node("Sqrt", [graph.node("Div", [vNext, correction2])]),
      eps,
    ]);
    const update = graph.node("Mul", [graph.node("Div", [corrected, scale]), rate]);
    return { weight: graph.node("Sub", [weight, update]), m: mNext, v: vNext };
  });
}

/** The graph inputs every CNN graph takes: the batch, and the weights by name. */
function weightInputs(graph: OnnxGraph, classes: number, suffix = ""): string[] {
  const shapes = cnnWeightShapes(classes);
  return CNN_WEIGHT_NAMES.map((name, i) => graph.input(`${name}${suffix}`, shapes[i]!));
}

function imageInput(graph: OnnxGraph): string {
  const { input } = CNN_GRAPH_SIZES;
  return graph.input("images", ["batch", input, input, 1]);
}

/**
 * One training step of the seed CNN as an ONNX model. Inputs: `images` [n, 64, 64, 1] (tfjs'
 * NHWC), `labels` [n, classes] one-hot, `dropout_mask` [n, 64] (0 or 1 / (1 − rate), drawn by
 * the caller), `step` (Adam's t, 1 for the first update), and per weight (CNN_WEIGHT_NAMES)
 * the weight, `<name>_m` and `<name>_v`. Outputs: `loss` (the batch's mean cross-entropy
 * before the update), `probabilities`, and `<name>_next`, `<name>_m_next`, `<name>_v_next`.
 */
export function cnnTrainingGraph(classes: number, settings: AdamSettings = {}): Uint8Array {
  const graph = new OnnxGraph("facefield_cnn_training");
  const images = imageInput(graph);
  const labels = graph.input("labels", ["batch", classes]);
  const mask = graph.input("dropout_mask", ["batch", CNN_GRAPH_SIZES.dense]);
  const step = graph.input("step", []);
  const weights = weightInputs(graph, classes);
  const moments = weightInputs(graph, classes, "_m");
  const seconds = weightInputs(graph, classes, "_v");
  const tensors = forward(graph, images, weights, mask);
  const loss = crossEntropy(graph, tensors.probabilities, labels);
  const gradients = backward(
    graph,
    tensors,
    { labels, dropoutMask: mask, faces: facesIn(graph, images) },
    weights,
  );
  const updated = adam(
    graph,
    step,
    weights.map((weight, i) => ({
      weight,
      m: moments[i]!,
      v: seconds[i]!,
      gradient: gradients[i]!,
    })),
    settings,
  );
  const shapes = cnnWeightShapes(classes);
  graph.output(graph.node("Identity", [loss], {}, "loss"), []);
  graph.output(
    graph.node("Identity", [tensors.probabilities], {}, "probabilities"),
    ["batch", classes],
  );
  CNN_WEIGHT_NAMES.forEach((name, i) => {
    const dims: Dim[] = shapes[i]!;
    graph.output(graph.node("Identity", [updated[i]!.weight], {}, `${name}_next`), dims);
    graph.output(graph.node("Identity", [updated[i]!.m], {}, `${name}_m_next`), dims);
    graph.output(graph.node("Identity", [updated[i]!.v], {}, `${name}_v_next`), dims);
  });
  return graph.toBytes();
}

/**
 * The gradients alone, for a share of a batch that several threads split (data parallelism):
 * inputs `images`, `labels`, `dropout_mask` as cnnTrainingGraph's, `batch_faces` (the whole
 * batch's size, a scalar) and the weights by name; outputs `loss_sum` (the share's summed
 * cross-entropy), `probabilities` and `<name>_gradient`: the share's part of the whole batch's
 * mean-loss gradient, so the shares' gradients sum to the batch's.
 */
export function cnnGradientGraph(classes: number): Uint8Array {
  const graph = new OnnxGraph("facefield_cnn_gradients");
  const images = imageInput(graph);
  const labels = graph.input("labels", ["batch", classes]);
  const mask = graph.input("dropout_mask", ["batch", CNN_GRAPH_SIZES.dense]);
  const faces = graph.input("batch_faces", []);
  const weights = weightInputs(graph, classes);
  const tensors = forward(graph, images, weights, mask);
  const lossSum = crossEntropy(graph, tensors.probabilities, labels, "ReduceSum");
  const gradients = backward(graph, tensors, { labels, dropoutMask: mask, faces }, weights);
  const shapes = cnnWeightShapes(classes);
  graph.output(graph.node("Identity", [lossSum], {}, "loss_sum"), []);
  graph.output(
    graph.node("Identity", [tensors.probabilities], {}, "probabilities"),
    ["batch", classes],
  );
  CNN_WEIGHT_NAMES.forEach((name, i) => {
    graph.output(graph.node("Identity", [gradients[i]!], {}, `${name}_gradient`), shapes[i]!);
  });
  return graph.toBytes();
}

/**
 * The seed CNN's forward pass (no dropout, as at inference): `images` [n, 64, 64, 1] and the
 * weights by name in, `probabilities` [n, classes] out.
 */
export function cnnForwardGraph(classes: number): Uint8Array {
  const graph = new OnnxGraph("facefield_cnn_forward");
  const images = imageInput(graph);
  const weights = weightInputs(graph, classes);
  const { probabilities } = forward(graph, images, weights, null);
  graph.output(graph.node("Identity", [probabilities], {}, "probabilities"), ["batch", classes]);
  return graph.toBytes();
}
