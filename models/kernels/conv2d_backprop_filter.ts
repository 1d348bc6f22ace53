/**
 * Conv2DBackpropFilter for the wasm backend, which has none (tfjs issue #8474).
 *
 * The filter gradient dW[a,b,i,o] = Σ_{n,y,x} x[n, y·s+a−top, x·s+b−left, i] · dy[n,y,x,o] is
 * itself a convolution: over the batch axis, with the input laid out [C_in, H, W, N] and dy laid
 * out [H_out, W_out, N, C_out] as the filter, dilated by the forward stride. XNNPACK runs that
 * at full convolution speed, where a scalar loop would run at a few hundred MFLOP/s.
 */
import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
} from "@tensorflow/tfjs-core";
import {
  type BackendWasm,
  disposeInfos,
  padOrCrop,
  requireChannelsLast,
  runWasmKernel,
  type TensorInfo,
  transpose,
} from "./_wasm.ts";

function conv2DBackpropFilter(
  { inputs, backend, attrs }: {
    inputs: { x: TensorInfo; dy: TensorInfo };
    backend: BackendWasm;
    attrs: Conv2DBackpropFilterAttrs;
  },
): TensorInfo {
  const { x, dy } = inputs;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  requireChannelsLast(Conv2DBackpropFilter, dataFormat);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { top, left } = info.padInfo;
  // The input extent the windows read: crop or pad x to exactly that, so the batch-axis
  // convolution comes out filterHeight × filterWidth.
  const neededHeight = (info.outHeight - 1) * info.strideHeight + info.filterHeight;
  const neededWidth = (info.outWidth - 1) * info.strideWidth + info.filterWidth;
  const fitted = padOrCrop(backend, x, [
    [0, 0],
    [top, neededHeight - info.inHeight - top],
    [left, neededWidth - info.inWidth - left],
    [0, 0],
  ]);
  const channelsFirst = transpose(backend, fitted, [3, 1, 2, 0]);
  const dyAsFilter = transpose(backend, dy, [1, 2, 0, 3]);
  const gradient = runWasmKernel(backend, "Conv2D", { x: channelsFirst, filter: dyAsFilter }, {
    strides: 1,
    pad: "valid",
    dataFormat: "NHWC",
    dilations: [info.strideHeight, info.strideWidth],
  });
  const dw = transpose(backend, gradient, [1, 2, 0, 3]);
  disposeInfos(backend, fitted, channelsFirst, dyAsFilter, gradient);
  return dw;
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: "wasm",
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};
