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
import { writeFileAtomicSync } from "../core/files.ts";

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

type AnyRecord = Partial<FaceRecord & SplitRecord> & { id: string };

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

export interface ManifestOptions {
  /**
   * Most milliseconds a completed record waits before it is on disk.
   * @default 500
   */
  flushIntervalMs?: number;
}

/**
 * The manifest `<data dir>/index.csv`: one row per record ever seen, keyed by id.
 * Rows are written as records complete, by atomic replace (write a temp file, rename),
 * so a run that dies leaves the last complete manifest behind, never a torn one.
 */
export class Manifest {
  readonly path: string;
  readonly #rows = new Map<string, ManifestRow>();
  readonly #flushIntervalMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #dirty = false;

  private constructor(path: string, rows: ManifestRow[], options: ManifestOptions) {
    this.path = path;
    for (const row of rows) this.#rows.set(row.id, row);
    const { flushIntervalMs = 500 } = options;
    this.#flushIntervalMs = flushIntervalMs;
  }

  /** Opens the manifest at `path`, loading rows from an earlier run if the file exists. */
  static async open(path: string, options: ManifestOptions = {}): Promise<Manifest> {
    let rows: ManifestRow[] = [];
    try {
      rows = parseManifest(await Deno.readTextFile(path));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    return new Manifest(path, rows, options);
  }

  get(id: string): ManifestRow | undefined {
    return this.#rows.get(id);
  }

  rows(): ManifestRow[] {
    return [...this.#rows.values()];
  }

  get size(): number {
    return this.#rows.size;
  }

  /** Records an outcome; it reaches disk within `flushIntervalMs`. */
  record(outcome: Outcome<AnyRecord>, stage: StageName): void {
    this.set(outcomeToRow(outcome, stage));
  }

  set(row: ManifestRow): void {
    this.#rows.set(row.id, row);
    this.#scheduleFlush();
  }

  delete(id: string): boolean {
    const deleted = this.#rows.delete(id);
    if (deleted) this.#scheduleFlush();
    return deleted;
  }

  #scheduleFlush(): void {
    this.#dirty = true;
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flushSync();
    }, this.#flushIntervalMs);
  }

  /** Writes pending rows now. Synchronous so it can run from an unload or signal handler. */
  flushSync(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#dirty) return;
    writeFileAtomicSync(this.path, stringifyManifest(this.#rows.values()));
    this.#dirty = false;
  }
}
