/**
 * The crawl half of a run, as named parts of one stream: sources → pages → people (new ones
 * reach the manifest before their page counts as crawled), earlier runs' people ahead of them,
 * then downloads. Each part takes the run's state and returns an Observable.
 */
import {
  concat,
  defer,
  distinct,
  EMPTY,
  filter,
  from,
  map,
  mergeMap,
  type Observable,
  of,
  tap,
  toArray,
} from "rxjs";
import { type FetchedPage, type ImageRecord, isOk, ok, type Outcome } from "../core/types.ts";
import type { PersonRecord, SourceRow } from "../core/types.ts";
import type { HttpClient } from "../net/http.ts";
import type { BrowserRenderer } from "../net/browser.ts";
import { filterRoles } from "../stages/filter_roles.ts";
import { type Manifest, type ManifestRow, rowToImage, rowToPerson } from "../store/manifest.ts";
import { blobPath } from "../store/paths.ts";
import type { RemovedList } from "../store/removed.ts";
import { downloadImages } from "../stages/download_images.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import { parsePeople } from "../stages/parse_people.ts";
import { readSources, sourceBytes } from "../stages/read_sources.ts";
import type { ResolvedPipelineOptions } from "./options.ts";
import type { RunState } from "./run_state.ts";

/** Sources crawled at once; the HTTP client's per-host limit still applies across them. */
const SOURCES_AT_ONCE = 4;

/** Failures worth another try on the next run: the network, not the content. */
const TRANSIENT_REASON = /^(timeout|network|http_5\d\d|http_429|robots_unreachable)/;

/** Runs `onComplete` when the source completes normally (not on error or unsubscribe). */
function finalizeWith<T>(onComplete: () => void) {
  return (source: Observable<T>) => concat(source, defer(() => (onComplete(), EMPTY)));
}

/** The sources to crawl this run: valid rows not crawled to their end by an earlier run. */
function sourcesToCrawl(
  options: ResolvedPipelineOptions,
  state: RunState,
  input?: Observable<Uint8Array | string>,
): Observable<SourceRow> {
  return (input ?? sourceBytes(options.sources ?? "-")).pipe(
    readSources(),
    tap((item) => {
      if (item.status === "ok") return;
      state.sources.invalid++;
      state.progress.log(`sources line ${item.record.line}: skipped, ${item.reason}`);
    }),
    mergeMap((item) => item.status === "ok" ? of(item.record) : EMPTY),
    filter((source) => {
      if (options.refresh || !state.pageLog.sourceDone(source.url)) return true;
      state.sources.skipped++;
      return false;
    }),
  );
}

/** A page's people, written to the manifest before the page is logged as crawled. */
function peopleOfPage(page: FetchedPage, state: RunState): Observable<PersonRecord> {
  return of(page).pipe(
    parsePeople(),
    toArray(),
    tap((people) => {
      // A run killed in between re-crawls the page rather than losing its people.
      for (const person of people) {
        if (!state.removed.matches(person) && !state.manifest.get(person.id)) {
          state.manifest.record(ok(person), "people");
        }
      }
      state.manifest.flushSync();
      state.pages.ok++;
      state.progress.add("pages");
      state.pageLog.record({
        source_url: page.source.url,
        page_url: page.url,
        category: page.source.category,
        status: "ok",
        reason: people.length ? "" : "no_people_found",
        people: String(people.length),
      });
    }),
    mergeMap((people) => from(people)),
  );
}

/**
 * People found on this run's sources. Each source is fetched in a stream of its own, so its
 * end (the last page of its pagination) is known and logged; a source cut short by a dead run
 * is crawled again.
 */
export function crawledPeople(
  options: ResolvedPipelineOptions,
  state: RunState,
  clients: { http: HttpClient; browser: BrowserRenderer },
  input?: Observable<Uint8Array | string>,
): Observable<PersonRecord> {
  const { http, browser } = clients;
  // One memory per host of whether its pages need the browser, shared by all sources.
  const hostRendering = new Map<string, "http" | "browser">();
  return sourcesToCrawl(options, state, input).pipe(
    mergeMap(
      (source) =>
        of(source).pipe(
          fetchPages({ http, browser, hostRendering }),
          finalizeWith(() => state.pageLog.recordComplete(source.url, source.category)),
        ),
      SOURCES_AT_ONCE,
    ),
    mergeMap((outcome) => {
      if (outcome.status === "ok") return peopleOfPage(outcome.record, state);
      const { source, url } = outcome.record;
      state.pages.failed++;
      state.progress.add("pages");
      state.pageLog.record({
        source_url: source.url,
        page_url: url,
        category: source.category,
        status: "failed",
        reason: outcome.reason,
        people: "0",
      });
      state.progress.log(`page failed (source line ${source.line}): ${outcome.reason}`);
      return EMPTY;
    }),
  );
}

