/**
 * Stage 2: source rows to fetched staff pages, following pagination on the same host.
 * Requests go through the shared `HttpClient` (per-host limits, retries, checked redirects);
 * a page that cannot be fetched is a `failed` outcome, never an error.
 */
import { mergeMap, Observable, type OperatorFunction } from "rxjs";
import { HttpClient } from "../net/http.ts";
import type { FetchedPage, SourceRow } from "../core/types.ts";
import { findNextPageUrl } from "./parse_people.ts";

export type PageOutcome =
  | { status: "ok"; page: FetchedPage }
  | { status: "failed"; source: SourceRow; url: string; reason: string };

export interface FetchPagesOptions {
  /**
   * The HTTP client; share one with `downloadImages` so per-host limits cover both stages.
   * @default new HttpClient()
   */
  http?: HttpClient;
  /**
   * Sources crawled at the same time (each follows its own pagination in order).
   * @default 4
   */
  concurrency?: number;
  /**
   * Pages fetched per source, its first page included.
   * @default 20
   */
  maxPages?: number;
  /**
   * Largest page body accepted, in bytes.
   * @default 5242880
   */
  maxPageBytes?: number;
  /**
   * Skip pages robots.txt disallows for "facefield" (the client fetches it once per origin).
   * @default true
   */
  respectRobots?: boolean;
  /**
   * Finds the next page of a listing.
   * @default findNextPageUrl from stages/parse_people.ts
   */
  nextPageUrl?: (page: FetchedPage) => string | undefined;
}

const HTML_TYPES = /^\s*(text\/html|application\/xhtml\+xml)\s*(;|$)/i;

function checkPositiveInteger(name: string, value: number) {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot fetch pages as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
}

/** Decodes a page by its declared charset (header, then `<meta>`), UTF-8 otherwise. */
export function decodeHtml(body: Uint8Array, contentType: string): string {
  const fromHeader = /charset\s*=\s*["']?([\w.:-]+)/i.exec(contentType)?.[1];
  const head = new TextDecoder("latin1").decode(body.subarray(0, 2048));
  const fromMeta = /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1];
  for (const label of [fromHeader, fromMeta]) {
    if (!label) continue;
    try {
      return new TextDecoder(label).decode(body);
    } catch {
      // An unknown label: try the next hint.
    }
  }
  return new TextDecoder().decode(body);
}

/** The URL without its fragment, so `#top` does not make a page look new. */
function pageKey(url: string): string {
  const parsed = new URL(url);
  parsed.hash = "";
  return parsed.href;
}

/**
 * Fetches each source's page and its next pages (same host, at most `maxPages`, never one URL
 * twice), emitting every page as soon as it arrives.
 *
 * @example
 * ```ts
 * of(source).pipe(fetchPages({ maxPages: 5 })).subscribe((outcome) => console.log(outcome.status));
 * ```
 */
export function fetchPages(
  options: FetchPagesOptions = {},
): OperatorFunction<SourceRow, PageOutcome> {
  const {
    http = new HttpClient(),
    concurrency = 4,
    maxPages = 20,
    maxPageBytes = 5 * 1024 * 1024,
    respectRobots = true,
    nextPageUrl = findNextPageUrl,
  } = options;
  checkPositiveInteger("concurrency", concurrency);
  checkPositiveInteger("maxPages", maxPages);
  checkPositiveInteger("maxPageBytes", maxPageBytes);

  return (sources) => {
    const fetchPage = async (
      source: SourceRow,
      url: string,
      pageIndex: number,
      signal: AbortSignal,
    ): Promise<PageOutcome> => {
      const failed = (reason: string, at = url): PageOutcome => ({
        status: "failed",
        source,
        url: at,
        reason,
      });
      const result = await http.get(url, {
        maxBytes: maxPageBytes,
        accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
        signal,
        // The client reads robots.txt once per origin per run and checks every redirect hop.
        robots: respectRobots,
        checkResponse: (response) => {
          const type = response.headers.get("content-type");
          return type === null || HTML_TYPES.test(type) ? undefined : `not_html: ${type}`;
        },
      });
      if (!result.ok) return failed(result.reason, result.url);
      return {
        status: "ok",
        page: {
          source,
          url: result.url,
          html: decodeHtml(result.body, result.contentType),
          pageIndex,
        },
      };
    };

    const crawlSource = (source: SourceRow) =>
      new Observable<PageOutcome>((subscriber) => {
        const controller = new AbortController();
        (async () => {
          const visited = new Set<string>();
          let url = source.url;
          for (let pageIndex = 0; pageIndex < maxPages; pageIndex++) {
            visited.add(pageKey(url));
            const outcome = await fetchPage(source, url, pageIndex, controller.signal);
            if (controller.signal.aborted) return;
            subscriber.next(outcome);
            if (outcome.status === "failed") break;
            const { page } = outcome;
            visited.add(pageKey(page.url));
            const next = nextPageUrl(page);
            if (next === undefined) break;
            let nextUrl: URL;
            try {
              nextUrl = new URL(next, page.url);
            } catch {
              break;
            }
            const sameHost = nextUrl.host === new URL(page.url).host &&
              (nextUrl.protocol === "http:" || nextUrl.protocol === "https:");
            if (!sameHost || visited.has(pageKey(nextUrl.href))) break;
            url = nextUrl.href;
          }
          subscriber.complete();
        })().catch((error) => subscriber.error(error));
        return () => controller.abort();
      });

    return sources.pipe(mergeMap(crawlSource, concurrency));
  };
}
