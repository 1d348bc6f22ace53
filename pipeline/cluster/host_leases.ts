/**
 * Politeness for the whole cluster: per host, at most `perHost` requests in flight and at
 * least `delayMs` between two starts, whichever worker sends them; a 429 or 503 pauses the
 * host for every worker.
 *
 * The state is a KV bucket whose entries expire (`leaseTtlMs`): `slot.<host>.<i>` is taken
 * with a create that only one worker can win and renewed while the request runs, so a worker
 * killed mid-request frees its slot by expiry; `next.<host>` is the earliest time the next
 * request may start, moved on with compare-and-set. The workers' clocks must agree to within
 * the delay (NTP does that); the concurrency limit does not depend on clocks.
 */
import { type KV, KvWatchInclude } from "@nats-io/kv";
import pLimit, { type LimitFunction } from "p-limit";
import {
  type GetOptions,
  type GetResult,
  HttpClient,
  type HttpClientOptions,
} from "../../net/http.ts";
import { hostKey } from "./layout.ts";
import { pause } from "./connection.ts";

export interface HostLeaseOptions {
  /** Requests in flight per host for the whole cluster. */
  perHost: number;
  /** Least milliseconds between two request starts to one host, for the whole cluster. */
  delayMs: number;
  /** Milliseconds a slot lives unrenewed; the bucket's TTL. */
  ttlMs: number;
  /** Who holds a slot, for a person reading the bucket. */
  owner: string;
}

/** Requests in a row one slot serves here while others wait for it (then it goes back). */
const MAX_REUSES = 16;

/** A host slot this worker holds: its KV key, revision and renewal. */
interface HeldSlot {
  key: string;
  index: number;
  revision: number;
  /** Requests it served since it was taken. */
  uses: number;
  renew: ReturnType<typeof setInterval> | 0;
}

/** The cluster-wide host gate, shared by all requests of one worker. */
export class HostLeases {
  /**
   * This worker's own queue per host, in front of the cluster's slots: at most `perHost` of its
   * requests contend in KV, and the next in line goes the moment one of them is done instead
   * of waiting for its next poll.
   */
  readonly #local = new Map<string, LimitFunction>();
  /** Slots given back by a request here and kept for the next one to the same host. */
  readonly #kept = new Map<string, HeldSlot[]>();
  /** Slot indexes this worker holds per host: a create of one of them could only fail. */
  readonly #held = new Map<string, Set<number>>();

  /**
   * With no delay, the hosts' pauses as a watcher of `next.*` delivers them, so a request reads
   * no key of its own; undefined while no watcher is live (a request then reads the key).
   */
  #pauses: Map<string, number> | undefined;
  #stopped = false;
  /** The watcher is delivering: a waiter for a slot is woken when one is given back. */
  #watching = false;
  /** Per host with waiters here: slots given back so far, and the waiters to wake. */
  readonly #wakes = new Map<
    string,
    { generation: number; waiters: Set<() => void>; users: number }
  >();
  /** Slots taken per host as the watcher saw them (advisory: an expiry goes unseen). */
  readonly #taken = new Map<string, Set<number>>();
  #stopWatch: (() => void) | undefined;

  constructor(readonly kv: KV, readonly options: HostLeaseOptions) {
    const { perHost, delayMs, ttlMs } = options;
    if (!Number.isInteger(perHost) || perHost < 1) {
      throw new RangeError(`Cannot gate hosts as 'perHost' must be a positive integer: ${perHost}`);
    }
    if (!Number.isInteger(delayMs) || delayMs < 0) {
      throw new RangeError(
        `Cannot gate hosts as 'delayMs' must be a non-negative integer: ${delayMs}`,
      );
    }
    if (!Number.isInteger(ttlMs) || ttlMs < 1000) {
      throw new RangeError(`Cannot gate hosts as 'ttlMs' must be an integer ≥ 1000: ${ttlMs}`);
    }
    this.#watchHosts();
  }

