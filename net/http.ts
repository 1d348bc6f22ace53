/**
 * The crawler's one HTTP client, shared by the page and image stages so that per-host limits
 * hold across both: a per-host concurrency limit and politeness delay, a timeout per attempt,
 * retries with exponential backoff and jitter (honouring Retry-After), redirects followed by
 * hand so every hop is checked, and a byte cap enforced while the body streams in.
 *
 * Failures are returned as data (`{ ok: false, reason: "code: detail" }`), never thrown, and a
 * reason never contains the URL: image URLs are personal data and must not reach the logs.
 */
import pLimit, { type LimitFunction } from "p-limit";

/** Says who is crawling, as polite crawlers do, so site owners can find us. */
export const DEFAULT_USER_AGENT = "facefield/0.1 (+research crawler)";

export interface HttpClientOptions {
  /**
   * Sent with every request.
   * @default DEFAULT_USER_AGENT
   */
  userAgent?: string;
  /**
   * Requests in flight to one host (scheme + host + port) at a time.
   * @default 4
   */
  perHostConcurrency?: number;
  /**
   * Minimum milliseconds between the starts of two requests to the same host.
   * @default 100
   */
  politenessDelayMs?: number;
  /**
   * Milliseconds one attempt (headers and body) may take before it is aborted.
   * @default 15000
   */
  timeoutMs?: number;
  /**
   * Extra attempts after a network error, a timeout, a 429 or a 5xx.
   * @default 3
   */
  maxRetries?: number;
  /**
   * Backoff before the first retry; it doubles per retry, with jitter.
   * @default 500
   */
  backoffBaseMs?: number;
  /**
   * Upper bound of one wait between attempts, Retry-After included.
   * @default 30000
   */
  maxBackoffMs?: number;
  /**
   * Redirect hops followed before giving up with `too_many_redirects`.
   * @default 5
   */
  maxRedirects?: number;
}

export interface GetOptions {
  /** Bodies longer than this fail with `too_large`, checked while streaming. */
  maxBytes: number;
  /** Sent as the Accept header. */
  accept?: string;
  /**
   * Looks at a final (2xx) response before its body is read. Returning a reason
   * (`"not_html: text/plain"`) fails the request without downloading the body.
   */
  checkResponse?: (response: Response) => string | undefined;
  /** Aborts the request and any wait, e.g. when the subscriber unsubscribes. */
  signal?: AbortSignal;
}

export type GetResult =
  | { ok: true; url: string; status: number; contentType: string; body: Uint8Array }
  | { ok: false; url: string; reason: string };

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

function checkPositiveInteger(name: string, value: number, allowZero = false) {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new RangeError(
      `Cannot create HttpClient as '${name}' must be a ${
        allowZero ? "non-negative" : "positive"
      } integer: current value is ${value}`,
    );
  }
}

/** Parses Retry-After (delta seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Resolves after `ms`, or rejects early with the signal's reason. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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

/** Per-host gate: a concurrency limit plus a minimum spacing between request starts. */
class HostGate {
  readonly limit: LimitFunction;
  #nextStart = 0;

  constructor(concurrency: number, readonly delayMs: number) {
    this.limit = pLimit(concurrency);
  }

  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return this.limit(async () => {
      signal?.throwIfAborted();
      const now = Date.now();
      const start = Math.max(now, this.#nextStart);
      this.#nextStart = start + this.delayMs;
      await sleep(start - now, signal);
      return await task();
    });
  }
}

/** What one attempt came to, decided while the host slot is still held. */
type AttemptResult =
  | { kind: "done"; result: GetResult }
  | { kind: "redirect"; status: number; location: string | null }
  | { kind: "retry"; reason: string; retryAfterMs?: number };

/**
 * An HTTP GET client with per-host limits, retries and checked redirects.
 *
 * @example
 * ```ts
 * const http = new HttpClient({ perHostConcurrency: 2 });
 * const result = await http.get("http://127.0.0.1:8000/", { maxBytes: 1 << 20 });
 * if (result.ok) console.log(result.body.length); else console.log(result.reason);
 * ```
 */
