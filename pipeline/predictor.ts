/**
 * The predictor behind `predict` (and the web UI): loads a trained model and the face nets once,
 * then classifies every face in an image, or reads the image a path or URL names.
 */
import type { FaceNetworkName } from "../models/faces/face_networks.ts";
import { join } from "node:path";
import sharp from "sharp";
import type { HttpClient } from "../net/http.ts";
import {
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_MAX_IMAGE_PIXELS,
  sniffImageType,
} from "../stages/image_type.ts";
import { type Classifier, inputsOf, type ModelKind } from "../models/classifier.ts";
import {
  checkDetector,
  describeWholeImage,
  type DetectorName,
  type ExtractedFace,
  extractFaces,
  FACE_DEFAULTS,
  FaceInputError,
  type FaceTimings,
} from "../models/faces/faces.ts";
import type { Box } from "../core/types.ts";
import { dataPaths, REPORT_FILES } from "../store/paths.ts";

/** The data dirs searched, in order, when neither `--model` nor `--data` is given. */
export const DEFAULT_DATA_DIRS = ["facefield-data", "facefield-demo"];

/**
 * The kinds `predict` falls back on, in order, where no cross-validation ranks them: the face
 * models by their congress dev figures (the ensemble and the probes first, the seed's cnn
 * last), the models that read the photo around the face after every face model.
 */
const PREDICT_ORDER: readonly ModelKind[] = [
  "ensemble",
  "descriptor",
  "mobilefacenet",
  "landmarks",
  "faceres",
  "embedding",
  "mobilefacenet-tuned",
  "cnn",
  "portrait",
  "context",
];

/**
 * The data dir's model for `predict` when none is named. After a cross-validated run, the
 * kind with the best mean accuracy over the folds (each fold's model scored on faces it never
 * saw: model choice by cross-validation). After a run on one split, `PREDICT_ORDER`: ranking by
 * that split's test accuracy would pick the model on its test faces. Without a report, the
 * same order.
 */
export async function bestModelDir(dataDir: string): Promise<string | undefined> {
  const isDir = (path: string) => Deno.stat(path).then((s) => s.isDirectory, () => false);
  const ranked: { kind: string; accuracy: number }[] = [];
  try {
    const report = JSON.parse(
      await Deno.readTextFile(join(dataPaths(dataDir).reports, REPORT_FILES.metrics)),
    );
    for (const model of report.models ?? []) {
      const accuracy = model?.metrics?.folds?.mean;
      if (typeof model?.kind === "string" && typeof accuracy === "number") {
        ranked.push({ kind: model.kind, accuracy });
      }
    }
  } catch {
    // No report yet: the fixed order below.
  }
  ranked.sort((a, b) => b.accuracy - a.accuracy);
  for (const kind of [...ranked.map((k) => k.kind), ...PREDICT_ORDER]) {
    const dir = join(dataDir, "models", kind);
    if (await isDir(dir)) return dir;
  }
  return undefined;
}

/** Largest image accepted from a file, a URL or stdin: the downloader's (and the web app's). */
export const MAX_IMAGE_BYTES = DEFAULT_MAX_IMAGE_BYTES;
/** Most pixels an image may have: the downloader's guard against decompression bombs. */
export const MAX_IMAGE_PIXELS = DEFAULT_MAX_IMAGE_PIXELS;

/**
 * Checks image bytes before any face work, as the downloader does and with its reason codes:
 * `not_an_image`, `too_large`, `unsupported_format` (BMP, ICO, SVG), `too_many_pixels`,
 * `decode_failed`. Returns the upright size; throws `InputError`. `predict` and the web app's
 * Try it both call it, so they refuse the same images for the same reasons.
 */
export async function checkImageBytes(
  bytes: Uint8Array,
): Promise<{ width: number; height: number }> {
  if (bytes.length === 0) throw new InputError("not_an_image: the input is empty");
  if (bytes.length > MAX_IMAGE_BYTES) {
    throw new InputError(`too_large: ${bytes.length} bytes > ${MAX_IMAGE_BYTES}`);
  }
  const sniffed = sniffImageType(bytes);
  if (sniffed.kind === "unknown") {
    throw new InputError("not_an_image: the bytes match no image format");
  }
  if (sniffed.kind !== "sharp") {
    const format = sniffed.kind === "svg" ? "svg" : sniffed.format;
    throw new InputError(`unsupported_format: ${format} images cannot be read`);
  }
  let metadata: sharp.Metadata;
  try {
    metadata = await sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS }).metadata();
  } catch (error) {
    const message = String((error as Error).message).split("\n")[0]!;
    if (/pixel limit/i.test(message)) {
      throw new InputError(`too_many_pixels: over ${MAX_IMAGE_PIXELS} pixels`);
    }
    throw new InputError(`decode_failed: ${message}`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new InputError(`too_many_pixels: ${width}x${height} is over ${MAX_IMAGE_PIXELS}`);
  }
  const quarterTurn = (metadata.orientation ?? 1) >= 5;
  return quarterTurn ? { width: height, height: width } : { width, height };
}

/** One line of output: a face, a whole image, no face, or an input that failed. */
export type PredictionLine =
  | {
    input: string;
    result: "face" | "whole_image";
    /** 1-based index of the face in the image, largest first. */
    face: number;
    faces: number;
    box: Box;
    /** Detector score; 0 for the whole image. */
    score: number;
    label: string;
    probability: number;
    /** Class → probability, most likely first (top k with `--top`). */
    probabilities: Record<string, number>;
  }
  | { input: string; result: "no_face"; reason: string }
  | { input: string; error: string };

/** An input that cannot be predicted; `message` starts with a code (`not_an_image: …`). */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