  /** Stops the watcher and gives back the slots kept for a next request. */
  close() {
    this.#stopped = true;
    this.#stopWatch?.();
    for (const [host, slots] of this.#kept) for (const slot of slots) this.#giveBack(host, slot);
    this.#kept.clear();
  }

  /**
   * Follows the bucket while the server is there: a slot given back wakes this worker's
   * requests waiting for that host, and `#pauses` follows the hosts' pauses (a watcher of new
   * values first, then the values already there; a pause only ever moves later, `pauseHost`,
   * so the later of two readings is the right one whichever came first).
   */
  async #watchHosts() {
    while (!this.#stopped) {
      try {
        const updates = await this.kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
        this.#stopWatch = () => updates.stop();
        const pauses = new Map<string, number>();
        const note = (key: string, value: string) => {
          const host = key.slice("next.".length);
          pauses.set(host, Math.max(pauses.get(host) ?? 0, Number(value) || 0));
        };
        const watching = (async () => {
          for await (const entry of updates) {
            if (this.#stopped) break;
            if (entry.key.startsWith("next.")) {
              if (entry.operation === "PUT") note(entry.key, entry.string());
            } else if (entry.key.startsWith("slot.")) {
              this.#slotSeen(entry.key, entry.operation === "PUT");
            }
          }
        })();
        this.#watching = true;
        const keys: string[] = [];
        for await (const key of await this.kv.keys("next.>")) keys.push(key);
        for (const key of keys) {
          const entry = await this.kv.get(key);
          if (entry?.operation === "PUT") note(key, entry.string());
        }
        if (!this.#stopped) this.#pauses = pauses;
        await watching;
      } catch {
        // The server went away: requests read the key until the watch is back.
        this.#stopWatch?.();
      }
      this.#pauses = undefined;
      this.#watching = false;
      this.#taken.clear();
      if (!this.#stopped) await pause(1000);
    }
  }

  /** A slot taken or given back somewhere; a release wakes this worker's waiters for it. */
  #slotSeen(key: string, taken: boolean) {
    const [, host, index] = key.split(".") as [string, string, string];
    let slots = this.#taken.get(host);
    if (taken) {
      if (!slots) this.#taken.set(host, slots = new Set());
      slots.add(Number(index));
      return;
    }
    slots?.delete(Number(index));
    if (slots?.size === 0) this.#taken.delete(host);
    const wake = this.#wakes.get(host);
    if (!wake) return;
    wake.generation++;
    for (const resolve of wake.waiters) resolve();
    wake.waiters.clear();
  }

  /**
   * Waits for a free slot of the origin and for its turn after the delay; resolves with the
   * function that gives the slot back. Rejects only when `signal` aborts.
   */
  acquire(origin: string, signal?: AbortSignal): Promise<() => Promise<void>> {
    const host = hostKey(origin);
    let local = this.#local.get(host);
    if (!local) {
      local = pLimit(this.options.perHost);
      this.#local.set(host, local);
    }
    const queue = local;
    return new Promise((resolve, reject) => {
      queue(async () => {
        let releaseSlot: () => Promise<void>;
        try {
          releaseSlot = await this.#acquireSlot(host, queue, signal);
        } catch (error) {
          reject(error);
          return;
        }
        // The local turn lasts until the caller gives the slot back.
        await new Promise<void>((done) => resolve(() => releaseSlot().finally(done)));
      }).finally(() => {
        if (queue.activeCount > 0 || queue.pendingCount > 0) return;
        // An idle host's queue goes, so a crawl over a million hosts keeps no million queues,
        // and so do the slots it kept for its next request.
        this.#local.delete(host);
        for (const slot of this.#kept.get(host) ?? []) this.#giveBack(host, slot);
        this.#kept.delete(host);
      });
    });
  }

  /**
   * A slot for one request: the one this worker's previous request to the host kept for it,
   * or a new one from the cluster. Its release keeps it for the next request here while one
   * waits (at most `MAX_REUSES` times in a row, so other workers get their turn): a busy
   * host's requests then cost no KV write at all.
   */
  async #acquireSlot(
    host: string,
    queue: LimitFunction,
    signal?: AbortSignal,
  ): Promise<() => Promise<void>> {
    const kept = this.#kept.get(host);
    let slot = kept?.pop();
    if (kept?.length === 0) this.#kept.delete(host);
    slot ??= await this.#newSlot(host, signal);
    slot.uses++;
    try {
      await this.#waitForTurn(host, signal);
    } catch (error) {
      await this.#giveBack(host, slot);
      throw error;
    }
    return async () => {
      if (queue.pendingCount > 0 && slot.uses < MAX_REUSES) {
        let list = this.#kept.get(host);
        if (!list) this.#kept.set(host, list = []);
        list.push(slot);
        return;
      }
      await this.#giveBack(host, slot);
    };
  }

  async #newSlot(host: string, signal?: AbortSignal): Promise<HeldSlot> {
    const { index, revision } = await this.#takeSlot(host, signal);
    const slot: HeldSlot = { key: `slot.${host}.${index}`, index, revision, uses: 0, renew: 0 };
    // Renewal keeps a long download's slot; a dead worker stops renewing and the slot expires.
    slot.renew = setInterval(() => {
      this.kv.update(slot.key, this.options.owner, slot.revision).then((next) =>
        slot.revision = next
      ).catch(() => {});
    }, Math.max(250, Math.floor(this.options.ttlMs / 3)));
    return slot;
  }

  async #giveBack(host: string, slot: HeldSlot) {
    clearInterval(slot.renew);
    await this.kv.delete(slot.key, { previousSeq: slot.revision }).catch(() =>
      // Renewed under us or expired: free it anyway; a stale delete only frees our own slot.
      this.kv.delete(slot.key).catch(() => {})
    );
    const held = this.#held.get(host);
    held?.delete(slot.index);
    if (held?.size === 0) this.#held.delete(host);
  }

