/**
 * `<data dir>/state.db`: the data dir's bookkeeping in one SQLite file (`node:sqlite`, built into
 * Deno), one table per kind: `records` (the manifest), `pages` (the page log), `http_cache`
 * (validators) and `removed` (the removal list). Writes are per record, in WAL mode, so their
 * cost grows with the change, not with the data dir; a commit survives kill -9 of the process.
 *
 * A data dir from before state.db (index.csv, pages.csv, cache/http.csv, removed.csv) is
 * migrated when first opened: every file in one transaction, once. index.csv stays (it is what
 * users read, written again at the end of each stage); the other three go after the commit.
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parse } from "csv-parse/sync";
import { MANIFEST_COLUMNS, type ManifestRow, parseManifest } from "./manifest_rows.ts";
import { moveIdFiles, widenedIds } from "./id_migration.ts";

export const STATE_FILE = "state.db";

/** The page log's columns (pages.csv), after its key. */
export const PAGE_COLUMNS = [
  "source_url",
  "page_url",
  "category",
  "status",
  "reason",
  "people",
  "fetched_at",
] as const;

/** The HTTP cache's columns (cache/http.csv). */
export const HTTP_COLUMNS = ["url", "etag", "last_modified", "content_type", "sha256"] as const;

/** The removal list's columns (removed.csv). */
export const REMOVED_COLUMNS = ["kind", "value", "removed_at"] as const;

/** The CSV files a data dir kept its state in before state.db. */
export interface LegacyFiles {
  manifest: string;
  pages: string;
  removed: string;
  httpCache: string;
}

/** Where the legacy files of the data dir at `root` are. */
export function legacyFiles(root: string): LegacyFiles {
  return {
    manifest: join(root, "index.csv"),
    pages: join(root, "pages.csv"),
    removed: join(root, "removed.csv"),
    httpCache: join(root, "cache", "http.csv"),
  };
}

