/**
 * `pipeline --cluster`: the run's crawler, done by NATS workers. Each source and each person
 * record becomes a job; the coordinator waits for its result in the KV bucket, copies the
 * image bytes and face-cache files (carried in the result, or for large ones in the object
 * store) into the data dir's caches, and hands
 * the run the same outcomes the local stages would have given. The face stage of the run then
 * finds every face in its cache, so the split, training and report go on unchanged.
 *
 * Resume: a result already in the bucket is used as it is (a passing failure from an earlier
 * run is tried again, as a local rerun does); a job already queued is not queued twice.
 */
import { join } from "node:path";
import { defer, from, mergeMap, type Observable, type OperatorFunction } from "rxjs";
import type { NatsConnection } from "@nats-io/transport-node";
import { type KvEntry, KvWatchInclude } from "@nats-io/kv";
import type { ImageRecord, Outcome, PersonRecord, SourceRow } from "../../core/types.ts";
import { exists, writeFileAtomic } from "../../core/files.ts";
import { blobPath, type DataPaths } from "../../store/paths.ts";
import type { CrawledPage, CrawlerFactory } from "../crawler.ts";
import { type PipelineOptions, resolvePipelineOptions } from "../options.ts";
import { type ClusterAddress, connectCluster, pause } from "./connection.ts";
import {
  type ClusterHandles,
  type ClusterTuning,
  decodeJson,
  discoverKey,
  type DiscoverLimits,
  type DiscoverResult,
  encodeJson,
  faceCacheDirName,
  faceObjectName,
  fromBase64,
  imageObjectName,
  type Job,
  jobMessageId,
  type JobSettings,
  jobSettingsHash,
  jobSubject,
  openCluster,
  type RecordResult,
  resultKey,
  sourceKey,
  type SourceResult,
  untilDone,
} from "./layout.ts";
import { runNetworks } from "../checks.ts";
import type { SiteDiscovery } from "../../stages/discover_sites.ts";

export interface CoordinatorOptions {
  address: ClusterAddress;
  settings: JobSettings;
  /**
   * Crawl again the sources whose result the cluster already holds.
   * @default false
   */
  refresh?: boolean;
  /**
   * Sources whose results are awaited at once (each is one small waiter, no work here).
   * @default 64
   */
  sourcesInFlight?: number;
  /**
   * Person records whose results are awaited at once: the bound on queued record jobs.
   * @default 512
   */
  recordsInFlight?: number;
  /** The queue's timing, used when the coordinator is the first to create it. */
  tuning?: ClusterTuning;
  /** @default console.error */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface Coordinator {
  /** The run's crawler (`RunHooks.crawler`). */
  crawler: CrawlerFactory;
  /** One site's discovery by a worker (`deno task discover --cluster`, `--discover`). */
  discoverSite(home: string, limits: DiscoverLimits): Promise<SiteDiscovery>;
  /** Jobs this run queued, and results it found already in the cluster. */
  stats: { queued: number; reused: number };
  close(): Promise<void>;
}

/** Failures worth another try on a later run: the network, not the content (as `run.ts`). */
const TRANSIENT_REASON = /^(timeout|network|http_5\d\d|http_429)/;

/**
 * Resolves waits for KV keys as their values arrive: one watcher over the bucket. While the
 * watcher is down (the server went away) every awaited key is read every few seconds, and once
 * more when it is back, so nothing it missed is waited for forever; a wait that starts while it
 * is down reads its key at once. While it is live, a read of every awaited key every ten polls.
 */
class ResultBoard {
  readonly #waiters = new Map<string, Array<{ after: number; resolve: (e: KvEntry) => void }>>();
  readonly #timer: ReturnType<typeof setInterval>;
  #stopped = false;
  /** The watcher is delivering updates: a new wait needs no read of its own. */
  #live = false;

  constructor(readonly cluster: ClusterHandles, pollMs = 3000) {
    this.#watch();
    let ticks = 0;
    // A live watcher (an ordered consumer) resumes where it was; the rare read is a safety net.
    this.#timer = setInterval(() => {
      if (!this.#live || ++ticks % 10 === 0) this.#checkAll();
    }, pollMs);
  }

