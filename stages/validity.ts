/**
 * The validity checks' numbers: is it the face, or the photo? Pure scoring of held-out
 * predictions (a baseline's, a model's on sources it never saw) against the labels and
 * against the face model on the same faces. The training runs that make the predictions live
 * in pipeline/checks.ts; this file holds no operator because the checks need every face of a
 * run at once (whole sources held out, baselines fitted per split), not a stream.
 */
import {
  balancedAccuracy,
  binomialUpperTail,
  mcnemarUpperTail,
  wilsonInterval,
} from "../core/statistics.ts";
import type { SignificanceTest } from "./evaluate.ts";

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

export type BaselineKey = "image-statistics" | "masked-face" | "blurred-face" | "age-gender";

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
  /** The source row's URL (or the page host when no sources are known). */
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

/** Every check of a run, for metrics.json and the report. */
export interface ValidityChecks {
  /** How faces are grouped into sources. */
  groupedBy: "source row" | "page host";
  sources: { source: string; category: string; faces: number }[];
  loso: LosoResult[];
  baselines: BaselineResult[];
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
  let modelRight = 0, baselineRight = 0, modelOnly = 0, baselineOnly = 0, n = 0;
  for (const [id, label] of actual) {
    const m = model.get(id);
    const b = baseline.get(id);
    if (m === undefined || b === undefined) continue;
    n++;
    if (m === label) modelRight++;
    if (b === label) baselineRight++;
    if (m === label && b !== label) modelOnly++;
    if (b === label && m !== label) baselineOnly++;
  }
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
