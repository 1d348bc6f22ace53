/**
 * On-the-fly image augmentation, the tfjs counterpart of the seed's Keras
 * ImageDataGenerator (rotation, zoom, horizontal flip) plus brightness: every epoch sees
 * freshly varied crops instead of a fixed ~3× copy on disk.
 */
import { tf } from "./engine.ts";

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

/** A small seeded PRNG (mulberry32): tfjs' own random ops take no per-call stream we can rerun. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

/**
 * Returns a randomly varied copy of a batch of images ([batch, h, w, c], values in [0, 1]):
 * per image a zoom (cropAndResize), a rotation (rotateWithOffset, black fill), a horizontal
 * flip and a brightness shift. `random` supplies the draws, so a seed reproduces a batch.
 */
export function augmentBatch(
  images: tf.Tensor4D,
  random: () => number,
  options: AugmentOptions = {},
): tf.Tensor4D {
  const { flip, maxRotationDegrees, zoom, maxBrightness } = checkAugmentOptions(options);
  const [batch, height, width] = images.shape;
  const uniform = (max: number) => (2 * random() - 1) * max;
  const draws = Array.from({ length: batch }, () => ({
    scale: 1 / (1 + uniform(zoom)),
    radians: uniform(maxRotationDegrees) * Math.PI / 180,
    flip: flip && random() < 0.5,
    brightness: uniform(maxBrightness),
  }));
  return tf.tidy(() => {
    const boxes = draws.map(({ scale }) => {
      const lo = 0.5 - scale / 2;
      const hi = 0.5 + scale / 2;
      return [lo, lo, hi, hi];
    });
    const zoomed = tf.image.cropAndResize(
      images,
      tf.tensor2d(boxes, [batch, 4]),
      tf.tensor1d(draws.map((_, i) => i), "int32"),
      [height, width],
    );
    const rotated = tf.concat(
      tf.split(zoomed, batch).map((image, i) =>
        draws[i]!.radians === 0
          ? image
          : tf.image.rotateWithOffset(image as tf.Tensor4D, draws[i]!.radians, 0)
      ),
    );
    const flipMask = tf.tensor4d(draws.map((d) => (d.flip ? 1 : 0)), [batch, 1, 1, 1]);
    const flipped = tf.add(
      tf.mul(rotated, tf.sub(1, flipMask)),
      tf.mul(tf.image.flipLeftRight(rotated as tf.Tensor4D), flipMask),
    );
    const shift = tf.tensor4d(draws.map((d) => d.brightness), [batch, 1, 1, 1]);
    return tf.clipByValue(tf.add(flipped, shift), 0, 1) as tf.Tensor4D;
  });
}
