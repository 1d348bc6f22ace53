/**
 * What every export format shares: the writer interface, the manifest columns an export keeps,
 * and `OutDir`, the one way a format puts a file under OUT (inside it, never over a file).
 */
import { dirname, join, resolve, sep } from "node:path";
import type { ManifestColumn } from "../../store/manifest.ts";
import type { ExportItem, ExportWhat } from "./records.ts";

export const FORMAT_NAMES = ["imagefolder", "hf", "parquet", "webdataset"] as const;
export type FormatName = typeof FORMAT_NAMES[number];

export interface FormatContext {
  what: ExportWhat;
  /** Whether the face stage's descriptor and embeddings go in (parquet, webdataset). */
  embeddings: boolean;
  /** Most bytes in one WebDataset shard. */
  shardSize: number;
}

/** One layout of one format under a folder of OUT. */
export interface FormatWriter {
  /** Writes one face; gives where it lives (paths under OUT, `file#row` inside a file). */
  add(item: ExportItem): Promise<string[]>;
  /** Finishes the files (metadata, footers). */
  close(): Promise<void>;
}

/** The manifest columns an export keeps, beside the file it names; status and stage go. */
export const KEPT_COLUMNS = [
  "id",
  "category",
  "name",
  "role",
  "image_url",
  "page_url",
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
  "fold",
  "identity",
] as const satisfies readonly ManifestColumn[];

/** The face's box in the original image (px): x, y, width, height, or nulls where unknown. */
export function faceBox(item: ExportItem): [number, number, number, number] | null {
  const parts = item.row.face_box.split(" ").map(Number);
  return parts.length === 4 && parts.every(Number.isFinite)
    ? parts as [number, number, number, number]
    : null;
}

/** A record's metadata as strings: the kept manifest columns and its split in this layout. */
export function metadataOf(item: ExportItem): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const column of KEPT_COLUMNS) meta[column] = item.row[column];
  meta.split = item.split;
  return meta;
}

/** Sub-folders for the images a layout of files gets: one per kind with `--what both`. */
export function imageKinds(what: ExportWhat): ("crop" | "original")[] {
  return what === "both" ? ["crop", "original"] : what === "crops" ? ["crop"] : ["original"];
}

/**
 * OUT as a place to write: every path is checked to stay inside it (its real path, so a link
 * planted in OUT cannot lead out), and a file is created new, never written over.
 */
export class OutDir {
  readonly #checked = new Set<string>();

  constructor(readonly root: string) {}

  /** The absolute path of `relative`, which must stay inside OUT. */
  path(relative: string): string {
    const parts = relative.split("/");
    if (parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\"))) {
      throw new RangeError(`Cannot write '${relative}': not a plain path inside OUT`);
    }
    const path = resolve(this.root, ...parts);
    if (!path.startsWith(resolve(this.root) + sep)) {
      throw new RangeError(`Cannot write '${relative}': it is outside OUT`);
    }
    return path;
  }

  /**
   * Makes the folders of `relative` one by one below OUT, refusing any that exists as a link
   * or a file: a link planted in OUT cannot lead a write outside it.
   */
  async folderFor(relative: string): Promise<string> {
    const path = this.path(relative);
    const dir = dirname(path);
    if (this.#checked.has(dir)) return path;
    let current = resolve(this.root);
    for (const part of relative.split("/").slice(0, -1)) {
      current = join(current, part);
      if (this.#checked.has(current)) continue;
      try {
        const info = await Deno.lstat(current);
        if (info.isSymlink || !info.isDirectory) {
          throw new RangeError(
            `Cannot write '${relative}': '${part}' in OUT is a link or a file, and could lead ` +
              `outside OUT`,
          );
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        await Deno.mkdir(current);
      }
      this.#checked.add(current);
    }
    return path;
  }

  /** Writes a new file; an existing one (which this export did not write) is an error. */
  async writeNew(relative: string, bytes: Uint8Array | string): Promise<void> {
    const path = await this.folderFor(relative);
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    await Deno.writeFile(path, data, { createNew: true });
  }

  /** Opens a new file for appending, created new as `writeNew` does. */
  async createNew(relative: string): Promise<Deno.FsFile> {
    const path = await this.folderFor(relative);
    return await Deno.open(path, { write: true, createNew: true });
  }
}

/** `a/b` joined for OUT's relative paths (always `/`, whatever the platform). */
export function rel(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/");
}
