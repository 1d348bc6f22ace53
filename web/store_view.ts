/**
 * The web app's read-only view of a data dir, through the store's own code (state.db, run
 * events, paths). State is read again when another process commits to it, and files when they
 * change on disk, so the pages follow a run that is writing them; nothing here writes.
 */
import { join, resolve, sep } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { ManifestRow } from "../store/manifest.ts";
import type { PageLogRow } from "../store/page_log.ts";
import { fromDb, openManifestCopy, openStateDbReadOnly, pageRows } from "../store/state_db.ts";
import {
  countRecords,
  distinctValues,
  listRecords,
  recordById,
  type RecordFilter,
  recordsOfPerson,
  recordSources,
} from "../store/record_query.ts";
import type { OverviewRow } from "./funnel.ts";

const OVERVIEW_COLUMNS = ["category", "status", "stage", "reason", "split", "page_url"] as const;
import { blobPath, type DataPaths, dataPaths } from "../store/paths.ts";
import { readRunEvents, type RunEvent } from "../store/run_events.ts";
import type { Metrics } from "../stages/evaluate.ts";
import type { EpochPoint } from "../report/report.ts";
import { type FaceCacheEntry, parseFaceCacheEntry } from "../stages/detect_faces.ts";

/** A record id as `personId()` makes it: 16 hex digits, or 8 in a data dir not yet migrated. */
export const ID_PATTERN = /^[0-9a-f]{8}(?:[0-9a-f]{8})?$/;
/** A content hash as `sha256Hex()` makes it. */
export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export type { FaceCacheEntry };

/** One model of the report's metrics.json. */
export interface ReportModel {
  kind: string;
  bestEpoch: number;
  history: EpochPoint[];
  metrics: Metrics;
}

export interface ReportData {
  generatedAt: string;
  models: ReportModel[];
  /** The run's verdict: an object on current runs, lines of text or absent on older ones. */
  verdict?: unknown;
  /** The data set's summary as the run wrote it. */
  dataset?: {
    name?: string;
    folds?: number | null;
    provenance?: Record<string, string | number | boolean>;
  };
}

/** The chart the run draws for its verdict, under report/. */
export const VERDICT_CHART_FILE = "verdict.png";

/** How long the list of face settings folders is trusted. */
const SETTINGS_TTL_MS = 2000;

/** What the Faces page's filters offer, and how many records there are. */
export interface FilterChoices {
  records: number;
  categories: string[];
  folds: string[];
  sources: string[];
}

/** A stat's identity: a file replaced by rename or rewritten gets a new one. */
async function fingerprint(path: string): Promise<string> {
  try {
    const info = await Deno.stat(path);
    return `${info.mtime?.getTime()}:${info.size}:${info.ino ?? ""}`;
  } catch {
    return "missing";
  }
}

/** Reads a file again only when its fingerprint changed. */
class CachedFile<T> {
  #fingerprint = "";
  #value: T | undefined;
  constructor(readonly path: string, readonly parse: (path: string) => Promise<T>) {}

  async get(): Promise<T> {
    const now = await fingerprint(this.path);
    if (now !== this.#fingerprint || this.#value === undefined) {
      this.#value = await this.parse(this.path);
      this.#fingerprint = now;
    }
    return this.#value;
  }
}

/**
 * The records and pages of state.db through one read-only connection, asked per request (SQLite
 * pages and filters them, so no request holds 100,000 rows); what every request shares (the
 * overview's groups, the page log, the filter's choices) is kept until another connection
 * commits (SQLite's `data_version`). A data dir not migrated yet (no state.db) is read from its
 * index.csv into an in-memory database, again when the file changes; its pages are none until
 * its first run.
 */
class StateSnapshot {
  #db: DatabaseSync | undefined;
  #legacy: { fingerprint: string; db: DatabaseSync } | undefined;
  #pages: PageLogRow[] = [];
  #pagesVersion: string | undefined;
  #overview: { version: string; rows: OverviewRow[] } | undefined;
  #choices: { version: string; choices: FilterChoices } | undefined;

  constructor(readonly paths: DataPaths) {}

