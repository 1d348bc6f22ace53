/**
 * A smooth geometric change inside a face, for sites whose truth is known (the verdict's
 * calibration): each eye moved outward along the eye line and the chin moved down, by a share
 * of the face's width. The displacement is a sum of Gaussian bumps around the eyes and the chin,
 * each cut to zero at 2.5 σ by a smooth taper, so every pixel farther than that from a control
 * point (background, hair, collar) keeps its exact value. Pixels inside are resampled
 * bilinearly from the raw image through the inverse of the displacement (fixed-point
 * iteration), so the landmarks at the control points land where they were sent.
 */

/** Raw interleaved pixels, `channels` bytes a pixel, rows top to bottom. */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

export interface Point {
  x: number;
  y: number;
}

/** The change, in face widths (the distance between the jaw's ends, dlib points 0 and 16). */
export interface FaceWarp {
  /**
   * How far each eye moves outward along the eye line.
   * @default 0
   */
  eyesOut?: number;
  /**
   * How far the chin moves down, across the eye line.
   * @default 0
   */
  chinDown?: number;
}

/** One Gaussian bump of the displacement field. */
export interface WarpControl {
  /** Where it is centred, in image px (before the warp). */
  centre: Point;
  /** The displacement at its centre, in px. */
  shift: Point;
  /** Its Gaussian's σ, in px; it is zero beyond `radius` = 2.5 σ. */
  sigma: number;
  radius: number;
}

const LEFT_EYE = [36, 42] as const;
const RIGHT_EYE = [42, 48] as const;
const CHIN = 8;
const JAW_ENDS = [0, 16] as const;
/** σ of the eyes' bumps and the chin's, in face widths. */
const EYE_SIGMA = 0.09;
const CHIN_SIGMA = 0.11;
const CUT = 2.5;

function mean(points: Point[]): Point {
  const sum = points.reduce((a, p) => ({ x: a.x + p.x, y: a.y + p.y }), { x: 0, y: 0 });
  return { x: sum.x / points.length, y: sum.y / points.length };
}

/** The eyes' centres, the chin, the face's width and its own axes from 68 landmarks. */
export function faceFrame(points: Point[]) {
  if (points.length !== 68) {
    throw new RangeError(`a face frame needs dlib's 68 landmarks: got ${points.length}`);
  }
  const leftEye = mean(points.slice(...LEFT_EYE));
  const rightEye = mean(points.slice(...RIGHT_EYE));
  const [a, b] = [points[JAW_ENDS[0]]!, points[JAW_ENDS[1]]!];
  const faceWidth = Math.hypot(b.x - a.x, b.y - a.y);
  const eyeDistance = Math.hypot(rightEye.x - leftEye.x, rightEye.y - leftEye.y);
  // The eye line from the image's left eye to its right, and "down" at a right angle to it.
  const across = {
    x: (rightEye.x - leftEye.x) / eyeDistance,
    y: (rightEye.y - leftEye.y) / eyeDistance,
  };
  const down = { x: -across.y, y: across.x };
  return { leftEye, rightEye, chin: points[CHIN]!, faceWidth, eyeDistance, across, down };
}

/** The bumps that make `warp` on a face with these landmarks. */
export function warpControls(points: Point[], warp: FaceWarp): WarpControl[] {
  const { eyesOut = 0, chinDown = 0 } = warp;
  if (!Number.isFinite(eyesOut) || Math.abs(eyesOut) > 0.15) {
    throw new RangeError(`'eyesOut' must be within ±0.15 face widths: current value is ${eyesOut}`);
  }
  if (!Number.isFinite(chinDown) || Math.abs(chinDown) > 0.15) {
    throw new RangeError(
      `'chinDown' must be within ±0.15 face widths: current value is ${chinDown}`,
    );
  }
  const frame = faceFrame(points);
  const w = frame.faceWidth;
  const controls: WarpControl[] = [];
  const bump = (centre: Point, shift: Point, sigma: number) =>
    controls.push({ centre, shift, sigma: sigma * w, radius: CUT * sigma * w });
  if (eyesOut !== 0) {
    const d = eyesOut * w;
    bump(frame.leftEye, { x: -frame.across.x * d, y: -frame.across.y * d }, EYE_SIGMA);
    bump(frame.rightEye, { x: frame.across.x * d, y: frame.across.y * d }, EYE_SIGMA);
  }
  if (chinDown !== 0) {
    const d = chinDown * w;
    bump(frame.chin, { x: frame.down.x * d, y: frame.down.y * d }, CHIN_SIGMA);
  }
  return controls;
}

