/**
 * What a photo shows besides the face, as numbers a baseline can learn from: the image's
 * statistics (size, compression, colour), the picture with the face box masked out, and the
 * face blurred beyond recognition. If a model on these does as well as a face model, the face
 * model may have learned the photographer, not the face (Rasmussen et al. 2023; Leuner 2019).
 */
import sharp from "sharp";
import type { Box, RgbImage } from "../core/types.ts";
import { CONTEXT_SIDE } from "./faces/face_networks.ts";

/** The image statistics, in the order of `imageStatistics()`'s values. */
export const IMAGE_STATISTIC_NAMES = [
  "width",
  "height",
  "aspect ratio",
  "bytes per pixel",
  "JPEG quality",
  "mean red",
  "mean green",
  "mean blue",
  "brightness",
  "contrast",
  "colourfulness",
] as const;

/** The IJG standard luminance quantisation table (quality 50), the reference libjpeg scales. */
const STANDARD_LUMINANCE = [
  16,
  11,
  10,
  16,
  24,
  40,
  51,
  61,
  12,
  12,
  14,
  19,
  26,
  58,
  60,
  55,
  14,
  13,
  16,
  24,
  40,
  57,
  69,
  56,
  14,
  17,
  22,
  29,
  51,
  87,
  80,
  62,
  18,
  22,
  37,
  56,
  68,
  109,
  103,
  77,
  24,
  35,
  55,
  64,
  81,
  104,
  113,
  92,
  49,
  64,
  78,
  87,
  103,
  121,
  120,
  101,
  72,
  92,
  95,
  98,
  112,
  100,
  103,
  99,
];

/** Sum of libjpeg's luminance table at `quality` (1–100). */
function scaledTableSum(quality: number): number {
  const scale = quality < 50 ? 5000 / quality : 200 - 2 * quality;
  return STANDARD_LUMINANCE.reduce(
    (sum, value) => sum + Math.min(255, Math.max(1, Math.floor((value * scale + 50) / 100))),
    0,
  );
}

/**
 * libjpeg quality (1–100) whose luminance table is closest to the file's first quantisation
 * table, or null when the bytes are not a JPEG with one. Sums are compared, so the zigzag order
 * of the stored table does not matter, and encoders with their own tables still get a nearby
 * figure.
 */
export function jpegQuality(bytes: Uint8Array): number | null {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return null;
    const marker = bytes[offset + 1]!;
    const length = (bytes[offset + 2]! << 8) | bytes[offset + 3]!;
    if (marker === 0xda) return null; // start of scan: no table before it
    if (marker === 0xdb && offset + 5 + 64 <= bytes.length) {
      const precision = bytes[offset + 4]! >> 4;
      let sum = 0;
      for (let i = 0; i < 64; i++) {
        sum += precision
          ? (bytes[offset + 5 + 2 * i]! << 8) | bytes[offset + 6 + 2 * i]!
          : bytes[offset + 5 + i]!;
      }
      let best = 1;
      for (let q = 2; q <= 100; q++) {
        if (Math.abs(scaledTableSum(q) - sum) < Math.abs(scaledTableSum(best) - sum)) best = q;
      }
      return best;
    }
    offset += 2 + length;
  }
  return null;
}

/** Mean, spread and colourfulness of RGB pixels (Hasler & Süsstrunk's colourfulness). */
function colourStatistics(data: Uint8Array): number[] {
  const pixels = data.length / 3;
  let [r, g, b, y, y2, rg, yb, rg2, yb2] = [0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < data.length; i += 3) {
    const [red, green, blue] = [data[i]!, data[i + 1]!, data[i + 2]!];
    const luma = 0.299 * red + 0.587 * green + 0.114 * blue;
    r += red;
    g += green;
    b += blue;
    y += luma;
    y2 += luma * luma;
    const opponentRg = red - green;
    const opponentYb = (red + green) / 2 - blue;
    rg += opponentRg;
    yb += opponentYb;
    rg2 += opponentRg * opponentRg;
    yb2 += opponentYb * opponentYb;
  }
  const mean = (sum: number) => sum / pixels;
  const spread = (sum: number, sum2: number) =>
    Math.sqrt(Math.max(0, sum2 / pixels - mean(sum) ** 2));
  const colourfulness = Math.sqrt(spread(rg, rg2) ** 2 + spread(yb, yb2) ** 2) +
    0.3 * Math.sqrt(mean(rg) ** 2 + mean(yb) ** 2);
  return [mean(r), mean(g), mean(b), mean(y), spread(y, y2), colourfulness];
}

/**
 * The photo's statistics, one value per `IMAGE_STATISTIC_NAMES` entry. Lossless formats count
 * as JPEG quality 100: they lose nothing, and a model must be able to tell them from JPEGs.
 */
export async function imageStatistics(bytes: Uint8Array): Promise<number[]> {
  const metadata = await sharp(bytes).metadata();
  const rotated = (metadata.orientation ?? 1) >= 5;
  const width = (rotated ? metadata.height : metadata.width) ?? 1;
  const height = (rotated ? metadata.width : metadata.height) ?? 1;
  const { data } = await sharp(bytes)
    .rotate()
    .removeAlpha()
    .toColourspace("srgb")
    .resize(64, 64, { fit: "fill" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return [
    width,
    height,
    width / height,
    bytes.length / (width * height),
    jpegQuality(bytes) ?? 100,
    ...colourStatistics(new Uint8Array(data.buffer, data.byteOffset, data.length)),
  ];
}

/**
 * The whole photo with its face box painted mid-grey, shrunk to `side`×`side` RGB: what a model
 * sees of background, clothes, lighting and crop when it cannot see the face.
 */
export async function maskedFacePixels(
  bytes: Uint8Array,
  box: Box,
  side = CONTEXT_SIDE,
): Promise<Float32Array> {
  const image = sharp(bytes).rotate().removeAlpha().toColourspace("srgb");
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return await maskedPixels({ width: info.width, height: info.height, data }, box, side);
}

/** `maskedFacePixels` of pixels decoded already; `box` in their px. Leaves `image` as it is. */
export async function maskedPixels(
  image: RgbImage,
  box: Box,
  side = CONTEXT_SIDE,
): Promise<Float32Array> {
  const { width, height } = image;
  const data = Uint8Array.from(image.data);
  const left = Math.max(0, Math.floor(box.x));
  const top = Math.max(0, Math.floor(box.y));
  const right = Math.min(width, Math.ceil(box.x + box.width));
  const bottom = Math.min(height, Math.ceil(box.y + box.height));
  for (let y = top; y < bottom; y++) {
    data.fill(128, (y * width + left) * 3, (y * width + right) * 3);
  }
  const small = await sharp(data, { raw: { width, height, channels: 3 } })
    .resize(side, side, { fit: "fill" })
    .raw()
    .toBuffer();
  return Float32Array.from(small);
}

/**
 * The face crop blurred so that no person can be recognised (a Gaussian of a tenth of the
 * crop, then `side`×`side` RGB): what is left is skin tone, hair mass, lighting and colour.
 */
export async function blurredFacePixels(
  crop: Uint8Array | RgbImage,
  side = 8,
): Promise<Float32Array> {
  const decoded = !(crop instanceof Uint8Array);
  const { width = 64 } = decoded ? crop : await sharp(crop).metadata();
  const source = decoded
    ? sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } })
    : sharp(crop);
  const small = await source
    .removeAlpha()
    .toColourspace("srgb")
    .blur(Math.max(0.3, width / 10))
    .resize(side, side, { fit: "fill" })
    .raw()
    .toBuffer();
  return Float32Array.from(small);
}
