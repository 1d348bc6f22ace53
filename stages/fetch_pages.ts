/**
 * Stage 2: source rows to fetched staff pages, following pagination on the same host.
 * Requests go through the shared `HttpClient` (per-host limits, retries, checked redirects);
 * a page that cannot be fetched is a `failed` outcome, never an error.
 *
 * A page that builds its people with JavaScript is rendered in headless Chromium
 * (`net/browser.ts`): always with the source's `render=browser`, and with `render=auto` (the
 * default) when the page as served shows no people but carries scripts, in the spirit of
 * Crawlee's adaptive crawler. What rendering gave is remembered per host.
 */
import { finalize, mergeMap, Observable, type OperatorFunction } from "rxjs";
import { HttpClient, type ResponseHead } from "../net/http.ts";
import { BrowserRenderer } from "../net/browser.ts";
import { inPageChrome, pageDocument } from "./people/dom.ts";
import { dropped, type FetchedPage, ok, type Outcome, type SourceRow } from "../core/types.ts";
import { extractPeople, findNextPageUrl, releasePage } from "./parse_people.ts";

/** A page that could not be fetched: its source and the URL that failed (after redirects). */
export interface FailedPage {
  source: SourceRow;
  url: string;
}

/** A fetched page, or a failed one with its reason. */
export type PageOutcome = Outcome<FetchedPage, FailedPage>;

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
  /**
   * Renders pages that need a browser; share one across sources so Chromium starts once.
   * @default a renderer over `http`, started on first need and closed when the stream ends
   */
  browser?: BrowserRenderer;
  /**
   * What rendering gave per host (`browser`: render its pages straight away; `http`: the
   * browser found no more people than the page as served, so do not try it there again).
   * Share one across sources like `browser`.
   * @default a new map per subscription
   */
  hostRendering?: Map<string, "http" | "browser">;
  /**
   * Whether a page as served shows people, for `render=auto`.
   * @default extractPeople(page).length > 0
   */
  hasPeople?: (page: FetchedPage) => boolean;
  /**
   * Asked before each page is fetched; the source's crawl waits until it resolves. A later
   * stage's backpressure: a run waits while too many records wait for their images.
   * @default none: each page is fetched as soon as the last one is parsed
   */
  ready?: (signal: AbortSignal) => Promise<void>;
}

/** True when the page runs scripts of its own (not just JSON-LD or templates). */
export function carriesScripts(page: FetchedPage): boolean {
  for (const script of pageDocument(page).querySelectorAll("script")) {
    const type = (script.getAttribute("type") ?? "").trim().toLowerCase();
    const runs = type === "" || type === "module" || /javascript|ecmascript/.test(type);
    if (runs && (script.getAttribute("src") || (script.textContent ?? "").trim())) return true;
  }
  return false;
}

/** Ids and classes of the element a script fills with people. */
const PEOPLE_MOUNT =
  /(^|[-_ ])(people|team|staff|members?|persons?|personen|mitarbeiter\w*|faculty|directory|profiles?)([-_ ]|$)/i;

/** Buttons and links that ask a script for more of a list. */
const LOAD_MORE =
  /^(load|show|view|see) (more|all)\b|^mehr (laden|anzeigen)|^alle (anzeigen|laden)|^weitere (laden|anzeigen)/i;

/**
 * True when a page that shows people as served has a script that adds more: an empty element
 * named for people (`<div id="more-people"></div>`), a "load more" button, or a `<template>`
 * for one person. The extractor then reads the rendered page too (`render auto`).
 */
export function scriptAddsPeople(page: FetchedPage): boolean {
  const document = pageDocument(page);
  if (document.querySelector("body template")) return true;
  for (const element of document.querySelectorAll("[id], [class]")) {
    const names = `${element.getAttribute("id") ?? ""} ${element.getAttribute("class") ?? ""}`;
    if (!PEOPLE_MOUNT.test(names) || element.querySelector("img, picture, [style*=url]")) continue;
    if ((element.textContent ?? "").trim().length <= 40 && !inPageChrome(element)) return true;
  }
  for (const element of document.querySelectorAll("button, a[href='#'], a:not([href])")) {
    if (LOAD_MORE.test((element.textContent ?? "").trim())) return true;
  }
  return false;
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

/** What `renderWhereNeeded` works with: the stage's renderer, memory and limits. */
interface RenderContext {
  browser: BrowserRenderer;
  hostRendering: Map<string, "http" | "browser">;
  hasPeople: (page: FetchedPage) => boolean;
  maxPageBytes: number;
  checkRequest?: (url: string) => Promise<string | undefined>;
}

/**
 * The page as served, or as the browser renders it where its source says `browser`, or says
 * `auto` and the page shows no people as served but runs scripts. A host whose first such page
 * the browser helped goes straight to the browser from then on; one it did not help, never.
 */
async function renderWhereNeeded(
  page: FetchedPage,
  context: RenderContext,
  signal: AbortSignal,
): Promise<PageOutcome> {
  const { browser, hostRendering, hasPeople, maxPageBytes, checkRequest } = context;
  const mode = page.source.render ?? "auto";
  const host = new URL(page.url).host;
  const decided = hostRendering.get(host);
  if (mode === "http" || (mode === "auto" && decided === "http")) return ok(page);
  // People as served, but a script still adds more: render, and keep what shows more people.
  let partly = false;
  if (mode === "auto" && decided !== "browser") {
    if (!carriesScripts(page)) return ok(page);
    if (hasPeople(page)) {
      if (!scriptAddsPeople(page)) return ok(page);
      partly = true;
    }
  }
  const failedPage = { source: page.source, url: page.url };
  const result = await browser.render({
    url: page.url,
    html: page.html,
    allowHosts: page.source.allowHosts,
    checkRequest,
    signal,
  });
  if (!result.ok) return dropped("pages", "failed", result.reason, failedPage);
  if (result.html.length > maxPageBytes) {
    const reason = `too_large: rendered page over ${maxPageBytes} bytes`;
    return dropped("pages", "failed", reason, failedPage);
  }
  const rendered: FetchedPage = { ...page, html: result.html, renderedBy: "browser" };
  if (partly) {
    const more = extractPeople(rendered).length > extractPeople(page).length;
    if (decided === undefined) hostRendering.set(host, more ? "browser" : "http");
    return ok(more ? rendered : page);
  }
  if (mode === "auto" && decided === undefined) {
    hostRendering.set(host, hasPeople(rendered) ? "browser" : "http");
  }
  return ok(rendered);
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
    hasPeople = (page: FetchedPage) => extractPeople(page).length > 0,
  } = options;
  checkPositiveInteger("concurrency", concurrency);
  checkPositiveInteger("maxPages", maxPages);
  checkPositiveInteger("maxPageBytes", maxPageBytes);

  // The body is the state one subscription shares: the browser, what each host needed.
  return (sources) => {
    const ownBrowser = options.browser ? undefined : new BrowserRenderer(http);
    const crawl: CrawlContext = {
      http,
      browser: options.browser ?? ownBrowser!,
      hostRendering: options.hostRendering ?? new Map<string, "http" | "browser">(),
      hasPeople,
      maxPageBytes,
      maxPages,
      respectRobots,
      nextPageUrl,
      ready: options.ready,
    };
    return sources.pipe(
      mergeMap((source) => crawlSource(source, crawl), concurrency),
      // A renderer made here is closed here; the process it started must not outlive the stream.
      finalize(() => void ownBrowser?.close()),
    );
  };
}