  /** Pushes the origin's next start `ms` into the future for every worker. */
  async pauseHost(origin: string, ms: number): Promise<void> {
    const key = `next.${hostKey(origin)}`;
    for (let tries = 0; tries < 20; tries++) {
      const entry = await this.kv.get(key).catch(() => null);
      const current = entry?.operation === "PUT" ? Number(entry.string()) : 0;
      const until = Math.max(current, Date.now() + ms);
      try {
        if (entry) await this.kv.update(key, String(until), entry.revision);
        else await this.kv.create(key, String(until));
        return;
      } catch {
        // Another worker moved it first: read again.
      }
    }
  }

  async #takeSlot(host: string, signal?: AbortSignal) {
    let waitMs = 5;
    let held = this.#held.get(host);
    if (!held) this.#held.set(host, held = new Set());
    let wake = this.#wakes.get(host);
    if (!wake) this.#wakes.set(host, wake = { generation: 0, waiters: new Set(), users: 0 });
    wake.users++;
    // The watcher's view of the host's slots spares a create that can only fail; it may miss
    // a slot that expired (a dead worker's), so after a wait that no release ended, try all.
    let trustView = true;
    try {
      for (;;) {
        signal?.throwIfAborted();
        const generation = wake.generation;
        const taken = this.#watching && trustView ? this.#taken.get(host) : undefined;
        for (let index = 0; index < this.options.perHost; index++) {
          if (held.has(index) || taken?.has(index)) continue;
          try {
            const revision = await this.kv.create(`slot.${host}.${index}`, this.options.owner);
            held.add(index);
            return { index, revision };
          } catch {
            // Taken (or the server is away): try the next slot, then wait.
          }
        }
        if (wake.generation !== generation) continue; // one was given back meanwhile
        // Only other workers hold the slots now (ours queue locally). With the watcher, wait
        // for one to be given back (or a while); without it, poll briskly.
        if (!this.#watching) {
          await pause(waitMs + Math.random() * waitMs, signal);
          waitMs = Math.min(50, waitMs * 2);
          continue;
        }
        trustView = await this.#wakeOrPause(wake.waiters, 500, signal);
        // Every waiting worker heard the release: a few ms of jitter let the first one's
        // create reach the others' views before they try.
        if (trustView) await pause(Math.random() * 4, signal);
      }
    } finally {
      if (--wake.users === 0) this.#wakes.delete(host);
    }
  }

  /** Resolves true when the waiter is woken, false after `ms`, whichever comes first. */
  async #wakeOrPause(waiters: Set<() => void>, ms: number, signal?: AbortSignal) {
    let resolve!: () => void;
    let woken = false;
    const wakeUp = new Promise<void>((done) => resolve = () => (woken = true, done()));
    const controller = new AbortController();
    const stop = () => controller.abort();
    signal?.addEventListener("abort", stop, { once: true });
    waiters.add(resolve);
    try {
      await Promise.race([wakeUp, pause(ms, controller.signal)]);
    } finally {
      waiters.delete(resolve);
      controller.abort();
      signal?.removeEventListener("abort", stop);
    }
    return woken;
  }

  /**
   * Claims the next start time of the host with compare-and-set, then sleeps until it. With
   * no delay there is nothing to claim: only a pause (a 429 somewhere) is waited out, as the
   * pause watcher has it (or as the key reads while the watcher is down).
   */
  async #waitForTurn(host: string, signal?: AbortSignal) {
    const key = `next.${host}`;
    const pauses = this.#pauses;
    if (this.options.delayMs === 0 && pauses) {
      await pause((pauses.get(host) ?? 0) - Date.now(), signal);
      signal?.throwIfAborted();
      return;
    }
    for (;;) {
      signal?.throwIfAborted();
      let entry;
      try {
        entry = await this.kv.get(key);
      } catch {
        await pause(100, signal);
        continue;
      }
      const now = Date.now();
      const next = entry?.operation === "PUT" ? Number(entry.string()) || 0 : 0;
      const start = Math.max(now, next);
      if (this.options.delayMs > 0) {
        const claim = String(start + this.options.delayMs);
        try {
          if (entry) await this.kv.update(key, claim, entry.revision);
          else await this.kv.create(key, claim);
        } catch {
          continue; // another worker claimed this start first
        }
      }
      await pause(start - now, signal);
      signal?.throwIfAborted();
      return;
    }
  }
}

