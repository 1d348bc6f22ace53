/**
 * `crop`: autocrop for a folder. One aligned face crop per input image with a face; every other
 * file (no face, too small, not an image) goes to the reject folder, never to the output.
 */
import { copyFile, mkdir, rename } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import pLimit from "p-limit";
import sharp from "sharp";
import { FaceWorkerPool } from "../models/faces/worker_pool.ts";
import {
  extractFaces,
  type FaceExtraction,
  FaceInputError,
  type FaceOptions,
} from "../models/faces/faces.ts";

/** Output formats kept as they came; anything else (GIF, TIFF, …) is written as PNG. */
const KEPT_FORMATS: Record<string, "jpeg" | "png" | "webp"> = {
  ".jpg": "jpeg",
  ".jpeg": "jpeg",
  ".png": "png",
  ".webp": "webp",
};

export interface CropSummary {
  files: number;
  cropped: number;
  rejected: number;
  /** Rejections per reason code (`no_face`, `not_an_image`, …). */
  reasons: Record<string, number>;
}

export interface CropFolderOptions extends FaceOptions {
  input: string;
  output: string;
  /** Where rejected files go; without it they are only reported. */
  reject?: string;
  /**
   * Move rejected files instead of copying them.
   * @default false
   */
  move?: boolean;
  /**
   * Face worker threads; 0 runs the face nets on this thread.
   * @default navigator.hardwareConcurrency
   */
  workers?: number;
  /** Called per rejected file with its name and reason. */
  onReject?: (file: string, reason: string) => void;
}

/** Crops every image file directly in `input` (not its subfolders). */
export async function cropFolder(options: CropFolderOptions): Promise<CropSummary> {
  const {
    input,
    output,
    reject,
    move = false,
    workers = navigator.hardwareConcurrency,
    onReject,
    ...faceOptions
  } = options;
  const files: string[] = [];
  for await (const entry of Deno.readDir(input)) {
    if (entry.isFile && !entry.name.startsWith(".")) files.push(entry.name);
  }
  files.sort();
  await mkdir(output, { recursive: true });
  if (reject !== undefined) await mkdir(reject, { recursive: true });
  const summary: CropSummary = { files: files.length, cropped: 0, rejected: 0, reasons: {} };
  const pool = workers > 0 ? new FaceWorkerPool({ workers }) : undefined;
  // A crop needs no descriptor, which is half of the face work.
  const cropOptions = { ...faceOptions, describe: false };
  const extract = (bytes: Uint8Array) =>
    pool ? pool.extractFaces(bytes, cropOptions) : extractFaces(bytes, cropOptions);
  // Bounds the bytes held in memory: a few files per worker, not the whole folder.
  const limit = pLimit(Math.max(1, 2 * workers));
  const rejectFile = async (name: string, reason: string) => {
    summary.rejected++;
    const code = reason.split(":")[0]!;
    summary.reasons[code] = (summary.reasons[code] ?? 0) + 1;
    onReject?.(name, reason);
    if (reject === undefined) return;
    const from = join(input, name);
    const to = join(reject, name);
    if (move) await rename(from, to).catch(() => copyFile(from, to).then(() => Deno.remove(from)));
    else await copyFile(from, to);
  };
  try {
    await Promise.all(files.map((name) =>
      limit(async () => {
        let extraction: FaceExtraction;
        try {
          extraction = await extract(await Deno.readFile(join(input, name)));
        } catch (error) {
          if (!(error instanceof FaceInputError)) throw error;
          return rejectFile(name, error.message);
        }
        const face = extraction.faces[0];
        if (!face) return rejectFile(name, extraction.rejection ?? "no_face");
        const extension = extname(name).toLowerCase();
        const format = KEPT_FORMATS[extension];
        const target = format ? name : `${basename(name, extname(name))}.png`;
        const encoded = format === "jpeg"
          ? await sharp(face.crop).jpeg({ quality: 92 }).toBuffer()
          : format === "webp"
          ? await sharp(face.crop).webp({ quality: 92 }).toBuffer()
          : face.crop;
        await Deno.writeFile(join(output, target), encoded);
        summary.cropped++;
      })
    ));
  } finally {
    pool?.close();
  }
  return summary;
}