/** The weight of a bump at squared distance `r2`: a Gaussian tapered to zero at its radius. */
function weight(r2: number, control: WarpControl): number {
  const cut2 = control.radius * control.radius;
  if (r2 >= cut2) return 0;
  const taper = 1 - r2 / cut2;
  return Math.exp(-r2 / (2 * control.sigma * control.sigma)) * taper * taper;
}

/** The forward displacement at `p`: where the content at `p` moves by. */
export function displacementAt(p: Point, controls: WarpControl[]): Point {
  let x = 0;
  let y = 0;
  for (const c of controls) {
    const dx = p.x - c.centre.x;
    const dy = p.y - c.centre.y;
    const w = weight(dx * dx + dy * dy, c);
    x += w * c.shift.x;
    y += w * c.shift.y;
  }
  return { x, y };
}

/** Whether `p` lies where a bump can reach it (a pixel outside keeps its value). */
export function insideWarp(p: Point, controls: WarpControl[]): boolean {
  return controls.some((c) => Math.hypot(p.x - c.centre.x, p.y - c.centre.y) < c.radius);
}

/** Bilinear sample of channel values at (x, y), the edge repeating outside. */
function sampleInto(image: RawImage, x: number, y: number, out: Uint8Array, at: number) {
  const { data, width, height, channels } = image;
  const cx = Math.min(Math.max(x, 0), width - 1);
  const cy = Math.min(Math.max(y, 0), height - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  for (let k = 0; k < channels; k++) {
    const top = data[(y0 * width + x0) * channels + k]! * (1 - fx) +
      data[(y0 * width + x1) * channels + k]! * fx;
    const bottom = data[(y1 * width + x0) * channels + k]! * (1 - fx) +
      data[(y1 * width + x1) * channels + k]! * fx;
    out[at + k] = Math.round(top * (1 - fy) + bottom * fy);
  }
}

/**
 * The face with `warp` applied, as a new raw image of the same size: the content at each
 * control point moves by its shift, nothing beyond the bumps' radii changes.
 *
 * @example
 * ```ts
 * const found = await findLandmarks(bytes);
 * const warped = warpFace(raw, found!.points, { eyesOut: 0.04 });
 * ```
 */
export function warpFace(image: RawImage, points: Point[], warp: FaceWarp): RawImage {
  const controls = warpControls(points, warp);
  const out = new Uint8Array(image.data);
  if (controls.length === 0) return { ...image, data: out };
  // Only the pixels within a bump's reach are resampled: the others are already copied.
  const left = Math.max(0, Math.floor(Math.min(...controls.map((c) => c.centre.x - c.radius))));
  const right = Math.min(
    image.width - 1,
    Math.ceil(Math.max(...controls.map((c) => c.centre.x + c.radius))),
  );
  const top = Math.max(0, Math.floor(Math.min(...controls.map((c) => c.centre.y - c.radius))));
  const bottom = Math.min(
    image.height - 1,
    Math.ceil(Math.max(...controls.map((c) => c.centre.y + c.radius))),
  );
  for (let y = top; y <= bottom; y++) {
    for (let x = left; x <= right; x++) {
      const p = { x, y };
      if (!insideWarp(p, controls)) continue;
      // The source q with q + D(q) = p: a few fixed-point steps (D is small and smooth).
      let q = p;
      for (let step = 0; step < 4; step++) {
        const d = displacementAt(q, controls);
        q = { x: p.x - d.x, y: p.y - d.y };
      }
      sampleInto(image, q.x, q.y, out, (y * image.width + x) * image.channels);
    }
  }
  return { ...image, data: out };
}