/** Failures worth another try: the network or the server's load, not the content. */
const TRANSIENT = /^(timeout|network|http_5\d\d|http_429)/;
/** Failures that say the host wants fewer requests: every worker waits. */
const SLOW_DOWN = /^http_(429|503)/;

export interface ClusterHttpOptions extends HttpClientOptions {
  /**
   * Extra attempts after a transient failure, each behind the cluster's host gate.
   * @default 3
   */
  clusterRetries?: number;
  /**
   * Pause of a host after its first 429 or 503; it doubles per retry.
   * @default 2000
   */
  slowDownMs?: number;
}

/**
 * An `HttpClient` whose requests pass the cluster's host gate. It uses the client's public
 * `get` only: each `get` runs with one cluster slot held, and the retries happen here, so a
 * 429 or 503 pauses the host for all workers rather than for one request. The client's own
 * retries are off (`maxRetries: 0`), and a redirect to another host is gated by the first.
 */
export class ClusterHttpClient extends HttpClient {
  readonly #leases: HostLeases;
  readonly #retries: number;
  readonly #slowDownMs: number;
  /** robots.txt per origin for this worker, so each source job does not fetch it again. */
  readonly #robots = new Map<string, Promise<GetResult>>();
  /** Origins whose robots.txt this worker has read (or is reading) under a slot. */
  readonly #robotsRead = new Map<string, Promise<void>>();

  constructor(leases: HostLeases, options: ClusterHttpOptions = {}) {
    const { clusterRetries = 3, slowDownMs = 2000, ...clientOptions } = options;
    super({ ...clientOptions, maxRetries: 0 });
    this.#leases = leases;
    this.#retries = clusterRetries;
    this.#slowDownMs = slowDownMs;
  }

  override get(url: string, options: GetOptions): Promise<GetResult> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return super.get(url, options);
    }
    if (parsed.pathname !== "/robots.txt") return this.#gatedGet(parsed, options);
    let robots = this.#robots.get(parsed.origin);
    if (!robots) {
      robots = this.#gatedGet(parsed, { ...options, signal: undefined });
      this.#robots.set(parsed.origin, robots);
    }
    return robots;
  }

  /**
   * Reads the origin's robots.txt under a slot of its own before a request takes one: the
   * client reads robots.txt inside `get`, and a request that held a slot while it waited for
   * robots.txt would hold every slot of a busy host that way.
   */
  #robotsFirst(url: URL, options: GetOptions): Promise<void> {
    if (options.robots === false) return Promise.resolve();
    let warmed = this.#robotsRead.get(url.origin);
    if (!warmed) {
      warmed = (async () => {
        const release = await this.#leases.acquire(url.origin);
        try {
          await super.refusal(url.href, options.scope ?? url.href);
        } finally {
          await release();
        }
      })().catch(() => {
        // Unread, the client reads it in `get` and gives the page its reason.
      });
      this.#robotsRead.set(url.origin, warmed);
    }
    return warmed;
  }

  async #gatedGet(url: URL, options: GetOptions): Promise<GetResult> {
    await this.#robotsFirst(url, options);
    for (let retry = 0;; retry++) {
      let release: () => Promise<void>;
      try {
        release = await this.#leases.acquire(url.origin, options.signal);
      } catch {
        return { ok: false, url: url.href, reason: "aborted: cancelled by the caller" };
      }
      let result: GetResult;
      const waitMs = this.#slowDownMs * 2 ** retry;
      let slowedDown = false;
      try {
        result = await super.get(url.href, options);
        slowedDown = !result.ok && SLOW_DOWN.test(result.reason) && retry < this.#retries;
        // The pause is set while the slot is still ours, so no worker slips in between.
        if (slowedDown) await this.#leases.pauseHost(url.origin, waitMs);
      } finally {
        await release();
      }
      if (result.ok || !TRANSIENT.test(result.reason) || retry >= this.#retries) return result;
      // A slowed-down host is waited out in the next acquire; other failures wait here.
      if (!slowedDown) await pause(waitMs / 2 + Math.random() * waitMs / 2, options.signal);
      if (options.signal?.aborted) return result;
    }
  }
}
