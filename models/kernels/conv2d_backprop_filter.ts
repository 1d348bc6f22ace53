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
 * input by a scalar loop (32×64×64×1 → 32 filters, a fresh dy each call as in training:
 * ~13 ms against ~41 ms). With many channels the patch matrix costs more to build than the
 * packing it saves.
 */
import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
} from "@tensorflow/tfjs";
import {
  type BackendWasm,
  disposeInfos,
  heapView,
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
 * The im2col patch matrix [P, fh·fw·C_in] of a stride-1 valid convolution over `fitted`, rows
 * the output positions (n, y, x), columns (a, b, channel) as the filter is laid out. With few
 * channels a scalar loop writes it faster than nine wasm slices, a concat and a transpose.
 */
function patchMatrixOf(
  backend: BackendWasm,
  fitted: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize, inChannels, outHeight, outWidth, filterHeight, filterWidth } = info;
  const [, height = 0, width = 0] = fitted.shape;
  const columns = filterHeight * filterWidth * inChannels;
  const out = backend.makeOutput([batchSize * outHeight * outWidth, columns], "float32");
  // Views after the allocation: growing the wasm heap detaches older views.
  const patches = heapView(backend, out);
  const x = heapView(backend, fitted);
  let o = 0;
  for (let n = 0; n < batchSize; n++) {
    for (let y = 0; y < outHeight; y++) {
      for (let col = 0; col < outWidth; col++) {
        for (let a = 0; a < filterHeight; a++) {
          let from = ((n * height + y + a) * width + col) * inChannels;
          for (let k = 0; k < filterWidth * inChannels; k++) patches[o++] = x[from++]!;
        }
      }
    }
  }
  return out;
}

/**
 * dW for stride 1 as dWᵀ = dyᵀ [C_out, P] · patches [P, fh·fw·C_in], P = N·H_out·W_out.
 * `fitted` is the input cropped or padded to exactly the extent a valid convolution reads.
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
  const rows = filterHeight * filterWidth * inChannels;
  // tfjs' wasm BatchMatMul packs its second operand as XNNPACK weights for every new tensor:
  // make that the small patch matrix [P, rows], and dy the first.
  const patchMatrix = patchMatrixOf(backend, fitted, info);
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
