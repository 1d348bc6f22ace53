/**
 * Questions about the records of state.db answered by SQLite, a page at a time: a filtered,
 * paged list in manifest order, its count, the distinct values of a column, one record by id,
 * and the records of one person. Whoever asks never holds the 100,000 rows of a large data dir.
 */
import type { DatabaseSync } from "node:sqlite";
import { MANIFEST_COLUMNS, type ManifestRow } from "./manifest_rows.ts";
import { fromDb, toDb } from "./state_db.ts";

/** The record stages in order; a row's `stage` is the last one it reached. */
const STAGE_ORDER = ["people", "images", "faces", "split"] as const;

/** Label of records whose page is not in the page log (the web app's funnel uses the same). */
export const NOT_IN_PAGE_LOG = "(not in the page log)";

/** What a list of records keeps; every field is optional and ANDed. */
export interface RecordFilter {
  category?: string;
  split?: string;
  fold?: string;
  /** The source a record's page was crawled for (the page log), or `NOT_IN_PAGE_LOG`. */
  source?: string;
  /** ok, rejected, failed, or dropped (any but ok). */
  status?: string;
  /** Records that got through this stage (ok ones reached it, dropped ones went past it). */
  stage?: string;
  /** Only these ids (a confusion cell's faces); an empty list keeps nothing. */
  ids?: string[];
}

const STAGE_RANK = `(CASE stage ${
  STAGE_ORDER.map((s, i) => `WHEN '${s}' THEN ${i}`).join(" ")
} ELSE -1 END)`;

/** The page URL → source map of the page log, as a subquery over `pages`. */
const PAGES_OF_LOG = "SELECT key FROM pages WHERE status != 'complete' AND page_url != ''";

/** A WHERE clause and its parameters for `filter`. */
export function whereOf(filter: RecordFilter): { sql: string; params: (string | number)[] } {
  const terms: string[] = [];
  const params: (string | number)[] = [];
  for (const column of ["category", "split", "fold"] as const) {
    const value = filter[column];
    if (value === undefined) continue;
    terms.push(`${column} = ?`);
    params.push(toDb(value));
  }
  if (filter.status === "dropped") terms.push("status != 'ok'");
  else if (filter.status !== undefined) {
    terms.push("status = ?");
    params.push(toDb(filter.status));
  }
  const rank = STAGE_ORDER.indexOf(filter.stage as typeof STAGE_ORDER[number]);
  if (rank >= 0) {
    terms.push(
      `((status = 'ok' AND ${STAGE_RANK} >= ?) OR (status != 'ok' AND ${STAGE_RANK} > ?))`,
    );
    params.push(rank, rank);
  }
  if (filter.source === NOT_IN_PAGE_LOG) terms.push(`page_url NOT IN (${PAGES_OF_LOG})`);
  else if (filter.source !== undefined) {
    terms.push(`page_url IN (${PAGES_OF_LOG} AND source_url = ?)`);
    params.push(toDb(filter.source));
  }
  if (filter.ids !== undefined) {
    terms.push("id IN (SELECT value FROM json_each(?))");
    params.push(JSON.stringify(filter.ids.map(toDb)));
  }
  return { sql: terms.length ? `WHERE ${terms.join(" AND ")}` : "", params };
}

function toRow(values: unknown[]): ManifestRow {
  const row = {} as ManifestRow;
  for (let c = 0; c < MANIFEST_COLUMNS.length; c++) {
    row[MANIFEST_COLUMNS[c]!] = fromDb(String(values[c] ?? ""));
  }
  return row;
}

/** How many records `filter` keeps. */
export function countRecords(db: DatabaseSync, filter: RecordFilter = {}): number {
  const { sql, params } = whereOf(filter);
  const row = db.prepare(`SELECT count(*) AS n FROM records ${sql}`).get(...params) as {
    n: number;
  };
  return Number(row.n);
}

/** The records `filter` keeps, in the order each was first seen, `limit` from `offset`. */
export function listRecords(
  db: DatabaseSync,
  filter: RecordFilter,
  offset: number,
  limit: number,
): ManifestRow[] {
  const { sql, params } = whereOf(filter);
  const select = db.prepare(
    `SELECT ${MANIFEST_COLUMNS.join(", ")} FROM records ${sql} ORDER BY seq LIMIT ? OFFSET ?`,
  );
  select.setReturnArrays(true);
  return (select.all(...params, limit, offset) as unknown as unknown[][]).map(toRow);
}

/** One record by id. */
export function recordById(db: DatabaseSync, id: string): ManifestRow | undefined {
  const select = db.prepare(`SELECT ${MANIFEST_COLUMNS.join(", ")} FROM records WHERE id = ?`);
  select.setReturnArrays(true);
  const values = select.get(toDb(id)) as unknown as unknown[] | undefined;
  return values ? toRow(values) : undefined;
}

/** The distinct non-empty values of a column among the records, sorted. */
export function distinctValues(
  db: DatabaseSync,
  column: "category" | "fold" | "split" | "status",
): string[] {
  const select = db.prepare(`SELECT DISTINCT ${column} FROM records WHERE ${column} != ''`);
  select.setReturnArrays(true);
  return (select.all() as unknown as string[][]).map(([v]) => fromDb(v!)).sort();
}

/** The sources the records came from (the page log's), and `NOT_IN_PAGE_LOG` where one is not. */
export function recordSources(db: DatabaseSync): string[] {
  const select = db.prepare(
    `SELECT DISTINCT coalesce(p.source_url, ?) FROM (SELECT DISTINCT page_url FROM records) r ` +
      `LEFT JOIN pages p ON p.key = r.page_url AND p.status != 'complete' AND p.page_url != ''`,
  );
  select.setReturnArrays(true);
  return (select.all(NOT_IN_PAGE_LOG) as unknown as string[][])
    .map(([v]) => fromDb(v!)).filter(Boolean).sort();
}

/**
 * The records of one person: those of `ids`, and then every record sharing an image or a face
 * identity with them, until none is added (forget's rule, `rowsOfPerson`). Each round is one
 * query; a person has a handful of records, so a few rounds.
 */
export function recordsOfPerson(db: DatabaseSync, ids: string[]): ManifestRow[] {
  const found = new Map<string, ManifestRow>();
  const select = db.prepare(
    `SELECT ${MANIFEST_COLUMNS.join(", ")} FROM records WHERE ` +
      "id IN (SELECT value FROM json_each(?)) OR " +
      "(sha256 != '' AND sha256 IN (SELECT value FROM json_each(?))) OR " +
      "(identity != '' AND identity IN (SELECT value FROM json_each(?))) ORDER BY seq",
  );
  select.setReturnArrays(true);
  let seedIds = ids;
  let images: string[] = [];
  let identities: string[] = [];
  for (;;) {
    const rows = (select.all(
      JSON.stringify(seedIds.map(toDb)),
      JSON.stringify(images.map(toDb)),
      JSON.stringify(identities.map(toDb)),
    ) as unknown as unknown[][]).map(toRow);
    const before = found.size;
    for (const row of rows) found.set(row.id, row);
    if (found.size === before && before > 0) break;
    if (found.size === 0) break;
    const all = [...found.values()];
    seedIds = all.map((row) => row.id);
    images = [...new Set(all.map((row) => row.sha256).filter(Boolean))];
    // A row's identity, or its own id named as another's identity, ties them.
    identities = [...new Set(all.flatMap((row) => [row.identity, row.id]).filter(Boolean))];
  }
  return [...found.values()];
}
