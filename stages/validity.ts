/**
 * The validity checks' numbers: is it the face, or the photo? Pure scoring of held-out
 * predictions (a baseline's, a model's on sources it never saw) against the labels and
 * against the face model on the same faces. The training runs that make the predictions live
 * in pipeline/checks.ts; this file holds no operator because the checks need every face of a
 * run at once (whole sources held out, baselines fitted per split), not a stream.
 */
import { GEAR_ETHNICITIES } from "../models/faces/face_networks.ts";
import {
  balancedAccuracy,
  binomialUpperTail,
  mcnemarUpperTail,
  wilsonInterval,
} from "../core/statistics.ts";
import type { SignificanceTest } from "./evaluate.ts";
import { pairedCounts } from "./held_out_accuracy.ts";
import type { Verdict } from "./verdict.ts";

/** Accuracy of some predictor on held-out faces. */
export interface HeldOutScore {
  accuracy: number;
  ci95: [number, number];
  n: number;
  correct: number;
  /** Mean recall over the classes present. */
  balancedAccuracy: number;
  /** One-sided exact binomial test against 1 / classes. */
  beatsChance: SignificanceTest;
}

/** A face model against a baseline on the very same held-out faces. */
export interface Comparison {
  modelAccuracy: number;
  baselineAccuracy: number;
  /** Faces both were judged on. */
  n: number;
  /** Exact McNemar: is the model right more often where the two disagree? */
  modelBeatsIt: SignificanceTest;
  /** The baseline is within `closeMargin` of the model, or above it. */
  close: boolean;
}

export type BaselineKey =
  | "image-statistics"
  | "masked-face"
  | "blurred-face"
  | "demographics"
  | "head-pose";

export interface BaselineResult {
  key: BaselineKey;
  /** What the baseline sees, for the report. */
  name: string;
  score: HeldOutScore;
  /** Per face model kind. */
  versus: Record<string, Comparison>;
  /** Faces left out because their features could not be read, by reason. */
  skipped: Record<string, number>;
  /** The image statistics that tell the classes apart best, most telling first. */
  telling?: { feature: string; separation: number }[];
}

export interface SourceScore {
  /** The held-out source row's URL (or page host when no sources are known). */
  source: string;
  category: string;
  n: number;
  correct: number;
  accuracy: number;
}

/** Leave-one-source-out for one model kind. */
export interface LosoResult {
  kind: string;
  /** Whether at least one source could be held out. */
  possible: boolean;
  /** Why the check could not be made, when it could not. */
  reason?: string;
  perSource: SourceScore[];
  /** Categories whose sources could not be held out, and why. */
  notPossible: { category: string; sources: string[]; reason: string }[];
  /** Pooled over every held-out source; absent when not possible. */
  score?: HeldOutScore;
  /** The same model kind on the random split (all faces of its held-out split or folds). */
  randomSplitAccuracy: number;
  /** The random split's accuracy on only the faces of the sources that could be held out. */
  randomSplitOnTheseSources?: { accuracy: number; n: number };
}

/** Estimated attributes of a face: what a demographic baseline and the strata use. */
export interface Attributes {
  gender: "male" | "female";
  /** How sure the estimate is that the face is a woman's (0–1), where the net gave it. */
  femaleProbability?: number;
  /** Years. */
  age: number;
  /** Estimated ethnicity (GEAR's classes: white, black, asian, indian, other), where estimated. */
  ethnicity?: string;
}

/** A model's accuracy within one stratum of estimated attributes. */
export interface StratumScore {
  /** `women`, `men`, `age < 35`, … */
  stratum: string;
  n: number;
  correct: number;
  accuracy: number | null;
  ci95: [number, number] | null;
}

/**
 * Kosinski-style matched pairs: two held-out faces of different classes with the same estimated
 * gender and ethnicity and ages at most `maxAgeGap` apart, each face in one pair at most; the model ranks a
 * pair right when it gives each face's own class the higher score against the other's.
 */
export interface MatchedPairs {
  pairs: number;
  right: number;
  accuracy: number | null;
  /** Wilson interval over pairs (each face in at most one pair, so pairs are independent). */
  ci95: [number, number] | null;
  maxAgeGap: number;
  /** Whether a pair's faces also share an estimated ethnicity (where the faces had one). */
  sameEthnicity: boolean;
}

