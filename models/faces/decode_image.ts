/** Decoding an image to the work copy that detection, landmarks and cropping read. */
import sharp from "sharp";
import { tf } from "../engine.ts";
import type { RgbImage } from "../../core/types.ts";
import { FaceInputError, firstLine } from "./face_defaults.ts";
import { WORK_MAX_SIDE } from "./face_options.ts";

export interface DecodedImage {
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
export async function decode(bytes: Uint8Array): Promise<DecodedImage> {
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
