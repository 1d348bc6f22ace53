/**
 * face-api's SSD MobileNet v1 face detector on ONNX Runtime: its convolutions as one ONNX graph
 * built from the loaded net's weights (`faceapi.nets.ssdMobilenetv1.params`), layer for layer as
 * face-api's `forwardInput` computes them, and its box decoding and non-maximum suppression in
 * JS as its `locateFaces` does them. SSD is the face stage's fallback where the tiny detector
 * finds no usable face: every image with no face runs it, and on tfjs wasm it cost about 280 ms
 * of CPU an image, 25 times a face image's whole face work (docs/no-face.md).
 *
 * The input is made by face-api itself (`toNetInput(...).toBatchTensor(512, false)`: padded to
 * a square at the bottom and right, resized to 512×512), so only the arithmetic differs.
 */
import { OnnxGraph } from "../native/onnx_graph.ts";
import type { OrtModule } from "../native/onnx_runtime.ts";
import { cachedSession } from "../native/graph_cache.ts";
import type { GraphSession } from "../native/session_host.ts";
import { tf } from "../engine.ts";
import type { Box } from "../../core/types.ts";
import { faceApi, loadNets } from "./face_engine.ts";

/**
 * This file's own source keys the graph cache's copy, as the converters' source keys the other
 * graphs: an edit to the graph below never reads a graph built before it.
 */
const ssdGraphSource = () => Deno.readTextFile(new URL(import.meta.url));
/** SSD's input side: face-api resizes every image to it. */
export const SSD_SIDE = 512;
const INPUT = "pixels";
const BOXES = "box_encodings";
const CLASSES = "class_logits";
/** face-api's batch norm epsilon (mobileNetV1.ts). */
const EPSILON = 0.0010000000474974513;

interface Tensorish {
  readonly shape: readonly number[];
  dataSync(): ArrayLike<number>;
}
interface PointwiseParams {
  filters: Tensorish;
  batch_norm_offset: Tensorish;
}
interface DepthwiseParams {
  filters: Tensorish;
  batch_norm_scale: Tensorish;
  batch_norm_offset: Tensorish;
  batch_norm_mean: Tensorish;
  batch_norm_variance: Tensorish;
}
interface ConvParams {
  filters: Tensorish;
  bias: Tensorish;
}
interface BoxPredictorParams {
  box_encoding_predictor: ConvParams;
  class_predictor: ConvParams;
}
/** What the graph reads of `faceapi.nets.ssdMobilenetv1.params`. */
export interface SsdWeights {
  mobilenetv1: Record<string, unknown> & { conv_0: PointwiseParams };
  prediction_layer: Record<string, unknown>;
  output_layer: { extra_dim: Tensorish };
}

/** An activation: its tensor name and NCHW size. */
interface Act {
  name: string;
  channels: number;
  side: number;
}

/** tfjs [kh, kw, in, out] (depthwise [kh, kw, C, 1]) to ONNX [out, in, kh, kw] ([C, 1, kh, kw]). */
function onnxFilter(filter: Tensorish, depthwise: boolean) {
  const [kh, kw, a, b] = filter.shape as [number, number, number, number];
  const values = filter.dataSync();
  const out = new Float32Array(values.length);
  const outChannels = depthwise ? a : b;
  const inChannels = depthwise ? 1 : a;
  let i = 0;
  for (let o = 0; o < outChannels; o++) {
    for (let c = 0; c < inChannels; c++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) {
          out[i++] = depthwise
            ? values[(y * kw + x) * a + o]!
            : values[((y * kw + x) * a + c) * b + o]!;
        }
      }
    }
  }
  return { values: out, shape: [outChannels, inChannels, kh, kw], kernel: kh };
}

class SsdGraph {
  readonly g = new OnnxGraph("ssd_mobilenetv1");

  /** tf.conv2d (or depthwiseConv2d) with "same" padding: the odd pixel goes at the end. */
  conv(x: Act, filter: Tensorish, bias: Tensorish | undefined, stride: number, depthwise = false) {
    const { values, shape, kernel } = onnxFilter(filter, depthwise);
    const side = Math.ceil(x.side / stride);
    const pad = Math.max((side - 1) * stride + kernel - x.side, 0);
    const begin = Math.floor(pad / 2);
    const inputs = [x.name, this.g.constant("w", values, shape)];
    if (bias) inputs.push(this.g.constant("b", Float32Array.from(bias.dataSync()), [shape[0]!]));
    const name = this.g.node("Conv", inputs, {
      kernel_shape: [kernel, kernel],
      strides: [stride, stride],
      pads: [begin, begin, pad - begin, pad - begin],
      ...(depthwise ? { group: x.channels } : {}),
    });
    return { name, channels: depthwise ? x.channels : shape[0]!, side };
  }

  relu6(x: Act): Act {
    const name = this.g.node("Clip", [
      x.name,
      this.g.floats("zero", [0], []),
      this.g.floats("six", [6], []),
    ]);
    return { ...x, name };
  }

