/**
 * What data-parallel training shares on either engine: a worker thread answering one request
 * at a time (a replica: tfjs on wasm in replica_worker.ts, ONNX Runtime in
 * models/native/cnn_replica_worker.ts), and the balancer that splits each batch between the
 * threads by their measured speed.
 */

/** Any replica reply: a kind, and an error carries its message. */
type ReplyOf = { kind: string; message?: string };

/** A replica worker answering one request at a time. */
export class Replica<Request, Reply extends ReplyOf> {
  readonly #worker: Worker;
  readonly #label: string;
  #pending: { resolve: (reply: Reply) => void; reject: (error: Error) => void } | null = null;

  /** A worker running the module at `url`; `label` names it in errors ("training replica"). */
  constructor(url: URL, label: string) {
    this.#label = label;
    this.#worker = new Worker(url.href, { type: "module" });
    this.#worker.onmessage = (event: MessageEvent<Reply>) => {
      const pending = this.#pending;
      this.#pending = null;
      if (event.data.kind === "error") {
        pending?.reject(new Error(`${label} failed: ${event.data.message}`));
      } else pending?.resolve(event.data);
    };
    this.#worker.onerror = (event: ErrorEvent) => {
      event.preventDefault();
      const pending = this.#pending;
      this.#pending = null;
      pending?.reject(new Error(`${label} crashed: ${event.message}`));
    };
  }

  request(message: Request, transfer: Transferable[] = []): Promise<Reply> {
    if (this.#pending) throw new Error(`a ${this.#label} takes one request at a time`);
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#worker.postMessage(message, transfer);
    });
  }

  terminate(): void {
    this.#worker.terminate();
    this.#pending?.reject(new Error(`${this.#label} stopped`));
    this.#pending = null;
  }
}

/**
 * Splits batches between threads in proportion to their measured speed (smoothed ms per
 * face), so a thread slowed by other work on the machine, or by the main thread's own chores,
 * does not hold every step back.
 */
export class ShareBalancer {
  readonly #msPerFace: number[];

  constructor(threads: number) {
    this.#msPerFace = Array.from({ length: threads }, () => 1);
  }

  /** Faces per thread for a batch of `size` (the main thread first), summing to `size`. */
  split(size: number): number[] {
    const speeds = this.#msPerFace.map((ms) => 1 / ms);
    const total = speeds.reduce((a, b) => a + b, 0);
    const exact = speeds.map((speed) => size * speed / total);
    const counts = exact.map(Math.floor);
    let left = size - counts.reduce((a, b) => a + b, 0);
    const byRemainder = exact.map((value, i) => [value - Math.floor(value), i] as const)
      .sort((a, b) => b[0] - a[0]);
    for (const [, i] of byRemainder) {
      if (left-- <= 0) break;
      counts[i]!++;
    }
    return counts;
  }

  /** Records that `thread` took `ms` for `faces` faces. */
  record(thread: number, faces: number, ms: number): void {
    if (faces <= 0 || !(ms > 0)) return;
    const previous = this.#msPerFace[thread]!;
    this.#msPerFace[thread] = previous === 1 ? ms / faces : 0.7 * previous + 0.3 * ms / faces;
  }
}
