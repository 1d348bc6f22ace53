import { dirname, join } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import {
  openStateDb,
  PAGE_COLUMNS,
  PAGE_UPSERT,
  pageKey,
  pageRows,
  STATE_FILE,
  toDb,
} from "./state_db.ts";

/** One crawled staff page, or (status `complete`, no page URL) a source crawled to its end. */
export interface PageLogRow {
  source_url: string;
  page_url: string;
  category: string;
  status: "ok" | "failed" | "complete";
  reason: string;
  people: string;
  fetched_at: string;
}

/**
 * The pages crawled so far, in state.db's `pages` table (once `<data dir>/pages.csv`). A source
 * crawled to the end of its pagination with every page ok is not fetched again on the next run
 * (unless `--refresh`), which makes adding sources incremental. Each page is one upsert.
 */
export class PageLog {
  readonly #db: DatabaseSync;
  readonly #upsert: StatementSync;
  readonly #complete: StatementSync;
  readonly #failed: StatementSync;

  private constructor(readonly path: string, db: DatabaseSync) {
    this.#db = db;
    this.#upsert = db.prepare(PAGE_UPSERT);
    this.#complete = db.prepare("SELECT 1 FROM pages WHERE key = ?");
    this.#failed = db.prepare(
      "SELECT 1 FROM pages WHERE source_url = ? AND status = 'failed' LIMIT 1",
    );
  }

  /** The page log of the data dir holding `path` (its pages.csv, migrated if there is one). */
  static open(path: string): Promise<PageLog> {
    const db = openStateDb(join(dirname(path), STATE_FILE), { pages: path });
    return Promise.resolve(new PageLog(path, db));
  }

  /** True when an earlier run crawled this source to its end and every page succeeded. */
  sourceDone(sourceUrl: string): boolean {
    return this.#complete.get(toDb(`complete\n${sourceUrl}`)) !== undefined &&
      this.#failed.get(toDb(sourceUrl)) === undefined;
  }

  record(row: Omit<PageLogRow, "fetched_at">): void {
    const full: PageLogRow = { ...row, fetched_at: new Date().toISOString() };
    this.#upsert.run(toDb(pageKey(full)), ...PAGE_COLUMNS.map((c) => toDb(full[c])));
  }

  /** Marks a source crawled to the end of its pagination. */
  recordComplete(sourceUrl: string, category: string): void {
    this.record({
      source_url: sourceUrl,
      page_url: "",
      category,
      status: "complete",
      reason: "",
      people: "",
    });
  }

  /** Every row, in the order each was first recorded. */
  rows(): PageLogRow[] {
    return pageRows(this.#db);
  }

  /** Each page's row is committed as it is recorded: nothing to write. Kept for callers. */
  flushSync(): void {}

  close(): void {
    this.#db.close();
  }
}
