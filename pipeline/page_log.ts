import { readCsvRows, writeCsvAtomicSync } from "./csv_file.ts";

/** One crawled staff page: its outcome and how many people it gave. */
export interface PageLogRow {
  source_url: string;
  page_url: string;
  category: string;
  status: "ok" | "failed";
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
 * `<data dir>/pages.csv`: the pages crawled so far. A source whose pages all came back ok is
 * not fetched again on the next run (unless `--refresh`), which makes adding sources incremental.
 */
export class PageLog {
  readonly #rows = new Map<string, PageLogRow>();

  private constructor(readonly path: string, rows: PageLogRow[]) {
    for (const row of rows) this.#rows.set(row.page_url, row);
  }

  static async open(path: string): Promise<PageLog> {
    return new PageLog(path, await readCsvRows<PageLogRow>(path));
  }

  /** True when an earlier run crawled this source and every page of it succeeded. */
  sourceDone(sourceUrl: string): boolean {
    const pages = [...this.#rows.values()].filter((row) => row.source_url === sourceUrl);
    return pages.length > 0 && pages.every((row) => row.status === "ok");
  }

  record(row: Omit<PageLogRow, "fetched_at">): void {
    this.#rows.set(row.page_url, { ...row, fetched_at: new Date().toISOString() });
    this.flushSync();
  }

  rows(): PageLogRow[] {
    return [...this.#rows.values()];
  }

  flushSync(): void {
    writeCsvAtomicSync(this.path, [...this.#rows.values()], COLUMNS);
  }
}
