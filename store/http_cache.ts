/**
 * `<data dir>/cache/http.csv`: the ETag and Last-Modified of each page and image fetched, with
 * the sha256 of its body, so the next fetch can be a conditional GET and a 304 reuses the body.
 * Image bodies are the image cache's own blobs (stored once); page bodies go to `cache/pages/`.
 * Losing this file costs full downloads, nothing else, so it is written lazily.
 */
import { sha256Hex } from "../core/ids.ts";
import { exists, writeFileAtomic } from "../core/files.ts";
import { readCsvRows, writeCsvAtomicSync } from "./csv_file.ts";
import { blobPath } from "./paths.ts";

export interface HttpCacheRow {
  url: string;
  etag: string;
  last_modified: string;
  content_type: string;
  sha256: string;
}

const COLUMNS: (keyof HttpCacheRow)[] = ["url", "etag", "last_modified", "content_type", "sha256"];

export interface HttpCacheDirs {
  /** The CSV of validators. */
  httpCache: string;
  /** Where image bodies live (the image stage's content-addressed cache). */
  imageCache: string;
  /** Where other bodies (pages) live. */
  pageCache: string;
}

export interface HttpCacheStoreOptions {
  /**
   * Most milliseconds a new entry waits before the CSV is written.
   * @default 1000
   */
  flushIntervalMs?: number;
}

/** The data dir's HTTP cache; its shape is net/http.ts's `HttpCache`. */
export class HttpCacheStore {
  readonly #rows = new Map<string, HttpCacheRow>();
  readonly #dirs: HttpCacheDirs;
  readonly #flushIntervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;

  private constructor(dirs: HttpCacheDirs, rows: HttpCacheRow[], flushIntervalMs: number) {
    this.#dirs = dirs;
    this.#flushIntervalMs = flushIntervalMs;
    for (const row of rows) this.#rows.set(row.url, row);
  }

  static async open(dirs: HttpCacheDirs, options: HttpCacheStoreOptions = {}) {
    const { flushIntervalMs = 1000 } = options;
    if (!Number.isInteger(flushIntervalMs) || flushIntervalMs < 0) {
      throw new RangeError(
        `Cannot open the HTTP cache as 'flushIntervalMs' must be a non-negative integer: current value is ${flushIntervalMs}`,
      );
    }
    return new HttpCacheStore(
      dirs,
      await readCsvRows<HttpCacheRow>(dirs.httpCache),
      flushIntervalMs,
    );
  }

  get size(): number {
    return this.#rows.size;
  }

  #bodyPath(row: Pick<HttpCacheRow, "content_type" | "sha256">): string {
    const image = /^\s*image\//i.test(row.content_type);
    return blobPath(image ? this.#dirs.imageCache : this.#dirs.pageCache, row.sha256);
  }

  get(url: string) {
    const row = this.#rows.get(url);
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
    this.#rows.set(url, row);
    this.#scheduleFlush();
  }

  /** Forgets a URL (e.g. a removed person's image). */
  delete(url: string): void {
    if (this.#rows.delete(url)) {
      this.#timer ??= setTimeout(() => this.flushSync(), this.#flushIntervalMs);
    }
  }

  #scheduleFlush(): void {
    this.#timer ??= setTimeout(() => {
      try {
        this.flushSync();
      } catch {
        // A lost write costs full downloads next time; the run's final flush tries again.
      }
    }, this.#flushIntervalMs);
  }

  /** Writes the CSV now; a run calls it when it ends. */
  flushSync(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    writeCsvAtomicSync(this.#dirs.httpCache, [...this.#rows.values()], COLUMNS);
  }
}