/** What one subscription's crawl works with: the client, the renderer and the limits. */
interface CrawlContext extends Omit<RenderContext, "checkRequest"> {
  http: HttpClient;
  maxPages: number;
  respectRobots: boolean;
  nextPageUrl: (page: FetchedPage) => string | undefined;
  ready?: (signal: AbortSignal) => Promise<void>;
}

/**
 * One source's pages in order, each emitted as it arrives, until a page fails, has no next
 * page to follow, or `maxPages` is reached. Unsubscribing aborts the request in flight.
 */
function crawlSource(source: SourceRow, crawl: CrawlContext): Observable<PageOutcome> {
  return new Observable<PageOutcome>((subscriber) => {
    const controller = new AbortController();
    (async () => {
      const visited = new Set<string>();
      let url: string | undefined = source.url;
      for (let pageIndex = 0; pageIndex < crawl.maxPages && url !== undefined; pageIndex++) {
        visited.add(pageKey(url));
        if (crawl.ready) await crawl.ready(controller.signal);
        if (controller.signal.aborted) return;
        const outcome = await fetchPage(source, url, pageIndex, crawl, controller.signal);
        if (controller.signal.aborted) return;
        subscriber.next(outcome);
        if (outcome.status !== "ok") break;
        // Where a redirect took us counts as seen too.
        visited.add(pageKey(outcome.record.url));
        url = nextPageToFollow(outcome.record, crawl.nextPageUrl, visited);
        // Parsed downstream and its next page found: its parse need not wait for the collector.
        releasePage(outcome.record);
      }
      subscriber.complete();
    })().catch((error) => subscriber.error(error));
    return () => controller.abort();
  });
}

/** One page as served, then as the browser renders it where it needs one. */
async function fetchPage(
  source: SourceRow,
  url: string,
  pageIndex: number,
  crawl: CrawlContext,
  signal: AbortSignal,
): Promise<PageOutcome> {
  const { http, browser, hostRendering, hasPeople, maxPageBytes } = crawl;
  const result = await http.get(url, {
    maxBytes: maxPageBytes,
    // The client reads robots.txt once per origin per run and checks every redirect hop.
    robots: crawl.respectRobots,
    accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
    signal,
    checkResponse: notHtml,
  });
  if (!result.ok) return dropped("pages", "failed", result.reason, { source, url: result.url });
  const served: FetchedPage = {
    source,
    url: result.url,
    html: decodeHtml(result.body, result.contentType),
    pageIndex,
    renderedBy: "http",
  };
  return await renderWhereNeeded(served, {
    browser,
    hostRendering,
    hasPeople,
    maxPageBytes,
    // The page's scripts fetch under the same address rules and robots.txt as the crawl.
    checkRequest: (target) => http.refusal(target, served.url),
  }, signal);
}

/** Why a response is not a page to parse (its declared type is not HTML), before its body. */
function notHtml(response: ResponseHead): string | undefined {
  const type = response.headers.get("content-type");
  return type === null || HTML_TYPES.test(type) ? undefined : `not_html: ${type}`;
}

/** The page's next page, when it is one to follow: on the same host, over http(s), not seen. */
function nextPageToFollow(
  page: FetchedPage,
  nextPageUrl: (page: FetchedPage) => string | undefined,
  visited: Set<string>,
): string | undefined {
  const next = nextPageUrl(page);
  if (next === undefined) return undefined;
  let nextUrl: URL;
  try {
    nextUrl = new URL(next, page.url);
  } catch {
    return undefined;
  }
  const sameHost = nextUrl.host === new URL(page.url).host &&
    (nextUrl.protocol === "http:" || nextUrl.protocol === "https:");
  if (!sameHost || visited.has(pageKey(nextUrl.href))) return undefined;
  return nextUrl.href;
}
