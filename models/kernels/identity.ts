/**
 * Identity for the wasm backend that shares the input's data, as the cpu backend does, instead
 * of copying it. tfjs clones every tensor a gradient saves (engine.saveTensorsForBackwardMode),
 * so the stock copy costs a full pass over each large activation per training step. Tensor data
 * is never written in place, so sharing is safe; strings keep the stock kernel.
 */
import { Identity, type KernelConfig, type KernelFunc } from "@tensorflow/tfjs";
import type { BackendWasm, TensorInfo } from "./_wasm.ts";

export function makeIdentityConfig(stock: KernelConfig): KernelConfig {
  function identity(args: { inputs: { x: TensorInfo }; backend: BackendWasm }): TensorInfo {
    const { inputs: { x }, backend } = args;
    if (x.dtype === "string") {
      return stock.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
    }
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  }
  return {
    kernelName: Identity,
    backendName: "wasm",
    kernelFunc: identity as unknown as KernelFunc,
  };
}