export class HttpClient {
  readonly userAgent: string;
  readonly perHostConcurrency: number;
  readonly politenessDelayMs: number;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly backoffBaseMs: number;
  readonly maxBackoffMs: number;
  readonly maxRedirects: number;
  readonly #gates = new Map<string, HostGate>();

  constructor(options: HttpClientOptions = {}) {
    const {
      userAgent = DEFAULT_USER_AGENT,
      perHostConcurrency = 4,
      politenessDelayMs = 100,
      timeoutMs = 15000,
      maxRetries = 3,
      backoffBaseMs = 500,
      maxBackoffMs = 30000,
      maxRedirects = 5,
    } = options;
    checkPositiveInteger("perHostConcurrency", perHostConcurrency);
    checkPositiveInteger("politenessDelayMs", politenessDelayMs, true);
    checkPositiveInteger("timeoutMs", timeoutMs);
    checkPositiveInteger("maxRetries", maxRetries, true);
    checkPositiveInteger("backoffBaseMs", backoffBaseMs, true);
    checkPositiveInteger("maxBackoffMs", maxBackoffMs, true);
    checkPositiveInteger("maxRedirects", maxRedirects, true);
    if (userAgent.trim() === "") {
      throw new TypeError("Cannot create HttpClient as 'userAgent' must not be empty");
    }
    this.userAgent = userAgent;
    this.perHostConcurrency = perHostConcurrency;
    this.politenessDelayMs = politenessDelayMs;
    this.timeoutMs = timeoutMs;
    this.maxRetries = maxRetries;
    this.backoffBaseMs = backoffBaseMs;
    this.maxBackoffMs = maxBackoffMs;
    this.maxRedirects = maxRedirects;
  }

