/**
 * A per-host gate: a concurrency limit plus an adaptive spacing between request starts, after
 * Scrapy's AutoThrottle. The delay follows the server's latency divided by the concurrency we
 * aim at, never below the configured minimum; a 429 or 503 doubles it, and Retry-After holds
 * the whole host back, not just the one URL.
 */
import pLimit, { type LimitFunction } from "p-limit";

/** Resolves after `ms`, or rejects early with the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface HostGateOptions {
  concurrency: number;
  /** Least milliseconds between two request starts. */
  minDelayMs: number;
  /** Most milliseconds between two request starts, however slow or angry the server. */
  maxDelayMs: number;
}

export class HostGate {
  readonly #limit: LimitFunction;
  readonly #options: HostGateOptions;
  #delayMs: number;
  #nextStart = 0;

  constructor(options: HostGateOptions) {
    this.#options = options;
    this.#limit = pLimit(options.concurrency);
    this.#delayMs = options.minDelayMs;
  }

  /** The spacing now in force, in milliseconds. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** Runs `task` in a slot, once the spacing since the last start has passed. */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.#limit(async () => {
      signal?.throwIfAborted();
      const now = Date.now();
      const start = Math.max(now, this.#nextStart);
      this.#nextStart = start + this.#delayMs;
      await sleep(start - now, signal);
      return await task();
    });
  }

  /**
   * Feeds back one response: its latency to headers and status. An error status never lowers
   * the delay; 429 and 503 double it; `retryAfterMs` holds every request to the host back.
   */
  observe(latencyMs: number, status: number, retryAfterMs?: number): void {
    const { minDelayMs, maxDelayMs, concurrency } = this.#options;
    const clamp = (ms: number) => Math.min(maxDelayMs, Math.max(minDelayMs, ms));
    if (status === 429 || status === 503) {
      this.#delayMs = clamp(Math.max(this.#delayMs * 2, minDelayMs, 250));
    } else {
      const target = clamp((this.#delayMs + latencyMs / concurrency) / 2);
      if (status < 400 || target > this.#delayMs) this.#delayMs = target;
    }
    if (retryAfterMs !== undefined) {
      this.#nextStart = Math.max(this.#nextStart, Date.now() + Math.min(retryAfterMs, maxDelayMs));
    }
  }
}
