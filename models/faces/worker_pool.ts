/**
 * A pool of Deno Web Workers, each with its own tfjs wasm engine and face nets, so face work
 * uses every core: one wasm instance runs on one thread.
 */
// Types only from faces.ts: the pool's own thread needs none of the nets, only its workers do.
import type { FaceExtraction, FaceOptions, FaceTimings } from "./faces.ts";
import { type FaceErrorCode, FaceInputError } from "./face_defaults.ts";

type Job = { id: number; bytes: Uint8Array; options: Omit<FaceOptions, "timings"> };
type Reply =
  | { id: number; result: FaceExtraction; timings: FaceTimings }
  | { id: number; error: { code?: FaceErrorCode; message: string } };

interface Pending {
  resolve(result: FaceExtraction): void;
  reject(error: Error): void;
  timings?: FaceTimings;
}

export interface FaceWorkerPoolOptions {
  /**
   * Number of workers.
   * @default navigator.hardwareConcurrency
   */
  workers?: number;
  /**
   * Images a worker holds at once. With two, one decodes on sharp's threads while the other
   * runs the nets, so a worker's thread does not wait for the decode.
   * @default 2
   */
  jobsPerWorker?: number;
}

/**
 * Runs `extractFaces` in worker threads. Jobs queue in the pool; each worker takes one at a time.
 *
 * @example
 * ```ts
 * const pool = new FaceWorkerPool({ workers: 2 });
 * try {
 *   const result = await pool.extractFaces(await Deno.readFile("portrait.jpg"));
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class FaceWorkerPool {
  readonly size: number;
  readonly #workers: Worker[] = [];
  /** Jobs each worker holds now, by worker. */
  readonly #load = new Map<Worker, number>();
  readonly #jobsPerWorker: number;
  readonly #queue: { job: Job; transfer: ArrayBuffer[] }[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #closed = false;

  constructor(options: FaceWorkerPoolOptions = {}) {
    const { workers = navigator.hardwareConcurrency, jobsPerWorker = 2 } = options;
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      throw new RangeError(`'workers' must be an integer from 1 to 64: got ${workers}`);
    }
    if (!Number.isInteger(jobsPerWorker) || jobsPerWorker < 1 || jobsPerWorker > 8) {
      throw new RangeError(`'jobsPerWorker' must be an integer from 1 to 8: got ${jobsPerWorker}`);
    }
    this.size = workers;
    this.#jobsPerWorker = jobsPerWorker;
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(new URL("./worker_pool.ts", import.meta.url), { type: "module" });
      worker.onmessage = (event: MessageEvent<Reply>) => this.#settle(worker, event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        this.#failAll(new Error(`face worker crashed: ${event.message}`));
      };
      this.#workers.push(worker);
      this.#load.set(worker, 0);
    }
  }

  /** `extractFaces` on a worker. The bytes are copied, so the caller may keep them. */
  extractFaces(bytes: Uint8Array, options: FaceOptions = {}): Promise<FaceExtraction> {
    if (this.#closed) return Promise.reject(new Error("FaceWorkerPool is closed"));
    const { timings, ...rest } = options;
    const copy = bytes.slice();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, timings });
      this.#queue.push({ job: { id, bytes: copy, options: rest }, transfer: [copy.buffer] });
      this.#pump();
    });
  }

  /** Stops the workers; jobs still pending are rejected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const worker of this.#workers) worker.terminate();
    this.#failAll(new Error("FaceWorkerPool closed"));
  }

  /** Hands queued jobs to the least loaded workers, up to `jobsPerWorker` each. */
  #pump(): void {
    while (this.#queue.length > 0) {
      let worker: Worker | undefined;
      for (const candidate of this.#workers) {
        const load = this.#load.get(candidate)!;
        if (load < this.#jobsPerWorker && (!worker || load < this.#load.get(worker)!)) {
          worker = candidate;
        }
      }
      if (!worker) return;
      const { job, transfer } = this.#queue.shift()!;
      this.#load.set(worker, this.#load.get(worker)! + 1);
      worker.postMessage(job, transfer);
    }
  }

  #settle(worker: Worker, reply: Reply): void {
    const pending = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    this.#load.set(worker, Math.max(0, this.#load.get(worker)! - 1));
    this.#pump();
    if (!pending) return;
    if ("error" in reply) {
      const { code, message } = reply.error;
      pending.reject(
        code ? new FaceInputError(code, message.slice(code.length + 2)) : new Error(message),
      );
      return;
    }
    if (pending.timings) {
      for (const key of Object.keys(reply.timings) as (keyof FaceTimings)[]) {
        pending.timings[key] += reply.timings[key];
      }
    }
    pending.resolve(reply.result);
  }

  #failAll(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    this.#queue.length = 0;
  }
}

// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
if (typeof scope.WorkerGlobalScope !== "undefined" && scope instanceof scope.WorkerGlobalScope) {
  // The handler is set before anything loads, so no job posted meanwhile is lost. faces.ts is
  // imported by a URL Deno cannot follow ahead of time: a literal specifier made Deno build its
  // whole module graph (tfjs, sharp, ONNX Runtime) before this module ran.
  const faces = import(new URL("./faces.ts", import.meta.url).href) as Promise<
    typeof import("./faces.ts")
  >;
  // The engine and the detector's and landmarks' sessions load before the first job comes.
  faces.then((m) => m.prepareFaces({ describe: false })).catch(() => {});
  scope.onmessage = async (event: MessageEvent<Job>) => {
    const { id, bytes, options } = event.data;
    try {
      const { emptyTimings, extractFaces } = await faces;
      const timings = emptyTimings();
      const result = await extractFaces(bytes, { ...options, timings });
      const transfer = result.faces.map((f) => f.crop.buffer as ArrayBuffer);
      scope.postMessage({ id, result, timings } satisfies Reply, transfer);
    } catch (error) {
      const code = error instanceof FaceInputError ? error.code : undefined;
      scope.postMessage({
        id,
        error: { code, message: String((error as Error)?.message ?? error) },
      });
    }
  };
}
