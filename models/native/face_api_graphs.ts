/**
 * face-api's networks as ONNX graphs, built in memory from the weight tensors its loaded nets
 * hold (`net.params`), layer for layer as face-api's own forward passes compute them: the 128-d
 * recognition net (a small ResNet), the 68-point landmark net (dense blocks of separable convs)
 * and the tiny face detector's convolutions (its box decoding stays in JS). Each graph reads
 * NHWC pixels 0–255, as face-api's nets do, and turns them to ONNX's NCHW itself.
 */
import { type Dim, OnnxGraph } from "./onnx_graph.ts";

/** What a builder reads of a tfjs tensor of face-api's params. */
export interface WeightTensor {
  readonly shape: readonly number[];
  dataSync(): ArrayLike<number>;
}

export interface ConvWeights {
  filters: WeightTensor;
  bias: WeightTensor;
}

export interface SeparableConvWeights {
  depthwise_filter: WeightTensor;
  pointwise_filter: WeightTensor;
  bias: WeightTensor;
}

/** A conv followed by face-api's scale layer (`x · weights + biases` per channel). */
export interface ScaledConvWeights {
  conv: ConvWeights;
  scale: { weights: WeightTensor; biases: WeightTensor };
}

export interface ResidualWeights {
  conv1: ScaledConvWeights;
  conv2: ScaledConvWeights;
}

/** A dense block of face-api's feature extractor: a (strided) first conv, then three more. */
export interface DenseBlockWeights {
  conv0: ConvWeights | SeparableConvWeights;
  conv1: SeparableConvWeights;
  conv2: SeparableConvWeights;
  conv3: SeparableConvWeights;
}

/**
 * The 68-point landmark net: `faceapi.nets.faceLandmark68Net.faceFeatureExtractor.params` and
 * the net's own `params.fc`.
 */
export interface LandmarkWeights {
  extractor: {
    dense0: DenseBlockWeights;
    dense1: DenseBlockWeights;
    dense2: DenseBlockWeights;
    dense3: DenseBlockWeights;
  };
  fc: { weights: WeightTensor; bias: WeightTensor };
}

/** `faceapi.nets.tinyFaceDetector.params` (the tiny face detector has no conv6 or conv7). */
export interface TinyDetectorWeights {
  conv0: ConvWeights;
  conv1: SeparableConvWeights;
  conv2: SeparableConvWeights;
  conv3: SeparableConvWeights;
  conv4: SeparableConvWeights;
  conv5: SeparableConvWeights;
  conv8: ConvWeights;
}

/** `faceapi.nets.faceRecognitionNet.params`. */
export interface RecognitionWeights {
  conv32_down: ScaledConvWeights;
  conv32_1: ResidualWeights;
  conv32_2: ResidualWeights;
  conv32_3: ResidualWeights;
  conv64_down: ResidualWeights;
  conv64_1: ResidualWeights;
  conv64_2: ResidualWeights;
  conv64_3: ResidualWeights;
  conv128_down: ResidualWeights;
  conv128_1: ResidualWeights;
  conv128_2: ResidualWeights;
  conv256_down: ResidualWeights;
  conv256_1: ResidualWeights;
  conv256_2: ResidualWeights;
  conv256_down_out: ResidualWeights;
  fc: WeightTensor;
}

/** The input and output names every face-api graph here uses. */
export const GRAPH_INPUT = "pixels";
export const GRAPH_OUTPUT = "output";

/** face-api's mean RGB for the recognition and landmark nets. */
const FACE_MEAN_RGB = [122.782, 117.001, 104.298];

/**
 * A 4-d `values` (row-major in `shape`) transposed by `perm`, as tf.transpose would: the
 * filters' layouts, tfjs' [kh, kw, in, out] to ONNX's [out, in, kh, kw].
 */
function transposed(values: ArrayLike<number>, shape: readonly number[], perm: readonly number[]) {
  const strides = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const [s0, s1, s2, s3] = perm.map((axis) => strides[axis]!) as [number, number, number, number];
  const outShape = perm.map((axis) => shape[axis]!);
  const [d0, d1, d2, d3] = outShape as [number, number, number, number];
  const out = new Float32Array(values.length);
  let i = 0;
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      for (let c = 0; c < d2; c++) {
        const base = a * s0 + b * s1 + c * s2;
        for (let d = 0; d < d3; d++) out[i++] = values[base + d * s3]!;
      }
    }
  }
  return { values: out, shape: outShape };
}

