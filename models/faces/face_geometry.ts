/**
 * Where a face is and how it sits: the detector passes, the 68 landmarks, the geometry of
 * dlib's face chip derived from them, the face's shape, and windows sampled around it.
 */
import { sampleWindow as sampleRgbWindow } from "./resample.ts";
import {
  cropAndResize as cropAndResizePixels,
  type PixelImage,
  scaledBox,
  tinyDetections,
  tinyDetectorInput,
} from "./face_api_inputs.ts";
import { tf } from "../engine.ts";
import type { NativeFaceNets } from "../native/face_api_sessions.ts";
import type { Box } from "../../core/types.ts";
import { LANDMARK_REGIONS } from "./face_networks.ts";
import { DETECT_MAX_SIDE, LANDMARK_SIDE, SCORE_FLOOR, type Settings } from "./face_options.ts";
import { faceApi, loadNets } from "./face_engine.ts";
import type { DecodedImage } from "./decode_image.ts";
import { NativeSsd } from "./ssd_native.ts";
import type { OrtModule } from "../native/onnx_runtime.ts";

export interface Detection {
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
  if (pass.detector === "ssd" && nets) {
    const ssd = await nativeSsd(nets.ort);
    if (ssd) return await ssd.locateFaces(nets.ort, copy.tensor(), SCORE_FLOOR, SSD_MAX_RESULTS);
  }
  if (pass.detector === "ssd") await loadNets(["ssdMobilenetv1"]);
  const faceapi = await faceApi();
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
      new faceapi.SsdMobilenetv1Options({
        minConfidence: SCORE_FLOOR,
        maxResults: SSD_MAX_RESULTS,
      }),
    );
  return found.map((d) => ({
    box: { x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height },
    score: d.score,
  }));
}

/** Most faces an SSD pass returns. */
const SSD_MAX_RESULTS = 20;

let nativeSsdReady: Promise<NativeSsd | undefined> | undefined;

/**
 * face-api's SSD on ONNX Runtime (models/faces/ssd_native.ts), once per process: the same boxes
 * as on tfjs wasm (within 1e-4 px) at a fifth of the CPU. Undefined, and SSD stays on wasm,
 * where its graph fails to build.
 */
function nativeSsd(ort: OrtModule): Promise<NativeSsd | undefined> {
  nativeSsdReady ??= NativeSsd.create(ort).catch(() => undefined);
  return nativeSsdReady;
}

export interface Geometry {
  /** Face centre and size in work px, in the eye-levelled frame around `angle`. */
  centreX: number;
  centreY: number;
  faceSize: number;
  /** Radians the eye line is tilted (image y points down). */
  angle: number;
  /** The 68 landmarks the geometry comes from, in work px. */
  landmarks: Point[];
}

export type Point = { x: number; y: number };

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
  const faceapi = await faceApi();
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
export async function faceGeometry(
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
export async function landmarksIn(
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
export function faceShape(geometry: Geometry): Float32Array {
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
export function sampleWindow(
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

/**
 * Runs the detector passes in turn (tiny at each input size, then SSD, as `detector` says)
 * until one finds a usable face, on a copy at most DETECT_MAX_SIDE on its longer side (or the
 * largest tiny input size): every pass shrinks its input to that size or less anyway, and
 * padding and shrinking the whole work copy cost more than the pass itself on a large image.
 * Boxes come back in work px.
 */
export async function detectInTurn(
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