  /** The key's first value above revision `after`. */
  wait(key: string, after: number): Promise<KvEntry> {
    return new Promise((resolve) => {
      const waiters = this.#waiters.get(key) ?? [];
      waiters.push({ after, resolve });
      this.#waiters.set(key, waiters);
      if (!this.#live) this.#check(key);
    });
  }

  stop() {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  #checkAll() {
    for (const key of this.#waiters.keys()) this.#check(key);
  }

  #check(key: string) {
    this.cluster.results.get(key).then((entry) => entry && this.#offer(entry)).catch(() => {});
  }

  #offer(entry: KvEntry) {
    if (entry.operation !== "PUT") return;
    const waiters = this.#waiters.get(entry.key);
    if (!waiters) return;
    const still = waiters.filter((waiter) => waiter.after >= entry.revision);
    for (const waiter of waiters) if (waiter.after < entry.revision) waiter.resolve(entry);
    if (still.length) this.#waiters.set(entry.key, still);
    else this.#waiters.delete(entry.key);
  }

  async #watch() {
    while (!this.#stopped) {
      try {
        const updates = await this.cluster.results.watch({
          key: ">",
          include: KvWatchInclude.UpdatesOnly,
        });
        this.#live = true;
        // What came while no watcher was there (or before the first) is read once.
        this.#checkAll();
        for await (const entry of updates) {
          if (this.#stopped) {
            updates.stop();
            break;
          }
          this.#offer(entry);
        }
      } catch {
        // The server went away; the poll covers the gap until the watch is back.
      }
      this.#live = false;
      if (!this.#stopped) await pause(1000);
    }
  }
}

/** What the crawl's jobs need besides the cluster: its settings and how it behaves. */
interface CrawlConfig {
  settings: JobSettings;
  refresh: boolean;
  recordsInFlight: number;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * One run's crawl through the cluster: sources and person records as jobs, their results read
 * from the bucket (or awaited on the board), and the blobs copied into the data dir's caches.
 */
class CoordinatedCrawl {
  readonly stats = { queued: 0, reused: 0 };
  readonly #board: ResultBoard;
  readonly #settingsHash: string;
  readonly #faceDir: string;

  constructor(readonly cluster: ClusterHandles, readonly config: CrawlConfig) {
    this.#board = new ResultBoard(cluster);
    this.#settingsHash = jobSettingsHash(config.settings);
    this.#faceDir = faceCacheDirName(config.settings);
  }

  /** One source's pages, as a worker crawled them. */
  crawlSource(source: SourceRow): Observable<CrawledPage> {
    const { settings, refresh } = this.config;
    return defer(async () => {
      const job: Job = {
        kind: "source",
        key: sourceKey(source),
        source,
        settings,
        settingsHash: this.#settingsHash,
        after: 0,
      };
      const entry = await this.#resultOf(job, (found) => {
        if (refresh) return false;
        const { pages } = decodeJson<SourceResult>(found.value);
        return pages.every((page) => page.status === "ok" || !TRANSIENT_REASON.test(page.reason));
      });
      const { pages } = decodeJson<SourceResult>(entry.value);
      return pages.map((page): CrawledPage => ({ ...page, source }));
    }).pipe(mergeMap((pages) => from(pages)));
  }

  /** One site's discovery, as a worker did it (a result already in the bucket is reused). */
  async discoverSite(home: string, limits: DiscoverLimits): Promise<SiteDiscovery> {
    const { settings, refresh } = this.config;
    const job: Job = {
      kind: "discover",
      key: discoverKey(home, limits),
      home,
      limits,
      settings,
      settingsHash: this.#settingsHash,
      after: 0,
    };
    const entry = await this.#resultOf(job, () => !refresh);
    return { ...decodeJson<DiscoverResult>(entry.value).site, home };
  }

