/**
 * `crop`: autocrop for a folder. One aligned face crop per input image with a face; every other
 * file (no face, too small, not an image) goes to the reject folder, never to the output.
 */
import { copyFile, mkdir, rename } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import pLimit from "p-limit";
import { FaceWorkerPool } from "../models/faces/worker_pool.ts";
import type { CropFormat, FaceExtraction, FaceOptions } from "../models/faces/faces.ts";
import { FaceInputError } from "../models/faces/face_defaults.ts";
import { setSessionThreads } from "../models/native/onnx_runtime.ts";

/**
 * Up to this many files, `crop` with no `workers` given runs the face nets on its own thread
 * with ONNX Runtime's threads on every core, instead of a worker per core: each worker loads
 * tfjs, sharp and the nets (about 0.8 s of CPU), which a small folder does not pay back. On
 * 198 congress portraits (two cores, `chrt -f 10`, medians of 3): 3.10 s wall and 4.4 s of CPU
 * on one thread against 3.49 s and 6.0 s on two workers, the same crops to the byte; on 873
 * the two workers were ahead (7.6–8.4 s against 8.2–10.1 s).
 */
export const ONE_THREAD_MAX_FILES = 400;

/**
 * The face nets on this thread, loaded on first call: with workers, this thread only reads and
 * writes files and never loads tfjs, face-api or ONNX Runtime.
 */
function faceModule(): Promise<typeof import("../models/faces/faces.ts")> {
  return import(new URL("../models/faces/faces.ts", import.meta.url).href);
}

/**
 * Starts loading what `cropImage` needs, so that it loads while the caller reads the image.
 * Its sessions compute on every core (`setSessionThreads`) unless `threads` says otherwise.
 */
export function prepareCropImage(threads = navigator.hardwareConcurrency || 1): void {
  setSessionThreads(threads);
  faceModule().then((faces) => faces.prepareFaces({ describe: false })).catch(() => {});
  import("sharp").catch(() => {});
}

/** Output formats kept as they came; anything else (GIF, TIFF, …) is written as PNG. */
const KEPT_FORMATS: Record<string, CropFormat> = {
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
   * Face worker threads; 0 or 1 runs the face nets on this thread (its sessions on one thread).
   * @default one per core, or for up to ONE_THREAD_MAX_FILES files this thread, its sessions
   *   on every core
   */
  workers?: number;
  /** Called per rejected file with its name and reason. */
  onReject?: (file: string, reason: string) => void;
}

/**
 * The files directly in `input`, hidden ones left out. A symbolic link counts as the file it
 * points to (folders of links are common, e.g. a dataset split made with `ln -s`); a link that
 * points nowhere is listed with its reason, a link to a folder is skipped like a folder.
 */
async function imageFiles(
  input: string,
): Promise<{ files: string[]; brokenLinks: Map<string, string> }> {
  const files: string[] = [];
  const brokenLinks = new Map<string, string>();
  for await (const entry of Deno.readDir(input)) {
    if (entry.name.startsWith(".")) continue;
    if (entry.isFile) files.push(entry.name);
    if (!entry.isSymlink) continue;
    try {
      if ((await Deno.stat(join(input, entry.name))).isFile) files.push(entry.name);
    } catch {
      files.push(entry.name);
      brokenLinks.set(entry.name, "unreadable: a symbolic link to nothing");
    }
  }
  return { files: files.sort(), brokenLinks };
}

/** A crop of one image, or why there is none. */
export type CropResult = { ok: true; bytes: Uint8Array; format: string } | {
  ok: false;
  reason: string;
};

/**
 * Crops one image given as bytes (`crop -i - -o -`): the largest face, in the input's format
 * when that is JPEG, PNG or WebP, else PNG. Runs the face nets on this thread.
 */
export async function cropImage(bytes: Uint8Array, options: FaceOptions): Promise<CropResult> {
  const { extractFaces } = await faceModule();
  const { default: sharp } = await import("sharp");
  // An unreadable header is extractFaces' to report; its format does not matter then.
  const input = await sharp(bytes).metadata().then((m) => m.format, () => undefined);
  const format = input === "jpeg" || input === "webp" ? input : "png";
  let extraction: FaceExtraction;
  try {
    extraction = await extractFaces(bytes, { ...options, describe: false, cropFormat: format });
  } catch (error) {
    if (!(error instanceof FaceInputError)) throw error;
    return { ok: false, reason: error.message };
  }
  const face = extraction.faces[0];
  if (!face) return { ok: false, reason: extraction.rejection ?? "no_face" };
  return { ok: true, bytes: face.crop, format };
}

/** Crops every image file directly in `input` (not its subfolders), links followed. */
export async function cropFolder(options: CropFolderOptions): Promise<CropSummary> {
  const {
    input,
    output,
    reject,
    move = false,
    workers: workersGiven,
    onReject,
    ...faceOptions
  } = options;
  const { files, brokenLinks } = await imageFiles(input);
  await mkdir(output, { recursive: true });
  if (reject !== undefined) await mkdir(reject, { recursive: true });
  const summary: CropSummary = { files: files.length, cropped: 0, rejected: 0, reasons: {} };
  const cores = navigator.hardwareConcurrency || 1;
  const oneThread = workersGiven === undefined && files.length <= ONE_THREAD_MAX_FILES;
  const workers = workersGiven ?? cores;
  // No more workers than files: each loads its own engine and nets. One file runs here.
  const poolSize = oneThread ? 1 : Math.min(workers, files.length);
  const pool = poolSize > 1 ? new FaceWorkerPool({ workers: poolSize }) : undefined;
  // On this thread by choice, the sessions use every core; asked for one worker, one core.
  if (!pool) setSessionThreads(oneThread ? cores : 1);
  const here = pool ? undefined : faceModule().then(async (faces) => {
    await faces.prepareFaces({ describe: false });
    return faces;
  });
  here?.catch(() => {});
  // A crop needs no descriptor, which is half of the face work, and comes encoded as its file
  // will be, so the main thread only reads and writes.
  const extract = async (bytes: Uint8Array, cropFormat: CropFormat) => {
    const cropOptions = { ...faceOptions, describe: false, cropFormat };
    return pool
      ? await pool.extractFaces(bytes, cropOptions)
      : await (await here!).extractFaces(bytes, cropOptions);
  };
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
    // A broken link has nothing to copy; it is reported all the same.
    if (brokenLinks.has(name)) return;
    if (move) await rename(from, to).catch(() => copyFile(from, to).then(() => Deno.remove(from)));
    else await copyFile(from, to);
  };
  try {
    await Promise.all(files.map((name) =>
      limit(async () => {
        let extraction: FaceExtraction;
        const broken = brokenLinks.get(name);
        if (broken) return rejectFile(name, broken);
        const format = KEPT_FORMATS[extname(name).toLowerCase()];
        try {
          extraction = await extract(await Deno.readFile(join(input, name)), format ?? "png");
        } catch (error) {
          if (!(error instanceof FaceInputError)) throw error;
          return rejectFile(name, error.message);
        }
        const face = extraction.faces[0];
        if (!face) return rejectFile(name, extraction.rejection ?? "no_face");
        const target = format ? name : `${basename(name, extname(name))}.png`;
        await Deno.writeFile(join(output, target), face.crop);
        summary.cropped++;
      })
    ));
  } finally {
    pool?.close();
  }
  return summary;
}
