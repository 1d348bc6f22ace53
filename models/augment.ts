/**
 * On-the-fly image augmentation, the tfjs counterpart of the seed's Keras
 * ImageDataGenerator (rotation, zoom, horizontal flip) plus brightness: every epoch sees
 * freshly varied crops instead of a fixed ~3× copy on disk.
 */
import { tf } from "./engine.ts";
import { seededUniform } from "../core/statistics.ts";

export interface AugmentOptions {
  /**
   * Mirror half the faces left-right.
   * @default true
   */
  flip?: boolean;
  /**
   * Largest rotation either way, in degrees.
   * @default 10
   */
  maxRotationDegrees?: number;
  /**
   * Zoom factor range 1 ± zoom (Keras `zoom_range`): above 1 zooms in.
   * @default 0.1
   */
  zoom?: number;
  /**
   * Largest brightness change either way, on the [0, 1] pixel scale.
   * @default 0.1
   */
  maxBrightness?: number;
}

/**
 * A small seeded PRNG (mulberry32): tfjs' own random ops take no per-call stream we can rerun.
 * The one generator is core/statistics.ts's; this is its name here.
 */
export const seededRandom: (seed: number) => () => number = seededUniform;

export function checkAugmentOptions(options: AugmentOptions): Required<AugmentOptions> {
  const { flip = true, maxRotationDegrees = 10, zoom = 0.1, maxBrightness = 0.1 } = options;
  if (!(maxRotationDegrees >= 0 && maxRotationDegrees <= 180)) {
    throw new RangeError(`'maxRotationDegrees' must be within 0..180: got ${maxRotationDegrees}`);
  }
  if (!(zoom >= 0 && zoom < 1)) throw new RangeError(`'zoom' must be within [0, 1): got ${zoom}`);
  if (!(maxBrightness >= 0 && maxBrightness <= 1)) {
    throw new RangeError(`'maxBrightness' must be within 0..1: got ${maxBrightness}`);
  }
  return { flip, maxRotationDegrees, zoom, maxBrightness };
}

/** One image's variation, drawn from the seeded stream. */
export interface AugmentDraw {
  /** Side of the crop box as a fraction of the image (below 1 zooms in). */
  scale: number;
  radians: number;
  flip: boolean;
  /** Added to every pixel, on the [0, 1] scale. */
  brightness: number;
}

/** Draws `batch` variations; a seeded `random` gives the same draws, in the same order. */
export function drawAugmentations(
  batch: number,
  random: () => number,
  options: AugmentOptions = {},
): AugmentDraw[] {
  const { flip, maxRotationDegrees, zoom, maxBrightness } = checkAugmentOptions(options);
  const uniform = (max: number) => (2 * random() - 1) * max;
  return Array.from({ length: batch }, () => ({
    scale: 1 / (1 + uniform(zoom)),
    radians: uniform(maxRotationDegrees) * Math.PI / 180,
    flip: flip && random() < 0.5,
    brightness: uniform(maxBrightness),
  }));
}

/**
 * Writes the varied images into `target`, from `source` (both [batch, height, width, channels]
 * flat, values in [0, 1]). Per image, in the order tfjs' image ops would apply them: a centred
 * zoom (cropAndResize's bilinear sampling, black beyond the edge), a rotation about the centre
 * (rotateWithOffset's nearest pixel, black fill), a left-right flip and a brightness shift
 * clipped to [0, 1]. Plain loops over typed arrays: the tensor-op chain cost ~20 ms a batch of
 * 32 in dispatch alone, more than the pixel work.
 */
export function augmentPixels(
  source: Float32Array,
  target: Float32Array,
  shape: readonly [number, number, number, number],
  draws: readonly AugmentDraw[],
): void {
  const [batch, height, width, channels] = shape;
  const imageSize = height * width * channels;
  if (
    draws.length !== batch || source.length < batch * imageSize || target.length < source.length
  ) {
    throw new RangeError(`augmentPixels: ${draws.length} draws and arrays do not fit ${shape}`);
  }
  const centreX = width * 0.5;
  const centreY = height * 0.5;
  for (let b = 0; b < batch; b++) {
    const { scale, radians, flip, brightness } = draws[b]!;
    const cos = Math.cos(radians);
    const sin = Math.sin(radians);
    const zoomTop = (0.5 - scale / 2) * (height - 1);
    const zoomLeft = (0.5 - scale / 2) * (width - 1);
    const base = b * imageSize;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const out = base + (y * width + x) * channels;
        const fromX = flip ? width - 1 - x : x;
        // Where the rotation reads in the zoomed image…
        const dx = fromX - centreX;
        const dy = y - centreY;
        const zx = Math.round(dx * cos - dy * sin + centreX);
        const zy = Math.round(dx * sin + dy * cos + centreY);
        // …and where the zoom reads that pixel in the source.
        const sy = zoomTop + zy * scale;
        const sx = zoomLeft + zx * scale;
        if (
          zx < 0 || zx >= width || zy < 0 || zy >= height ||
          sy < 0 || sy > height - 1 || sx < 0 || sx > width - 1
        ) {
          for (let c = 0; c < channels; c++) target[out + c] = clampUnit(brightness);
          continue;
        }
        const top = Math.floor(sy);
        const bottom = Math.ceil(sy);
        const left = Math.floor(sx);
        const right = Math.ceil(sx);
        const yLerp = sy - top;
        const xLerp = sx - left;
        const topRow = base + top * width * channels;
        const bottomRow = base + bottom * width * channels;
        for (let c = 0; c < channels; c++) {
          const topLeft = source[topRow + left * channels + c]!;
          const topRight = source[topRow + right * channels + c]!;
          const bottomLeft = source[bottomRow + left * channels + c]!;
          const bottomRight = source[bottomRow + right * channels + c]!;
          const upper = topLeft + (topRight - topLeft) * xLerp;
          const lower = bottomLeft + (bottomRight - bottomLeft) * xLerp;
          target[out + c] = clampUnit(upper + (lower - upper) * yLerp + brightness);
        }
      }
    }
  }
}

function clampUnit(value: number): number {
  return value < 0 ? 0 : value > 1 ? 1 : value;
}

/**
 * Returns a randomly varied copy of a batch of images ([batch, h, w, c], values in [0, 1]):
 * per image a zoom, a rotation, a horizontal flip and a brightness shift (see
 * `augmentPixels`). `random` supplies the draws, so a seed reproduces a batch.
 */
export function augmentBatch(
  images: tf.Tensor4D,
  random: () => number,
  options: AugmentOptions = {},
): tf.Tensor4D {
  const draws = drawAugmentations(images.shape[0], random, options);
  const source = images.dataSync() as Float32Array;
  const target = new Float32Array(source.length);
  augmentPixels(source, target, images.shape, draws);
  return tf.tensor4d(target, images.shape);
}
