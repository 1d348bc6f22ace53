/**
 * `deno task worker`: pulls jobs from the cluster and works them with the single-machine
 * stages (fetch pages and parse people for a source; download and faces for a record).
 *
 * A job is acked only after its result is stored, so a worker killed mid-job loses nothing:
 * JetStream gives the job to another worker once `ackWaitMs` passes without a "still working".
 * A job whose result is already there is acked without work (a duplicate), a job that fails
 * is handed back with a growing delay, and the delivery after the last attempt stores a
 * `poisoned` result with the last reason instead of trying again.
 */
import { hostname } from "node:os";
import { lastValueFrom, of, Subject, toArray } from "rxjs";
import { type Consumer, JetStreamApiError, type JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FaceRecord, ImageRecord, Outcome } from "../../core/types.ts";
import { exists, writeFileAtomic } from "../../core/files.ts";
import { blobPath } from "../../store/paths.ts";
import { downloadImages } from "../../stages/download_images.ts";
import { detectFaces } from "../../stages/detect_faces.ts";
import { crawlOneSource } from "../crawler.ts";
import { discoverSites } from "../../stages/discover_sites.ts";
import { type ClusterAddress, connectCluster, pause, safeMessage } from "./connection.ts";
import {
  CLUSTER_CODE_VERSION,
  type ClusterHandles,
  type ClusterTuning,
  decodeJson,
  type DiscoverResult,
  encodeJson,
  faceCacheDirName,
  faceObjectName,
  imageObjectName,
  type Job,
  JOBS_STREAM,
  type JobSettings,
  jobSettingsHash,
  openCluster,
  type RecordResult,
  resultKey,
  resultMessageId,
  RESULTS_BUCKET,
  type SourceResult,
  toBase64,
  toPageResult,
  untilDone,
  WORKERS_CONSUMER,
} from "./layout.ts";
import { ClusterHttpClient, HostLeases } from "./host_leases.ts";

export interface WorkerOptions {
  address: ClusterAddress;
  /**
   * Jobs worked at once. Jobs waiting for a busy host's turn count too, so this is higher than
   * a single run's downloads at once: the host leases, not this, bound each host's load.
   * @default 32
   */
  concurrency?: number;
  /**
   * Threads for the face nets; 0 runs them on this thread.
   * @default navigator.hardwareConcurrency
   */
  faceThreads?: number;
  /**
   * Scratch folder for the face stage, which reads images from files and writes its cache
   * there; files leave it once they are in a result or the object store.
   * @default a new temp folder, removed when the worker stops
   */
  workDir?: string;
  /**
   * The code version this worker stands for; a job made for another is refused.
   * @default CLUSTER_CODE_VERSION
   */
  codeVersion?: string;
  /** The queue's timing, used when this worker is the first to create it. */
  tuning?: ClusterTuning;
  /** Stops pulling jobs; the jobs in hand are finished. */
  signal?: AbortSignal;
  /** @default console.error */
  log?: (line: string) => void;
  /** Log each job's start and end (record ids only). @default false */
  verbose?: boolean;
  /** @default `worker-<host>-<pid>` */
  name?: string;
  /** Runs before a job is worked; a throw fails that delivery (how tests poison a record). */
  beforeJob?: (job: Job) => void | Promise<void>;
}

export interface WorkerStats {
  done: number;
  duplicates: number;
  failedDeliveries: number;
  refused: number;
  poisoned: number;
}

/** JetStream's answer to a publish whose subject moved on since the expected sequence. */
const WRONG_LAST_SEQUENCE = 10071;

/** The job's result was stored by another delivery (a twin) first: this one is a duplicate. */
class AlreadyStored extends Error {}

/** One detectFaces stream per face settings, kept for the worker's life (its threads load once). */
class FaceQueue {
  readonly #input = new Subject<ImageRecord>();
  readonly #waiting = new Map<string, Array<(outcome: Outcome<FaceRecord>) => void>>();
  #broken: Error | undefined;

  constructor(cacheDir: string, settings: JobSettings, workers: number) {
    const { detector, size, facePercent, networks } = settings;
    this.#input.pipe(detectFaces({ cacheDir, detector, size, facePercent, networks, workers }))
      .subscribe({
        next: (outcome) => {
          const waiters = this.#waiting.get(outcome.record.id) ?? [];
          this.#waiting.delete(outcome.record.id);
          for (const resolve of waiters) resolve(outcome);
        },
        error: (error) => {
          this.#broken = error as Error;
          this.#waiting.clear();
        },
      });
  }