  /** face-api's pointwiseConvLayer: conv, plus the batch norm offset, clipped to 0–6. */
  pointwise(x: Act, p: PointwiseParams, stride: number): Act {
    return this.relu6(this.conv(x, p.filters, p.batch_norm_offset, stride));
  }

  /** face-api's depthwiseConvLayer: depthwise conv, batch norm, clipped to 0–6. */
  depthwise(x: Act, p: DepthwiseParams, stride: number): Act {
    const conv = this.conv(x, p.filters, undefined, stride, true);
    const vector = (stem: string, t: Tensorish) =>
      this.g.constant(stem, Float32Array.from(t.dataSync()), [x.channels]);
    const name = this.g.node("BatchNormalization", [
      conv.name,
      vector("bn_scale", p.batch_norm_scale),
      vector("bn_offset", p.batch_norm_offset),
      vector("bn_mean", p.batch_norm_mean),
      vector("bn_variance", p.batch_norm_variance),
    ], { epsilon: { float: EPSILON } });
    return this.relu6({ ...conv, name });
  }

  /** A box predictor's conv (bias, no activation) as NHWC rows of `width` values. */
  predictor(x: Act, p: ConvParams, width: number): string {
    const conv = this.conv(x, p.filters, p.bias, 1);
    const nhwc = this.g.node("Transpose", [conv.name], { perm: [0, 2, 3, 1] });
    return this.g.node("Reshape", [nhwc, this.g.int64s("shape", [1, -1, width])]);
  }
}

/**
 * The SSD's convolutions: [1, 512, 512, 3] pixels 0–255 (face-api's batch tensor) → box
 * encodings [1, N, 4] and class logits [1, N, 3], N = 5,118 anchors, in face-api's order.
 */
export function ssdGraph(params: SsdWeights): Uint8Array {
  const net = new SsdGraph();
  const g = net.g;
  g.input(INPUT, [1, SSD_SIDE, SSD_SIDE, 3]);
  const nchw = g.node("Transpose", [INPUT], { perm: [0, 3, 1, 2] });
  const scaled = g.node("Div", [nchw, g.floats("half_range", [127.5], [])]);
  const centred = g.node("Sub", [scaled, g.floats("one", [1], [])]);
  const mobilenet = params.mobilenetv1 as unknown as Record<
    string,
    { depthwise_conv: DepthwiseParams; pointwise_conv: PointwiseParams }
  >;
  let x = net.pointwise(
    { name: centred, channels: 3, side: SSD_SIDE },
    params.mobilenetv1.conv_0,
    2,
  );
  let conv11 = x;
  for (let layer = 1; layer <= 13; layer++) {
    const pair = mobilenet[`conv_${layer}`]!;
    x = net.depthwise(x, pair.depthwise_conv, [2, 4, 6, 12].includes(layer) ? 2 : 1);
    x = net.pointwise(x, pair.pointwise_conv, 1);
    if (layer === 11) conv11 = x;
  }
  const prediction = params.prediction_layer as Record<string, PointwiseParams>;
  const extra: Act[] = [];
  let y = x;
  for (let k = 0; k < 8; k++) {
    y = net.pointwise(y, prediction[`conv_${k}`]!, k % 2 ? 2 : 1);
    if (k % 2) extra.push(y);
  }
  const sources = [conv11, x, ...extra];
  const predictors = params.prediction_layer as Record<string, BoxPredictorParams>;
  const boxes = sources.map((s, k) =>
    net.predictor(s, predictors[`box_predictor_${k}`]!.box_encoding_predictor, 4)
  );
  const classes = sources.map((s, k) =>
    net.predictor(s, predictors[`box_predictor_${k}`]!.class_predictor, 3)
  );
  g.output(g.node("Concat", boxes, { axis: 1 }, BOXES), [1, "anchors", 4]);
  g.output(g.node("Concat", classes, { axis: 1 }, CLASSES), [1, "anchors", 3]);
  return g.toBytes();
}

/** face-api's SSD on ONNX Runtime: the session and the anchors its boxes decode against. */
export class NativeSsd {
  private constructor(readonly session: GraphSession, readonly anchors: Float32Array) {}

  /** Loads face-api's SSD weights (for the anchors, and the graph where it is not cached). */
  static async create(ort: OrtModule): Promise<NativeSsd> {
    await loadNets(["ssdMobilenetv1"]);
    const faceapi = await faceApi();
    const params = faceapi.nets.ssdMobilenetv1.params as unknown as SsdWeights;
    const anchors = Float32Array.from(params.output_layer.extra_dim.dataSync());
    const { session } = await cachedSession(ort, "face-api-ssd", () => ssdGraph(params), {
      variant: await ssdGraphSource().catch(() => "ssd-mobilenetv1"),
    });
    return new NativeSsd(session, anchors);
  }