  #connect(): DatabaseSync | undefined {
    this.#db ??= openStateDbReadOnly(this.paths.state);
    return this.#db;
  }

  /** The database to ask: state.db, or a copy of index.csv where there is no state.db yet. */
  async db(): Promise<DatabaseSync> {
    const db = this.#connect();
    if (db) return db;
    const now = await fingerprint(this.paths.manifest);
    if (this.#legacy?.fingerprint !== now) {
      this.#legacy?.db.close();
      this.#legacy = { fingerprint: now, db: openManifestCopy(this.paths.manifest) };
    }
    return this.#legacy.db;
  }

  /** A token that changes whenever the state does. */
  async version(): Promise<string> {
    const db = this.#connect();
    if (!db) return `csv:${await fingerprint(this.paths.manifest)}`;
    const row = db.prepare("PRAGMA data_version").get() as { data_version: number };
    return `db:${row.data_version}`;
  }

  /**
   * The overview's columns, one row per distinct combination with its count `n` (the reason cut
   * to its code): grouped by SQLite, so the overview never loads 100,000 whole rows.
   */
  async overviewRows(): Promise<OverviewRow[]> {
    const version = await this.version();
    if (this.#overview?.version === version) return this.#overview.rows;
    const db = await this.db();
    const reason = "CASE WHEN instr(reason, ':') > 0 " +
      "THEN substr(reason, 1, instr(reason, ':') - 1) ELSE reason END";
    const rows = db.prepare(
      `SELECT category, status, stage, ${reason} AS reason, split, page_url, count(*) AS n ` +
        `FROM records GROUP BY category, status, stage, ${reason}, split, page_url ORDER BY min(seq)`,
    ).all() as unknown as (OverviewRow & { n: number })[];
    for (const row of rows) {
      for (const column of OVERVIEW_COLUMNS) row[column] = fromDb(row[column]);
      row.n = Number(row.n);
    }
    this.#overview = { version, rows };
    return rows;
  }

  /** The values the Faces page's filters offer, by SQL aggregates. */
  async choices(): Promise<FilterChoices> {
    const version = await this.version();
    if (this.#choices?.version === version) return this.#choices.choices;
    const db = await this.db();
    const choices = {
      records: countRecords(db),
      categories: distinctValues(db, "category"),
      folds: distinctValues(db, "fold"),
      sources: recordSources(db),
    };
    this.#choices = { version, choices };
    return choices;
  }

  /** The page log: a few thousand rows, read apart from the records, cached by version. */
  async pages(): Promise<PageLogRow[]> {
    const db = this.#connect();
    if (!db) return [];
    const version = await this.version();
    if (this.#pagesVersion !== version) {
      this.#pages = pageRows<PageLogRow>(db);
      this.#pagesVersion = version;
    }
    return this.#pages;
  }
}

async function readReport(path: string): Promise<ReportData | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as ReportData;
  } catch {
    return undefined; // No report yet, or one being written: the page says there is none.
  }
}

export class StoreView {
  readonly paths: DataPaths;
  readonly #state: StateSnapshot;
  readonly #report: CachedFile<ReportData | undefined>;
  /** Whole records read so far (a test's measure that a page reads a page). */
  rowsRead = 0;
  #realRoot: Promise<string> | undefined;
  #settings: { at: number; dirs: Promise<string[]> } | undefined;

  constructor(dataDir: string) {
    this.paths = dataPaths(resolve(dataDir));
    this.#state = new StateSnapshot(this.paths);
    this.#report = new CachedFile(join(this.paths.reports, "metrics.json"), readReport);
  }