  get broken() {
    return this.#broken !== undefined;
  }

  detect(image: ImageRecord): Promise<Outcome<FaceRecord>> {
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise((resolve) => {
      const waiters = this.#waiting.get(image.id) ?? [];
      waiters.push(resolve);
      this.#waiting.set(image.id, waiters);
      this.#input.next(image);
    });
  }

  close() {
    this.#input.complete();
  }
}

/** Runs a worker until `signal` aborts; resolves with what it did. */
export async function runWorker(options: WorkerOptions): Promise<WorkerStats> {
  const {
    address,
    concurrency = 32,
    faceThreads = navigator.hardwareConcurrency,
    codeVersion = CLUSTER_CODE_VERSION,
    signal,
    log = console.error,
    verbose = false,
    name = `worker-${hostname()}-${Deno.pid}`,
    beforeJob,
  } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `Cannot start a worker as 'concurrency' must be a positive integer: ${concurrency}`,
    );
  }
  const ownWorkDir = options.workDir === undefined;
  const workDir = options.workDir ?? await Deno.makeTempDir({ prefix: "facefield-worker-" });
  const stats: WorkerStats = {
    done: 0,
    duplicates: 0,
    failedDeliveries: 0,
    refused: 0,
    poisoned: 0,
  };
  const nc = await connectCluster(address, { name, log, signal });
  try {
    const { cluster, consumer } = await openJobQueue(nc, name, options.tuning, { log, signal });
    log(`${name}: connected to ${address.redacted}, ${concurrency} jobs at once`);
    const work = new JobWorker(cluster, {
      workDir,
      faceThreads,
      codeVersion,
      log,
      verbose,
      name,
      beforeJob,
      stats,
    });
    await pullJobs(consumer, work, { concurrency, name, log, signal });
    work.close();
    log(
      `${name}: stopped; ${stats.done} jobs done, ${stats.duplicates} duplicates skipped, ` +
        `${stats.failedDeliveries} failed deliveries, ${stats.refused} refused, ${stats.poisoned} poisoned`,
    );
    return stats;
  } finally {
    await nc.drain().catch(() => nc.close());
    if (ownWorkDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
  }
}

/** The cluster's handles and the workers' consumer of the job stream, waited for while away. */
async function openJobQueue(
  nc: NatsConnection,
  name: string,
  tuning: ClusterTuning | undefined,
  waiting: { log: (line: string) => void; signal?: AbortSignal },
): Promise<{ cluster: ClusterHandles; consumer: Consumer }> {
  const cluster = await untilDone(
    `${name}: opening the cluster`,
    () => openCluster(nc, tuning),
    waiting,
  );
  const consumer = await untilDone(
    `${name}: finding the job queue`,
    () => cluster.js.consumers.get(JOBS_STREAM, WORKERS_CONSUMER),
    waiting,
  );
  return { cluster, consumer };
}

/**
 * Pulls jobs while `signal` is not aborted, never more than `concurrency` in hand, and backs off
 * while the server cannot be reached; resolves once the jobs in hand are finished.
 */
async function pullJobs(
  consumer: Consumer,
  work: JobWorker,
  { concurrency, name, log, signal }: {
    concurrency: number;
    name: string;
    log: (line: string) => void;
    signal?: AbortSignal;
  },
) {
  const running = new Set<Promise<void>>();
  // A pull is a subscription, a request and its end: pull for a quarter of the slots at a
  // time rather than for each slot that frees. Each job starts as soon as it arrives.
  const batch = Math.max(1, Math.floor(concurrency / 4));
  let pullFailures = 0;
  while (!signal?.aborted) {
    if (running.size > concurrency - batch) {
      await Promise.race(running);
      continue;
    }
    try {
      const messages = await consumer.fetch({
        max_messages: concurrency - running.size,
        expires: 2000,
      });
      for await (const msg of messages) {
        const job = work.handle(msg).finally(() => running.delete(job));
        running.add(job);
      }
      pullFailures = 0;
    } catch (error) {
      if (pullFailures++ === 0) {
        log(`${name}: cannot pull jobs (${safeMessage(error)}); retrying`);
      }
      await pause(Math.min(5000, 250 * 2 ** pullFailures), signal);
    }
  }
  await Promise.allSettled(running);
}