  #gate(url: URL): HostGate {
    let gate = this.#gates.get(url.origin);
    if (!gate) {
      gate = new HostGate(this.perHostConcurrency, this.politenessDelayMs);
      this.#gates.set(url.origin, gate);
    }
    return gate;
  }

  /** Backoff before retry number `retry` (1-based): exponential, "equal jitter", capped. */
  #backoff(retry: number): number {
    const exponential = Math.min(this.maxBackoffMs, this.backoffBaseMs * 2 ** (retry - 1));
    return exponential / 2 + Math.random() * exponential / 2;
  }

  /** GETs `url`, following redirects and retrying transient failures. Never throws. */
  async get(url: string, options: GetOptions): Promise<GetResult> {
    let current: URL;
    try {
      current = new URL(url);
    } catch {
      return { ok: false, url, reason: "bad_url: not a valid URL" };
    }
    const visited = new Set<string>();
    for (let hop = 0;; hop++) {
      const fail = (reason: string): GetResult => ({ ok: false, url: current.href, reason });
      if (current.protocol !== "http:" && current.protocol !== "https:") {
        return fail(`unsupported_scheme: ${current.protocol} (only http and https)`);
      }
      visited.add(current.href);
      const outcome = await this.#fetchWithRetries(current, options);
      if (outcome.kind === "done") return outcome.result;
      if (outcome.kind === "retry") return fail(outcome.reason);
      if (!outcome.location) return fail(`bad_redirect: ${outcome.status} without Location`);
      let next: URL;
      try {
        next = new URL(outcome.location, current);
      } catch {
        return fail("bad_redirect: invalid Location");
      }
      next.hash = "";
      if (visited.has(next.href)) {
        return fail(`redirect_loop: back to an earlier URL after ${hop + 1} hops`);
      }
      if (hop + 1 > this.maxRedirects) {
        return fail(`too_many_redirects: more than ${this.maxRedirects}`);
      }
      current = next;
    }
  }

  async #fetchWithRetries(url: URL, options: GetOptions): Promise<AttemptResult> {
    const { signal } = options;
    const gate = this.#gate(url);
    for (let retry = 0;; retry++) {
      let outcome: AttemptResult;
      try {
        outcome = await gate.run(() => this.#attempt(url, options), signal);
      } catch (error) {
        // Only the caller's abort gets here: attempt failures are data.
        return { kind: "done", result: { ok: false, url: url.href, reason: describeError(error) } };
      }
      if (outcome.kind !== "retry" || retry >= this.maxRetries) return outcome;
      const wait = Math.min(
        this.maxBackoffMs,
        Math.max(outcome.retryAfterMs ?? 0, this.#backoff(retry + 1)),
      );
      try {
        await sleep(wait, signal);
      } catch (error) {
        return { kind: "done", result: { ok: false, url: url.href, reason: describeError(error) } };
      }
    }
  }

  /** One request, body included, so the host slot covers the whole transfer. */
  async #attempt(url: URL, options: GetOptions): Promise<AttemptResult> {
    const { maxBytes, accept, checkResponse, signal } = options;
    const done = (reason: string): AttemptResult => ({
      kind: "done",
      result: { ok: false, url: url.href, reason },
    });
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const headers: Record<string, string> = { "user-agent": this.userAgent };
    if (accept) headers.accept = accept;
    let response: Response;
    try {
      response = await fetch(url, {
        headers,
        redirect: "manual",
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (error) {
      const reason = describeError(error, this.timeoutMs);
      return signal?.aborted ? done(reason) : { kind: "retry", reason };
    }
    const { status } = response;
    if (REDIRECT_STATUSES.has(status)) {
      await response.body?.cancel();
      return { kind: "redirect", status, location: response.headers.get("location") };
    }
    if (status < 200 || status > 299) {
      await response.body?.cancel();
      const reason = `http_${status}: ${response.statusText || "error"}`;
      if (status !== 429 && status < 500) return done(reason);
      return {
        kind: "retry",
        reason,
        retryAfterMs: parseRetryAfter(response.headers.get("retry-after")),
      };
    }
    const rejection = checkResponse?.(response);
    if (rejection !== undefined) {
      await response.body?.cancel();
      return done(rejection);
    }
    return { kind: "done", result: await this.#readBody(url, response, maxBytes) };
  }

  async #readBody(url: URL, response: Response, maxBytes: number): Promise<GetResult> {
    const fail = (reason: string): GetResult => ({ ok: false, url: url.href, reason });
    const declared = Number(response.headers.get("content-length") ?? NaN);
    if (declared > maxBytes) {
      await response.body?.cancel();
      return fail(`too_large: Content-Length ${declared} > ${maxBytes} bytes`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      if (response.body) {
        for await (const chunk of response.body) {
          total += chunk.length;
          // Leaving the loop early cancels the stream, which aborts the download.
          if (total > maxBytes) return fail(`too_large: body over ${maxBytes} bytes`);
          chunks.push(chunk);
        }
      }
    } catch (error) {
      return fail(describeError(error, this.timeoutMs));
    }
    const body = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.length;
    }
    return {
      ok: true,
      url: url.href,
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      body,
    };
  }
}

/** Turns a fetch/stream error into a reason code without the URL. */
function describeError(error: unknown, timeoutMs?: number): string {
  const name = error instanceof Error || error instanceof DOMException ? error.name : "";
  if (name === "TimeoutError") {
    return `timeout: no complete response within ${timeoutMs ?? "the allowed"} ms`;
  }
  if (name === "AbortError") return "aborted: cancelled by the caller";
  const message = error instanceof Error ? error.message : String(error);
  // Deno's fetch errors quote the URL; keep only the cause.
  const cause = error instanceof Error && error.cause instanceof Error
    ? error.cause.message
    : message;
  return `network: ${cause.replace(/https?:\/\/\S+/g, "<url>").slice(0, 200)}`;
}