/** A tfjs filter, [kh, kw, in, out] (or a depthwise [kh, kw, channels, 1]), in ONNX's layout. */
function onnxFilter(filter: WeightTensor, depthwise = false) {
  // Depthwise: [kh, kw, C, 1] → [C, 1, kh, kw]; a plain filter: [kh, kw, in, out] → [out, in, kh, kw].
  return transposed(filter.dataSync(), filter.shape, depthwise ? [2, 3, 0, 1] : [3, 2, 0, 1]);
}

/** Shape bookkeeping: channels, height and width of the activation a builder holds. */
interface Activation {
  name: string;
  channels: number;
  height: number;
  width: number;
}

type Padding = "valid" | "same";

/** tf's padding as ONNX pads [top, left, bottom, right]: "same" puts the odd pixel at the end. */
function padsFor(
  size: { height: number; width: number },
  kernel: number,
  stride: number,
  padding: Padding,
) {
  if (padding === "valid") {
    return {
      pads: [0, 0, 0, 0],
      height: Math.floor((size.height - kernel) / stride) + 1,
      width: Math.floor((size.width - kernel) / stride) + 1,
    };
  }
  const height = Math.ceil(size.height / stride);
  const width = Math.ceil(size.width / stride);
  const padY = Math.max((height - 1) * stride + kernel - size.height, 0);
  const padX = Math.max((width - 1) * stride + kernel - size.width, 0);
  const top = Math.floor(padY / 2);
  const left = Math.floor(padX / 2);
  return { pads: [top, left, padY - top, padX - left], height, width };
}

/** One graph with the layer helpers face-api's nets are made of. */
class FaceApiGraph {
  readonly graph: OnnxGraph;

  constructor(name: string) {
    this.graph = new OnnxGraph(name);
  }

  /** The NHWC input, to NCHW, minus the mean and over 255 as face-api normalises. */
  normalisedInput(side: Dim, meanRgb: readonly number[]): Activation & { side: Dim } {
    const g = this.graph;
    const input = g.input(GRAPH_INPUT, ["n", side, side, 3]);
    const nchw = g.node("Transpose", [input], { perm: [0, 3, 1, 2] });
    const centred = g.node("Sub", [nchw, g.floats("mean_rgb", meanRgb, [1, 3, 1, 1])]);
    const name = g.node("Div", [centred, g.floats("scale_255", [255], [])]);
    const size = typeof side === "number" ? side : 0;
    return { name, channels: 3, height: size, width: size, side };
  }

  /** A conv (depthwise where `group` is the channel count), with a bias if it has one. */
  conv(
    x: Activation,
    filter: WeightTensor,
    bias: ArrayLike<number> | undefined,
    options: { stride?: number; padding?: Padding; pads?: number[]; group?: number } = {},
  ): Activation {
    const { stride = 1, padding = "same", group = 1 } = options;
    const depthwise = group > 1;
    const { values, shape } = onnxFilter(filter, depthwise);
    const kernel = shape[2]!;
    const geometry = options.pads
      ? padsFor(
        {
          height: x.height + options.pads[0]! + options.pads[2]!,
          width: x.width + options.pads[1]! + options.pads[3]!,
        },
        kernel,
        stride,
        "valid",
      )
      : padsFor(x, kernel, stride, padding);
    const pads = options.pads ?? geometry.pads;
    const g = this.graph;
    const inputs = [x.name, g.constant("w", values, shape)];
    if (bias) inputs.push(g.constant("b", Float32Array.from(bias), [shape[0]!]));
    const name = g.node("Conv", inputs, {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads,
      ...(depthwise ? { group } : {}),
    });
    return { name, channels: shape[0]!, height: geometry.height, width: geometry.width };
  }

