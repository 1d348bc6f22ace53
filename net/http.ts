/**
 * The crawler's one HTTP client, shared by the page and image stages so that per-host limits
 * hold across both. Each attempt is one request on one fresh connection to an address the
 * policy checked (net/transport.ts), so at most `maxRetries + 1` requests reach a server per
 * URL. Around that: robots.txt once per origin per client, checked on every redirect hop;
 * X-Robots-Tag `noai | noimageai | none`; an adaptive per-host delay (net/throttle.ts); retries
 * with exponential backoff and jitter that honour Retry-After; redirects followed by hand so
 * every hop is checked; a byte cap enforced on the decoded body as it streams in; and
 * conditional GETs against an `HttpCache`.
 *
 * Failures are returned as data (`{ ok: false, reason: "code: detail" }`), never thrown, and a
 * reason never contains the URL: image URLs are personal data and must not reach the logs.
 */
import { AddressPolicy, BlockedAddressError } from "./address_policy.ts";
import { noAiDirective, parseRobots, type Robot, ROBOTS_AGENT } from "./robots.ts";
import { HostGate, sleep } from "./throttle.ts";
import {
  defaultDialer,
  type Dialer,
  type RawResponse,
  sendRequest,
  UnsupportedEncodingError,
  type WireStats,
} from "./transport.ts";
import {
  type CachedResponse,
  checkPositiveInteger,
  DEFAULT_USER_AGENT,
  type GetOptions,
  type GetResult,
  type HttpBody,
  type HttpCache,
  type HttpClientOptions,
} from "./http_options.ts";
import { describeError, readBody } from "./read_body.ts";

