/**
 * What an export holds: the data set's faces from the manifest (through its API), minus whatever
 * the removal list names and the export's filters leave out, each with its split in the layout
 * and safe file names; then, one at a time, its image bytes (crop, original or both).
 */
import { join } from "node:path";
import sharp from "sharp";
import type { ManifestRow } from "../../store/manifest.ts";
import { blobPath, type DataPaths } from "../../store/paths.ts";
import type { RemovedList } from "../../store/removed.ts";
import { foldRole } from "../../core/split_rules.ts";
import type { SplitName } from "../../core/types.ts";
import { safeName } from "../../core/safe_names.ts";
import { roleExclusion, type RoleRules } from "../../stages/filter_roles.ts";
import { type FaceCacheEntry, parseFaceCacheEntry } from "../../stages/detect_faces.ts";

export type ExportWhat = "crops" | "originals" | "both";

/** Which split a record has in a layout: the run's own, or fold `fold` as the test set. */
export type SplitChoice = { kind: "manifest" } | { kind: "fold"; fold: number };

export interface SelectOptions {
  /** @default { kind: "manifest" } */
  split?: SplitChoice;
  /**
   * Lowest detector score kept.
   * @default 0
   */
  minScore?: number;
  /**
   * Categories kept, as the manifest spells them.
   * @default every category
   */
  categories?: string[];
  /** Role rules as `--roles` takes them. @default keep everyone */
  roles?: RoleRules;
}

/** One face of the export, before its bytes are read. */
export interface ExportRecord {
  row: ManifestRow;
  split: SplitName;
  /** The id as a safe file name (no dots, so it is also a WebDataset key). */
  key: string;
  /** The category as a safe folder name. */
  categoryDir: string;
}

/** An image of a record as it goes into the export. */
export interface ExportImage {
  bytes: Uint8Array;
  /** File extension without the dot: `png`, `jpg`, `webp`. */
  ext: string;
}

/** A record with its bytes: at most a few are held at once. */
export interface ExportItem extends ExportRecord {
  crop?: ExportImage;
  original?: ExportImage;
  /** The face stage's descriptor and embeddings, when the export asks for them. */
  face?: { descriptor: number[]; embeddings?: Record<string, number[]> };
}

const SPLIT_ORDER: Record<SplitName, number> = { train: 0, val: 1, test: 2 };

/**
 * The faces to export, sorted by split, category and id, and the count left out per reason.
 * A row on the removal list never passes, even where forget has not reached this manifest.
 */
export function selectRecords(
  rows: Iterable<ManifestRow>,
  removed: RemovedList,
  options: SelectOptions = {},
): { records: ExportRecord[]; excluded: Record<string, number> } {
  const { split = { kind: "manifest" }, minScore = 0, categories, roles } = options;
  const keep = categories ? new Set(categories) : undefined;
  const excluded: Record<string, number> = {};
  const leaveOut = (reason: string) => excluded[reason] = (excluded[reason] ?? 0) + 1;
  const records: ExportRecord[] = [];
  for (const row of rows) {
    if (row.status !== "ok" || !row.split || !row.sha256) continue;
    if (removed.matches({ id: row.id, name: row.name, sha256: row.sha256 })) {
      leaveOut("on_removal_list");
    } else if (keep && !keep.has(row.category)) leaveOut("category_not_asked");
    else if (minScore > 0 && !(Number(row.face_score) >= minScore)) leaveOut("below_min_score");
    else if (roles && roleExclusion(row.role || undefined, roles)) leaveOut("role_excluded");
    else {
      records.push({
        row,
        split: splitIn(row, split),
        key: safeName(row.id, { dots: false }),
        categoryDir: safeName(row.category),
      });
    }
  }
  records.sort((a, b) =>
    SPLIT_ORDER[a.split] - SPLIT_ORDER[b.split] || cmp(a.categoryDir, b.categoryDir) ||
    cmp(a.key, b.key)
  );
  return { records, excluded };
}

const cmp = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0;

function splitIn(row: ManifestRow, choice: SplitChoice): SplitName {
  const split = row.split as SplitName;
  if (choice.kind === "manifest") return split;
  if (row.fold === "") {
    throw new RangeError(
      `Cannot export fold ${choice.fold}: record ${row.id} has no fold (the run did not use --folds)`,
    );
  }
  return foldRole({ split, fold: Number(row.fold) }, choice.fold);
}

