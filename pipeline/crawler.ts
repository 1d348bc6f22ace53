/**
 * The crawl-and-download part of a run, behind one small interface so that something other
 * than this process can do it: `localCrawler` runs the stages here, `pipeline/cluster/`'s
 * coordinator hands the same stages to NATS workers. Everything after the download (the
 * duplicate check, faces, split, training) stays in `run.ts` for both.
 */
import { map, mergeMap, type Observable, of, type OperatorFunction, toArray } from "rxjs";
import type { ImageRecord, Outcome, PersonRecord, SourceRow } from "../core/types.ts";
import type { DataPaths } from "../store/paths.ts";
import type { HttpClient } from "../net/http.ts";
import type { BrowserRenderer } from "../net/browser.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import { parsePeople } from "../stages/parse_people.ts";
import { downloadImages } from "../stages/download_images.ts";

/** One fetched page of a source with the people parsed from it, or a page that failed. */
export type CrawledPage =
  | { status: "ok"; source: SourceRow; url: string; people: PersonRecord[] }
  | { status: "failed"; source: SourceRow; url: string; reason: string };

/** What a run asks of a crawler. */
export interface Crawler {
  /** Sources crawled at once. */
  sourcesAtOnce: number;
  /** One source's pages in order; completes when its pagination has ended. */
  crawlSource(source: SourceRow): Observable<CrawledPage>;
  /** Person records to downloaded, validated images in the run's image cache. */
  downloadImages: OperatorFunction<PersonRecord, Outcome<ImageRecord>>;
}

/** What the run gives a crawler when it makes one. */
export interface CrawlerContext {
  paths: DataPaths;
  /** An earlier run's image for a record, when its bytes are still in the cache. */
  lookup: (person: PersonRecord) => ImageRecord | undefined;
  /** Resolves when the run can take another page's people (`fetchPages`' `ready`). */
  ready?: (signal: AbortSignal) => Promise<void>;
}

/** Makes the crawler of a run, once its data dir is open. */
export type CrawlerFactory = (context: CrawlerContext) => Crawler;

/** Sources crawled at once here; the HTTP client's per-host limit still applies across them. */
const LOCAL_SOURCES_AT_ONCE = 4;

/** What fetching a page may use besides the HTTP client: a browser for pages that need one. */
export interface PageRendering {
  browser?: BrowserRenderer;
  /** What rendering gave per host, shared by all sources of a run. */
  hostRendering?: Map<string, "http" | "browser">;
  /** Asked before each page: the run's backpressure (`fetchPages`' `ready`). */
  ready?: (signal: AbortSignal) => Promise<void>;
}

/** A source's pages, each parsed into people: the fetch and parse stages for one source row. */
export function crawlOneSource(
  source: SourceRow,
  http: HttpClient,
  rendering: PageRendering = {},
): Observable<CrawledPage> {
  return of(source).pipe(
    fetchPages({ http, ...rendering }),
    mergeMap((outcome): Observable<CrawledPage> => {
      if (outcome.status !== "ok") {
        const { url } = outcome.record;
        return of({ status: "failed", source, url, reason: outcome.reason });
      }
      const page = outcome.record;
      return of(page).pipe(
        parsePeople(),
        toArray(),
        map((people) => ({ status: "ok", source: page.source, url: page.url, people })),
      );
    }),
  );
}

/** The single-machine crawler: fetch, parse and download in this process. */
export function localCrawler(
  settings: { http: HttpClient; concurrency: number; revalidate?: boolean } & PageRendering,
): CrawlerFactory {
  const { http, concurrency, revalidate = false, browser } = settings;
  const hostRendering = settings.hostRendering ?? new Map<string, "http" | "browser">();
  return ({ paths, lookup, ready }) => ({
    sourcesAtOnce: LOCAL_SOURCES_AT_ONCE,
    crawlSource: (source) => crawlOneSource(source, http, { browser, hostRendering, ready }),
    downloadImages: downloadImages({
      cacheDir: paths.imageCache,
      concurrency,
      http,
      lookup,
      revalidate,
    }),
  });
}