/** Earlier runs' records that may flow again: done or in progress, or failed for a passing reason. */
function resumableRows(manifest: Manifest, removed: RemovedList): ManifestRow[] {
  return manifest.rows().filter((row) =>
    !removed.matches({ id: row.id, name: row.name, sha256: row.sha256 || undefined }) &&
    (row.status === "ok" || (row.status === "failed" && TRANSIENT_REASON.test(row.reason)) ||
      // Left out by an earlier run's --roles: this run's rules decide again.
      (row.status === "rejected" && row.reason.startsWith("role_excluded")))
  );
}

/**
 * Every person of the run, once: earlier runs' records first, so their split assignments anchor
 * the new ones, then this run's crawl; people on the removal list never pass.
 */
export function allPeople(
  options: ResolvedPipelineOptions,
  state: RunState,
  crawled$: Observable<PersonRecord>,
) {
  const previous$ = defer(() =>
    from(resumableRows(state.manifest, state.removed).map(rowToPerson))
  );
  return concat(previous$, crawled$).pipe(
    filter((person) => !state.removed.matches(person)),
    distinct((person) => person.id),
    filterRoles({ rules: options.roles }),
    tap((outcome) => {
      if (!isOk(outcome)) state.manifest.record(outcome, "people");
    }),
    filter(isOk),
    map((outcome) => outcome.record),
    tap((person) => {
      state.progress.add("people");
      if (!state.manifest.get(person.id)) state.manifest.record(ok(person), "people");
    }),
  );
}

/** An earlier download that is still in the cache, so the stage need not fetch it again. */
function cachedImage(state: RunState) {
  return (person: PersonRecord): ImageRecord | undefined => {
    const row = state.manifest.get(person.id);
    if (!row?.sha256 || row.image_url !== person.imageUrl) return undefined;
    const imagePath = blobPath(state.paths.imageCache, row.sha256);
    try {
      Deno.statSync(imagePath);
    } catch {
      return undefined;
    }
    return rowToImage(row, imagePath);
  };
}

/**
 * The same image bytes under the same category are one person listed twice (a site that moved
 * its images, a person on two pages of one department): keep the first, reject the rest.
 * The same face under another category is kept; the split keeps such identities together.
 */
export function dropDuplicateImages(manifest: Manifest) {
  const owner = new Map<string, string>();
  for (const row of manifest.rows()) {
    if (row.status === "ok" && row.sha256) owner.set(`${row.category}\n${row.sha256}`, row.id);
  }
  return (outcome: Outcome<ImageRecord>): Outcome<ImageRecord> => {
    if (!isOk(outcome)) return outcome;
    const key = `${outcome.record.category}\n${outcome.record.sha256}`;
    const first = owner.get(key);
    if (first === undefined) owner.set(key, outcome.record.id);
    if (first === undefined || first === outcome.record.id) return outcome;
    return {
      status: "rejected",
      stage: "images",
      reason: `duplicate_image: same image and category as ${first}`,
      record: outcome.record,
    };
  };
}

/** People to stored, validated portraits; every outcome reaches the manifest. */
export function downloadedImages(
  people$: Observable<PersonRecord>,
  options: ResolvedPipelineOptions,
  state: RunState,
  http: HttpClient,
): Observable<ImageRecord> {
  return people$.pipe(
    downloadImages({
      cacheDir: state.paths.imageCache,
      concurrency: options.concurrency,
      http,
      lookup: cachedImage(state),
      revalidate: options.refresh,
    }),
    map(dropDuplicateImages(state.manifest)),
    tap((outcome) => state.manifest.record(outcome, "images")),
    filter(isOk),
    map((outcome) => outcome.record),
    filter((image) => !state.removed.matches(image)),
    tap(() => state.progress.add("images")),
  );
}
