/**
 * Conv2DBackpropFilter for the wasm backend, which has none (tfjs issue #8474).
 *
 * The filter gradient dW[a,b,i,o] = Σ_{n,y,x} x[n, y·s+a−top, x·s+b−left, i] · dy[n,y,x,o] is
 * itself a convolution: over the batch axis, with the input laid out [C_in, H, W, N] and dy laid
 * out [H_out, W_out, N, C_out] as the filter, dilated by the forward stride. XNNPACK runs that
 * at full convolution speed, where a scalar loop would run at a few hundred MFLOP/s.
 *
 * With few input channels (the first layer of an image model: 1 for grayscale) that
 * convolution has a tiny output and a huge filter, which XNNPACK repacks every step; there the
 * gradient is one matrix product instead, dWᵀ = dyᵀ · patches, with the patches cut from the
 * channels-first input by fh·fw slices (measured for 32×64×64×1 → 32 filters: 11 ms against
 * 25 ms). With many channels the patch matrix costs more to build than the packing it saves.
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
  reshape,
  runWasmKernel,
  type TensorInfo,
  transpose,
} from "./_wasm.ts";

/** Up to this many input channels, stride-1 filter gradients go through the patch matrix. */
const PATCH_MATRIX_MAX_CHANNELS = 4;

/**
 * dW as patchesᵀ [fh·fw·C_in, P] times dy [P, C_out], P = N·H_out·W_out. `fitted` is the input
 * cropped or padded to exactly the extent a stride-1 valid convolution reads.
 */
function viaPatchMatrix(
  backend: BackendWasm,
  fitted: TensorInfo,
  dy: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth } = info;
  const positions = batchSize * outHeight * outWidth;
  const channelsFirst = transpose(backend, fitted, [3, 0, 1, 2]);
  const slices: TensorInfo[] = [];
  for (let a = 0; a < filterHeight; a++) {
    for (let b = 0; b < filterWidth; b++) {
      slices.push(runWasmKernel(backend, "Slice", { x: channelsFirst }, {
        begin: [0, 0, a, b],
        size: [inChannels, batchSize, outHeight, outWidth],
      }));
    }
  }
  // Rows ordered (a, b, channel): the product comes out in the filter's own layout.
  const patches = runWasmKernel(
    backend,
    "Concat",
    slices as unknown as Record<string, TensorInfo>,
    { axis: 0 },
  );
  const rows = filterHeight * filterWidth * inChannels;
  const patchesT = reshape(backend, patches, [rows, positions]);
  // tfjs' wasm BatchMatMul packs its second operand as XNNPACK weights for every new tensor:
  // make that the small patch matrix [P, rows], and dy the first: dWᵀ = dyᵀ · patches.
  const patchMatrix = transpose(backend, patchesT, [1, 0]);
  const dyMatrix = reshape(backend, dy, [positions, outChannels]);
  const dyT = transpose(backend, dyMatrix, [1, 0]);
  const a = reshape(backend, dyT, [1, outChannels, positions]);
  const b = reshape(backend, patchMatrix, [1, positions, rows]);
  const product = runWasmKernel(backend, "BatchMatMul", { a, b }, {
    transposeA: false,
    transposeB: false,
  });
  const productMatrix = reshape(backend, product, [outChannels, rows]);
  const dwMatrix = transpose(backend, productMatrix, [1, 0]);
  const dw = reshape(backend, dwMatrix, [filterHeight, filterWidth, inChannels, outChannels]);
  disposeInfos(
    backend,
    channelsFirst,
    ...slices,
    patches,
    patchesT,
    patchMatrix,
    dyMatrix,
    dyT,
    a,
    b,
    product,
    productMatrix,
    dwMatrix,
  );
  return dw;
}

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
  if (
    info.strideHeight === 1 && info.strideWidth === 1 &&
    info.inChannels <= PATCH_MATRIX_MAX_CHANNELS
  ) {
    const dw = viaPatchMatrix(backend, fitted, dy, info);
    disposeInfos(backend, fitted);
    return dw;
  }
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
