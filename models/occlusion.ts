/**
 * Occlusion maps (Zeiler & Fergus 2014): a grey patch slides over a face crop, and the fall of
 * the true class's probability at each place says how much the model leans on what the patch
 * hides. This file holds the geometry and the arithmetic, no network: the patch grid, painting
 * a patch, turning per-patch falls into a per-pixel map, the share of the effect inside the
 * face box, and the sample rule that picks the faces before any is scored.
 */
import type { Box, RgbImage } from "../core/types.ts";
import { sha256Hex } from "../core/ids.ts";

/** The patch grid over a `width`×`height` crop. */
export interface OcclusionGrid {
  width: number;
  height: number;
  /** Side of the square patch in crop px. */
  patch: number;
  /** Step between patches in crop px. */
  stride: number;
  /** Each patch, left to right, then top to bottom; the last ones touch the right and bottom. */
  positions: Box[];
}

/** The grey a patch is painted with: the middle of the byte range. */
export const OCCLUSION_GREY = 128;

/** Offsets from 0 by `stride`, the last one moved to end at `size`, each once. */
function offsets(size: number, patch: number, stride: number): number[] {
  const starts: number[] = [];
  for (let at = 0; at + patch < size; at += stride) starts.push(at);
  starts.push(size - patch);
  return [...new Set(starts)];
}

/**
 * The grid of `patch`-px squares every `stride` px over a `width`×`height` crop; it covers the
 * whole crop, the last row and column shifted in to end at its edge.
 *
 * @example
 * ```ts
 * occlusionGrid(128, 128, 32, 16).positions.length; // 49 (7 × 7)
 * ```
 */
export function occlusionGrid(
  width: number,
  height: number,
  patch: number,
  stride: number,
): OcclusionGrid {
  if (!Number.isInteger(patch) || patch < 1 || patch > Math.min(width, height)) {
    throw new RangeError(
      `'patch' must be an integer from 1 to the crop's shorter side (${
        Math.min(width, height)
      } px): got ${patch}`,
    );
  }
  if (!Number.isInteger(stride) || stride < 1 || stride > patch) {
    throw new RangeError(
      `'stride' must be an integer from 1 to 'patch' (${patch}), so patches cover the crop: got ${stride}`,
    );
  }
  const xs = offsets(width, patch, stride);
  const ys = offsets(height, patch, stride);
  const positions = ys.flatMap((y) => xs.map((x) => ({ x, y, width: patch, height: patch })));
  return { width, height, patch, stride, positions };
}

/** A copy of `image` with `rect` (px, clipped to the image) painted `grey`. */
export function occlude(image: RgbImage, rect: Box, grey = OCCLUSION_GREY): RgbImage {
  const data = Uint8Array.from(image.data);
  const left = Math.max(0, Math.floor(rect.x));
  const right = Math.min(image.width, Math.ceil(rect.x + rect.width));
  const top = Math.max(0, Math.floor(rect.y));
  const bottom = Math.min(image.height, Math.ceil(rect.y + rect.height));
  if (right > left) {
    for (let y = top; y < bottom; y++) {
      data.fill(grey, (y * image.width + left) * 3, (y * image.width + right) * 3);
    }
  }
  return { width: image.width, height: image.height, data };
}

/** Whether two rectangles share any area. */
export function overlaps(a: Box, b: Box): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height &&
    b.y < a.y + a.height;
}

/**
 * Per-patch falls as a per-pixel map (`width`×`height`, row by row): each pixel takes the mean
 * fall of the patches that cover it.
 */
export function pixelMap(grid: OcclusionGrid, falls: ArrayLike<number>): Float32Array {
  if (falls.length !== grid.positions.length) {
    throw new RangeError(`${falls.length} falls for a grid of ${grid.positions.length} patches`);
  }
  const { width, height } = grid;
  const sum = new Float32Array(width * height);
  const count = new Uint16Array(width * height);
  grid.positions.forEach((p, i) => {
    for (let y = p.y; y < p.y + p.height; y++) {
      for (let x = p.x; x < p.x + p.width; x++) {
        sum[y * width + x]! += falls[i]!;
        count[y * width + x]!++;
      }
    }
  });
  for (let i = 0; i < sum.length; i++) sum[i] = count[i] ? sum[i]! / count[i]! : 0;
  return sum;
}

/** A map's effect (the sum of |value|) inside `box` and in all. */
export function effectSums(
  map: ArrayLike<number>,
  width: number,
  box: Box,
): { inside: number; total: number } {
  let inside = 0;
  let total = 0;
  const height = map.length / width;
  const left = Math.max(0, Math.round(box.x));
  const right = Math.min(width, Math.round(box.x + box.width));
  const top = Math.max(0, Math.round(box.y));
  const bottom = Math.min(height, Math.round(box.y + box.height));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = Math.abs(map[y * width + x]!);
      total += value;
      if (x >= left && x < right && y >= top && y < bottom) inside += value;
    }
  }
  return { inside, total };
}

/**
 * The share of a map's effect (the sum of |value|) that lies inside `box`; null where the map
 * is zero everywhere (the model did not move).
 */
export function insideShare(map: ArrayLike<number>, width: number, box: Box): number | null {
  const { inside, total } = effectSums(map, width, box);
  return total > 0 ? inside / total : null;
}

/** Where a map peaks (its largest value), in px. */
export function peakOf(map: ArrayLike<number>, width: number): { x: number; y: number } {
  let best = 0;
  for (let i = 1; i < map.length; i++) if (map[i]! > map[best]!) best = i;
  return { x: best % width, y: Math.floor(best / width) };
}

/**
 * The sample rule, fixed before any face is scored: per class, the faces whose
 * sha256("occlusion\n" + id) sorts first, at most `perClass` of each. It reads ids and
 * classes only, so the sample is the same whatever the models make of the faces.
 */
export function occlusionSample<T extends { id: string; category: string }>(
  faces: readonly T[],
  perClass: number,
): T[] {
  if (!Number.isInteger(perClass) || perClass < 0) {
    throw new RangeError(`'perClass' must be a non-negative integer: got ${perClass}`);
  }
  const keyed = faces.map((face) => ({ face, key: sha256Hex(`occlusion\n${face.id}`) }));
  keyed.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  const taken = new Map<string, number>();
  return keyed.flatMap(({ face }) => {
    const n = taken.get(face.category) ?? 0;
    if (n >= perClass) return [];
    taken.set(face.category, n + 1);
    return [face];
  });
}
