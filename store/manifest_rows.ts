/**
 * The manifest's rows as `index.csv` has them: the columns, the cell escaping, and the
 * conversions between outcomes, rows and records. Pure: no file or database here.
 */
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import type {
  Dropped,
  FaceRecord,
  ImageRecord,
  Outcome,
  PersonRecord,
  SplitRecord,
  StageName,
} from "../core/types.ts";

/** The seed study's columns first, then provenance, outcome and per-stage results. */
export const MANIFEST_COLUMNS = [
  "id",
  "category",
  "image_url",
  "name",
  "role",
  "page_url",
  "status",
  "stage",
  "reason",
  "sha256",
  "format",
  "width",
  "height",
  "bytes",
  "face_count",
  "face_score",
  "face_box",
  "face_angle",
  "detector",
  "split",
  "fold",
  "identity",
  "updated_at",
] as const;

export type ManifestColumn = typeof MANIFEST_COLUMNS[number];
export type ManifestRow = Record<ManifestColumn, string>;

/** Cells a spreadsheet would run as a formula start with one of these. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * Whether `value` carries our marker: an apostrophe before a formula character or before
 * another apostrophe. Escaping adds the marker exactly where this would otherwise hold or a
 * formula would start, so unescaping removes it exactly there, and every string round-trips.
 */
function marked(value: string): boolean {
  if (!value.startsWith("'")) return false;
  const rest = value.slice(1);
  return FORMULA_START.test(rest) || rest.startsWith("'");
}

/**
 * Neutralises a cell against CSV injection by a leading apostrophe, as OWASP advises. A value
 * that would look escaped (`'=x`, `''x`) gets one more apostrophe, so that it comes back as it
 * was; a plain leading apostrophe (`'t Hooft`) is left alone.
 */
export function escapeCell(value: string): string {
  return FORMULA_START.test(value) || marked(value) ? `'${value}` : value;
}

/** Inverse of `escapeCell`: `unescapeCell(escapeCell(s)) === s` for every string. */
export function unescapeCell(value: string): string {
  return marked(value) ? value.slice(1) : value;
}

export type AnyRecord = Partial<FaceRecord & SplitRecord> & { id: string };

/** Flattens an outcome to a manifest row. `stage` is the last stage the record reached. */
export function outcomeToRow(outcome: Outcome<AnyRecord>, stage: StageName): ManifestRow {
  const record: AnyRecord = outcome.record;
  const dropped = outcome.status === "ok" ? undefined : outcome as Dropped;
  const num = (v: number | undefined | null, digits?: number) =>
    v === undefined || v === null ? "" : digits === undefined ? String(v) : v.toFixed(digits);
  const box = record.faceBox;
  return {
    id: record.id,
    category: record.category ?? "",
    image_url: record.imageUrl ?? "",
    name: record.name ?? "",
    role: record.role ?? "",
    page_url: record.pageUrl ?? "",
    status: outcome.status,
    stage: dropped?.stage ?? stage,
    reason: dropped?.reason ?? "",
    sha256: record.sha256 ?? "",
    format: record.format ?? "",
    width: num(record.width),
    height: num(record.height),
    bytes: num(record.bytes),
    face_count: num(record.faceCount),
    face_score: num(record.faceScore, 4),
    face_box: box ? [box.x, box.y, box.width, box.height].map((v) => Math.round(v)).join(" ") : "",
    face_angle: num(record.faceAngle, 2),
    detector: record.detector ?? "",
    split: record.split ?? "",
    fold: num(record.fold),
    identity: record.identity ?? "",
    updated_at: new Date().toISOString(),
  };
}

/** Parses a manifest CSV into rows, tolerating columns added by later versions. */
/** A manifest row back as the person record it was made from: `outcomeToRow`'s inverse. */
export function rowToPerson(row: ManifestRow): PersonRecord {
  return {
    id: row.id,
    category: row.category,
    imageUrl: row.image_url,
    name: row.name,
    ...(row.role ? { role: row.role } : {}),
    pageUrl: row.page_url,
  };
}

/** A row's downloaded image, given where the cache keeps its bytes; undefined before download. */
export function rowToImage(row: ManifestRow, imagePath: string): ImageRecord | undefined {
  if (!row.sha256) return undefined;
  return {
    ...rowToPerson(row),
    sha256: row.sha256,
    imagePath,
    format: row.format,
    width: Number(row.width),
    height: Number(row.height),
    bytes: Number(row.bytes),
  };
}

export function parseManifest(text: string): ManifestRow[] {
  const records = parse(text, { columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
  return records.map((r) => {
    const row = {} as ManifestRow;
    for (const column of MANIFEST_COLUMNS) row[column] = unescapeCell(r[column] ?? "");
    return row;
  });
}

export function stringifyManifest(rows: Iterable<ManifestRow>): string {
  const data = [...rows].map((row) => MANIFEST_COLUMNS.map((c) => escapeCell(row[c])));
  return stringify(data, { header: true, columns: [...MANIFEST_COLUMNS] });
}

/**
 * `stringifyManifest` in pieces: the header, then `chunkRows` rows at a time, for a writer that
 * streams `index.csv` without holding its whole text.
 */
export function* manifestCsvChunks(
  rows: Iterable<ManifestRow>,
  chunkRows = 2000,
): Generator<string> {
  yield stringify([], { header: true, columns: [...MANIFEST_COLUMNS] });
  let batch: string[][] = [];
  for (const row of rows) {
    batch.push(MANIFEST_COLUMNS.map((c) => escapeCell(row[c] ?? "")));
    if (batch.length >= chunkRows) {
      yield stringify(batch);
      batch = [];
    }
  }
  if (batch.length) yield stringify(batch);
}