export interface Demographics {
  /** Which net estimated the attributes. */
  estimatedBy: string;
  /** Faces with an estimate. */
  n: number;
  strata: Record<string, StratumScore[]>;
  matchedPairs: Record<string, MatchedPairs>;
}

/** Every check of a run, for metrics.json and the report. */
export interface ValidityChecks {
  /** How faces are grouped into sources. */
  groupedBy: "source row" | "page host";
  sources: { source: string; category: string; faces: number }[];
  loso: LosoResult[];
  baselines: BaselineResult[];
  /** Absent when no face had an age and gender estimate. */
  demographics?: Demographics;
  /** Seconds each check took, by name (the run's face estimates included). */
  seconds?: Record<string, number>;
  /**
   * The process's CPU seconds in each check's window, every thread's: the style baselines and
   * the ladder run in threads beside leave-one-source-out, so their CPU is counted there.
   */
  cpuSeconds?: Record<string, number>;
  /** The run's one answer; metrics.json keeps it first, as `verdict`. */
  verdict?: Verdict;
}

/** The age bands of the strata, upper bounds exclusive. */
export const AGE_BANDS: readonly [string, number][] = [
  ["age < 35", 35],
  ["age 35–49", 50],
  ["age 50–64", 65],
  ["age ≥ 65", Infinity],
];

/**
 * A model's accuracy among women, men, each age band and, where any face has an ethnicity
 * estimate, each estimated ethnicity.
 */
export function strataScores(
  actual: ReadonlyMap<string, number>,
  predicted: ReadonlyMap<string, number>,
  attributes: ReadonlyMap<string, Attributes>,
): StratumScore[] {
  const withEthnicity = [...attributes.values()].some((a) => a.ethnicity !== undefined);
  const strata: [string, (a: Attributes) => boolean][] = [
    ["women", (a) => a.gender === "female"],
    ["men", (a) => a.gender === "male"],
    ...AGE_BANDS.map(([name, upper], i): [string, (a: Attributes) => boolean] => [
      name,
      (a) => a.age < upper && (i === 0 || a.age >= AGE_BANDS[i - 1]![1]),
    ]),
    ...(withEthnicity ? GEAR_ETHNICITIES : []).map((
      ethnicity,
    ): [string, (a: Attributes) => boolean] => [
      `estimated ${ethnicity}`,
      (a) => a.ethnicity === ethnicity,
    ]),
  ];
  return strata.map(([stratum, inIt]) => {
    let n = 0, correct = 0;
    for (const [id, label] of actual) {
      const a = attributes.get(id);
      const p = predicted.get(id);
      if (!a || p === undefined || !inIt(a)) continue;
      n++;
      if (p === label) correct++;
    }
    return {
      stratum,
      n,
      correct,
      accuracy: n ? correct / n : null,
      ci95: n ? wilsonInterval(correct, n) : null,
    };
  });
}

/**
 * Matched pairs (see `MatchedPairs`): for each pair of classes, each face of the first is
 * matched greedily to the unmatched face of the second with its gender, its estimated ethnicity
 * (where both have one) and the nearest age.
 * `probabilities` are in class order.
 */
