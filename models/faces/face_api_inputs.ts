/**
 * What face-api does around its nets, in plain JS for the native engine: the landmark net's
 * patch (tf.image.cropAndResize), the tiny detector's square input (face-api's padToSquare and
 * resizeBilinear) and the decoding of its grid into boxes (TinyYolov2's extractBoxes and
 * non-maximum suppression). Each follows the tfjs code it stands in for, step for step, so the
 * native engine finds the same faces and points as the wasm one.
 */
import type { Box } from "../../core/types.ts";

/** An RGB image as interleaved values 0–255, row by row. */
export interface PixelImage {
  data: ArrayLike<number>;
  width: number;
  height: number;
}

/**
 * `rect` (image px) resampled to a `side`×`side` patch as tf.image.cropAndResize does with
 * "bilinear": corners on pixel centres, zero outside the image.
 */
export function cropAndResize(image: PixelImage, rect: Box, side: number): Float32Array {
  const { data, width, height } = image;
  const out = new Float32Array(side * side * 3);
  // tf's box is [y1, x1, y2, x2] in shares of (size − 1): rect / size of it, times (size − 1).
  const y1 = rect.y / height * (height - 1);
  const x1 = rect.x / width * (width - 1);
  const yStep = side > 1 ? ((rect.y + rect.height) / height * (height - 1) - y1) / (side - 1) : 0;
  const xStep = side > 1 ? ((rect.x + rect.width) / width * (width - 1) - x1) / (side - 1) : 0;
  for (let v = 0; v < side; v++) {
    const y = y1 + v * yStep;
    if (y < 0 || y > height - 1) continue;
    const top = Math.floor(y);
    const bottom = Math.ceil(y);
    const dy = y - top;
    for (let u = 0; u < side; u++) {
      const x = x1 + u * xStep;
      if (x < 0 || x > width - 1) continue;
      const left = Math.floor(x);
      const right = Math.ceil(x);
      const dx = x - left;
      const o = (v * side + u) * 3;
      for (let c = 0; c < 3; c++) {
        const tl = data[(top * width + left) * 3 + c]!;
        const tr = data[(top * width + right) * 3 + c]!;
        const bl = data[(bottom * width + left) * 3 + c]!;
        const br = data[(bottom * width + right) * 3 + c]!;
        const upper = tl + (tr - tl) * dx;
        const lower = bl + (br - bl) * dx;
        out[o + c] = upper + (lower - upper) * dy;
      }
    }
  }
  return out;
}

/**
 * The tiny detector's input: the image padded with zeros at its right or bottom to a square,
 * then resized to `side` as tf.image.resizeBilinear does without align-corners or half-pixel
 * centres (source = output × scale, clamped to the last row and column).
 */
export function tinyDetectorInput(image: PixelImage, side: number): Float32Array {
  const { data, width, height } = image;
  const square = Math.max(width, height);
  const scale = square / side;
  const out = new Float32Array(side * side * 3);
  const at = (row: number, column: number, c: number) =>
    row < height && column < width ? data[(row * width + column) * 3 + c]! : 0;
  for (let v = 0; v < side; v++) {
    const y = v * scale;
    const top = Math.max(0, Math.floor(y));
    const bottom = Math.min(square - 1, Math.ceil(y));
    const dy = y - top;
    for (let u = 0; u < side; u++) {
      const x = u * scale;
      const left = Math.max(0, Math.floor(x));
      const right = Math.min(square - 1, Math.ceil(x));
      const dx = x - left;
      const o = (v * side + u) * 3;
      for (let c = 0; c < 3; c++) {
        const tl = at(top, left, c);
        const upper = tl + (at(top, right, c) - tl) * dx;
        const bl = at(bottom, left, c);
        const lower = bl + (at(bottom, right, c) - bl) * dx;
        out[o + c] = upper + (lower - upper) * dy;
      }
    }
  }
  return out;
}

/** face-api's tiny face detector anchors (width, height in grid cells). */
const TINY_ANCHORS: readonly (readonly [number, number])[] = [
  [1.603231, 2.094468],
  [6.041143, 7.080126],
  [2.882459, 3.518061],
  [4.266906, 5.178857],
  [9.041765, 10.66308],
];
const TINY_IOU_THRESHOLD = 0.4;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

interface Candidate {
  /** In shares of the image's width and height. */
  box: Box;
  score: number;
}

/**
 * The tiny detector's grid (`cells`×`cells`×5 anchors×[x, y, w, h, score]) for an image of
 * `width`×`height` px fed at `side`: the faces scoring above `scoreThreshold` after face-api's
 * non-maximum suppression, best first, boxes in image px.
 */
export function tinyDetections(
  grid: { values: Float32Array; cells: number },
  image: { width: number; height: number },
  side: number,
  scoreThreshold: number,
): { box: Box; score: number }[] {
  const { values, cells } = grid;
  // The net saw the image at `side` on its longer side; its boxes are shares of that square.
  const scale = side / Math.max(image.width, image.height);
  const correctX = side / Math.round(image.width * scale);
  const correctY = side / Math.round(image.height * scale);
  const candidates: Candidate[] = [];
  for (let row = 0; row < cells; row++) {
    for (let col = 0; col < cells; col++) {
      for (let anchor = 0; anchor < TINY_ANCHORS.length; anchor++) {
        const at = ((row * cells + col) * TINY_ANCHORS.length + anchor) * 5;
        const score = sigmoid(values[at + 4]!);
        if (!(score > scoreThreshold)) continue;
        const [anchorWidth, anchorHeight] = TINY_ANCHORS[anchor]!;
        const centreX = (col + sigmoid(values[at]!)) / cells * correctX;
        const centreY = (row + sigmoid(values[at + 1]!)) / cells * correctY;
        const width = Math.exp(values[at + 2]!) * anchorWidth / cells * correctX;
        const height = Math.exp(values[at + 3]!) * anchorHeight / cells * correctY;
        candidates.push({
          box: { x: centreX - width / 2, y: centreY - height / 2, width, height },
          score,
        });
      }
    }
  }
  return suppressed(candidates).map(({ box, score }) => ({
    box: scaledBox(box, image.width, image.height),
    score,
  }));
}

/** A box with its x values times `sx` and its y values times `sy`. */
export function scaledBox(box: Box, sx: number, sy: number): Box {
  return { x: box.x * sx, y: box.y * sy, width: box.width * sx, height: box.height * sy };
}

function iou(a: Box, b: Box): number {
  const width = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const height = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const overlap = width * height;
  return overlap / (a.width * a.height + b.width * b.height - overlap);
}

/** face-api's non-maximum suppression: keep the best, drop what overlaps it over 0.4, repeat. */
function suppressed(candidates: Candidate[]): Candidate[] {
  let left = candidates.map((_, i) => i).sort((a, b) =>
    candidates[a]!.score - candidates[b]!.score
  );
  const kept: Candidate[] = [];
  while (left.length > 0) {
    const best = candidates[left.pop()!]!;
    kept.push(best);
    left = left.filter((i) => iou(best.box, candidates[i]!.box) <= TINY_IOU_THRESHOLD);
  }
  return kept;
}
