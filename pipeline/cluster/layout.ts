/**
 * What the coordinator and the workers agree on: the JetStream stream, consumer, KV buckets
 * and object store, the shape of jobs and results, their keys and message ids, and the
 * settings hash a worker checks before it takes a job.
 *
 * One work-queue stream holds the jobs (`facefield.jobs.source.*`, `facefield.jobs.record.*`),
 * one durable pull consumer hands them out, and a job that is not acked in `ackWaitMs` goes to
 * another worker, at most `attempts` times. Results are the done-markers, written last: a KV
 * entry per source (`source.<key>`) and per record (`record.<id>`). A record's image bytes and
 * face files ride in its result where they fit in one message (one write, one read); larger
 * ones sit in the object store by sha256.
 */
import { Buffer } from "node:buffer";
import type { SiteDiscovery } from "../../stages/discover_sites.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  jetstream,
  type JetStreamClient,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ObjectStore, Objm, setSha256Backend } from "@nats-io/obj";
import { settingsHash, sha256Hex } from "../../core/ids.ts";
import type { ImageRecord, Outcome, PersonRecord, SourceRow } from "../../core/types.ts";
import {
  type DetectorName,
  FACE_ALGORITHM_VERSION,
  faceSettings,
} from "../../models/faces/faces.ts";
import type { CrawledPage } from "../crawler.ts";
import { pause, safeMessage } from "./connection.ts";
import type { FaceNetworkName } from "../../models/faces/face_networks.ts";

export const JOBS_STREAM = "FACEFIELD_JOBS";
export const JOBS_SUBJECT = "facefield.jobs";
export const WORKERS_CONSUMER = "facefield-workers";
export const RESULTS_BUCKET = "facefield-results";
export const BLOBS_BUCKET = "facefield-blobs";
export const HOSTS_BUCKET = "facefield-hosts";

/**
 * The code whose results a job may mix with: bump it when a worker's output for the same
 * input changes. The face algorithm's own version is part of it.
 */
export const CLUSTER_CODE_VERSION = `facefield-cluster-1+faces-${FACE_ALGORITHM_VERSION}`;

/** Timing of the job queue, fixed by whoever creates it first. */
export interface ClusterTuning {
  /**
   * Milliseconds a delivered job may go without an ack or a "still working" before
   * JetStream gives it to another worker (a worker that died).
   * @default 30000
   */
  ackWaitMs?: number;
  /**
   * Deliveries a job gets before it ends as `poisoned` with the last reason.
   * @default 3
   */
  attempts?: number;
  /**
   * Milliseconds a host slot lives without renewal, so a dead worker's slot frees itself.
   * @default 30000
   */
  leaseTtlMs?: number;
}

export function tuningWithDefaults(tuning: ClusterTuning = {}): Required<ClusterTuning> {
  const { ackWaitMs = 30000, attempts = 3, leaseTtlMs = 30000 } = tuning;
  for (
    const [name, value, least] of [
      ["ackWaitMs", ackWaitMs, 1000],
      ["attempts", attempts, 1],
      ["leaseTtlMs", leaseTtlMs, 1000],
    ] as const
  ) {
    if (!Number.isInteger(value) || value < least) {
      throw new RangeError(
        `Cannot set up the cluster as '${name}' must be an integer of at least ${least}: ` +
          `current value is ${value}`,
      );
    }
  }
  return { ackWaitMs, attempts, leaseTtlMs };
}

/** What a job's results depend on, and the politeness every worker applies for it. */
export interface JobSettings {
  detector: DetectorName;
  size: number;
  facePercent: number;
  /** False for a run that stops at images: workers download but find no faces. */
  faces: boolean;
  /** Shipped face networks whose embeddings the run's models read (see `networksFor`). */
  networks?: FaceNetworkName[];
  /** Requests in flight per host, for the whole cluster. */
  perHost: number;
  /** Least milliseconds between two request starts to one host, for the whole cluster. */
  delayMs: number;
}

/** The hash a worker recomputes with its own code version before it takes a job. */
export function jobSettingsHash(settings: JobSettings, codeVersion = CLUSTER_CODE_VERSION) {
  const { detector, size, facePercent, faces, networks = [] } = settings;
  return settingsHash({
    detector,
    size,
    facePercent,
    faces,
    // Left out when empty, so a cluster's jobs from before networks keep their hash.
    ...(networks.length ? { networks } : {}),
    code: codeVersion,
  });
}