const text = (columns: readonly string[]) =>
  columns.map((c) => `${c} TEXT NOT NULL DEFAULT ''`).join(", ");

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, ${
  text(MANIFEST_COLUMNS.filter((c) => c !== "id"))
}, id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS pages (key TEXT PRIMARY KEY, ${text(PAGE_COLUMNS)});
CREATE INDEX IF NOT EXISTS pages_failed ON pages (source_url) WHERE status = 'failed';
CREATE TABLE IF NOT EXISTS http_cache (url TEXT PRIMARY KEY, ${text(HTTP_COLUMNS.slice(1))});
CREATE TABLE IF NOT EXISTS removed (${text(REMOVED_COLUMNS)}, PRIMARY KEY (kind, value));
`;

/** `INSERT … ON CONFLICT DO UPDATE` of every column, by the table's key; values in `columns` order. */
export function upsertSql(table: string, key: string, columns: readonly string[]): string {
  const updates = columns.filter((c) => c !== key).map((c) => `${c} = excluded.${c}`);
  return `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${
    columns.map(() => "?").join(", ")
  }) ON CONFLICT (${key}) DO UPDATE SET ${updates.join(", ")}`;
}

export const RECORD_UPSERT = upsertSql("records", "id", MANIFEST_COLUMNS);
export const PAGE_UPSERT = upsertSql("pages", "key", ["key", ...PAGE_COLUMNS]);
export const HTTP_UPSERT = upsertSql("http_cache", "url", HTTP_COLUMNS);
export const REMOVED_INSERT = `INSERT OR IGNORE INTO removed (${
  REMOVED_COLUMNS.join(", ")
}) VALUES (?, ?, ?)`;

/** The page log's key: a page by its URL, a source's end mark by its source. */
export function pageKey(row: { status: string; source_url: string; page_url: string }): string {
  return row.status === "complete" ? `complete\n${row.source_url}` : row.page_url;
}

/**
 * A string as stored: SQLite keeps a NUL character, but `node:sqlite` reads text back only up
 * to it, so NUL is written as U+0001 U+0002 and U+0001 itself as U+0001 U+0001. `fromDb`
 * undoes it; every other string is stored as it is.
 */
export function toDb(value: string): string {
  return value.includes("\u0000") || value.includes("\u0001")
    ? value.replaceAll("\u0001", "\u0001\u0001").replaceAll("\u0000", "\u0001\u0002")
    : value;
}

/** Inverse of `toDb`. */
export function fromDb(value: string): string {
  if (!value.includes("\u0001")) return value;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const char = value[i]!;
    if (char !== "\u0001") {
      out += char;
      continue;
    }
    out += value[++i] === "\u0002" ? "\u0000" : "\u0001";
  }
  return out;
}

/** Runs `work` in one write transaction: all of it commits, or none. */
export function inTransaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = work();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    try {
      db.exec("ROLLBACK");
    } catch {
      // Already rolled back by SQLite itself.
    }
    throw error;
  }
}

function readCsvSync(path: string): Record<string, string>[] | undefined {
  let body: string;
  try {
    body = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return parse(body, { columns: true, skip_empty_lines: true });
}

function migrated(db: DatabaseSync): boolean {
  const meta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
    .get();
  return meta !== undefined &&
    db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() !== undefined;
}

/** Imports the legacy CSVs into a new database; gives the files it imported. */
function importLegacy(db: DatabaseSync, legacy: LegacyFiles, all = true): string[] {
  const imported: string[] = [];
  let manifestText: string | undefined;
  try {
    manifestText = Deno.readTextFileSync(legacy.manifest);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (manifestText !== undefined) {
    const upsert = db.prepare(RECORD_UPSERT);
    for (const row of parseManifest(manifestText)) {
      upsert.run(...MANIFEST_COLUMNS.map((c) => toDb(row[c])));
    }
  }
  if (!all) return imported;
  const pages = readCsvSync(legacy.pages);
  if (pages) {
    const upsert = db.prepare(PAGE_UPSERT);
    for (const row of pages) {
      const values = PAGE_COLUMNS.map((c) => toDb(row[c] ?? ""));
      upsert.run(toDb(pageKey(row as Parameters<typeof pageKey>[0])), ...values);
    }
    imported.push(legacy.pages);
  }
  const http = readCsvSync(legacy.httpCache);
  if (http) {
    const upsert = db.prepare(HTTP_UPSERT);
    for (const row of http) upsert.run(...HTTP_COLUMNS.map((c) => toDb(row[c] ?? "")));
    imported.push(legacy.httpCache);
  }
  const removed = readCsvSync(legacy.removed);
  if (removed) {
    const insert = db.prepare(REMOVED_INSERT);
    for (const row of removed) insert.run(...REMOVED_COLUMNS.map((c) => row[c] ?? ""));
    imported.push(legacy.removed);
  }
  return imported;
}

/** Creates the tables and migrates the legacy CSVs, once: whoever opens first does it. */
function migrate(db: DatabaseSync, legacy: LegacyFiles): void {
  if (migrated(db)) return;
  const imported = inTransaction(db, () => {
    if (migrated(db)) return [];
    db.exec(SCHEMA);
    const files = importLegacy(db, legacy);
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema', '1'), ('created_at', ?)")
      .run(new Date().toISOString());
    return files;
  });
  // Committed: the copies in state.db are the truth now, and stale CSVs would mislead.
  for (const path of imported) {
    try {
      Deno.removeSync(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

const IDS_WIDENED = "ids_widened";

/** Widens the records' 8-digit ids to 16 (store/id_migration.ts), once: files first, then rows. */
function widenIds(db: DatabaseSync, root: string): void {
  const done = db.prepare("SELECT 1 FROM meta WHERE key = ?");
  if (done.get(IDS_WIDENED) !== undefined) return;
  const select = db.prepare(
    "SELECT id, category, image_url, name FROM records WHERE length(id) = 8",
  );
  select.setReturnArrays(true);
  const widened = widenedIds(
    (select.all() as unknown as string[][]).map((cells) => {
      const [id, category, imageUrl, name] = cells.map(fromDb) as [string, string, string, string];
      return { id, category, imageUrl, name };
    }),
  );
  moveIdFiles(root, widened);
  inTransaction(db, () => {
    if (done.get(IDS_WIDENED) !== undefined) return;
    const setId = db.prepare("UPDATE records SET id = ? WHERE id = ?");
    const setIdentity = db.prepare("UPDATE records SET identity = ? WHERE identity = ?");
    for (const [legacy, id] of widened) {
      setId.run(id, toDb(legacy));
      setIdentity.run(id, toDb(legacy));
    }
    db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run(
      IDS_WIDENED,
      new Date().toISOString(),
    );
  });
}

/**
 * Opens (creating and migrating as needed) the state database at `path`. `legacy` says where
 * the pre-database CSVs are when they are not at their data dir places beside it.
 */
export function openStateDb(path: string, legacy: Partial<LegacyFiles> = {}): DatabaseSync {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  // Another process (a run, the web app) may hold the write lock for a moment.
  db.exec("PRAGMA busy_timeout = 15000");
  db.exec("PRAGMA journal_mode = WAL");
  // WAL with NORMAL survives the process being killed; only a power cut may lose the last commits.
  db.exec("PRAGMA synchronous = NORMAL");
  // A forgotten person's bytes are zeroed, not left in free pages.
  db.exec("PRAGMA secure_delete = ON");
  migrate(db, { ...legacyFiles(dirname(path)), ...legacy });
  widenIds(db, dirname(path));
  // The images stage asks, per download, which record first had these bytes: one lookup, not
  // a walk of every record (made once on a data dir from before it existed).
  db.exec("CREATE INDEX IF NOT EXISTS records_by_sha256 ON records (sha256)");
  return db;
}

/**
 * An in-memory state database holding the records of a data dir's `index.csv` (one not migrated
 * yet): its readers ask it what they would ask state.db. The file is only read.
 */
export function openManifestCopy(manifestPath: string): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  inTransaction(db, () => {
    db.exec(SCHEMA);
    importLegacy(db, { manifest: manifestPath, pages: "", removed: "", httpCache: "" }, false);
  });
  return db;
}

/**
 * A read-only connection to a migrated state database, or undefined when there is none yet
 * (a fresh data dir, or one whose first run has not started): readers never create or migrate.
 */
export function openStateDbReadOnly(path: string): DatabaseSync | undefined {
  try {
    Deno.statSync(path);
  } catch {
    return undefined;
  }
  const db = new DatabaseSync(path, { readOnly: true });
  db.exec("PRAGMA busy_timeout = 15000");
  if (!migrated(db)) {
    db.close();
    return undefined;
  }
  return db;
}

/** Every record of the manifest, in the order each was first seen, one at a time. */
export function* recordRows(db: DatabaseSync, pageSize = 5000): Generator<ManifestRow> {
  const page = db.prepare(
    `SELECT seq, ${MANIFEST_COLUMNS.join(", ")} FROM records WHERE seq > ? ORDER BY seq LIMIT ?`,
  );
  // Arrays, made into rows here: much cheaper than SQLite's objects less their `seq`.
  page.setReturnArrays(true);
  let after = 0;
  for (;;) {
    // Paged by key, not one open cursor: a writer between pages is never blocked nor missed.
    const rows = page.all(after, pageSize) as unknown as [number, ...string[]][];
    for (const values of rows) {
      const row = {} as ManifestRow;
      for (let c = 0; c < MANIFEST_COLUMNS.length; c++) {
        row[MANIFEST_COLUMNS[c]!] = fromDb(values[c + 1] as string);
      }
      yield row;
    }
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]![0];
  }
}

/**
 * The record that holds these image bytes under this category with an ok outcome, the latest
 * first seen: the owner a duplicate download is told about.
 */
export function imageOwner(
  db: DatabaseSync,
): (category: string, sha256: string) => string | undefined {
  // A plain index on sha256: a partial one (sha256 != '') is never used for `sha256 = ?`,
  // since SQLite cannot tell at prepare time that the parameter is not empty.
  const select = db.prepare(
    "SELECT id FROM records WHERE sha256 = ? AND category = ? AND status = 'ok' ORDER BY seq DESC LIMIT 1",
  );
  return (category, sha256) => {
    const row = select.get(toDb(sha256), toDb(category)) as { id: string } | undefined;
    return row === undefined ? undefined : fromDb(row.id);
  };
}

/**
 * Copies the database's own files out of the WAL and truncates it, so that deleted rows (a
 * forgotten person) leave no old page image behind in `state.db-wal`.
 */
export function checkpoint(db: DatabaseSync): void {
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

/** Every page of the page log, in the order each was first recorded. */
export function pageRows<T = Record<(typeof PAGE_COLUMNS)[number], string>>(db: DatabaseSync): T[] {
  const rows = db.prepare(`SELECT ${PAGE_COLUMNS.join(", ")} FROM pages ORDER BY rowid`).all();
  for (const row of rows as Record<string, string>[]) {
    for (const column of PAGE_COLUMNS) row[column] = fromDb(row[column]!);
  }
  return rows as unknown as T[];
}

/** What `forget` matches a person by, for every record. */
export interface PersonKeys {
  id: string;
  name: string;
  sha256: string;
  identity: string;
}

/**
 * Deletes records by id in one transaction, then truncates the WAL: with `secure_delete`, no
 * byte of a forgotten person stays in state.db or beside it.
 */
export function deleteRecords(db: DatabaseSync, ids: string[]): number {
  if (ids.length === 0) return 0;
  const remove = db.prepare("DELETE FROM records WHERE id = ?");
  let deleted = 0;
  inTransaction(db, () => {
    for (const id of ids) deleted += Number(remove.run(toDb(id)).changes);
  });
  checkpoint(db);
  return deleted;
}
