/**
 * The manifest: one row per record ever seen, keyed by id. Kept in `<data dir>/state.db`
 * (store/state_db.ts), one upsert per record; `index.csv` is written from it, streamed, when a
 * stage or a run ends (`flushSync`) and on demand (`deno task export --format csv`).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { dirname, join } from "node:path";
import type { Outcome, StageName } from "../core/types.ts";
import { writeChunksAtomic, writeChunksAtomicSync } from "../core/files.ts";
import {
  type AnyRecord,
  MANIFEST_COLUMNS,
  manifestCsvChunks,
  type ManifestRow,
  outcomeToRow,
} from "./manifest_rows.ts";
import {
  checkpoint,
  fromDb,
  imageOwner,
  inTransaction,
  openStateDb,
  RECORD_UPSERT,
  recordRows,
  STATE_FILE,
  toDb,
} from "./state_db.ts";

export * from "./manifest_rows.ts";

/** Rows read or written between two turns of the event loop. */
const LOAD_PAGE = 1000;

/** Most rows one timer's commit writes; more wait for the next turn (a rerun's burst). */
const COMMIT_SLICE = 2000;

export interface ManifestOptions {
  /**
   * Most milliseconds a completed record waits before it is committed to state.db. Records of
   * one wait go in one transaction.
   * @default 0
   */
  flushIntervalMs?: number;
}

function sameApartFromTime(a: ManifestRow, b: ManifestRow): boolean {
  return MANIFEST_COLUMNS.every((column) => column === "updated_at" || a[column] === b[column]);
}

/** Writes the manifest of `db` to `path` as CSV, streamed, by atomic replace. */
export function writeManifestCsv(db: DatabaseSync, path: string): void {
  writeChunksAtomicSync(path, manifestCsvChunks(recordRows(db)));
}

/**
 * The manifest of the data dir whose `index.csv` is `path`. Rows live in state.db, not in
 * memory: a lookup is one indexed query, so 100,000 records cost a run neither their memory nor
 * the collector's pauses over them. `record` commits within `flushIntervalMs` (one transaction
 * per batch), and rows waiting for it answer lookups, so kill -9 loses at most the records of
 * that wait, which a rerun redoes. `index.csv` is a snapshot of state.db, written by `flushSync`
 * and `writeCsv`.
 */
export class Manifest {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #upsert: StatementSync;
  readonly #delete: StatementSync;
  readonly #byId: StatementSync;
  readonly #count: StatementSync;
  #imageOwner: ReturnType<typeof imageOwner> | undefined;
  readonly #pending = new Map<string, ManifestRow | null>();
  readonly #flushIntervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether a row changed since index.csv was last written by this manifest. */
  #csvStale = false;

  private constructor(path: string, db: DatabaseSync, options: ManifestOptions) {
    this.path = path;
    this.#db = db;
    this.#upsert = db.prepare(RECORD_UPSERT);
    this.#delete = db.prepare("DELETE FROM records WHERE id = ?");
    this.#byId = db.prepare(`SELECT ${MANIFEST_COLUMNS.join(", ")} FROM records WHERE id = ?`);
    this.#byId.setReturnArrays(true);
    this.#count = db.prepare("SELECT count(*) AS n FROM records");
    const { flushIntervalMs = 0 } = options;
    this.#flushIntervalMs = flushIntervalMs;
  }

  /** Opens the manifest of the data dir holding `path` (its index.csv), migrating a CSV-only one. */
  static open(path: string, options: ManifestOptions = {}): Promise<Manifest> {
    const db = openStateDb(join(dirname(path), STATE_FILE), { manifest: path });
    return Promise.resolve(new Manifest(path, db, options));
  }

