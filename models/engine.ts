/**
 * The tfjs engine: the wasm backend loaded from node_modules (no network), set up once per
 * process. Every module that needs tfjs calls `initEngine()` first.
 */
import * as tf from "@tensorflow/tfjs";
import { getThreadsCount, setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { registeredFastKernels, registerFastKernels } from "./kernels/register.ts";

export { tf };

export type EngineBackend = "wasm" | "cpu";

export interface EngineOptions {
  /**
   * `wasm` (XNNPACK kernels, the fast one) or `cpu` (tfjs' reference kernels).
   * @default "wasm"
   */
  backend?: EngineBackend;
}

let ready: Promise<EngineBackend> | undefined;

/** The folder holding tfjs-backend-wasm's .wasm binaries inside node_modules. */
export function wasmBinaryDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/";
}

/** Sets up tfjs once; later calls return the same promise. */
export function initEngine(options: EngineOptions = {}): Promise<EngineBackend> {
  const { backend = "wasm" } = options;
  ready ??= (async () => {
    if (backend === "wasm") setWasmPaths(wasmBinaryDir());
    if (!(await tf.setBackend(backend))) {
      throw new Error(`tfjs could not start its '${backend}' backend`);
    }
    await tf.ready();
    if (backend === "wasm") registerFastKernels();
    return backend;
  })();
  return ready;
}

/** What the engine runs on, for logs and run metadata. */
export interface EngineInfo {
  /** The active tfjs backend, e.g. `wasm`. */
  backend: string;
  tfjs: string;
  /** Threads the backend computes with (wasm: 1 unless its threaded build is loaded). */
  threads: number;
  /** Our kernels registered over, or in place of missing, wasm kernels. */
  fastKernels: string[];
}

/** Describes the running engine; call after `initEngine()`. */
export function engineInfo(): EngineInfo {
  const backend = tf.getBackend();
  const fastKernels = backend === "wasm" ? registeredFastKernels() : [];
  const threads = backend === "wasm" ? getThreadsCount() : 1;
  return { backend, tfjs: tf.version.tfjs, threads, fastKernels };
}
