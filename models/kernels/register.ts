/**
 * The fast training kernels for the wasm backend: registered in place of kernels wasm lacks
 * (Conv2DBackpropFilter) or runs slowly (Conv2DBackpropInput, MaxPoolGrad). Forward kernels are
 * left alone, so inference (face-api) gives the same results as before.
 */
import {
  getKernel,
  type KernelConfig,
  registerKernel,
  unregisterKernel,
} from "@tensorflow/tfjs-core";
import { conv2DBackpropFilterConfig } from "./conv2d_backprop_filter.ts";
import { conv2DBackpropInputConfig } from "./conv2d_backprop_input.ts";
import { maxPoolGradConfig } from "./max_pool_grad.ts";

export const FAST_KERNELS: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  maxPoolGradConfig,
];

/** Registers every fast kernel for `wasm`, replacing the stock one where there is one. */
export function registerFastKernels(): void {
  for (const config of FAST_KERNELS) {
    const current = getKernel(config.kernelName, config.backendName);
    if (current === config) continue;
    if (current !== undefined) unregisterKernel(config.kernelName, config.backendName);
    registerKernel(config);
  }
}
