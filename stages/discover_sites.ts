/**
 * Stage "discover": home pages to the people pages of their sites, each site crawled
 * best-first through the shared `HttpClient` (robots.txt, the address policy on every hop,
 * per-host delays, the HTTP cache) within a page budget and a depth limit. A site emits one
 * `SiteDiscovery` when its crawl ends: its candidates, ranked and marked sure or unsure, and a
 * log that says why the crawl ended and what it refused.
 */
import { mergeMap, Observable, type OperatorFunction } from "rxjs";
import { HttpClient } from "../net/http.ts";
import {
  type Candidate,
  fetchPage,
  queueSitemaps,
  SiteCrawl,
  type SiteLimits,
  type Visit,
  visitPage,
} from "./discover/site_crawl.ts";
import { normalizeUrl } from "./discover/links.ts";

export type { Candidate };

/** One site's discovery: its people pages and its log. */
export interface SiteDiscovery {
  /** The home page as given. */
  home: string;
  /** People pages, best first; mirrors and copies of a list left out. */
  candidates: Candidate[];
  /** Why the crawl ended, what it refused and what failed. Site addresses only, no names. */
  log: string[];
  /** Requests for pages and sitemaps (robots.txt not counted). */
  pagesFetched: number;
  /** Milliseconds the site took. */
  ms: number;
}

export interface DiscoverSitesOptions {
  /**
   * The HTTP client; share the run's so per-host limits and the cache cover the crawl too.
   * @default new HttpClient()
   */
  http?: HttpClient;
  /**
   * Pages (and sitemaps) fetched per site at most.
   * @default 200
   */
  maxPages?: number;
  /**
   * Clicks from the home page at most (a sitemap entry counts as one).
   * @default 3
   */
  maxDepth?: number;
  /**
   * Largest page or sitemap accepted, in bytes after decoding.
   * @default 5242880
   */
  maxPageBytes?: number;
  /**
   * Addresses that differ only by numbers or query values (a calendar's days, a pager's pages)
   * followed per shape.
   * @default 8
   */
  maxPerTemplate?: number;
  /**
   * Sitemap files read per site (an index and its children).
   * @default 5
   */
  maxSitemaps?: number;
  /**
   * Addresses read from one sitemap.
   * @default 5000
   */
  maxSitemapUrls?: number;
  /**
   * Pages of one site in flight at once (the client's per-host limits still hold).
   * @default 2
   */
  concurrency?: number;
  /**
   * Sites crawled at once.
   * @default 4
   */
  sitesAtOnce?: number;
  /**
   * Least score of a page written as a sure row; pages below it are written commented out.
   * @default 0.6
   */
  sureScore?: number;
  /** Called after each page, for a progress display. */
  onPage?: (home: string, pagesFetched: number, candidates: number) => void;
}

function checkPositiveInteger(name: string, value: number) {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot discover as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
}

/** The options filled in and checked. */
function settingsOf(options: DiscoverSitesOptions) {
  const {
    maxPages = 200,
    maxDepth = 3,
    maxPageBytes = 5 * 1024 * 1024,
    maxPerTemplate = 8,
    maxSitemaps = 5,
    maxSitemapUrls = 5000,
    concurrency = 2,
    sitesAtOnce = 4,
    sureScore = 0.6,
  } = options;
  const limits: SiteLimits = {
    maxPages,
    maxDepth,
    maxPageBytes,
    maxPerTemplate,
    maxSitemaps,
    maxSitemapUrls,
    concurrency,
  };
  for (const [name, value] of Object.entries({ ...limits, sitesAtOnce })) {
    checkPositiveInteger(name, value);
  }
  if (!(sureScore >= 0 && sureScore <= 1)) {
    throw new RangeError(
      `Cannot discover as 'sureScore' must be from 0 to 1: current value is ${sureScore}`,
    );
  }
  return { limits, sitesAtOnce, sureScore };
}

/**
 * Home page addresses to one `SiteDiscovery` per site, each as soon as its crawl ends.
 *
 * @example
 * ```ts
 * of("https://www.uni-example.de/").pipe(discoverSites({ maxPages: 50 }))
 *   .subscribe((site) => console.log(site.candidates.map((c) => c.url)));
 * ```
 */
export function discoverSites(
  options: DiscoverSitesOptions = {},
): OperatorFunction<string, SiteDiscovery> {
  const { limits, sitesAtOnce, sureScore } = settingsOf(options);
  const http = options.http ?? new HttpClient();
  return mergeMap((home) =>
    new Observable<SiteDiscovery>((subscriber) => {
      const controller = new AbortController();
      discoverSite(home, { http, limits, sureScore, onPage: options.onPage }, controller.signal)
        .then((site) => {
          if (controller.signal.aborted) return;
          subscriber.next(site);
          subscriber.complete();
        }, (error) => subscriber.error(error));
      return () => controller.abort();
    }), sitesAtOnce);
}

interface SiteContext {
  http: HttpClient;
  limits: SiteLimits;
  sureScore: number;
  onPage?: DiscoverSitesOptions["onPage"];
}

