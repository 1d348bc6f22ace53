/**
 * The fast training kernels for the wasm backend, registered in place of kernels wasm lacks
 * (Conv2DBackpropFilter) or runs slowly (Conv2DBackpropInput, MaxPoolGrad, Sum over leading
 * axes, Identity, Concat of short slices). Forward convolutions, matmuls and activations stay the stock XNNPACK ones,
 * so inference (face-api) computes what it computed before.
 */
import { getKernel, type KernelConfig, registerKernel, unregisterKernel } from "@tensorflow/tfjs";
import { makeConcatConfig } from "./concat.ts";
import { conv2DBackpropFilterConfig } from "./conv2d_backprop_filter.ts";
import { conv2DBackpropInputConfig } from "./conv2d_backprop_input.ts";
import { makeIdentityConfig } from "./identity.ts";
import { maxPoolGradConfig } from "./max_pool_grad.ts";
import { makeSumConfig } from "./sum.ts";

/** Makes a fast kernel, given the stock one it replaces or wraps (undefined where none). */
type KernelFactory = (stock: KernelConfig | undefined) => KernelConfig;

function wrapping(make: (stock: KernelConfig) => KernelConfig): KernelFactory {
  return (stock) => {
    if (stock === undefined) throw new Error("the wasm backend lacks a kernel this one wraps");
    return make(stock);
  };
}

const FACTORIES: ReadonlyMap<string, KernelFactory> = new Map([
  ["Conv2DBackpropFilter", () => conv2DBackpropFilterConfig],
  ["Conv2DBackpropInput", () => conv2DBackpropInputConfig],
  ["MaxPoolGrad", () => maxPoolGradConfig],
  ["Sum", wrapping(makeSumConfig)],
  ["Identity", wrapping(makeIdentityConfig)],
  ["Concat", wrapping(makeConcatConfig)],
]);

const ours = new Map<string, KernelConfig>();

/** Registers every fast kernel for `wasm` once, replacing the stock one where there is one. */
export function registerFastKernels(): void {
  for (const [name, make] of FACTORIES) {
    const current = getKernel(name, "wasm");
    if (current !== undefined && current === ours.get(name)) continue;
    const config = make(current);
    if (current !== undefined) unregisterKernel(name, "wasm");
    registerKernel(config);
    ours.set(name, config);
  }
}

/** The names of our kernels that are registered for `wasm` right now. */
export function registeredFastKernels(): string[] {
  return [...ours].filter(([name, config]) => getKernel(name, "wasm") === config)
    .map(([name]) => name);
}