  /** Person records to images in the run's cache: from the cache itself, or via a record job. */
  downloadVia(
    paths: DataPaths,
    lookup: (person: PersonRecord) => ImageRecord | undefined,
  ): OperatorFunction<PersonRecord, Outcome<ImageRecord>> {
    const { settings, recordsInFlight } = this.config;
    const settingsHash = this.#settingsHash;
    return mergeMap(async (person: PersonRecord): Promise<Outcome<ImageRecord>> => {
      const known = lookup(person);
      if (known && await this.#alreadyHere(known, paths)) {
        return { status: "ok", record: { ...known, ...person } };
      }
      const job: Job = { kind: "record", key: person.id, person, settings, settingsHash, after: 0 };
      const entry = await this.#resultOf(job, (found) => {
        const result = decodeJson<RecordResult>(found.value);
        return result.settingsHash === settingsHash &&
          (result.image.status === "ok" || !TRANSIENT_REASON.test(result.image.reason));
      });
      return await this.#materialise(decodeJson<RecordResult>(entry.value), person, paths);
    }, recordsInFlight);
  }

  stop() {
    this.#board.stop();
  }

  /** Bytes (and, when faces are wanted, the face) already here: nothing for the cluster. */
  async #alreadyHere(known: ImageRecord, paths: DataPaths): Promise<boolean> {
    return await exists(known.imagePath) &&
      (!this.config.settings.faces ||
        await exists(blobPath(join(paths.faceCache, this.#faceDir), known.sha256, ".json")));
  }

  #retry<T>(what: string, task: () => Promise<T>): Promise<T> {
    const { log, signal } = this.config;
    return untilDone(`coordinator: ${what}`, task, { log, signal });
  }

  /** The job's result: the one in the bucket if `usable` says so, else a fresh one. */
  async #resultOf(job: Job, usable: (entry: KvEntry) => boolean): Promise<KvEntry> {
    const key = resultKey(job);
    const existing = await this.#retry(`reading ${key}`, () => this.cluster.results.get(key));
    if (existing?.operation === "PUT" && usable(existing)) {
      this.stats.reused++;
      return existing;
    }
    const queued: Job = { ...job, after: existing?.revision ?? 0 };
    const waiting = this.#board.wait(key, queued.after);
    await this.#retry(
      `queueing ${key}`,
      () =>
        this.cluster.js.publish(jobSubject(queued), encodeJson(queued), {
          msgID: jobMessageId(queued),
        }),
    );
    this.stats.queued++;
    return await waiting;
  }

  /** A record's result made local: its image and face files copied out of the object store. */
  async #materialise(
    result: RecordResult,
    person: PersonRecord,
    paths: DataPaths,
  ): Promise<Outcome<ImageRecord>> {
    if (result.image.status !== "ok") {
      return { ...result.image, record: { ...result.image.record, ...person } };
    }
    const { sha256 } = result.image.record;
    const imagePath = blobPath(paths.imageCache, sha256);
    const inline = result.inline ?? {};
    const copies = [{ name: imageObjectName(sha256), path: imagePath, inline: inline.image }];
    // The crop before its JSON: the JSON is the face cache's done-marker.
    for (const extension of [".png", ".json"] as const) {
      if (!result.faceFiles.includes(extension)) continue;
      copies.push({
        name: faceObjectName(this.#faceDir, sha256, extension),
        path: blobPath(join(paths.faceCache, this.#faceDir), sha256, extension),
        inline: inline[extension],
      });
    }
    for (const { name, path, inline } of copies) {
      if (await exists(path)) continue;
      const bytes = inline !== undefined
        ? fromBase64(inline)
        : await this.#retry(`fetching ${name}`, () => this.cluster.blobs.getBlob(name));
      if (bytes === null) {
        return {
          status: "failed",
          stage: "images",
          reason: `blob_missing: the cluster's object store has no ${name.split("/")[0]} ${sha256}`,
          record: { ...person, sha256 },
        };
      }
      await writeFileAtomic(path, bytes);
    }
    return { status: "ok", record: { ...result.image.record, ...person, imagePath } };
  }
}

function checkInFlight(limits: Record<string, number>) {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Cannot coordinate as '${name}' must be a positive integer: ${value}`);
    }
  }
}

/** Connects to the cluster and makes the crawler of a run. */
export async function connectCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const {
    address,
    settings,
    refresh = false,
    sourcesInFlight = 64,
    recordsInFlight = 512,
    log = console.error,
    signal,
  } = options;
  checkInFlight({ sourcesInFlight, recordsInFlight });
  const nc: NatsConnection = await connectCluster(address, { name: "coordinator", log, signal });
  const cluster = await untilDone(
    "coordinator: opening the cluster",
    () => openCluster(nc, options.tuning),
    { log, signal },
  );
  const crawl = new CoordinatedCrawl(cluster, { settings, refresh, recordsInFlight, log, signal });
  return {
    crawler: ({ paths, lookup }) => ({
      sourcesAtOnce: sourcesInFlight,
      crawlSource: (source) => crawl.crawlSource(source),
      downloadImages: crawl.downloadVia(paths, lookup),
    }),
    discoverSite: (home, limits) => crawl.discoverSite(home, limits),
    stats: crawl.stats,
    async close() {
      crawl.stop();
      await nc.drain().catch(() => nc.close());
    },
  };
}

/** A run's options as job settings: what the workers must match and the politeness they keep. */
export function jobSettingsFor(options: PipelineOptions): JobSettings {
  const { detector, size, facePercent, until, perHost, delayMs, models } = resolvePipelineOptions(
    options,
  );
  const networks = runNetworks(models);
  return {
    detector,
    size,
    facePercent,
    faces: until !== "images",
    perHost,
    delayMs,
    ...(networks.length ? { networks } : {}),
  };
}