interface JobWorkerOptions {
  workDir: string;
  faceThreads: number;
  codeVersion: string;
  log: (line: string) => void;
  verbose: boolean;
  name: string;
  beforeJob?: (job: Job) => void | Promise<void>;
  stats: WorkerStats;
}

/** Works single jobs; shares HTTP clients, face threads and scratch files between them. */
class JobWorker {
  readonly #https = new Map<string, ClusterHttpClient>();
  readonly #leases: HostLeases[] = [];
  readonly #faces = new Map<string, FaceQueue>();
  /** Jobs using a scratch image, so that the last one to finish deletes it. */
  readonly #scratchUsers = new Map<string, number>();
  readonly #refusedHashes = new Set<string>();
  readonly #imagesDir: string;
  readonly #facesDir: string;

  constructor(readonly cluster: ClusterHandles, readonly options: JobWorkerOptions) {
    this.#imagesDir = `${options.workDir}/images`;
    this.#facesDir = `${options.workDir}/faces`;
  }

  close() {
    for (const queue of this.#faces.values()) queue.close();
    for (const leases of this.#leases) leases.close();
  }

  async handle(msg: JsMsg): Promise<void> {
    const { attempts, ackWaitMs } = this.cluster.tuning;
    const { log, verbose, name, stats } = this.options;
    // "Still working" keeps a long job ours; a killed worker stops sending it.
    const heartbeat = setInterval(() => msg.working(), Math.max(200, Math.floor(ackWaitMs / 3)));
    let job: Job | undefined;
    try {
      job = decodeJson<Job>(msg.data);
      const delivery = msg.info.deliveryCount;
      if (delivery > attempts) {
        await this.#storePoisoned(job);
        stats.poisoned++;
        msg.ack();
        return;
      }
      const ownHash = jobSettingsHash(job.settings, this.options.codeVersion);
      if (ownHash !== job.settingsHash) {
        this.#refuse(msg, job, ownHash, delivery);
        return;
      }
      // A first delivery reads no result first: its result is stored only where the key is
      // still as the coordinator saw it, so a twin's result already there is never overwritten.
      if (delivery > 1 && await this.#alreadyDone(job)) {
        stats.duplicates++;
        msg.ack();
        return;
      }
      if (verbose) log(`${name}: job ${job.kind} ${job.key} started (delivery ${delivery})`);
      await this.options.beforeJob?.(job);
      if (job.kind === "source") await this.#workSource(job);
      else if (job.kind === "discover") await this.#workDiscover(job);
      else await this.#workRecord(job);
      msg.ack();
      stats.done++;
      if (verbose) log(`${name}: job ${job.kind} ${job.key} done`);
    } catch (error) {
      if (error instanceof AlreadyStored) {
        stats.duplicates++;
        msg.ack();
        return;
      }
      stats.failedDeliveries++;
      const reason = safeMessage(error);
      const what = job ? `${job.kind} ${job.key}` : "(unreadable)";
      log(`${name}: job ${what} failed on delivery ${msg.info.deliveryCount}: ${reason}`);
      if (job) {
        await this.cluster.results.put(`error.${resultKey(job)}`, reason).catch(() => {});
      }
      msg.nak(Math.min(30000, 500 * 2 ** msg.info.deliveryCount));
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** A job made with other settings or code: hand it back for a matching worker, say why once. */
  #refuse(msg: JsMsg, job: Job, ownHash: string, delivery: number) {
    const { log, name, stats, codeVersion } = this.options;
    stats.refused++;
    const { detector, size, facePercent, faces } = job.settings;
    const reason = `settings_mismatch: the job's settings hash ${job.settingsHash} (detector ` +
      `${detector}, crop ${size} px, face ${facePercent} %, faces ${
        faces ? "on" : "off"
      }) is not ` +
      `this worker's ${ownHash} (code ${codeVersion}); run workers of the coordinator's version`;
    if (!this.#refusedHashes.has(job.settingsHash)) {
      this.#refusedHashes.add(job.settingsHash);
      log(`${name}: refusing jobs: ${reason}`);
    }
    this.cluster.results.put(`error.${resultKey(job)}`, reason).catch(() => {}).finally(() =>
      msg.nak(delivery < this.cluster.tuning.attempts ? 1000 * delivery : 0)
    );
  }

  async #alreadyDone(job: Job): Promise<boolean> {
    const entry = await this.cluster.results.get(resultKey(job));
    if (!entry || entry.operation !== "PUT" || entry.revision <= job.after) return false;
    return decodeJson<{ settingsHash: string }>(entry.value).settingsHash === job.settingsHash;
  }

  #http(settings: JobSettings): ClusterHttpClient {
    const key = `${settings.perHost}/${settings.delayMs}`;
    let http = this.#https.get(key);
    if (!http) {
      const leases = new HostLeases(this.cluster.hosts, {
        perHost: settings.perHost,
        delayMs: settings.delayMs,
        ttlMs: this.cluster.tuning.leaseTtlMs,
        owner: this.options.name,
      });
      this.#leases.push(leases);
      // The cluster gate does the politeness; this client's own gate only adds the same spacing.
      http = new ClusterHttpClient(leases, {
        perHostConcurrency: settings.perHost,
        politenessDelayMs: 0,
      });
      this.#https.set(key, http);
    }
    return http;
  }

  #faceQueue(settings: JobSettings): FaceQueue {
    const dir = faceCacheDirName(settings);
    let queue = this.#faces.get(dir);
    if (!queue || queue.broken) {
      queue = new FaceQueue(this.#facesDir, settings, this.options.faceThreads);
      this.#faces.set(dir, queue);
    }
    return queue;
  }

  async #storeResult(
    job: Job,
    result: SourceResult | RecordResult | DiscoverResult,
    sha256?: string,
  ) {
    const subject = `$KV.${RESULTS_BUCKET}.${resultKey(job)}`;
    let stored = true;
    await untilDone(
      `${this.options.name}: storing the result of ${job.kind} ${job.key}`,
      async () => {
        try {
          await this.cluster.js.publish(subject, encodeJson(result), {
            msgID: resultMessageId(job, sha256),
            // The key as the coordinator saw it when it queued the job (0: no value yet).
            expect: { lastSubjectSequence: job.after },
          });
        } catch (error) {
          if (!(error instanceof JetStreamApiError && error.code === WRONG_LAST_SEQUENCE)) {
            throw error;
          }
          stored = false;
        }
      },
      { log: this.options.log },
    );
    if (!stored) throw new AlreadyStored();
  }

