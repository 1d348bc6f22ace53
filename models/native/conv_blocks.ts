/**
 * The seed CNN's conv blocks (Conv 3×3 valid + ReLU + MaxPool 2) as ONNX subgraphs, forward
 * and backward, shaped for ONNX Runtime's CPU kernels: what its MLAS kernels do fast (conv,
 * GEMM, outer-axis reductions) carries the work; what it does slowly (MaxPool's indices and
 * ScatterElements on big maps, strided-window gathers) is kept off the largest tensors.
 *
 * The first block works in "space-to-depth" form: the 3×3 conv evaluated at the four cells of
 * each 2×2 pooling window is one stride-2 conv with a 4×4 kernel and 4× the filters (the 3×3
 * kernel placed at the four offsets). Its max-pool is then a max over four channel groups, and
 * its gradient a one-hot of their argmax: no interleaved 62×62 map is ever scattered into.
 */
import { OnnxDataType, type OnnxGraph } from "./onnx_graph.ts";

/** A conv block's geometry: input channels and side, filters. */
export interface BlockShape {
  channels: number;
  side: number;
  filters: number;
}

const KERNEL = 3;
/** The 4×4 kernel of the space-to-depth form covers the 3×3 kernel at offsets 0 and 1. */
const SPREAD = KERNEL + 1;

/** What a block's forward pass keeps for its backward pass. */
export interface BlockTensors {
  shape: BlockShape;
  input: string;
  /** The pooled output (the ReLU applied). */
  pooled: string;
  /**
   * First block: the ReLU's output as four groups [n, 4, f, h/2, w/2], one a cell of each
   * pooling window; others: MaxPool's indices.
   */
  choice: string;
  /** Others only: the ReLU's output (its shape sizes the unpooled gradient). */
  relu?: string;
  /** First block only: the placement of the 3×3 kernel in the 4×4 one (placementMatrix). */
  placement?: string;
}

/**
 * The 0/1 matrix [9, 4·16] that places a 3×3 kernel at the four offsets (dy, dx) of a 4×4
 * one: row (a, b), column (dy·2 + dx)·16 + (a + dy)·4 + (b + dx).
 */
function placementMatrix(): Float32Array {
  const matrix = new Float32Array(KERNEL * KERNEL * 4 * SPREAD * SPREAD);
  for (let a = 0; a < KERNEL; a++) {
    for (let b = 0; b < KERNEL; b++) {
      for (let d = 0; d < 4; d++) {
        const [dy, dx] = [d >> 1, d & 1];
        const column = d * SPREAD * SPREAD + (a + dy) * SPREAD + (b + dx);
        matrix[(a * KERNEL + b) * 4 * SPREAD * SPREAD + column] = 1;
      }
    }
  }
  return matrix;
}

/**
 * The first block (one input channel) forward, in space-to-depth form: the 4×4 stride-2
 * kernel [4f, 1, 4, 4] built from the 3×3 one, conv + ReLU, then the max over the four groups.
 */
export function firstBlockForward(
  graph: OnnxGraph,
  input: string,
  kernel: string,
  bias: string,
  shape: BlockShape,
): BlockTensors {
  const { filters, side } = shape;
  if (shape.channels !== 1) throw new RangeError("firstBlockForward: one input channel only");
  const pooledSide = Math.floor((side - KERNEL + 1) / 2);
  const placement = graph.constant("placement", placementMatrix(), [
    KERNEL * KERNEL,
    4 * SPREAD * SPREAD,
  ]);
  const placed = graph.node("MatMul", [
    graph.node("Reshape", [kernel, graph.int64s("kernel_rows", [filters, KERNEL * KERNEL])]),
    placement,
  ]);
  const spreadKernel = graph.node("Reshape", [
    graph.node("Transpose", [
      graph.node("Reshape", [placed, graph.int64s("placed", [filters, 4, SPREAD * SPREAD])]),
    ], { perm: [1, 0, 2] }),
    graph.int64s("spread_kernel", [4 * filters, 1, SPREAD, SPREAD]),
  ]);
  const spreadBias = graph.node("Tile", [bias, graph.int64s("four", [4])]);
  const relu = graph.node("Relu", [
    graph.node("Conv", [input, spreadKernel, spreadBias], {
      kernel_shape: [SPREAD, SPREAD],
      strides: [2, 2],
    }),
  ]);
  const groups = graph.node("Reshape", [
    relu,
    graph.int64s("groups", [0, 4, filters, pooledSide, pooledSide]),
  ]);
  const pooled = graph.node("Reshape", [
    graph.node("ReduceMax", [groups], { axes: [1], keepdims: 1 }),
    graph.int64s("pooled", [0, filters, pooledSide, pooledSide]),
  ]);
  return { shape, input, pooled, choice: groups, placement };
}

