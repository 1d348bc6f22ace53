/**
 * Backpressure from the images stage to the crawl. The people stage finds records far faster
 * than the images stage stores them (1,400 against 250 records/s on loopback), so without a
 * bound some 80,000 records waited in the downloads' queue at 100,000, and the collector's
 * pauses over that heap held the event loop for half a second. The crawl asks `ready()` before
 * each page (and an earlier run's records before each row) and waits while the backlog is full.
 */

/**
 * Records handed to the images stage and not out of it yet, with the bound the crawl waits
 * under. It may overshoot the bound by what was already under way when it filled: at most one
 * page per source crawled at once.
 */
export class Backlog {
  readonly limit: number;
  #size = 0;
  #most = 0;
  #waiters: (() => void)[] = [];

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `Cannot bound the images backlog as 'limit' must be a positive integer: current value is ${limit}`,
      );
    }
    this.limit = limit;
  }

  /** Records waiting now. */
  get size(): number {
    return this.#size;
  }

  /** The most records that waited at once. */
  get most(): number {
    return this.#most;
  }

  /** True while a new page (or an earlier run's record) should wait. */
  get full(): boolean {
    return this.#size >= this.limit;
  }

  /** A record entered the images stage. */
  add(): void {
    if (++this.#size > this.#most) this.#most = this.#size;
  }

  /** A record left the images stage (stored, rejected or failed). */
  done(): void {
    if (this.#size > 0) this.#size--;
    if (!this.full && this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves once the backlog is under its bound (at once when it is), or when `signal` aborts. */
  ready(signal?: AbortSignal): Promise<void> {
    if (!this.full || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.#waiters = this.#waiters.filter((waiter) => waiter !== wake);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(wake);
    });
  }
}
