/**
 * The native engine: ONNX Runtime's prebuilt CPU library, from the `onnxruntime-node` npm
 * package (its MLAS kernels use AVX-512 where the CPU has it; tfjs' wasm SIMD is 128 bits wide).
 * It is optional: where the package's binary cannot load (another platform, a sandbox without
 * FFI), or `FACEFIELD_ENGINE=wasm` asks for it, the caller falls back to the wasm engine and
 * says why.
 */
import type * as Ort from "onnxruntime-node";

export type OrtModule = typeof Ort;
export type OrtSession = Ort.InferenceSession;
export type OrtTensor = Ort.Tensor;

/** The native engine, or the reason it is not used. */
export type NativeEngine = { ok: true; ort: OrtModule; version: string } | {
  ok: false;
  reason: string;
};

let loading: Promise<NativeEngine> | undefined;

/** Loads ONNX Runtime once per process; later calls return the same answer. */
export function nativeEngine(): Promise<NativeEngine> {
  loading ??= (async (): Promise<NativeEngine> => {
    if (Deno.env.get("FACEFIELD_ENGINE") === "wasm") {
      return { ok: false, reason: "FACEFIELD_ENGINE=wasm asks for the wasm engine" };
    }
    try {
      const ort = await import("onnxruntime-node");
      return { ok: true, ort, version: ort.env.versions?.node ?? "unknown" };
    } catch (error) {
      return {
        ok: false,
        reason: `onnxruntime-node did not load: ${(error as Error).message.split("\n")[0]}`,
      };
    }
  })();
  return loading;
}

/** What `createSession` uses where its options say nothing (see `setSessionThreads`). */
let processThreads = 1;

/**
 * Sets the threads each session created afterwards in this thread computes with, where its
 * options name none: `crop` of a small folder runs its face nets on one thread with ONNX
 * Runtime's intra-op threads on every core, rather than start a worker per core that each load
 * tfjs, sharp and the nets (about 0.8 s of CPU apiece). Idle pool threads do not spin then:
 * spinning doubled the CPU and the wall time on a shared machine.
 */
export function setSessionThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new RangeError(`session threads must be an integer from 1 to 64: got ${threads}`);
  }
  processThreads = threads;
}

export interface SessionOptions {
  /**
   * Threads one run computes with.
   * @default 1 (a run's parallelism is its workers), or what `setSessionThreads` set
   */
  threads?: number;
  /**
   * Whether idle pool threads spin while waiting for work: a little faster on an idle machine,
   * much slower on a busy one (they take turns from whatever else runs).
   * @default true (ORT's own default); false where `setSessionThreads` set several
   */
  spinning?: boolean;
  /**
   * Where ORT writes the graph as it optimized it for this CPU (models/native/graph_cache.ts).
   * @default undefined (nothing is written)
   */
  optimizedModelFilePath?: string;
  /**
   * Whether `model` is such an optimized graph already: ORT then skips its optimizations.
   * @default false
   */
  preOptimized?: boolean;
}

/** An inference session for a model held in memory (written to disk only where asked). */
export async function createSession(
  ort: OrtModule,
  model: Uint8Array,
  options: SessionOptions = {},
): Promise<OrtSession> {
  const {
    threads = processThreads,
    spinning = processThreads === 1,
    optimizedModelFilePath,
    preOptimized = false,
  } = options;
  return await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: preOptimized ? "disabled" : "all",
    ...(optimizedModelFilePath === undefined ? {} : {
      optimizedModelFilePath,
      // ORT warns that the file holds this CPU's kernels: the cache keys it by the CPU.
      logSeverityLevel: 3,
    }),
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: "0" } } } }),
  });
}