/** The folds the records were given, sorted; empty for a run without `--folds`. */
export function foldsOf(rows: Iterable<ManifestRow>): number[] {
  const folds = new Set<number>();
  for (const row of rows) {
    if (row.status === "ok" && row.split && row.fold !== "") folds.add(Number(row.fold));
  }
  return [...folds].sort((a, b) => a - b);
}

export interface LoadOptions {
  what: ExportWhat;
  /** Side of the crops (and longest side of the originals), resized; undefined keeps them. */
  size?: number;
  /** Read the face stage's descriptor and embeddings. */
  embeddings: boolean;
}

/** Image formats every reader here takes as they are; others are re-encoded as PNG. */
const KEPT_FORMATS: Record<string, string> = { jpeg: "jpg", png: "png", webp: "webp" };

/**
 * Reads records' bytes from the data dir's caches. The face cache has one folder per face
 * settings; a record's crop comes from the newest folder that has it.
 */
export class RecordLoader {
  #faceDirs: Promise<string[]> | undefined;

  constructor(readonly paths: DataPaths, readonly options: LoadOptions) {}

  /** The record with its bytes, or the reason it cannot be exported (its files are gone). */
  async load(record: ExportRecord): Promise<ExportItem | { missing: string }> {
    const { what, size, embeddings } = this.options;
    const sha = record.row.sha256;
    const item: ExportItem = { ...record };
    if (what !== "originals" || embeddings) {
      const found = await this.#face(sha, what !== "originals");
      if (!found && what !== "originals") return { missing: "crop_missing" };
      if (found?.crop) item.crop = await resized(found.crop, "png", size, "cover");
      if (embeddings && found?.entry?.status === "ok") {
        const { descriptor, embeddings: more } = found.entry.record;
        item.face = { descriptor, ...(more ? { embeddings: more } : {}) };
      }
    }
    if (what !== "crops") {
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(blobPath(this.paths.imageCache, sha));
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return { missing: "original_missing" };
        throw error;
      }
      const ext = KEPT_FORMATS[record.row.format];
      item.original = ext && size === undefined
        ? { bytes, ext }
        : await resized(bytes, "png", size, "inside");
    }
    return item;
  }

  async #face(
    sha: string,
    withCrop: boolean,
  ): Promise<{ crop?: Uint8Array; entry?: FaceCacheEntry } | undefined> {
    for (const dir of await (this.#faceDirs ??= faceSettingsDirs(this.paths))) {
      const entry = parseFaceCacheEntry(
        await Deno.readTextFile(blobPath(dir, sha, ".json")).catch(() => ""),
      );
      if (!entry || entry.status !== "ok") continue;
      if (!withCrop) return { entry };
      try {
        return { crop: await Deno.readFile(blobPath(dir, sha, ".png")), entry };
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    return undefined;
  }
}

async function resized(
  bytes: Uint8Array,
  ext: "png",
  size: number | undefined,
  fit: "cover" | "inside",
): Promise<ExportImage> {
  if (size === undefined && ext === "png" && isPng(bytes)) return { bytes, ext };
  let image = sharp(bytes);
  if (size !== undefined) image = image.resize(size, size, { fit });
  return { bytes: new Uint8Array(await image.png().toBuffer()), ext };
}

function isPng(bytes: Uint8Array): boolean {
  return bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
}

/** The face cache's settings folders, newest first (the latest run's crops win). */
async function faceSettingsDirs(paths: DataPaths): Promise<string[]> {
  const dirs: { path: string; mtime: number }[] = [];
  try {
    for await (const entry of Deno.readDir(paths.faceCache)) {
      if (!entry.isDirectory) continue;
      const path = join(paths.faceCache, entry.name);
      dirs.push({ path, mtime: (await Deno.stat(path)).mtime?.getTime() ?? 0 });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return dirs.sort((a, b) => b.mtime - a.mtime).map((d) => d.path);
}

/**
 * Maps `fn` over `items` in order with at most `window` calls in flight: reads run ahead of the
 * writer by a bounded amount, so memory stays flat whatever the number of items.
 */
export async function* aheadMap<T, U>(
  items: Iterable<T>,
  fn: (item: T) => Promise<U>,
  window: number,
): AsyncGenerator<U> {
  const pending: Promise<U>[] = [];
  for (const item of items) {
    const next = fn(item);
    next.catch(() => {}); // Seen when its turn comes; not an unhandled rejection before.
    pending.push(next);
    if (pending.length >= window) yield await pending.shift()!;
  }
  while (pending.length) yield await pending.shift()!;
}