/** One site's crawl, from its home page and sitemaps, to its ranked candidates. */
async function discoverSite(
  home: string,
  context: SiteContext,
  signal: AbortSignal,
): Promise<SiteDiscovery> {
  const started = Date.now();
  const normal = normalizeUrl(home, home);
  if (!normal) {
    return {
      home,
      candidates: [],
      log: ["failed: not an http(s) address"],
      pagesFetched: 0,
      ms: 0,
    };
  }
  const crawl = new SiteCrawl(normal.url, context.limits, context.http);
  crawl.enqueue({ url: normal.url, depth: 0, via: [], priority: 100 });
  const first = await crawlQueue(crawl, context, signal, 1, 1);
  if (first === 0) crawl.log.push("failed: the home page could not be read");
  else {
    await queueSitemaps(crawl, signal);
    await crawlQueue(crawl, context, signal, context.limits.concurrency);
  }
  if (crawl.queued > 0) {
    crawl.log.push(
      `budget: ${crawl.pagesFetched} pages fetched (--max-pages ${context.limits.maxPages}); ${crawl.queued} queued addresses not visited`,
    );
  } else {
    crawl.log.push(`done: ${crawl.pagesFetched} pages fetched; nothing left to visit`);
  }
  if (crawl.settled > 0) {
    crawl.log.push(
      `settled: ${crawl.settled} addresses left, the other links of units whose people page was found`,
    );
  }
  const weak = crawl.candidates.filter((c) => c.score < MIN_SCORE).length;
  if (weak) {
    crawl.log.push(
      `left out: ${weak} pages with photos of people that read as news, events or publications`,
    );
  }
  crawl.log.push(...crawl.countLines());
  return {
    home,
    candidates: rankCandidates(crawl.candidates, context.sureScore),
    log: crawl.log,
    pagesFetched: crawl.pagesFetched,
    ms: Date.now() - started,
  };
}

/**
 * Visits queued pages, best first, in waves of `workers` fetched at once and read in the order
 * they were taken, so a rerun takes the same pages in the same order; until the queue is empty
 * or the budget is spent, or after `stopAfter` pages (the home page alone). Returns how many
 * pages were read.
 */
async function crawlQueue(
  crawl: SiteCrawl,
  context: SiteContext,
  signal: AbortSignal,
  workers: number,
  stopAfter = Infinity,
): Promise<number> {
  let read = 0, visited = 0;
  while (!signal.aborted && visited < stopAfter) {
    const wave: Visit[] = [];
    while (
      wave.length < Math.min(workers, stopAfter - visited) &&
      crawl.pagesFetched + wave.length < crawl.limits.maxPages
    ) {
      const visit = crawl.next();
      if (!visit) break;
      wave.push(visit);
    }
    if (wave.length === 0) break;
    visited += wave.length;
    const pages = await Promise.all(wave.map((visit) => fetchPage(crawl, visit.url, signal)));
    pages.forEach((page, i) => {
      if (!page) return;
      if (!crawl.firstContent(page.url, page)) {
        crawl.count("duplicate: the same page under another address");
        return;
      }
      visitPage(crawl, page, wave[i]!);
      read++;
    });
    context.onPage?.(crawl.home.href, crawl.pagesFetched, crawl.candidates.length);
  }
  return read;
}

/**
 * Least score of a page written at all (commented out below `sureScore`): below it a page with
 * photos of people reads as news, events or publications and is only counted in the log.
 */
const MIN_SCORE = 0.15;

/** How far two lists share portraits: shared / the smaller list. */
function overlap(a: Set<string>, b: string[]): number {
  if (a.size === 0 || b.length === 0) return 0;
  let shared = 0;
  for (const url of b) if (a.has(url)) shared++;
  return shared / Math.min(a.size, new Set(b).size);
}

/**
 * Candidates best first, without the next pages of a kept list (the pipeline follows them)
 * and without mirrors (another language's copy of a list); a list that holds others' people
 * (a directory of all staff) is kept unsure, so nobody lands in two categories.
 */
export function rankCandidates(candidates: Candidate[], sureScore: number): Candidate[] {
  const ordered = candidates.filter((c) => c.score >= MIN_SCORE).sort((a, b) =>
    b.score - a.score || b.people - a.people || a.url.localeCompare(b.url)
  );
  const nextPages = new Set(ordered.map((c) => c.nextPage).filter((url) => url !== undefined));
  const kept: { candidate: Candidate; images: Set<string> }[] = [];
  for (const candidate of ordered) {
    if (nextPages.has(candidate.url)) continue;
    const copyOf = kept.find((k) =>
      overlap(k.images, candidate.imageUrls) >= 0.5 &&
      Math.max(k.images.size, candidate.people) <= 1.5 * Math.min(k.images.size, candidate.people)
    );
    if (copyOf) continue;
    kept.push({ candidate: { ...candidate }, images: new Set(candidate.imageUrls) });
  }
  for (const { candidate, images } of kept) {
    const holds = kept.filter((k) =>
      k.candidate !== candidate && k.images.size < images.size &&
      overlap(images, [...k.images]) >= 0.5
    );
    candidate.sure = candidate.score >= sureScore && candidate.people >= 2 && holds.length === 0;
    if (holds.length) candidate.why.push(`holds the people of ${holds.length} other pages`);
  }
  return kept.map((k) => k.candidate);
}