  /**
   * The records `filter` keeps, in manifest order, `limit` from `offset`: one page of rows,
   * whatever the data dir holds.
   */
  async records(filter: RecordFilter, offset: number, limit: number): Promise<ManifestRow[]> {
    const rows = listRecords(await this.#state.db(), filter, offset, limit);
    this.rowsRead += rows.length;
    return rows;
  }

  /** How many records `filter` keeps (an SQL count). */
  async count(filter: RecordFilter): Promise<number> {
    return countRecords(await this.#state.db(), filter);
  }

  /** The Faces page's filter choices and the number of records. */
  choices(): Promise<FilterChoices> {
    return this.#state.choices();
  }

  /** The records of one person, as `forget` finds them (store/record_query.ts). */
  async recordsOfPerson(id: string): Promise<ManifestRow[]> {
    const rows = recordsOfPerson(await this.#state.db(), [id]);
    this.rowsRead += rows.length;
    return rows;
  }

  overviewRows(): Promise<OverviewRow[]> {
    return this.#state.overviewRows();
  }

  async row(id: string): Promise<ManifestRow | undefined> {
    if (!ID_PATTERN.test(id)) return undefined;
    const row = recordById(await this.#state.db(), id);
    if (row) this.rowsRead++;
    return row;
  }

  pages(): Promise<PageLogRow[]> {
    return this.#state.pages();
  }

  report(): Promise<ReportData | undefined> {
    return this.#report.get();
  }

  /** The run's verdict chart (report/verdict.png) when it drew one. */
  async verdictChartPath(): Promise<string | undefined> {
    return await this.inside(join(this.paths.reports, VERDICT_CHART_FILE));
  }

  runEvents(): Promise<RunEvent[]> {
    return readRunEvents(this.paths.runEvents);
  }

  /** Fingerprints of the files the live view follows; a change means "send an update". */
  async liveFingerprint(): Promise<{ manifest: string; events: string; lock: string }> {
    const [manifest, events, lock] = await Promise.all([
      this.#state.version(),
      ...[this.paths.runEvents, this.paths.lock].map(fingerprint),
    ]);
    return { manifest: manifest!, events: events!, lock: lock! };
  }

  /** Whether a run holds the data dir now. */
  async running(): Promise<boolean> {
    return (await fingerprint(this.paths.lock)) !== "missing";
  }

  /**
   * A file inside the data dir, or undefined when `path` (after resolving `..` and symbolic
   * links) would lead outside it. Every file the app serves goes through here.
   */
  async inside(path: string): Promise<string | undefined> {
    this.#realRoot ??= Deno.realPath(this.paths.root).catch(() => this.paths.root);
    const root = await this.#realRoot;
    let real: string;
    try {
      real = await Deno.realPath(path);
    } catch {
      return undefined;
    }
    return real.startsWith(root + sep) ? real : undefined;
  }

  /** Raw image bytes by sha256, or undefined when the hash is malformed or not cached. */
  async imagePath(sha256: string): Promise<string | undefined> {
    if (!SHA256_PATTERN.test(sha256)) return undefined;
    return await this.inside(blobPath(this.paths.imageCache, sha256));
  }

  /**
   * Face settings folders, newest first, so the latest run's crops win. Listed again at most
   * every `SETTINGS_TTL_MS`: a grid asks for a hundred crops at once.
   */
  #faceSettingsDirs(): Promise<string[]> {
    const now = Date.now();
    if (!this.#settings || now - this.#settings.at > SETTINGS_TTL_MS) {
      this.#settings = { at: now, dirs: this.#listFaceSettingsDirs() };
    }
    return this.#settings.dirs;
  }

  async #listFaceSettingsDirs(): Promise<string[]> {
    const dirs: { path: string; mtime: number }[] = [];
    try {
      for await (const entry of Deno.readDir(this.paths.faceCache)) {
        if (!entry.isDirectory) continue;
        const path = join(this.paths.faceCache, entry.name);
        const info = await Deno.stat(path);
        dirs.push({ path, mtime: info.mtime?.getTime() ?? 0 });
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return dirs.sort((a, b) => b.mtime - a.mtime).map((d) => d.path);
  }

  /** The aligned crop (PNG) of an image's face, if the face stage made one. */
  async cropPath(sha256: string): Promise<string | undefined> {
    if (!SHA256_PATTERN.test(sha256)) return undefined;
    for (const dir of await this.#faceSettingsDirs()) {
      const path = await this.inside(blobPath(dir, sha256, ".png"));
      if (path) return path;
    }
    return undefined;
  }

  /** The face stage's cache entry beside the crop: descriptor, or the rejection. */
  async faceEntry(sha256: string): Promise<FaceCacheEntry | undefined> {
    if (!SHA256_PATTERN.test(sha256)) return undefined;
    for (const dir of await this.#faceSettingsDirs()) {
      const path = await this.inside(blobPath(dir, sha256, ".json"));
      if (!path) continue;
      const entry = parseFaceCacheEntry(await Deno.readTextFile(path).catch(() => ""));
      // Torn (a run is writing it) or older: another settings folder may have it whole.
      if (entry) return entry;
    }
    return undefined;
  }
}