  async #workSource(job: Extract<Job, { kind: "source" }>) {
    const pages = await lastValueFrom(
      crawlOneSource(job.source, this.#http(job.settings)).pipe(toArray()),
    );
    await this.#storeResult(job, {
      settingsHash: job.settingsHash,
      pages: pages.map(toPageResult),
    });
  }

  /** One site's discovery through the cluster's host leases; its result is the site's. */
  async #workDiscover(job: Extract<Job, { kind: "discover" }>) {
    const [site] = await lastValueFrom(
      of(job.home).pipe(
        discoverSites({ http: this.#http(job.settings), ...job.limits }),
        toArray(),
      ),
    );
    if (!site) throw new Error("discovery gave no outcome");
    await this.#storeResult(job, { settingsHash: job.settingsHash, site });
  }

  async #workRecord(job: Extract<Job, { kind: "record" }>) {
    // The validated bytes stay in memory: no scratch file unless the face stage reads one.
    const held = new Map<string, Uint8Array>();
    const [image] = await lastValueFrom(
      of(job.person).pipe(
        downloadImages({
          cacheDir: this.#imagesDir,
          http: this.#http(job.settings),
          concurrency: 1,
          store: (sha256, bytes) => (held.set(sha256, bytes), Promise.resolve("")),
        }),
        toArray(),
      ),
    );
    if (!image) throw new Error("the download stage gave no outcome");
    const files: Array<[name: "image" | ".json" | ".png", bytes: Uint8Array]> = [];
    let sha256: string | undefined;
    if (image.status === "ok") {
      sha256 = image.record.sha256;
      const bytes = held.get(sha256);
      if (!bytes) throw new Error("the download stage kept no bytes");
      files.push(["image", bytes]);
      if (job.settings.faces) {
        files.push(...await this.#faceFiles(job.settings, image.record, bytes));
      }
    }
    const { inline, faceFiles } = await this.#keep(sha256, files, job.settings);
    const stored: Outcome<ImageRecord> = image.status === "ok"
      ? { status: "ok", record: { ...image.record, imagePath: "" } }
      : image;
    await this.#storeResult(
      job,
      { settingsHash: job.settingsHash, image: stored, faceFiles, ...inline ? { inline } : {} },
      sha256,
    );
  }

  /** The face stage's files for an image: it reads the image from a scratch file. */
  async #faceFiles(
    settings: JobSettings,
    record: ImageRecord,
    bytes: Uint8Array,
  ): Promise<Array<[".json" | ".png", Uint8Array]>> {
    const { sha256 } = record;
    const imagePath = blobPath(this.#imagesDir, sha256);
    this.#scratchUsers.set(sha256, (this.#scratchUsers.get(sha256) ?? 0) + 1);
    try {
      if (!await exists(imagePath)) await writeFileAtomic(imagePath, bytes);
      await this.#faceQueue(settings).detect({ ...record, imagePath });
      const faceDir = `${this.#facesDir}/${faceCacheDirName(settings)}`;
      const found: Array<[".json" | ".png", Uint8Array]> = [];
      for (const extension of [".json", ".png"] as const) {
        const path = blobPath(faceDir, sha256, extension);
        const file = await Deno.readFile(path).catch(() => undefined);
        if (file) found.push([extension, file]);
      }
      return found;
    } finally {
      await this.#releaseScratch(sha256, imagePath, settings);
    }
  }

  /**
   * A record's files, inline in its result where they fit the server's message size, else put
   * in the object store by sha256 (names are content hashes: a name already there is kept).
   */
  async #keep(
    sha256: string | undefined,
    files: Array<[name: "image" | ".json" | ".png", bytes: Uint8Array]>,
    settings: JobSettings,
  ): Promise<Pick<RecordResult, "inline" | "faceFiles">> {
    const faceFiles = files.map(([name]) => name).filter((name) => name !== "image");
    if (sha256 === undefined || files.length === 0) return { faceFiles };
    const total = files.reduce((sum, [, bytes]) => sum + bytes.length, 0);
    if (total <= this.cluster.inlineBytes) {
      return { faceFiles, inline: Object.fromEntries(files.map(([n, b]) => [n, toBase64(b)])) };
    }
    const faceDir = faceCacheDirName(settings);
    for (const [name, bytes] of files) {
      await this.#upload(
        name === "image" ? imageObjectName(sha256) : faceObjectName(faceDir, sha256, name),
        bytes,
      );
    }
    return { faceFiles };
  }

  /** Puts bytes in the object store unless their name is there already (names are content hashes). */
  async #upload(name: string, bytes: Uint8Array) {
    const { blobs } = this.cluster;
    const info = await blobs.info(name);
    // A deleted object leaves a marker behind: that is no copy.
    if (info && !info.deleted) return;
    await blobs.putBlob({ name }, bytes);
  }

  /** The last job using a scratch image deletes it and its face files: they live in the store. */
  async #releaseScratch(sha256: string, imagePath: string, settings: JobSettings) {
    const users = (this.#scratchUsers.get(sha256) ?? 1) - 1;
    if (users > 0) {
      this.#scratchUsers.set(sha256, users);
      return;
    }
    this.#scratchUsers.delete(sha256);
    const faceDir = `${this.#facesDir}/${faceCacheDirName(settings)}`;
    for (
      const path of [
        imagePath,
        blobPath(faceDir, sha256, ".json"),
        blobPath(faceDir, sha256, ".png"),
      ]
    ) {
      await Deno.remove(path).catch(() => {});
    }
  }

  /** The delivery after the last attempt: the job ends as data with the last reason. */
  async #storePoisoned(job: Job) {
    const { attempts } = this.cluster.tuning;
    const last = await this.cluster.results.get(`error.${resultKey(job)}`).catch(() => null);
    const lastReason = last?.operation === "PUT" ? last.string() : "";
    const mismatch = lastReason.startsWith("settings_mismatch");
    const reason = mismatch ? lastReason : `poisoned: no worker finished this job in ${attempts} ` +
      `deliveries; last: ${lastReason || "the worker died or timed out"}`;
    this.options.log(
      `${this.options.name}: job ${job.kind} ${job.key} ends after ${attempts} deliveries`,
    );
    if (job.kind === "source") {
      await this.#storeResult(job, {
        settingsHash: job.settingsHash,
        pages: [{ status: "failed", url: job.source.url, reason }],
      });
    } else if (job.kind === "discover") {
      const site = { home: job.home, candidates: [], log: [reason], pagesFetched: 0, ms: 0 };
      await this.#storeResult(job, { settingsHash: job.settingsHash, site });
    } else {
      await this.#storeResult(job, {
        settingsHash: job.settingsHash,
        image: { status: "failed", stage: "images", reason, record: job.person },
        faceFiles: [],
      });
    }
  }
}