/** The face cache's folder for these settings: the one `detectFaces` writes and reads. */
export function faceCacheDirName(
  settings: Pick<JobSettings, "detector" | "size" | "facePercent" | "networks">,
) {
  const { detector, size, facePercent, networks } = settings;
  return settingsHash(faceSettings({ detector, size, facePercent, networks }));
}

interface JobBase {
  settings: JobSettings;
  settingsHash: string;
  /** A result at or below this KV revision is stale (an earlier run's passing failure). */
  after: number;
}

export type Job =
  | JobBase & { kind: "source"; key: string; source: SourceRow }
  | JobBase & { kind: "record"; key: string; person: PersonRecord }
  | JobBase & { kind: "discover"; key: string; home: string; limits: DiscoverLimits };

/** The limits of one site's discovery, which its job carries. */
export interface DiscoverLimits {
  maxPages: number;
  maxDepth: number;
}

/** A discovery job's KV key part: its home page and limits. */
export function discoverKey(home: string, limits: DiscoverLimits): string {
  return sha256Hex(JSON.stringify([home, limits.maxPages, limits.maxDepth])).slice(0, 24);
}

/** What a worker stores for a discovery job: the site's candidates and log. */
export interface DiscoverResult {
  settingsHash: string;
  site: SiteDiscovery;
}

/** A source's KV key part: its URL, category and selectors (not its line in a file). */
export function sourceKey(source: SourceRow): string {
  const { line: _line, ...what } = source;
  return sha256Hex(JSON.stringify(Object.entries(what).sort())).slice(0, 24);
}

export function resultKey(job: Pick<Job, "kind" | "key">): string {
  return `${job.kind}.${job.key}`;
}

export function jobSubject(job: Pick<Job, "kind" | "key">): string {
  return `${JOBS_SUBJECT}.${job.kind}.${job.key}`;
}

/** Same job, same id: JetStream drops a second publish inside its duplicate window. */
export function jobMessageId(job: Job): string {
  return `${job.kind}.${job.key}.${job.settingsHash}.${job.after}`;
}

/** A page of a source's result: `CrawledPage` without the source row the coordinator has. */
export type PageResult =
  | { status: "ok"; url: string; people: PersonRecord[] }
  | { status: "failed"; url: string; reason: string };

export interface SourceResult {
  settingsHash: string;
  pages: PageResult[];
}

export function toPageResult(page: CrawledPage): PageResult {
  return page.status === "ok"
    ? { status: "ok", url: page.url, people: page.people }
    : { status: "failed", url: page.url, reason: page.reason };
}

/** What a worker made of one person record. */
export interface RecordResult {
  settingsHash: string;
  /** The download's outcome; `imagePath` is empty (the bytes are in the object store). */
  image: Outcome<ImageRecord>;
  /** Face-cache files put in the object store (".json", ".png"), none when faces were skipped. */
  faceFiles: string[];
  /**
   * The bytes themselves, base64, where they fit in one message (see `inlineBudget`): the image
   * under "image", face files under their extension. What is not here is in the object store.
   */
  inline?: Partial<Record<"image" | ".json" | ".png", string>>;
}

/** Most bytes a result carries inline; larger images go to the object store. */
export const INLINE_MAX_BYTES = 512 * 1024;

/**
 * Raw bytes a result may carry inline on this server: base64 makes them a third larger, and
 * the message must stay under the server's `max_payload` with room for the record.
 */
export function inlineBudget(maxPayload: number): number {
  return Math.max(
    0,
    Math.floor((Math.min(INLINE_MAX_BYTES * 4 / 3, maxPayload) - 64 * 1024) * 3 / 4),
  );
}

