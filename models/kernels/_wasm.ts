/**
 * Shared plumbing for the fast wasm kernels: calling the wasm backend's own kernels on
 * `TensorInfo`s (no engine tensors, no tape) and freeing the intermediates they make.
 */
import { backend_util, getKernel, type NamedAttrMap, type TensorInfo } from "@tensorflow/tfjs";
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm";

export type { BackendWasm, TensorInfo };

type Paddings = [number, number][];

/** Runs one of the wasm backend's registered kernels directly on backend data. */
export function runWasmKernel(
  backend: BackendWasm,
  kernelName: string,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const kernel = getKernel(kernelName, "wasm");
  if (kernel === undefined) throw new Error(`the wasm backend has no '${kernelName}' kernel`);
  const out = kernel.kernelFunc({ inputs, backend, attrs });
  if (Array.isArray(out)) throw new Error(`kernel '${kernelName}' returned several outputs`);
  return out;
}

/** Frees intermediates made by `runWasmKernel` (reshapes share data, counted by reference). */
export function disposeInfos(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/** Transposes `x`; the identity permutation still makes a fresh tensor the caller owns. */
export function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  return runWasmKernel(backend, "Transpose", { x }, { perm });
}

/** Reshapes `x`, sharing its data (the caller still frees the result). */
export function reshape(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  return runWasmKernel(backend, "Reshape", { x }, { shape });
}

/**
 * Pads with zeros where an amount is positive and crops where it is negative, so one call
 * brings a tensor to exactly the extent a valid convolution needs. The caller frees the result
 * (which shares `x`'s data when nothing changes).
 */
export function padOrCrop(backend: BackendWasm, x: TensorInfo, amounts: Paddings): TensorInfo {
  const needsCrop = amounts.some(([before, after]) => before < 0 || after < 0);
  const needsPad = amounts.some(([before, after]) => before > 0 || after > 0);
  if (!needsCrop && !needsPad) {
    // Already the right extent: share the data (counted by reference) instead of copying.
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }
  let current = x;
  let owned = false;
  if (needsCrop) {
    const begin = amounts.map(([before]) => Math.max(0, -before));
    const size = x.shape.map((extent, axis) => {
      const [before, after] = amounts[axis] ?? [0, 0];
      return extent + Math.min(0, before) + Math.min(0, after);
    });
    current = runWasmKernel(backend, "Slice", { x: current }, { begin, size });
    owned = true;
  }
  if (needsPad || !owned) {
    const paddings = amounts.map(([before, after]) => [Math.max(0, before), Math.max(0, after)]);
    const padded = runWasmKernel(backend, "PadV2", { x: current }, { paddings, constantValue: 0 });
    if (owned) disposeInfos(backend, current);
    current = padded;
  }
  return current;
}

/** The float32 heap view of a tensor's data: valid until the next wasm allocation. */
export function heapView(backend: BackendWasm, info: TensorInfo): Float32Array {
  if (info.dtype !== "float32") throw new TypeError(`expected float32 data, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Throws a clear error for the data layouts the fast kernels do not handle. */
export function requireChannelsLast(kernelName: string, dataFormat: string): void {
  if (backend_util.convertConv2DDataFormat(dataFormat as "NHWC" | "NCHW") !== "channelsLast") {
    throw new Error(
      `${kernelName} on wasm supports dataFormat 'NHWC' only: got '${dataFormat}'`,
    );
  }
}
