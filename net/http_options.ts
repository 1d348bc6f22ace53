/**
 * What the HTTP client (net/http.ts) is asked and what it answers: its options, a request's
 * options, the result of a GET, the cache it may revalidate against, and the User-Agent it
 * sends. Plain types and their checks, no I/O.
 */
import type { Resolver } from "./address_policy.ts";
import type { Dialer } from "./transport.ts";

/** The User-Agent: names facefield and, where given, who runs it, so site owners can ask. */
export function userAgentFor(contact?: string): string {
  const who = contact?.trim() ? `contact: ${contact.trim()}` : "no contact given";
  return `facefield/0.2 (research crawler; ${who})`;
}

/** Says who is crawling, as polite crawlers do, so site owners can find us. */
export const DEFAULT_USER_AGENT = userAgentFor();

/** What a cache holds for a URL: its validators and a way to read the stored body. */
export interface CachedResponse {
  etag?: string;
  lastModified?: string;
  contentType: string;
  /** The stored body, or undefined when it is gone (then the URL is fetched in full). */
  body(): Promise<Uint8Array | undefined>;
}

/**
 * Where validators and bodies are kept between runs (store/http_cache.ts). Only responses with
 * an ETag or Last-Modified are put: without one there is nothing to revalidate with.
 */
export interface HttpCache {
  get(url: string): CachedResponse | undefined;
  put(
    url: string,
    entry: { etag?: string; lastModified?: string; contentType: string; body: Uint8Array },
  ): Promise<void>;
}

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
   * Least milliseconds between the starts of two requests to the same host; the adaptive
   * delay never goes below it.
   * @default 100
   */
  politenessDelayMs?: number;
  /**
   * Most milliseconds the adaptive delay and a Retry-After hold a host back.
   * @default 60000
   */
  maxDelayMs?: number;
  /**
   * Milliseconds one attempt (headers and body) may take before it is aborted.
   * @default 15000
   */
  timeoutMs?: number;
  /**
   * Extra attempts after a network error, a timeout, a 429 or a 5xx: a URL gets at most
   * `maxRetries + 1` requests, each on its own connection.
   * @default 3
   */
  maxRetries?: number;
  /**
   * Backoff before the first retry; it doubles per retry, with jitter.
   * @default 500
   */
  backoffBaseMs?: number;
  /**
   * Upper bound of one wait between attempts. A Retry-After beyond it ends the tries for this
   * run with the response's status, a passing failure that the next run retries.
   * @default 30000
   */
  maxBackoffMs?: number;
  /**
   * Redirect hops followed before giving up with `too_many_redirects`.
   * @default 5
   */
  maxRedirects?: number;
  /**
   * Let pages reach private and loopback addresses, for intranet crawls (`--allow-private`).
   * @default false
   */
  allowPrivate?: boolean;
  /**
   * Resolves host names; tests pass a stub.
   * @default systemResolver (getaddrinfo)
   */
  resolve?: Resolver;
  /**
   * Opens the connection to a checked address; tests pass one that counts and dials loopback.
   * @default defaultDialer
   */
  dial?: Dialer;
  /** Validators and bodies from earlier runs, for conditional GETs. */
  cache?: HttpCache;
}

/** The status and headers of a final response, before its body is read. */
export interface ResponseHead {
  status: number;
  headers: Headers;
}

export interface GetOptions {
  /** Bodies longer than this (after decoding) fail with `too_large`, checked while streaming. */
  maxBytes: number;
  /** Sent as the Accept header. */
  accept?: string;
  /**
   * Looks at a final (2xx) response before its body is read. Returning a reason
   * (`"not_html: text/plain"`) fails the request without downloading the body.
   */
  checkResponse?: (response: ResponseHead) => string | undefined;
  /** Aborts the request and any wait, e.g. when the subscriber unsubscribes. */
  signal?: AbortSignal;
  /**
   * The page the request is made for (an image's page; a page's own URL): every hop may reach
   * only addresses in its address class.
   * @default the URL itself
   */
  scope?: string;
  /**
   * Check each hop against its origin's robots.txt.
   * @default true
   */
  robots?: boolean;
}

/** A body we have: fetched now (`status` 2xx) or reused after a 304 (`notModified`). */
export interface HttpBody {
  /** Final URL after redirects. */
  url: string;
  status: number;
  contentType: string;
  body: Uint8Array;
  /** True when the server said 304 and the body is the cached one. */
  notModified: boolean;
}

// Not core's Outcome: a Dropped names its stage, and the client serves several (and predict).
export type GetResult =
  | ({ ok: true } & HttpBody)
  | { ok: false; url: string; reason: string };

/** Throws the RangeError the client's constructor gives for a bad count or delay. */
export function checkPositiveInteger(name: string, value: number, allowZero = false) {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1)) {
    throw new RangeError(
      `Cannot create HttpClient as '${name}' must be a ${
        allowZero ? "non-negative" : "positive"
      } integer: current value is ${value}`,
    );
  }
}
