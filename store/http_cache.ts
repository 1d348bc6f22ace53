/**
 * The HTTP cache: the ETag and Last-Modified of each page and image fetched, with the sha256 of
 * its body, so the next fetch can be a conditional GET and a 304 reuses the body. Kept in
 * state.db's `http_cache` table (once `cache/http.csv`), one upsert per URL, batched per wait.
 * Image bodies are the image cache's own blobs (stored once); page bodies go to `cache/pages/`.
 * Losing an entry costs one full download, nothing else.
 */
import { dirname, join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { sha256Hex } from "../core/ids.ts";
import { exists, writeFileAtomic } from "../core/files.ts";
import { blobPath } from "./paths.ts";
import {
  fromDb,
  HTTP_COLUMNS,
  HTTP_UPSERT,
  inTransaction,
  openStateDb,
  STATE_FILE,
  toDb,
} from "./state_db.ts";

export interface HttpCacheRow {
  url: string;
  etag: string;
  last_modified: string;
  content_type: string;
  sha256: string;
}

export interface HttpCacheDirs {
  /** Where the validators were kept as CSV before state.db (migrated from there once). */
  httpCache: string;
  /** The state database; by default `state.db` beside `httpCache`. */
  state?: string;
  /** Where image bodies live (the image stage's content-addressed cache). */
  imageCache: string;
  /** Where other bodies (pages) live. */
  pageCache: string;
}

export interface HttpCacheStoreOptions {
  /**
   * Most milliseconds a new entry waits before it is committed (entries of one wait go in one
   * transaction).
   * @default 0
   */
  flushIntervalMs?: number;
}

/** The data dir's HTTP cache; its shape is net/http.ts's `HttpCache`. */
export class HttpCacheStore {
  readonly #db: DatabaseSync;
  readonly #upsert: StatementSync;
  readonly #get: StatementSync;
  readonly #dirs: HttpCacheDirs;
  readonly #flushIntervalMs: number;
  readonly #pending = new Map<string, HttpCacheRow | null>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(dirs: HttpCacheDirs, db: DatabaseSync, flushIntervalMs: number) {
    this.#dirs = dirs;
    this.#db = db;
    this.#flushIntervalMs = flushIntervalMs;
    this.#upsert = db.prepare(HTTP_UPSERT);
    this.#get = db.prepare(`SELECT ${HTTP_COLUMNS.join(", ")} FROM http_cache WHERE url = ?`);
  }

  static open(dirs: HttpCacheDirs, options: HttpCacheStoreOptions = {}): Promise<HttpCacheStore> {
    const { flushIntervalMs = 0 } = options;
    if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 0) {
      throw new RangeError(
        `Cannot open the HTTP cache as 'flushIntervalMs' must be a non-negative integer: current value is ${flushIntervalMs}`,
      );
    }
    const path = dirs.state ?? join(dirname(dirs.httpCache), STATE_FILE);
    const db = openStateDb(path, { httpCache: dirs.httpCache });
    return Promise.resolve(new HttpCacheStore(dirs, db, flushIntervalMs));
  }

  get size(): number {
    this.flushSync();
    const row = this.#db.prepare("SELECT count(*) AS n FROM http_cache").get() as { n: number };
    return Number(row.n);
  }

  #row(url: string): HttpCacheRow | undefined {
    const pending = this.#pending.get(url);
    if (pending !== undefined) return pending ?? undefined;
    const row = this.#get.get(toDb(url)) as HttpCacheRow | undefined;
    if (row) { for (const column of HTTP_COLUMNS) row[column] = fromDb(row[column]); }
    return row;
  }

  #bodyPath(row: Pick<HttpCacheRow, "content_type" | "sha256">): string {
    const image = /^\s*image\//i.test(row.content_type);
    return blobPath(image ? this.#dirs.imageCache : this.#dirs.pageCache, row.sha256);
  }

  get(url: string) {
    const row = this.#row(url);
    if (!row) return undefined;
    const path = this.#bodyPath(row);
    return {
      etag: row.etag || undefined,
      lastModified: row.last_modified || undefined,
      contentType: row.content_type,
      body: () => Deno.readFile(path).catch(() => undefined),
    };
  }

  async put(
    url: string,
    entry: { etag?: string; lastModified?: string; contentType: string; body: Uint8Array },
  ): Promise<void> {
    const row: HttpCacheRow = {
      url,
      etag: entry.etag ?? "",
      last_modified: entry.lastModified ?? "",
      content_type: entry.contentType,
      sha256: sha256Hex(entry.body),
    };
    const path = this.#bodyPath(row);
    if (!await exists(path)) await writeFileAtomic(path, entry.body);
    this.#pending.set(url, row);
    this.#scheduleFlush();
  }

  /** Forgets a URL (e.g. a removed person's image). */
  delete(url: string): void {
    this.#pending.set(url, null);
    this.#scheduleFlush();
  }

  /** Forgets every URL (forget drops the page bodies, which held names). */
  clear(): void {
    this.#pending.clear();
    this.#db.exec("DELETE FROM http_cache");
  }

  #scheduleFlush(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      try {
        this.flushSync();
      } catch {
        // A lost entry costs a full download next time; the run's final flush tries again.
      }
    }, this.#flushIntervalMs);
  }

  /** Commits pending entries now, in one transaction; a run calls it when it ends. */
  flushSync(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.size === 0) return;
    const remove = this.#db.prepare("DELETE FROM http_cache WHERE url = ?");
    inTransaction(this.#db, () => {
      for (const [url, row] of this.#pending) {
        if (row) this.#upsert.run(...HTTP_COLUMNS.map((c) => toDb(row[c])));
        else remove.run(toDb(url));
      }
    });
    this.#pending.clear();
  }

  close(): void {
    this.flushSync();
    this.#db.close();
  }
}
