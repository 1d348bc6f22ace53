/**
 * The head's pose from the face's shape (the face stage's `landmarks`: dlib's 68 points in the
 * face's own frame) and the roll the face stage levelled. It is set as much by the photographer
 * ("chin down a little") as by the person, so the head-pose baseline holds a face model against
 * it: a model on the landmarks that only read pose would be reading the photo.
 */
import { LANDMARK_COUNT, LANDMARK_REGIONS, NOSE_TIP } from "./face_networks.ts";

/** The mean point of one region of a shape (x and y interleaved). */
export function regionCentre(
  shape: ArrayLike<number>,
  [from, to]: readonly [number, number],
): { x: number; y: number } {
  let x = 0, y = 0;
  for (let k = from; k < to; k++) {
    x += shape[2 * k]!;
    y += shape[2 * k + 1]!;
  }
  return { x: x / (to - from), y: y / (to - from) };
}

/**
 * [roll, yaw, pitch]: roll in degrees (the eye line's tilt); yaw as the nose tip's offset from
 * the eyes' midpoint in eye distances (turned right is positive); pitch as where the nose tip
 * lies between the eye line (0) and the mouth (1), which grows as the chin goes down. Undefined
 * for a shape that is not 68 points.
 */
export function headPose(
  shape: ArrayLike<number>,
  rollDegrees: number,
): [number, number, number] | undefined {
  if (shape.length !== LANDMARK_COUNT * 2) return undefined;
  const left = regionCentre(shape, LANDMARK_REGIONS.leftEye);
  const right = regionCentre(shape, LANDMARK_REGIONS.rightEye);
  const mouth = regionCentre(shape, LANDMARK_REGIONS.mouth);
  const eyes = { x: (left.x + right.x) / 2, y: (left.y + right.y) / 2 };
  const eyeDistance = Math.hypot(right.x - left.x, right.y - left.y);
  const eyesToMouth = mouth.y - eyes.y;
  if (!(eyeDistance > 0) || !(eyesToMouth > 0)) return undefined;
  const nose = { x: shape[2 * NOSE_TIP]!, y: shape[2 * NOSE_TIP + 1]! };
  return [rollDegrees, (nose.x - eyes.x) / eyeDistance, (nose.y - eyes.y) / eyesToMouth];
}
