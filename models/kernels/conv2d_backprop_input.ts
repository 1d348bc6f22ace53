/**
 * Conv2DBackpropInput for the wasm backend, replacing its scalar loop (~1 GFLOP/s).
 *
 * The input gradient is the full correlation of dy, with zeros inserted between rows and
 * columns for strides above 1, with the filter flipped in space and its channel axes swapped.
 * That is one XNNPACK convolution plus a pad and small transposes.
 */
import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
} from "@tensorflow/tfjs";
import {
  type BackendWasm,
  disposeInfos,
  padOrCrop,
  requireChannelsLast,
  reshape,
  runWasmKernel,
  type TensorInfo,
  transpose,
} from "./_wasm.ts";

/** Spreads dy out by the stride: [N,H,W,C] → [N,H·sh,W·sw,C] with dy at multiples of the stride. */
function insertZeros(
  backend: BackendWasm,
  dy: TensorInfo,
  strideHeight: number,
  strideWidth: number,
): TensorInfo {
  const [n = 1, h = 1, w = 1, c = 1] = dy.shape;
  const split = reshape(backend, dy, [n, h, 1, w, 1, c]);
  const spread = runWasmKernel(backend, "PadV2", { x: split }, {
    paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]],
    constantValue: 0,
  });
  const merged = reshape(backend, spread, [n, h * strideHeight, w * strideWidth, c]);
  disposeInfos(backend, split, spread);
  return merged;
}

function conv2DBackpropInput(
  { inputs, backend, attrs }: {
    inputs: { dy: TensorInfo; filter: TensorInfo };
    backend: BackendWasm;
    attrs: Conv2DBackpropInputAttrs;
  },
): TensorInfo {
  const { dy, filter } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  requireChannelsLast(Conv2DBackpropInput, dataFormat);
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const strided = strideHeight > 1 || strideWidth > 1;
  const spread = strided ? insertZeros(backend, dy, strideHeight, strideWidth) : dy;
  const spreadHeight = spread.shape[1] ?? 0;
  const spreadWidth = spread.shape[2] ?? 0;
  // Output row i of dx reads spread rows i+top−(fh−1) … i+top: pad (or crop) so a valid
  // convolution yields exactly inHeight × inWidth rows and columns.
  const before = [filterHeight - 1 - info.padInfo.top, filterWidth - 1 - info.padInfo.left];
  const [beforeRows = 0, beforeCols = 0] = before;
  const afterRows = info.inHeight + filterHeight - 1 - beforeRows - spreadHeight;
  const afterCols = info.inWidth + filterWidth - 1 - beforeCols - spreadWidth;
  const amounts: [number, number][] = [[0, 0], [beforeRows, afterRows], [
    beforeCols,
    afterCols,
  ], [0, 0]];
  // Zero padding alone is left to the convolution (XNNPACK pads on the fly), saving a copy of
  // dy; a crop still needs the slice.
  const padsOnly = amounts.every(([before, after]) => before >= 0 && after >= 0);
  const framed = padsOnly ? spread : padOrCrop(backend, spread, amounts);
  const flipped = runWasmKernel(backend, "Reverse", { x: filter }, { dims: [0, 1] });
  const flippedSwapped = transpose(backend, flipped, [0, 1, 3, 2]);
  const dx = runWasmKernel(backend, "Conv2D", { x: framed, filter: flippedSwapped }, {
    strides: 1,
    pad: padsOnly ? amounts : "valid",
    dataFormat: "NHWC",
    dilations: 1,
  });
  disposeInfos(backend, flipped, flippedSwapped);
  if (!padsOnly) disposeInfos(backend, framed);
  if (strided) disposeInfos(backend, spread);
  return dx;
}

export const conv2DBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: "wasm",
  kernelFunc: conv2DBackpropInput as unknown as KernelFunc,
};