/** The gradient of a pooled ReLU output passes where the max was positive. */
function throughRelu(graph: OnnxGraph, gradient: string, pooled: string): string {
  const zero = graph.floats("zero", [0], []);
  return graph.node("Where", [graph.node("Greater", [pooled, zero]), gradient, zero]);
}

interface KernelGeometry {
  channels: number;
  filters: number;
  outSide: number;
  kernel: number;
  stride: number;
}

/** The input's window for kernel tap (ky, kx): the cells that tap saw, one per output cell. */
function tapWindow(
  graph: OnnxGraph,
  input: string,
  [ky, kx]: [number, number],
  { outSide, stride }: KernelGeometry,
): string {
  const extent = stride * (outSide - 1) + 1;
  return graph.node("Slice", [
    input,
    graph.int64s("window_start", [ky, kx]),
    graph.int64s("window_end", [ky + extent, kx + extent]),
    graph.int64s("window_axes", [2, 3]),
    graph.int64s("window_steps", [stride, stride]),
  ]);
}

/**
 * The kernel's gradient of a one-channel input [n, 1, H, W]: its tap windows stacked as the
 * small matrix [n, cells, k²], then per face dz [o, cells] times it, summed over the batch
 * (the big output gradient is read once, never transposed). Returns [o, 1, k, k].
 */
function singleChannelKernelGradient(
  graph: OnnxGraph,
  input: string,
  outputGradient: string,
  geometry: KernelGeometry,
): string {
  const { filters, kernel } = geometry;
  const windows: string[] = [];
  for (let ky = 0; ky < kernel; ky++) {
    for (let kx = 0; kx < kernel; kx++) windows.push(tapWindow(graph, input, [ky, kx], geometry));
  }
  const taps = graph.node("Transpose", [
    graph.node("Reshape", [
      graph.node("Concat", windows, { axis: 1 }),
      graph.int64s("tap_rows", [0, kernel * kernel, -1]),
    ]),
  ], { perm: [0, 2, 1] });
  const rows = graph.node("Reshape", [outputGradient, graph.int64s("rows", [0, filters, -1])]);
  const perFace = graph.node("MatMul", [rows, taps]);
  return graph.node("Reshape", [
    graph.node("ReduceSum", [perFace, graph.int64s("faces", [0])], { keepdims: 0 }),
    graph.int64s("kernel_grad", [filters, 1, kernel, kernel]),
  ]);
}

/**
 * The kernel's gradient from the output's, as GEMMs over the input's shifted windows:
 * Σₙ,ₚ dz[o, n·p] · x[c, n·p shifted by (ky, kx)], the batch and positions as the inner
 * dimension, one GEMM a tap (stacking the taps would copy the whole im2col matrix). Returns
 * [o, c, k, k].
 */
function kernelGradient(
  graph: OnnxGraph,
  input: string,
  outputGradient: string,
  geometry: KernelGeometry,
): string {
  const { channels, filters, kernel } = geometry;
  if (channels === 1) return singleChannelKernelGradient(graph, input, outputGradient, geometry);
  const swap = { perm: [1, 0, 2, 3] };
  const inputByChannel = graph.node("Transpose", [input], swap);
  const gradientRows = graph.node("Reshape", [
    graph.node("Transpose", [outputGradient], swap),
    graph.int64s("rows", [filters, -1]),
  ]);
  const perTap: string[] = [];
  for (let ky = 0; ky < kernel; ky++) {
    for (let kx = 0; kx < kernel; kx++) {
      const window = graph.node("Reshape", [
        tapWindow(graph, inputByChannel, [ky, kx], geometry),
        graph.int64s("window_rows", [channels, -1]),
      ]);
      perTap.push(graph.node("Unsqueeze", [
        graph.node("Gemm", [gradientRows, window], { transB: 1 }),
        graph.int64s("tap_axis", [2]),
      ]));
    }
  }
  return graph.node("Reshape", [
    graph.node("Concat", perTap, { axis: 2 }),
    graph.int64s("kernel_grad", [filters, channels, kernel, kernel]),
  ]);
}

/**
 * Which of each window's four cells gave its max, as 0/1 over the groups [n, 4, f, h, w]:
 * the first of equal maxima in raster order, as tfjs' max-pool takes it (equal cells are
 * common: a flat patch, the fill beyond a rotated crop's edge). A cell is first when it equals
 * the max and no cell before it does: e_k − Σ_{j<k} e_j > 0, a 1×1 conv over the group axis
 * as a small GEMM (ArgMax over that axis is several times slower; a 1×1 Conv goes through
 * ORT's blocked layout and back, slower still).
 */