  /**
   * `locateFaces` with face-api's SsdMobilenetv1Options: boxes in `pixels`' px, scores above
   * `minConfidence`, at most `maxResults`, overlaps above 0.5 IoU suppressed.
   */
  async locateFaces(
    ort: OrtModule,
    pixels: tf.Tensor3D,
    minConfidence: number,
    maxResults: number,
  ): Promise<{ box: Box; score: number }[]> {
    const faceapi = await faceApi();
    // deno-lint-ignore no-explicit-any
    const netInput = await faceapi.toNetInput(pixels as any);
    const batch = tf.tidy(() =>
      // face-api bundles its own tfjs types; the tensor is this process's tfjs tensor.
      tf.cast(netInput.toBatchTensor(SSD_SIDE, false) as unknown as tf.Tensor4D, "float32")
    );
    const data = await batch.data() as Float32Array;
    batch.dispose();
    const outputs = await this.session.run({
      [INPUT]: new ort.Tensor("float32", data, [1, SSD_SIDE, SSD_SIDE, 3]),
    });
    const encodings = new Float32Array(outputs[BOXES]!.data as Float32Array);
    const logits = new Float32Array(outputs[CLASSES]!.data as Float32Array);
    for (const output of Object.values(outputs)) output.dispose();
    const { boxes, scores } = decode(this.anchors, encodings, logits, minConfidence);
    const kept = suppress(boxes, scores, maxResults, 0.5, minConfidence);
    const reshaped = netInput.getReshapedInputDimensions(0);
    const padX = SSD_SIDE / reshaped.width;
    const padY = SSD_SIDE / reshaped.height;
    const width = netInput.getInputWidth(0);
    const height = netInput.getInputHeight(0);
    return kept.map((i) => {
      const top = Math.max(0, boxes[4 * i]!) * padY;
      const bottom = Math.min(1, boxes[4 * i + 2]!) * padY;
      const left = Math.max(0, boxes[4 * i + 1]!) * padX;
      const right = Math.min(1, boxes[4 * i + 3]!) * padX;
      return {
        box: {
          x: left * width,
          y: top * height,
          width: (right - left) * width,
          height: (bottom - top) * height,
        },
        score: scores[i]!,
      };
    });
  }
}

/**
 * face-api's outputLayer for the anchors that can pass `scoreThreshold`: scores (sigmoid of the
 * face logit) for all, [ymin, xmin, ymax, xmax] boxes decoded only for those above it (the rest
 * never reach the suppression, so their boxes are never read).
 */
function decode(
  anchors: Float32Array,
  encodings: Float32Array,
  logits: Float32Array,
  scoreThreshold: number,
) {
  const count = encodings.length / 4;
  const boxes = new Float32Array(count * 4);
  const scores = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const score = 1 / (1 + Math.exp(-logits[3 * i + 1]!));
    scores[i] = score;
    if (!(score > scoreThreshold)) continue;
    const at = 4 * i;
    const size0 = anchors[at + 2]! - anchors[at]!;
    const size1 = anchors[at + 3]! - anchors[at + 1]!;
    const half0 = Math.exp(encodings[at + 2]! / 5) * size0 / 2;
    const centre0 = encodings[at]! / 10 * size0 + (anchors[at]! + size0 / 2);
    const half1 = Math.exp(encodings[at + 3]! / 5) * size1 / 2;
    const centre1 = encodings[at + 1]! / 10 * size1 + (anchors[at + 1]! + size1 / 2);
    boxes[at] = centre0 - half0;
    boxes[at + 1] = centre1 - half1;
    boxes[at + 2] = centre0 + half0;
    boxes[at + 3] = centre1 + half1;
  }
  return { boxes, scores };
}

function iou(boxes: Float32Array, i: number, j: number): number {
  const box = (k: number) => ({
    y0: Math.min(boxes[4 * k]!, boxes[4 * k + 2]!),
    x0: Math.min(boxes[4 * k + 1]!, boxes[4 * k + 3]!),
    y1: Math.max(boxes[4 * k]!, boxes[4 * k + 2]!),
    x1: Math.max(boxes[4 * k + 1]!, boxes[4 * k + 3]!),
  });
  const a = box(i);
  const b = box(j);
  const areaA = (a.y1 - a.y0) * (a.x1 - a.x0);
  const areaB = (b.y1 - b.y0) * (b.x1 - b.x0);
  if (areaA <= 0 || areaB <= 0) return 0;
  const overlap = Math.max(Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0), 0) *
    Math.max(Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), 0);
  return overlap / (areaA + areaB - overlap);
}

/** face-api's SSD nonMaxSuppression, as it is (a candidate any kept box overlaps is dropped). */
function suppress(
  boxes: Float32Array,
  scores: Float32Array,
  maxResults: number,
  iouThreshold: number,
  scoreThreshold: number,
): number[] {
  const candidates: { score: number; index: number }[] = [];
  scores.forEach((score, index) => {
    if (score > scoreThreshold) candidates.push({ score, index });
  });
  candidates.sort((a, b) => b.score - a.score);
  const selected: number[] = [];
  for (const candidate of candidates) {
    if (selected.length >= Math.min(maxResults, scores.length)) break;
    let score = candidate.score;
    for (let j = selected.length - 1; j >= 0; --j) {
      const overlap = iou(boxes, candidate.index, selected[j]!);
      if (overlap === 0) continue;
      score *= overlap <= iouThreshold ? 1 : 0;
      if (score <= scoreThreshold) break;
    }
    if (score === candidate.score) selected.push(candidate.index);
  }
  return selected;
}