export function matchedPairs(
  actual: ReadonlyMap<string, number>,
  probabilities: ReadonlyMap<string, ArrayLike<number>>,
  attributes: ReadonlyMap<string, Attributes>,
  classes: number,
  maxAgeGap = 3,
): MatchedPairs {
  const faces = [...actual].filter(([id]) => attributes.has(id) && probabilities.has(id))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const used = new Set<string>();
  let pairs = 0, right = 0;
  for (let i = 0; i < classes; i++) {
    for (let j = i + 1; j < classes; j++) {
      const others = faces.filter(([, label]) => label === j);
      for (const [a, label] of faces) {
        if (label !== i || used.has(a)) continue;
        const attrs = attributes.get(a)!;
        let best: string | undefined;
        let bestGap = Infinity;
        for (const [b] of others) {
          const other = attributes.get(b)!;
          if (used.has(b) || other.gender !== attrs.gender) continue;
          if (other.ethnicity !== attrs.ethnicity) continue;
          const gap = Math.abs(other.age - attrs.age);
          if (gap <= maxAgeGap && gap < bestGap) [best, bestGap] = [b, gap];
        }
        if (best === undefined) continue;
        used.add(a);
        used.add(best);
        pairs++;
        const pa = probabilities.get(a)!;
        const pb = probabilities.get(best)!;
        // Each face's own class against the other's: a is of class i, b of class j.
        const score = (pa[i]! - pa[j]!) - (pb[i]! - pb[j]!);
        right += score > 0 ? 1 : score === 0 ? 0.5 : 0;
      }
    }
  }
  return {
    pairs,
    right,
    accuracy: pairs ? right / pairs : null,
    ci95: pairs ? wilsonInterval(Math.round(right), pairs) : null,
    maxAgeGap,
    sameEthnicity: faces.some(([id]) => attributes.get(id)!.ethnicity !== undefined),
  };
}

/**
 * Scores predictions (class indices) against labels; `classes` is the number of classes.
 *
 * @example
 * ```ts
 * heldOutScore([0, 1, 1, 0], [0, 1, 0, 0], 2).accuracy; // 0.75
 * ```
 */
export function heldOutScore(
  actual: readonly number[],
  predicted: readonly number[],
  classes: number,
  alpha = 0.05,
): HeldOutScore {
  if (actual.length === 0) throw new RangeError("Cannot score 0 faces");
  if (actual.length !== predicted.length) {
    throw new RangeError(`${actual.length} labels but ${predicted.length} predictions`);
  }
  const correct = actual.filter((label, i) => label === predicted[i]).length;
  const n = actual.length;
  const pValue = binomialUpperTail(correct, n, 1 / classes);
  return {
    accuracy: correct / n,
    ci95: wilsonInterval(correct, n),
    n,
    correct,
    balancedAccuracy: balancedAccuracy(actual, predicted),
    beatsChance: { pValue, significant: pValue < alpha },
  };
}

/**
 * The face model against a baseline on the faces both predicted (ids in both maps), with the
 * true labels in `actual`. `closeMargin` is in accuracy (0.05 = five points).
 */
export function compareOnSameFaces(
  actual: ReadonlyMap<string, number>,
  model: ReadonlyMap<string, number>,
  baseline: ReadonlyMap<string, number>,
  options: { alpha?: number; closeMargin?: number } = {},
): Comparison {
  const { alpha = 0.05, closeMargin = 0.05 } = options;
  const {
    n,
    firstRight: modelRight,
    secondRight: baselineRight,
    onlyFirst: modelOnly,
    onlySecond: baselineOnly,
  } = pairedCounts(actual, model, baseline);
  const modelAccuracy = n ? modelRight / n : 0;
  const baselineAccuracy = n ? baselineRight / n : 0;
  const pValue = mcnemarUpperTail(modelOnly, baselineOnly);
  return {
    modelAccuracy,
    baselineAccuracy,
    n,
    modelBeatsIt: { pValue, significant: pValue < alpha },
    close: n > 0 && baselineAccuracy >= modelAccuracy - closeMargin,
  };
}

/**
 * How well each feature alone separates the classes: the between-class variance of its
 * class means over its within-class variance (Fisher's ratio), most telling first.
 */
export function tellingFeatures(
  rows: readonly ArrayLike<number>[],
  labels: readonly number[],
  names: readonly string[],
): { feature: string; separation: number }[] {
  const classes = [...new Set(labels)];
  const result = names.map((feature, j) => {
    const all = rows.map((row) => row[j]!);
    const mean = all.reduce((a, b) => a + b, 0) / Math.max(1, all.length);
    let between = 0, within = 0;
    for (const c of classes) {
      const values = all.filter((_, i) => labels[i] === c);
      const classMean = values.reduce((a, b) => a + b, 0) / values.length;
      between += values.length * (classMean - mean) ** 2;
      within += values.reduce((sum, v) => sum + (v - classMean) ** 2, 0);
    }
    return { feature, separation: within > 1e-12 ? between / within : between > 1e-12 ? 1e6 : 0 };
  });
  return result.sort((a, b) => b.separation - a.separation);
}
