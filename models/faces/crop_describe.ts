/**
 * A face's crop and descriptions from its geometry: the crop window encoded as a file, the
 * recognition net's descriptor, and the shipped networks' embeddings.
 */
import sharp from "sharp";
import { encodePng } from "./png.ts";
import { sampleWindow as sampleRgbWindow, toBytes } from "./resample.ts";
import { tf } from "../engine.ts";
import { maskedPixels } from "../style_features.ts";
import type { NativeFaceNets } from "../native/face_api_sessions.ts";
import type { Box, RgbImage } from "../../core/types.ts";
import {
  embedFaceAll,
  FACE_NETWORKS,
  type FaceNetworkName,
  type GraphNetworkName,
  sameInput,
} from "./face_networks.ts";
import { type CropFormat, DESCRIPTOR_SIDE, type FaceTimings } from "./face_options.ts";
import type { DecodedImage } from "./decode_image.ts";
import { faceApi } from "./face_engine.ts";
import { faceShape, type Geometry, sampleWindow } from "./face_geometry.ts";

export interface CropSpec {
  width: number;
  height: number;
  facePercent: number;
  /** @default true */
  describe?: boolean;
  /** @default "png" */
  cropFormat?: CropFormat;
  /** false: no crop is cut or encoded, and `crop` is empty. @default true */
  crop?: boolean;
}

/** Encodes RGB bytes as a crop file. */
export async function encodeCrop(
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
export async function cropAndDescribe(
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
  const crop = spec.crop === false ? new Uint8Array(0) : await encodeCrop(
    toBytes(sampleRgbWindow(rgb, window, spec.width, spec.height)),
    spec.width,
    spec.height,
    spec.cropFormat,
  );
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
export async function describeOnWasm(chipValues: Float32Array): Promise<Float32Array> {
  const faceapi = await faceApi();
  const chip = tf.tensor3d(chipValues, [DESCRIPTOR_SIDE, DESCRIPTOR_SIDE, 3]);
  // deno-lint-ignore no-explicit-any
  const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip as any);
  chip.dispose();
  return Array.isArray(descriptor) ? descriptor[0]! : descriptor;
}

/**
 * Each asked-for network's embedding of the face at `geometry`, on its own aligned crop;
 * outputs of one graph on one crop (mobilefacenet and its trunk) share one inference.
 * `context` is the work copy with `box` (work px) masked, as the masked-photo baseline sees it.
 */
export async function embedWithNetworks(
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