  /** face-api's conv + bias, then `· weights + biases`: one conv with the scale folded in. */
  scaledConv(x: Activation, layer: ScaledConvWeights, stride: number, padding: Padding) {
    const weights = layer.scale.weights.dataSync();
    const shifts = layer.scale.biases.dataSync();
    const bias = layer.conv.bias.dataSync();
    const filter = layer.conv.filters;
    const raw = filter.dataSync();
    const out = filter.shape[3]!;
    const scaled = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) scaled[i] = raw[i]! * weights[i % out]!;
    const folded = Array.from({ length: out }, (_, c) => bias[c]! * weights[c]! + shifts[c]!);
    return this.conv(x, { shape: filter.shape, dataSync: () => scaled }, folded, {
      stride,
      padding,
    });
  }

  /**
   * tf.separableConv2d plus bias: a depthwise conv (with the stride and padding) and a
   * pointwise one; `pads` overrides the padding (the detector pads by hand, then goes valid).
   */
  separable(
    x: Activation,
    layer: SeparableConvWeights,
    options: { stride?: number; padding?: Padding; pads?: number[] },
  ): Activation {
    const depthwise = this.conv(x, layer.depthwise_filter, undefined, {
      ...options,
      group: x.channels,
    });
    return this.conv(depthwise, layer.pointwise_filter, layer.bias.dataSync(), {
      padding: "valid",
    });
  }

  /** face-api's leaky relu, relu(x − 0.1x) + 0.1x: x above zero, 0.1x below. */
  leaky(x: Activation): Activation {
    return { ...x, name: this.graph.node("LeakyRelu", [x.name], { alpha: { float: 0.1 } }) };
  }

  relu(x: Activation): Activation {
    return { ...x, name: this.graph.node("Relu", [x.name]) };
  }

  add(a: Activation, b: Activation): Activation {
    return { ...a, name: this.graph.node("Add", [a.name, b.name]) };
  }

  /** A pool; "same" pads with values the pool ignores (tf's max pool does the same). */
  pool(
    op: "MaxPool" | "AveragePool",
    x: Activation,
    kernel: number,
    stride: number,
    padding: Padding = "valid",
  ) {
    const geometry = padsFor(x, kernel, stride, padding);
    const name = this.graph.node(op, [x.name], {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      ...(padding === "same" ? { pads: geometry.pads } : {}),
    });
    return { ...x, name, height: geometry.height, width: geometry.width };
  }

  /** Zeros appended at the end of axes 1–3 (channels, rows, columns). */
  padEnd(x: Activation, channels: number, rows: number, columns: number): Activation {
    const g = this.graph;
    const name = g.node("Pad", [
      x.name,
      g.int64s("pads", [0, 0, 0, 0, 0, channels, rows, columns]),
    ]);
    return {
      name,
      channels: x.channels + channels,
      height: x.height + rows,
      width: x.width + columns,
    };
  }

  /** [n, C, 1, 1] or a global mean → [n, C] times a [C, k] matrix (plus a bias). */
  dense(x: Activation, weights: WeightTensor, bias?: WeightTensor): string {
    const g = this.graph;
    const flat = g.node("Flatten", [x.name], { axis: 1 });
    const w = g.constant("fc_w", Float32Array.from(weights.dataSync()), [...weights.shape]);
    const product = g.node("MatMul", [flat, w]);
    if (!bias) return product;
    return g.node("Add", [
      product,
      g.constant("fc_b", Float32Array.from(bias.dataSync()), [
        ...bias.shape,
      ]),
    ]);
  }
}

function residual(net: FaceApiGraph, x: Activation, layer: ResidualWeights): Activation {
  const first = net.relu(net.scaledConv(x, layer.conv1, 1, "same"));
  const second = net.scaledConv(first, layer.conv2, 1, "same");
  return net.relu(net.add(second, x));
}

/**
 * face-api's residualDown: a strided valid conv beside a 2×2 average pool of the input; where
 * the conv's side comes out one short, it gets a row and a column of zeros at the end, and the
 * pooled input gets zero channels to match the conv's.
 */
function residualDown(net: FaceApiGraph, x: Activation, layer: ResidualWeights): Activation {
  const first = net.relu(net.scaledConv(x, layer.conv1, 2, "valid"));
  let out = net.scaledConv(first, layer.conv2, 1, "same");
  let pooled = net.pool("AveragePool", x, 2, 2);
  if (pooled.height !== out.height || pooled.width !== out.width) out = net.padEnd(out, 0, 1, 1);
  if (pooled.channels !== out.channels) pooled = net.padEnd(pooled, pooled.channels, 0, 0);
  return net.relu(net.add(pooled, out));
}

/** Side of the recognition net's input. */
export const RECOGNITION_SIDE = 150;

/**
 * The recognition net: [n, 150, 150, 3] pixels 0–255 → [n, 128] descriptors, as
 * `FaceRecognitionNet.forwardInput` computes them.
 */
