import { readCsvRows, writeCsvAtomicSync } from "./csv_file.ts";

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

const COLUMNS: (keyof PageLogRow)[] = [
  "source_url",
  "page_url",
  "category",
  "status",
  "reason",
  "people",
  "fetched_at",
];

/**
 * `<data dir>/pages.csv`: the pages crawled so far. A source crawled to the end of its
 * pagination with every page ok is not fetched again on the next run (unless `--refresh`),
 * which makes adding sources incremental.
 */
export class PageLog {
  readonly #rows = new Map<string, PageLogRow>();

  private constructor(readonly path: string, rows: PageLogRow[]) {
    for (const row of rows) this.#rows.set(PageLog.#key(row), row);
  }

  static #key(row: Pick<PageLogRow, "status" | "source_url" | "page_url">): string {
    return row.status === "complete" ? `complete\n${row.source_url}` : row.page_url;
  }

  static async open(path: string): Promise<PageLog> {
    return new PageLog(path, await readCsvRows<PageLogRow>(path));
  }

  /** True when an earlier run crawled this source to its end and every page succeeded. */
  sourceDone(sourceUrl: string): boolean {
    if (!this.#rows.has(`complete\n${sourceUrl}`)) return false;
    return [...this.#rows.values()].every((row) =>
      row.source_url !== sourceUrl || row.status !== "failed"
    );
  }

  record(row: Omit<PageLogRow, "fetched_at">): void {
    const full = { ...row, fetched_at: new Date().toISOString() };
    this.#rows.set(PageLog.#key(full), full);
    this.flushSync();
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

  rows(): PageLogRow[] {
    return [...this.#rows.values()];
  }

  flushSync(): void {
    writeCsvAtomicSync(this.path, [...this.#rows.values()], COLUMNS);
  }
}
