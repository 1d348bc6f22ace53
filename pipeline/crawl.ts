/**
 * The crawl half of a run, as named parts of one stream: sources → pages → people (new ones
 * reach the manifest before their page counts as crawled), earlier runs' people ahead of them,
 * then downloads. Each part takes the run's state and returns an Observable; the fetching and
 * downloading itself is the run's `Crawler` (pipeline/crawler.ts), this process's or a cluster's.
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
} from "rxjs";
import { type ImageRecord, isOk, ok, type Outcome } from "../core/types.ts";
import type { PersonRecord, SourceRow } from "../core/types.ts";
import { filterRoles } from "../stages/filter_roles.ts";
import { type Manifest, type ManifestRow, rowToImage, rowToPerson } from "../store/manifest.ts";
import { blobPath } from "../store/paths.ts";
import type { RemovedList } from "../store/removed.ts";
import { readSources, sourceBytes } from "../stages/read_sources.ts";
import type { ResolvedPipelineOptions } from "./options.ts";
import type { RunState } from "./run_state.ts";
import type { Backlog } from "./backlog.ts";
import type { CrawledPage, Crawler } from "./crawler.ts";

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

/**
 * Logs one crawled page and passes its people on. They reach the manifest before the page is
 * logged as crawled: a run killed in between re-crawls the page rather than losing its people.
 */
function recordPage(page: CrawledPage, state: RunState): Observable<PersonRecord> {
  state.pages[page.status === "ok" ? "ok" : "failed"]++;
  state.progress.add("pages");
  const row = { source_url: page.source.url, page_url: page.url, category: page.source.category };
  if (page.status !== "ok") {
    state.pageLog.record({ ...row, status: "failed", reason: page.reason, people: "0" });
    state.progress.log(`page failed (source line ${page.source.line}): ${page.reason}`);
    return EMPTY;
  }
  const { people } = page;
  for (const person of people) {
    if (!state.removed.matches(person) && !state.manifest.get(person.id)) {
      state.manifest.record(ok(person), "people");
    }
  }
  // The page's people are committed before the page log says the page is done.
  state.manifest.commit();
  state.pageLog.record({
    ...row,
    status: "ok",
    reason: people.length ? "" : "no_people_found",
    people: String(people.length),
  });
  return from(people);
}

/**
 * People found on this run's sources. Each source is fetched in a stream of its own, so its
 * end (the last page of its pagination) is known and logged; a source cut short by a dead run
 * is crawled again.
 */
export function crawledPeople(
  options: ResolvedPipelineOptions,
  state: RunState,
  crawler: Crawler,
  input?: Observable<Uint8Array | string>,
): Observable<PersonRecord> {
  return sourcesToCrawl(options, state, input).pipe(
    mergeMap(
      // A new source waits while the images stage is behind (every crawler; this process's
      // own also waits before each further page).
      (source) =>
        defer(() => state.backlog.ready()).pipe(
          mergeMap(() => crawler.crawlSource(source)),
          finalizeWith(() => state.pageLog.recordComplete(source.url, source.category)),
        ),
      crawler.sourcesAtOnce,
    ),
    mergeMap((page) => recordPage(page, state)),
  );
}

/**
 * Earlier runs' records that may flow again: done or in progress, or failed for a passing
 * reason. Read from state.db a page at a time, yielding between pages.
 */
async function* resumableRows(
  manifest: Manifest,
  removed: RemovedList,
  backlog: Backlog,
): AsyncGenerator<ManifestRow> {
  for await (const row of manifest.eachRow()) {
    // A rerun's records wait for the images stage like the crawl's.
    if (backlog.full) await backlog.ready();
    const resumable = row.status === "ok" ||
      (row.status === "failed" && TRANSIENT_REASON.test(row.reason)) ||
      // Left out by an earlier run's --roles: this run's rules decide again.
      (row.status === "rejected" && row.reason.startsWith("role_excluded"));
    if (
      resumable && !removed.matches({ id: row.id, name: row.name, sha256: row.sha256 || undefined })
    ) {
      yield row;
    }
  }
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
  const previous$ = defer(() => from(resumableRows(state.manifest, state.removed, state.backlog)))
    .pipe(
      tap((row) => state.resumed.set(row.id, row)),
      map(rowToPerson),
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
      state.backlog.add();
      state.progress.add("people");
      if (!state.resumed.has(person.id) && !state.manifest.get(person.id)) {
        state.manifest.record(ok(person), "people");
      }
    }),
  );
}

/** An earlier download that is still in the cache, so the stage need not fetch it again. */
export function cachedImage(state: RunState) {
  return (person: PersonRecord): ImageRecord | undefined => {
    // An earlier run's row came with the record itself: no second read of it.
    const row = state.resumed.get(person.id) ?? state.manifest.get(person.id);
    if (!row?.sha256 || row.image_url !== person.imageUrl) return undefined;
    // Whether the bytes are still there is the images stage's to check, once.
    return rowToImage(row, blobPath(state.paths.imageCache, row.sha256));
  };
}

/**
 * The same image bytes under the same category are one person listed twice (a site that moved
 * its images, a person on two pages of one department): keep the first, reject the rest.
 * The same face under another category is kept; the split keeps such identities together.
 */
export function dropDuplicateImages(
  manifest: Manifest,
  resumed: ReadonlyMap<string, ManifestRow> = new Map(),
) {
  // This run's owners; earlier ones come from state.db, one indexed lookup per download.
  const owner = new Map<string, string>();
  manifest.commit();
  return (outcome: Outcome<ImageRecord>): Outcome<ImageRecord> => {
    if (!isOk(outcome)) return outcome;
    const { category, sha256, id } = outcome.record;
    const key = `${category}\n${sha256}`;
    // An earlier run kept these bytes under this record: it was their owner then, and is now.
    const earlier = resumed.get(id);
    const ownedBefore = earlier?.status === "ok" && earlier.sha256 === sha256;
    const first = owner.get(key) ?? (ownedBefore ? id : manifest.imageOwner(category, sha256));
    if (first === undefined || first === id) {
      owner.set(key, id);
      return outcome;
    }
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
  state: RunState,
  crawler: Crawler,
): Observable<ImageRecord> {
  return people$.pipe(
    crawler.downloadImages,
    map(dropDuplicateImages(state.manifest, state.resumed)),
    tap((outcome) => {
      state.backlog.done();
      const earlier = state.resumed.get(outcome.record.id);
      state.resumed.delete(outcome.record.id);
      state.manifest.record(outcome, "images", earlier);
    }),
    filter(isOk),
    map((outcome) => outcome.record),
    filter((image) => !state.removed.matches(image)),
    tap(() => state.progress.add("images")),
  );
}