function firstMaxima(graph: OnnxGraph, groups: string, max: string): string {
  const equal = graph.node("Cast", [graph.node("Equal", [groups, max])], {
    to: OnnxDataType.FLOAT,
  });
  const weights = new Float32Array(16);
  for (let k = 0; k < 4; k++) {
    weights[k * 4 + k] = 1;
    for (let j = 0; j < k; j++) weights[k * 4 + j] = -1;
  }
  const rows = graph.node("Reshape", [equal, graph.int64s("group_rows", [0, 4, -1])]);
  const first = graph.node("Relu", [
    graph.node("MatMul", [graph.constant("first_of_equal", weights, [4, 4]), rows]),
  ]);
  return graph.node("Reshape", [first, graph.node("Shape", [groups])]);
}

/** The first block's kernel and bias gradients from its pooled output's. */
export function firstBlockBackward(
  graph: OnnxGraph,
  pooledGradient: string,
  block: BlockTensors,
): { kernel: string; bias: string } {
  const { filters, side } = block.shape;
  const pooledSide = Math.floor((side - KERNEL + 1) / 2);
  const passed = throughRelu(graph, pooledGradient, block.pooled);
  const groupAxis = graph.int64s("group_axis", [1]);
  const oneHot = firstMaxima(
    graph,
    block.choice,
    graph.node("Unsqueeze", [block.pooled, groupAxis]),
  );
  const spreadGradient = graph.node("Reshape", [
    graph.node("Mul", [oneHot, graph.node("Unsqueeze", [passed, groupAxis])]),
    graph.int64s("spread_gradient", [0, 4 * filters, pooledSide, pooledSide]),
  ]);
  const spreadKernel = kernelGradient(graph, block.input, spreadGradient, {
    channels: 1,
    filters: 4 * filters,
    outSide: pooledSide,
    kernel: SPREAD,
    stride: 2,
  });
  // Back from [4f, 16] to [f, 9]: the transpose of the placement.
  const byFilter = graph.node("Reshape", [
    graph.node("Transpose", [
      graph.node("Reshape", [
        spreadKernel,
        graph.int64s("spread_rows", [4, filters, SPREAD * SPREAD]),
      ]),
    ], { perm: [1, 0, 2] }),
    graph.int64s("spread_by_filter", [filters, 4 * SPREAD * SPREAD]),
  ]);
  const kernel = graph.node("Reshape", [
    graph.node("Gemm", [byFilter, block.placement!], { transB: 1 }),
    graph.int64s("first_kernel", [filters, 1, KERNEL, KERNEL]),
  ]);
  const spreadBias = graph.node("ReduceSum", [spreadGradient, graph.int64s("nhw", [0, 2, 3])], {
    keepdims: 0,
  });
  const bias = graph.node("ReduceSum", [
    graph.node("Reshape", [spreadBias, graph.int64s("bias_groups", [4, filters])]),
    graph.int64s("group_first", [0]),
  ], { keepdims: 0 });
  return { kernel, bias };
}

/** A later block forward: conv + ReLU (fused by ORT), MaxPool with its indices. */
export function blockForward(
  graph: OnnxGraph,
  input: string,
  kernel: string,
  bias: string,
  shape: BlockShape,
): BlockTensors {
  const relu = graph.node("Relu", [
    graph.node("Conv", [input, kernel, bias], { kernel_shape: [KERNEL, KERNEL] }),
  ]);
  const [pooled, indices] = graph.nodeOutputs("MaxPool", [relu], 2, {
    kernel_shape: [2, 2],
    strides: [2, 2],
  });
  return { shape, input, pooled: pooled!, choice: indices!, relu };
}

/**
 * A later block's gradients from its pooled output's: MaxUnpool puts each cell's gradient
 * where its max came from; then the kernel's (GEMMs over shifted windows), the bias' (a sum)
 * and, when asked, the input's (the transposed conv).
 */
export function blockBackward(
  graph: OnnxGraph,
  pooledGradient: string,
  block: BlockTensors,
  kernel: string,
  withInput: boolean,
): { kernel: string; bias: string; input: string | null } {
  const { channels, side, filters } = block.shape;
  const outputGradient = graph.node("MaxUnpool", [
    throughRelu(graph, pooledGradient, block.pooled),
    block.choice,
    graph.node("Shape", [block.relu!]),
  ], { kernel_shape: [2, 2], strides: [2, 2] });
  const kernelGrad = kernelGradient(graph, block.input, outputGradient, {
    channels,
    filters,
    outSide: side - KERNEL + 1,
    kernel: KERNEL,
    stride: 1,
  });
  const bias = graph.node("ReduceSum", [outputGradient, graph.int64s("nhw", [0, 2, 3])], {
    keepdims: 0,
  });
  const input = withInput ? graph.node("ConvTranspose", [outputGradient, kernel]) : null;
  return { kernel: kernelGrad, bias, input };
}