/** Base64 of bytes: the runtime's own `Uint8Array.prototype.toBase64` (20× node:buffer's here). */
export function toBase64(bytes: Uint8Array): string {
  const native = (bytes as Uint8Array & { toBase64?: () => string }).toBase64;
  if (native) return native.call(bytes);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

export function fromBase64(text: string): Uint8Array {
  const buffer = Buffer.from(text, "base64");
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

export function imageObjectName(sha256: string): string {
  return `image/${sha256}`;
}

export function faceObjectName(faceDir: string, sha256: string, extension: string): string {
  return `face/${faceDir}/${sha256}${extension}`;
}

/** A result message's id: the record and what it came to, so a redelivered job's twin is dropped. */
export function resultMessageId(job: Job, sha256: string | undefined): string {
  return `result.${job.kind}.${job.key}.${sha256 ?? "none"}.${job.settingsHash}.${job.after}`;
}

export interface ClusterHandles {
  js: JetStreamClient;
  results: KV;
  blobs: ObjectStore;
  hosts: KV;
  tuning: Required<ClusterTuning>;
  /** Raw bytes a result may carry inline on this server (`inlineBudget`). */
  inlineBytes: number;
}

/** Creates the stream, consumer, buckets and object store where they are missing; opens them. */
export async function openCluster(
  nc: NatsConnection,
  tuning: ClusterTuning = {},
): Promise<ClusterHandles> {
  const settled = tuningWithDefaults(tuning);
  // The object store checks every blob's SHA-256; node:crypto does it several times faster
  // than the client's default pure-JS hash (the choice is process-wide).
  setSha256Backend("native");
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(JOBS_STREAM);
  } catch {
    await jsm.streams.add({
      name: JOBS_STREAM,
      subjects: [`${JOBS_SUBJECT}.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      duplicate_window: 2 * 60 * 1e9,
    }).catch(ignoreAlreadyExists);
  }
  let consumer = await jsm.consumers.info(JOBS_STREAM, WORKERS_CONSUMER).catch(() => undefined);
  consumer ??= await jsm.consumers.add(JOBS_STREAM, {
    durable_name: WORKERS_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    ack_wait: settled.ackWaitMs * 1e6,
    // One more than `attempts`: that delivery writes the poisoned result instead of working.
    max_deliver: settled.attempts + 1,
    max_ack_pending: -1,
  }).catch(async (error) => {
    ignoreAlreadyExists(error);
    return await jsm.consumers.info(JOBS_STREAM, WORKERS_CONSUMER);
  });
  const js = jetstream(nc);
  const kvm = new Kvm(js);
  const results = await kvm.create(RESULTS_BUCKET, { history: 1, storage: StorageType.File });
  const hosts = await kvm.create(HOSTS_BUCKET, {
    history: 1,
    ttl: settled.leaseTtlMs,
    // On disk like the rest: a memory bucket would be gone after a server restart.
    storage: StorageType.File,
  });
  const blobs = await new Objm(js).create(BLOBS_BUCKET, { storage: StorageType.File });
  // Whoever created the queue and buckets first chose their timing: everyone goes by that.
  const hostsTtlMs = (await hosts.status()).ttl;
  const agreed = {
    ackWaitMs: Math.round(consumer.config.ack_wait! / 1e6),
    attempts: consumer.config.max_deliver! - 1,
    leaseTtlMs: hostsTtlMs > 0 ? hostsTtlMs : settled.leaseTtlMs,
  };
  const inlineBytes = inlineBudget(nc.info?.max_payload ?? 1024 * 1024);
  return { js, results, blobs, hosts, tuning: agreed, inlineBytes };
}

/** Two processes creating the same thing at once: the loser opens the winner's. */
function ignoreAlreadyExists(error: unknown) {
  if (!/already in use|already exists/i.test(String((error as Error)?.message))) throw error;
}

/**
 * Runs `task` until it succeeds: a server restart or a lost connection is waited out with
 * backoff (one line on stderr the first time), never turned into a lost result.
 */
export async function untilDone<T>(
  what: string,
  task: () => Promise<T>,
  { log = console.error, signal }: { log?: (line: string) => void; signal?: AbortSignal } = {},
): Promise<T> {
  let waitMs = 250;
  for (let attempt = 1;; attempt++) {
    try {
      return await task();
    } catch (error) {
      if (signal?.aborted) throw error;
      if (attempt === 1 || attempt % 10 === 0) {
        log(`${what} failed (${safeMessage(error)}); retrying`);
      }
      await pause(waitMs, signal);
      waitMs = Math.min(5000, waitMs * 2);
    }
  }
}

/** KV keys allow [-/_=.a-zA-Z0-9]; an origin does not, so hosts go by a hash. */
export function hostKey(origin: string): string {
  return sha256Hex(origin).slice(0, 20);
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function decodeJson<T>(bytes: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(bytes)) as T;
}