  get(id: string): ManifestRow | undefined {
    if (this.#pending.has(id)) return this.#pending.get(id) ?? undefined;
    const values = this.#byId.get(toDb(id)) as unknown as string[] | undefined;
    if (values === undefined) return undefined;
    const row = {} as ManifestRow;
    for (let c = 0; c < MANIFEST_COLUMNS.length; c++) {
      row[MANIFEST_COLUMNS[c]!] = fromDb(values[c]!);
    }
    return row;
  }

  /** Every row, in the order each was first seen: all in memory, for a caller that needs them. */
  rows(): ManifestRow[] {
    return [...this.values()];
  }

  /** The rows one at a time, read from state.db a page at a time: for a caller that only counts or filters. */
  values(): IterableIterator<ManifestRow> {
    this.commit();
    return recordRows(this.#db);
  }

  /**
   * The rows one at a time, with a turn of the event loop every `LOAD_PAGE` rows: a run's walk
   * over 100,000 records never holds it at once.
   */
  async *eachRow(): AsyncGenerator<ManifestRow> {
    let read = 0;
    for (const row of this.values()) {
      yield row;
      if (++read % LOAD_PAGE === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /**
   * Each row's status, stage, reason and category, read a page at a time with a turn of the
   * event loop between pages: what a run's summary counts, at a tenth of whole rows' memory
   * (100,000 whole rows held at a run's end were the no-op rerun's collector pauses).
   */
  async statusRows(): Promise<Pick<ManifestRow, "status" | "stage" | "reason" | "category">[]> {
    this.commit();
    const page = this.#db.prepare(
      "SELECT seq, status, stage, reason, category FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
    );
    page.setReturnArrays(true);
    const rows: Pick<ManifestRow, "status" | "stage" | "reason" | "category">[] = [];
    // One string per distinct value: 100,000 rows share a few statuses, stages and categories.
    const interned = new Map<string, string>();
    const intern = (value: string) => {
      let same = interned.get(value);
      if (same === undefined) interned.set(value, same = fromDb(value));
      return same;
    };
    for (let after = 0;;) {
      const values = page.all(after, LOAD_PAGE) as unknown as [number, ...string[]][];
      for (const [, status, stage, reason, category] of values) {
        rows.push({
          status: intern(status!) as ManifestRow["status"],
          stage: intern(stage!) as ManifestRow["stage"],
          reason: reason === "" ? "" : fromDb(reason!),
          category: intern(category!),
        });
      }
      if (values.length < LOAD_PAGE) return rows;
      after = values[values.length - 1]![0];
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /** `rows()`, read without holding the event loop. */
  async rowsYielding(): Promise<ManifestRow[]> {
    const rows: ManifestRow[] = [];
    for await (const row of this.eachRow()) rows.push(row);
    return rows;
  }

  /**
   * The committed record that holds these image bytes under `category` with an ok outcome, if
   * any. Rows still waiting for their commit are not asked: the images stage, the one caller,
   * keeps this run's owners itself.
   */
  imageOwner(category: string, sha256: string): string | undefined {
    this.#imageOwner ??= imageOwner(this.#db);
    return this.#imageOwner(category, sha256);
  }

  get size(): number {
    this.commit();
    return Number((this.#count.get() as { n: number }).n);
  }

  /** Records an outcome; it is committed within `flushIntervalMs`. */
  record(outcome: Outcome<AnyRecord>, stage: StageName, current?: ManifestRow): void {
    this.set(outcomeToRow(outcome, stage), current);
  }

  /** Stores `row`; `current`, where the caller has it, is the stored row, saving a read. */
  set(row: ManifestRow, current = this.get(row.id)): void {
    // A record that comes round again unchanged (a rerun's) is not written again: nothing but
    // the clock would differ, and 100,000 such writes were most of a no-op rerun.
    if (current !== undefined && sameApartFromTime(current, row)) return;
    this.#pending.set(row.id, row);
    this.#csvStale = true;
    this.#scheduleCommit();
  }

  delete(id: string): boolean {
    const deleted = this.get(id) !== undefined;
    this.#pending.set(id, null);
    this.#csvStale = true;
    this.#scheduleCommit();
    return deleted;
  }

  #scheduleCommit(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.commit(COMMIT_SLICE);
      if (this.#pending.size > 0) this.#scheduleCommit();
    }, this.#flushIntervalMs);
  }

  /** Commits pending rows to state.db now (at most `limit`, the oldest), in one transaction. */
  commit(limit = Infinity): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending.size === 0) return;
    let deleted = false;
    const done: string[] = [];
    inTransaction(this.#db, () => {
      for (const [id, row] of this.#pending) {
        if (done.length >= limit) break;
        if (row) this.#upsert.run(...MANIFEST_COLUMNS.map((c) => toDb(row[c])));
        else deleted = this.#delete.run(toDb(id)).changes > 0 || deleted;
        done.push(id);
      }
    });
    for (const id of done) this.#pending.delete(id);
    // A deleted row is a forgotten person: no copy of it may stay in the WAL.
    if (deleted) checkpoint(this.#db);
  }

  /** Writes index.csv from state.db, streamed. */
  writeCsv(path = this.path): void {
    this.commit();
    writeManifestCsv(this.#db, path);
    if (path === this.path) this.#csvStale = false;
  }

  /**
   * Commits pending rows and writes index.csv when a row changed since it was written (or it is
   * missing). Synchronous so it can run from a signal handler;
   * a run calls it at the end of its streamed stages and when it ends.
   */
  flushSync(): void {
    let missing = false;
    try {
      Deno.statSync(this.path);
    } catch {
      missing = true;
    }
    if (this.#csvStale || missing) this.writeCsv();
    else this.commit();
  }

  /**
   * `flushSync` without holding the event loop: index.csv is written a chunk at a time, with a
   * turn of the event loop between chunks. A run calls it at the end of each stage.
   */
  async flush(): Promise<void> {
    this.commit();
    const missing = await Deno.stat(this.path).then(() => false, () => true);
    if (!this.#csvStale && !missing) return;
    this.#csvStale = false;
    try {
      await writeChunksAtomic(
        this.path,
        manifestCsvChunks(recordRows(this.#db, LOAD_PAGE), LOAD_PAGE / 2),
      );
    } catch (error) {
      this.#csvStale = true;
      throw error;
    }
  }

  /** Commits and closes state.db; the manifest is unusable after. */
  close(): void {
    this.commit();
    this.#db.close();
  }
}