export { ROBOTS_AGENT };
export { DEFAULT_USER_AGENT, userAgentFor } from "./http_options.ts";
export type {
  CachedResponse,
  GetOptions,
  GetResult,
  HttpBody,
  HttpCache,
  HttpClientOptions,
  ResponseHead,
} from "./http_options.ts";

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Parses Retry-After (delta seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What one attempt came to, decided while the host slot is still held. */
type AttemptResult =
  | { kind: "done"; result: GetResult }
  | { kind: "redirect"; status: number; location: string | null }
  | { kind: "retry"; reason: string; retryAfterMs?: number };

/** One hop's request as the attempts need it. */
interface Hop {
  url: URL;
  scope: URL;
  options: GetOptions;
  cached?: CachedResponse;
}

/** An attempt that ends the tries for this hop with `reason`. */
function attemptFailed(url: URL, reason: string): AttemptResult {
  return { kind: "done", result: { ok: false, url: url.href, reason } };
}

/**
 * Why a 2xx response must not be used, read from its headers before its body: an
 * X-Robots-Tag that forbids AI use, or the caller's own check. Undefined when it may be read.
 */
function refusalBeforeBody(
  response: RawResponse,
  checkResponse: GetOptions["checkResponse"],
): string | undefined {
  const noAi = noAiDirective(response.headers.get("x-robots-tag"));
  if (noAi !== undefined) return `robots_tag: X-Robots-Tag ${noAi} forbids using it`;
  return checkResponse?.({ status: response.status, headers: response.headers });
}

/**
 * An HTTP GET client with address rules, politeness, retries, checked redirects and a cache.
 *
 * @example
 * ```ts
 * const http = new HttpClient({ perHostConcurrency: 2, userAgent: userAgentFor("me@lab.org") });
 * const result = await http.get("http://127.0.0.1:8000/", { maxBytes: 1 << 20 });
 * if (result.ok) console.log(result.body.length); else console.log(result.reason);
 * ```
 */
export class HttpClient {
  readonly userAgent: string;
  readonly perHostConcurrency: number;
  readonly politenessDelayMs: number;
  readonly maxDelayMs: number;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly backoffBaseMs: number;
  readonly maxBackoffMs: number;
  readonly maxRedirects: number;
  readonly policy: AddressPolicy;
  /** Connections opened and bytes received so far, across all requests. */
  readonly stats: WireStats & { requests: number; notModified: number } = {
    connections: 0,
    bytesReceived: 0,
    requests: 0,
    notModified: 0,
  };
  readonly #dial: Dialer;
  readonly #cache?: HttpCache;
  readonly #gates = new Map<string, HostGate>();
  readonly #robots = new Map<string, Promise<Robot | string | undefined>>();

  constructor(options: HttpClientOptions = {}) {
    const {
      userAgent = DEFAULT_USER_AGENT,
      perHostConcurrency = 4,
      politenessDelayMs = 100,
      maxDelayMs = 60000,
      timeoutMs = 15000,
      maxRetries = 3,
      backoffBaseMs = 500,
      maxBackoffMs = 30000,
      maxRedirects = 5,
      allowPrivate = false,
      resolve,
      dial = defaultDialer,
      cache,
    } = options;
    checkPositiveInteger("perHostConcurrency", perHostConcurrency);
    checkPositiveInteger("politenessDelayMs", politenessDelayMs, true);
    checkPositiveInteger("maxDelayMs", maxDelayMs, true);
    checkPositiveInteger("timeoutMs", timeoutMs);
    checkPositiveInteger("maxRetries", maxRetries, true);
    checkPositiveInteger("backoffBaseMs", backoffBaseMs, true);
    checkPositiveInteger("maxBackoffMs", maxBackoffMs, true);
    checkPositiveInteger("maxRedirects", maxRedirects, true);
    if (userAgent.trim() === "") {
      throw new TypeError("Cannot create HttpClient as 'userAgent' must not be empty");
    }
    if (maxDelayMs < politenessDelayMs) {
      throw new RangeError(
        `Cannot create HttpClient as 'maxDelayMs' (${maxDelayMs}) must not be below ` +
          `'politenessDelayMs' (${politenessDelayMs})`,
      );
    }
    this.userAgent = userAgent;
    this.perHostConcurrency = perHostConcurrency;
    this.politenessDelayMs = politenessDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.timeoutMs = timeoutMs;
    this.maxRetries = maxRetries;
    this.backoffBaseMs = backoffBaseMs;
    this.maxBackoffMs = maxBackoffMs;
    this.maxRedirects = maxRedirects;
    this.policy = new AddressPolicy({ allowPrivate, resolve });
    this.#dial = dial;
    this.#cache = cache;
  }

  /** The gate of `url`'s origin: its concurrency limit and current delay. */
  gate(url: URL): HostGate {
    let gate = this.#gates.get(url.origin);
    if (!gate) {
      gate = new HostGate({
        concurrency: this.perHostConcurrency,
        minDelayMs: this.politenessDelayMs,
        maxDelayMs: this.maxDelayMs,
      });
      this.#gates.set(url.origin, gate);
    }
    return gate;
  }

  /**
   * Why a request for `url` made for the page `scope` would be refused (the address rules,
   * then robots.txt), or undefined when it may go. For requests that do not go through `get`,
   * such as a headless browser's, which must keep the same rules.
   */
  async refusal(url: string, scope: string = url): Promise<string | undefined> {
    let target: URL, page: URL;
    try {
      target = new URL(url);
      page = new URL(scope);
    } catch {
      return "bad_url: not a valid URL";
    }
    if (target.protocol !== "http:" && target.protocol !== "https:") {
      return `unsupported_scheme: ${target.protocol} (only http and https)`;
    }
    try {
      await this.policy.check(target, page);
    } catch (error) {
      return error instanceof BlockedAddressError ? error.reason : describeError(error);
    }
    return await this.#robotsRefusal(target, page);
  }

  /**
   * The `Sitemap:` lines of `url`'s origin's robots.txt, read through the same one fetch per
   * origin that every request's robots check uses; none when it is missing or unreadable.
   */
  async sitemaps(url: string, signal?: AbortSignal): Promise<string[]> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return [];
    }
    await this.#robotsRefusal(target, target, signal);
    const robot = await this.#robots.get(target.origin);
    return typeof robot === "object" ? robot.getSitemaps() : [];
  }

  /** Backoff before retry number `retry` (1-based): exponential, "equal jitter", capped. */
  #backoff(retry: number): number {
    const exponential = Math.min(this.maxBackoffMs, this.backoffBaseMs * 2 ** (retry - 1));
    return exponential / 2 + Math.random() * exponential / 2;
  }

  /** GETs `url`, following redirects and retrying transient failures. Never throws. */
  get(url: string, options: GetOptions): Promise<GetResult> {
    return this.#get(url, options);
  }

  /**
   * `get` itself, which the client's own robots.txt requests call too: a subclass that gates
   * `get` (the cluster's host leases) must not be asked for a second slot by a request that
   * already holds one, or every slot of a host can wait on its robots.txt.
   */
  async #get(url: string, options: GetOptions): Promise<GetResult> {
    let current: URL, scope: URL;
    try {
      current = new URL(url);
      scope = new URL(options.scope ?? url);
    } catch {
      return { ok: false, url, reason: "bad_url: not a valid URL" };
    }
    current.hash = "";
    const visited = new Set<string>();
    for (let hop = 0;; hop++) {
      const fail = (reason: string): GetResult => ({ ok: false, url: current.href, reason });
      if (current.protocol !== "http:" && current.protocol !== "https:") {
        return fail(`unsupported_scheme: ${current.protocol} (only http and https)`);
      }
      if (current.username || current.password) {
        return fail("bad_url: credentials in the URL are not sent");
      }
      visited.add(current.href);
      // The address rules first: a hop they refuse is refused for that, not for its robots.txt.
      try {
        await this.policy.check(current, scope);
      } catch (error) {
        if (error instanceof BlockedAddressError) return fail(error.reason);
        return fail(describeError(error, this.timeoutMs));
      }
      const refusal = options.robots === false
        ? undefined
        : await this.#robotsRefusal(current, scope, options.signal);
      if (refusal !== undefined) return fail(refusal);
      const cached = this.#cache?.get(current.href);
      const outcome = await this.#fetchWithRetries({ url: current, scope, options, cached });
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

  /**
   * Why `url`'s origin's robots.txt forbids fetching it, or undefined when it allows it; the
   * file is fetched once per origin per client. A missing one (4xx) sets no rules; one the
   * server cannot give (5xx, network) forbids all, as RFC 9309 says, for this run.
   */
  #robotsRefusal(url: URL, scope: URL, signal?: AbortSignal): Promise<string | undefined> {
    if (url.pathname === "/robots.txt") return Promise.resolve(undefined);
    let robot = this.#robots.get(url.origin);
    if (!robot) {
      const robotsUrl = new URL("/robots.txt", url).href;
      robot = this.#get(robotsUrl, {
        maxBytes: 512 * 1024,
        scope: scope.href,
        robots: false,
        signal,
      })
        .then((result): Robot | string | undefined => {
          if (result.ok) return parseRobots(robotsUrl, result.body);
          if (/^http_4\d\d/.test(result.reason)) return undefined;
          // robots.txt on a host that resolves elsewhere now (rebinding) is refused as such.
          if (result.reason.startsWith("blocked_address")) return result.reason;
          return `robots_unreachable: robots.txt could not be read (${
            result.reason.split(":")[0]
          })`;
        });
      this.#robots.set(url.origin, robot);
    }
    return robot.then((parsed) => {
      if (typeof parsed === "string") return parsed;
      if (parsed?.isAllowed(url.href, ROBOTS_AGENT) === false) {
        return `robots_disallowed: robots.txt disallows this URL for ${ROBOTS_AGENT}`;
      }
      return undefined;
    });
  }

  async #fetchWithRetries(hop: Hop): Promise<AttemptResult> {
    const { signal } = hop.options;
    const gate = this.gate(hop.url);
    const aborted = (error: unknown): AttemptResult => ({
      kind: "done",
      result: { ok: false, url: hop.url.href, reason: describeError(error) },
    });
    for (let retry = 0;; retry++) {
      let outcome: AttemptResult;
      try {
        outcome = await gate.run(() => this.#attempt(hop, gate), signal);
      } catch (error) {
        // Only the caller's abort gets here: attempt failures are data.
        return aborted(error);
      }
      if (outcome.kind !== "retry" || retry >= this.maxRetries) return outcome;
      if ((outcome.retryAfterMs ?? 0) > this.maxBackoffMs) {
        const seconds = Math.round(outcome.retryAfterMs! / 1000);
        return { ...outcome, reason: `${outcome.reason} (Retry-After ${seconds} s; next run)` };
      }
      const wait = Math.min(
        this.maxBackoffMs,
        Math.max(outcome.retryAfterMs ?? 0, this.#backoff(retry + 1)),
      );
      try {
        await sleep(wait, signal);
      } catch (error) {
        return aborted(error);
      }
    }
  }

  /** One request, body included, so the host slot covers the whole transfer. */
  async #attempt(hop: Hop, gate: HostGate): Promise<AttemptResult> {
    const { signal } = hop.options;
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const attemptSignal = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const headers = this.#requestHeaders(hop);
    const started = Date.now();
    const response = await this.#send(hop, headers, attemptSignal);
    if ("kind" in response) return response;
    const { status } = response;
    const retryAfterMs = parseRetryAfter(response.headers.get("retry-after"));
    gate.observe(Date.now() - started, status, retryAfterMs);
    if (REDIRECT_STATUSES.has(status)) {
      response.cancel();
      return { kind: "redirect", status, location: response.headers.get("location") };
    }
    if (status === 304 && hop.cached) return await this.#reuseCached(hop, hop.cached, response);
    if (status < 200 || status > 299) {
      response.cancel();
      const reason = `http_${status}: ${response.statusText || "error"}`;
      if (status !== 429 && status < 500) return attemptFailed(hop.url, reason);
      return { kind: "retry", reason, retryAfterMs };
    }
    const refusal = refusalBeforeBody(response, hop.options.checkResponse);
    if (refusal !== undefined) {
      response.cancel();
      return attemptFailed(hop.url, refusal);
    }
    return await this.#takeBody(hop, response, attemptSignal);
  }

  /** Who we are, the encodings we decode, and the cached validators of a conditional GET. */
  #requestHeaders({ options, cached }: Hop): Record<string, string> {
    const headers: Record<string, string> = {
      "user-agent": this.userAgent,
      "accept-encoding": "gzip, deflate, br",
    };
    if (options.accept) headers.accept = options.accept;
    if (cached?.etag) headers["if-none-match"] = cached.etag;
    if (cached?.lastModified) headers["if-modified-since"] = cached.lastModified;
    return headers;
  }

  /** Sends the request: its response, or what its failure means (give up, or try again). */
  async #send(
    hop: Hop,
    headers: Record<string, string>,
    attemptSignal: AbortSignal,
  ): Promise<RawResponse | AttemptResult> {
    const { url, scope, options } = hop;
    this.stats.requests++;
    try {
      return await sendRequest(
        { url, scope, headers, signal: attemptSignal },
        this.policy,
        this.#dial,
        this.stats,
      );
    } catch (error) {
      if (error instanceof BlockedAddressError) return attemptFailed(url, error.reason);
      if (error instanceof UnsupportedEncodingError) return attemptFailed(url, error.message);
      const reason = describeError(error, this.timeoutMs);
      // A certificate that does not fit will not fit on the next try either.
      if (reason.startsWith("tls_failed")) return attemptFailed(url, reason);
      return options.signal?.aborted ? attemptFailed(url, reason) : { kind: "retry", reason };
    }
  }

  /** A 304: the cached body stands for the response, or the hop asks again in full. */
  async #reuseCached(
    hop: Hop,
    cached: CachedResponse,
    response: RawResponse,
  ): Promise<AttemptResult> {
    response.cancel();
    const body = await cached.body();
    if (body === undefined) {
      // The stored body went missing: the next attempt asks for it in full.
      hop.cached = undefined;
      return { kind: "retry", reason: "cache_lost: the stored body is gone" };
    }
    this.stats.notModified++;
    return {
      kind: "done",
      result: {
        ok: true,
        url: hop.url.href,
        status: response.status,
        contentType: cached.contentType,
        body,
        notModified: true,
      },
    };
  }

  /** Reads a 2xx body within the cap, caches it, and retries a transfer the network cut off. */
  async #takeBody(
    hop: Hop,
    response: RawResponse,
    attemptSignal: AbortSignal,
  ): Promise<AttemptResult> {
    const { url, options } = hop;
    const result = await readBody(
      url,
      response,
      options.maxBytes,
      attemptSignal,
      this.timeoutMs,
    );
    if (result.ok) await this.#remember(url, response.headers, result);
    // A body cut off by the network may pass; one over the cap will not.
    if (!result.ok && /^(timeout|network)/.test(result.reason) && !options.signal?.aborted) {
      return { kind: "retry", reason: result.reason };
    }
    return { kind: "done", result };
  }

  /** Keeps a 200's validators and body for the next run's conditional GET. */
  async #remember(url: URL, headers: Headers, result: HttpBody): Promise<void> {
    const etag = headers.get("etag") ?? undefined;
    const lastModified = headers.get("last-modified") ?? undefined;
    if (!this.#cache || (etag === undefined && lastModified === undefined)) return;
    try {
      await this.#cache.put(url.href, {
        etag,
        lastModified,
        contentType: result.contentType,
        body: result.body,
      });
    } catch {
      // A cache that cannot be written costs a full fetch next time, nothing else.
    }
  }
}