export function recognitionGraph(params: RecognitionWeights): Uint8Array {
  const net = new FaceApiGraph("face_recognition");
  let x: Activation = net.normalisedInput(RECOGNITION_SIDE, FACE_MEAN_RGB);
  x = net.relu(net.scaledConv(x, params.conv32_down, 2, "valid"));
  x = net.pool("MaxPool", x, 3, 2);
  for (const layer of [params.conv32_1, params.conv32_2, params.conv32_3]) {
    x = residual(net, x, layer);
  }
  const stages: [ResidualWeights, ResidualWeights[]][] = [
    [params.conv64_down, [params.conv64_1, params.conv64_2, params.conv64_3]],
    [params.conv128_down, [params.conv128_1, params.conv128_2]],
    [params.conv256_down, [params.conv256_1, params.conv256_2]],
  ];
  for (const [down, rest] of stages) {
    x = residualDown(net, x, down);
    for (const layer of rest) x = residual(net, x, layer);
  }
  x = residualDown(net, x, params.conv256_down_out);
  const mean = { ...x, name: net.graph.node("GlobalAveragePool", [x.name]), height: 1, width: 1 };
  const output = net.graph.node("Identity", [net.dense(mean, params.fc)], {}, GRAPH_OUTPUT);
  net.graph.output(output, ["n", 128]);
  return net.graph.toBytes();
}

/** face-api's dense block: four convs, each reading the relu of the sum of the ones before. */
function denseBlock(net: FaceApiGraph, x: Activation, block: DenseBlockWeights): Activation {
  const first = "filters" in block.conv0
    ? net.conv(x, block.conv0.filters, block.conv0.bias.dataSync(), { stride: 2 })
    : net.separable(x, block.conv0, { stride: 2 });
  const out1 = net.relu(first);
  const out2 = net.separable(out1, block.conv1, {});
  const out3 = net.separable(net.relu(net.add(out1, out2)), block.conv2, {});
  const sum3 = net.add(out1, net.add(out2, out3));
  const out4 = net.separable(net.relu(sum3), block.conv3, {});
  return net.relu(net.add(out1, net.add(out2, net.add(out3, out4))));
}

/** Side of the landmark net's input. */
export const LANDMARK_SIDE = 112;

/**
 * The 68-point landmark net: [n, 112, 112, 3] pixels 0–255 → [n, 136], x and y of each point
 * as shares of the square input (what `FaceLandmark68Net.forward` gives for a square input).
 */
export function landmarkGraph(params: LandmarkWeights): Uint8Array {
  const net = new FaceApiGraph("face_landmark_68");
  let x: Activation = net.normalisedInput(LANDMARK_SIDE, FACE_MEAN_RGB);
  const { dense0, dense1, dense2, dense3 } = params.extractor;
  for (const block of [dense0, dense1, dense2, dense3]) x = denseBlock(net, x, block);
  x = net.pool("AveragePool", x, 7, 2);
  const output = net.graph.node(
    "Identity",
    [net.dense(x, params.fc.weights, params.fc.bias)],
    {},
    GRAPH_OUTPUT,
  );
  net.graph.output(output, ["n", 136]);
  return net.graph.toBytes();
}

/** The tiny face detector's mean RGB. */
const TINY_MEAN_RGB = [117.001, 114.697, 97.404];

/**
 * The tiny face detector's convolutions for one input side (a multiple of 32): [1, side, side,
 * 3] pixels 0–255, the image already padded to a square and resized as face-api does → its
 * [1, cells, cells, 25] grid (5 anchors × x, y, w, h, score), as `TinyYolov2.forwardInput` gives.
 */
export function tinyDetectorGraph(params: TinyDetectorWeights, side: number): Uint8Array {
  const net = new FaceApiGraph(`tiny_face_detector_${side}`);
  let x: Activation = net.normalisedInput(side, TINY_MEAN_RGB);
  x = net.leaky(
    net.conv(x, params.conv0.filters, params.conv0.bias.dataSync(), { padding: "valid" }),
  );
  const around = [1, 1, 1, 1];
  for (const layer of [params.conv1, params.conv2, params.conv3, params.conv4, params.conv5]) {
    x = net.pool("MaxPool", x, 2, 2, "same");
    x = net.leaky(net.separable(x, layer, { pads: around }));
  }
  x = net.pool("MaxPool", x, 2, 1, "same");
  x = net.conv(x, params.conv8.filters, params.conv8.bias.dataSync(), { padding: "valid" });
  const output = net.graph.node("Transpose", [x.name], { perm: [0, 2, 3, 1] }, GRAPH_OUTPUT);
  net.graph.output(output, [1, x.height, x.width, x.channels]);
  return net.graph.toBytes();
}