export interface PredictorOptions {
  /**
   * Classify the whole image (its centre square) when no face is found.
   * @default false
   */
  wholeImage?: boolean;
  /**
   * Classes listed per face, most likely first.
   * @default all classes
   */
  top?: number;
  /**
   * Face detector.
   * @default "auto"
   */
  detector?: DetectorName;
  /** Adds the milliseconds spent per part of the face work. */
  timings?: FaceTimings;
}

/** The faces of one image, largest first, or why there is none. */
export type FoundFaces =
  | { result: "face" | "whole_image"; faces: ExtractedFace[] }
  | { result: "no_face"; reason: string };

const round = (value: number, digits: number) => Number(value.toFixed(digits));

/** Turns image bytes into result lines with a loaded classifier. */
export class Predictor {
  readonly #classifier: Classifier;
  readonly #wholeImage: boolean;
  readonly #top: number;
  readonly #detector: DetectorName;
  readonly #timings: FaceTimings | undefined;
  /** What the face stage computes for this model: the descriptor, the shipped networks. */
  readonly #inputs: { crop: boolean; describe: boolean; networks: FaceNetworkName[] };
  /** Milliseconds spent in the classifier, summed. */
  classifyMs = 0;

  constructor(classifier: Classifier, options: PredictorOptions = {}) {
    const classes = classifier.metadata.classes.length;
    const { wholeImage = false, top = classes, detector = FACE_DEFAULTS.detector, timings } =
      options;
    if (!Number.isInteger(top) || top < 1) {
      throw new RangeError(`'top' must be a positive integer: got ${top}`);
    }
    checkDetector(detector);
    this.#classifier = classifier;
    this.#wholeImage = wholeImage;
    this.#top = Math.min(top, classes);
    this.#detector = detector;
    this.#timings = timings;
    this.#inputs = inputsOf(classifier.metadata);
  }

  /** Result lines for one image: one per face, largest first. Throws `InputError` on bad bytes. */
  async predict(input: string, bytes: Uint8Array): Promise<PredictionLine[]> {
    return await this.classify(input, await this.findFaces(bytes, { crop: this.#inputs.crop }));
  }

  /**
   * The face work of `predict` alone, so several models can classify one image's faces (the
   * web app's Try it) without finding them again. Throws `InputError` on bad bytes.
   * `describe` computes the descriptor, which a model on descriptors needs (default: when
   * this predictor's model does); one call for several models says whether any of them does.
   * `crop: false` leaves each face's crop empty, for models that read none (default: cut it).
   */
  async findFaces(
    bytes: Uint8Array,
    {
      describe = this.#inputs.describe,
      networks = this.#inputs.networks,
      crop = true,
    }: { describe?: boolean; networks?: FaceNetworkName[]; crop?: boolean } = {},
  ): Promise<FoundFaces> {
    await checkImageBytes(bytes);
    let faces: ExtractedFace[];
    let result: "face" | "whole_image" = "face";
    try {
      const extraction = await extractFaces(bytes, {
        allFaces: true,
        detector: this.#detector,
        networks,
        timings: this.#timings,
        // A model on crops needs no descriptor, which is half of the face work.
        describe,
        crop,
      });
      faces = extraction.faces;
      if (faces.length === 0) {
        if (!this.#wholeImage) {
          return { result: "no_face", reason: extraction.rejection ?? "no_face" };
        }
        faces = [await describeWholeImage(bytes, { networks })];
        result = "whole_image";
      }
    } catch (error) {
      if (error instanceof FaceInputError) throw new InputError(error.message);
      throw error;
    }
    return { result, faces };
  }

  /** Result lines for faces `findFaces` found: one per face, as `predict` gives them. */
  async classify(input: string, found: FoundFaces): Promise<PredictionLine[]> {
    if (found.result === "no_face") return [{ input, result: "no_face", reason: found.reason }];
    const { faces, result } = found;
    const started = performance.now();
    const probabilities = await this.#classifier.predict(faces);
    this.classifyMs += performance.now() - started;
    const classes = this.#classifier.metadata.classes;
    return faces.map((face, i) => {
      const ranked = [...probabilities[i]!]
        .map((p, c) => [classes[c]!, p] as const)
        .sort((a, b) => b[1] - a[1]);
      const [label, probability] = ranked[0]!;
      return {
        input,
        result,
        face: i + 1,
        faces: faces.length,
        box: {
          x: Math.round(face.box.x),
          y: Math.round(face.box.y),
          width: Math.round(face.box.width),
          height: Math.round(face.box.height),
        },
        score: round(face.score, 4),
        label,
        probability: round(probability, 4),
        probabilities: Object.fromEntries(
          ranked.slice(0, this.#top).map(([name, p]) => [name, round(p, 4)]),
        ),
      };
    });
  }
}

/** Reads the image an input line names: a file path or an http(s) URL. */
export async function readInput(line: string, http: HttpClient): Promise<Uint8Array> {
  if (/^https?:\/\//i.test(line)) {
    const response = await http.get(line, { maxBytes: MAX_IMAGE_BYTES, accept: "image/*" });
    if (!response.ok) throw new InputError(`unreachable: ${response.reason}`);
    return response.body;
  }
  try {
    const info = await Deno.stat(line);
    if (info.isDirectory) throw new InputError("not_a_file: it is a directory");
    if (info.size > MAX_IMAGE_BYTES) {
      throw new InputError(`too_large: ${info.size} bytes > ${MAX_IMAGE_BYTES}`);
    }
    return await Deno.readFile(line);
  } catch (error) {
    if (error instanceof InputError) throw error;
    if (error instanceof Deno.errors.NotFound) throw new InputError("missing_file: no such file");
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new InputError("unreadable: permission denied");
    }
    throw new InputError(`unreadable: ${(error as Error).message}`);
  }
}
