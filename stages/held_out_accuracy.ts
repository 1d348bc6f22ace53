/**
 * How well held-out predictions score, alone and against each other on the very same faces:
 * the measures the verdict (stages/verdict.ts) and its unseen-sources figures
 * (stages/unseen_sources.ts) are made of.
 */
import { balancedAccuracy, mcnemarUpperTail, wilsonInterval, Z95 } from "../core/statistics.ts";

/** A paired difference of two predictors' accuracy on the very same held-out faces. */
export interface PairedDifference {
  /** With the face minus without it, as a fraction (0.05 = five points). */
  difference: number;
  /** Paired 95 % interval of the difference (from the discordant pairs). */
  ci95: [number, number];
  /** One-sided exact McNemar p-value: the face-holding predictor is right more often. */
  pValue: number;
  /** After Holm's correction over the tests the conclusion uses. */
  holmP: number;
  n: number;
  withFace: number;
  withoutFace: number;
  /** Share of the faces where exactly one of the two is right. */
  discordant: number;
}

/** One predictor's accuracy on a set of held-out faces. */
export interface Accuracy {
  accuracy: number;
  ci95: [number, number];
  n: number;
  correct: number;
}

/** Accuracy of `predicted` on the faces of `actual` it answered; null when it answered none. */
export function accuracyOn(
  actual: ReadonlyMap<string, number>,
  predicted: ReadonlyMap<string, number>,
): Accuracy | null {
  let n = 0, correct = 0;
  for (const [id, label] of actual) {
    const p = predicted.get(id);
    if (p === undefined) continue;
    n++;
    if (p === label) correct++;
  }
  return n ? { accuracy: correct / n, ci95: wilsonInterval(correct, n), n, correct } : null;
}

/** Mean recall over the classes present, of `predicted` on the faces of `actual` it answered. */
export function balancedAccuracyOn(
  actual: ReadonlyMap<string, number>,
  predicted: ReadonlyMap<string, number>,
): number | null {
  const ids = [...actual.keys()].filter((id) => predicted.has(id));
  if (ids.length === 0) return null;
  return balancedAccuracy(ids.map((id) => actual.get(id)!), ids.map((id) => predicted.get(id)!));
}

/** How two predictors fare on the faces both answered: right each, and right alone each. */
export interface PairedCounts {
  n: number;
  firstRight: number;
  secondRight: number;
  onlyFirst: number;
  onlySecond: number;
}

/** Counts `first` and `second` on the faces of `actual` that both answered. */
export function pairedCounts(
  actual: ReadonlyMap<string, number>,
  first: ReadonlyMap<string, number>,
  second: ReadonlyMap<string, number>,
): PairedCounts {
  const counts = { n: 0, firstRight: 0, secondRight: 0, onlyFirst: 0, onlySecond: 0 };
  for (const [id, label] of actual) {
    const a = first.get(id);
    const b = second.get(id);
    if (a === undefined || b === undefined) continue;
    counts.n++;
    if (a === label) counts.firstRight++;
    if (b === label) counts.secondRight++;
    if (a === label && b !== label) counts.onlyFirst++;
    if (b === label && a !== label) counts.onlySecond++;
  }
  return counts;
}

/**
 * `withFace` minus `withoutFace` in accuracy on the faces both answered, with a paired 95 %
 * interval (the difference of two proportions on the same faces, whose variance comes from
 * the faces where the two disagree) and the exact one-sided McNemar p. `holmP` is the raw p
 * until `holm` corrects it.
 */
export function pairedDifference(
  actual: ReadonlyMap<string, number>,
  withFace: ReadonlyMap<string, number>,
  withoutFace: ReadonlyMap<string, number>,
): PairedDifference | null {
  const {
    n,
    firstRight: withRight,
    secondRight: withoutRight,
    onlyFirst: onlyWith,
    onlySecond: onlyWithout,
  } = pairedCounts(actual, withFace, withoutFace);
  if (n === 0) return null;
  const difference = (onlyWith - onlyWithout) / n;
  const spread = Math.sqrt(Math.max(0, (onlyWith + onlyWithout) / n - difference ** 2) / n);
  const pValue = mcnemarUpperTail(onlyWith, onlyWithout);
  return {
    difference,
    ci95: [difference - Z95 * spread, difference + Z95 * spread],
    pValue,
    holmP: pValue,
    n,
    withFace: withRight / n,
    withoutFace: withoutRight / n,
    discordant: (onlyWith + onlyWithout) / n,
  };
}

/** Predictions of the ladder's fits on the same held-out faces, by record id. */
export interface LadderPredictions {
  /** The faces every fit answered, with their labels. */
  actual: ReadonlyMap<string, number>;
  /** Estimated age, gender and ethnicity alone; null where no face had an estimate. */
  demographics: ReadonlyMap<string, number> | null;
  /** Every no-face feature: the demographics, image statistics, the masked photo, the pose. */
  noFace: ReadonlyMap<string, number>;
  /**
   * The photo alone (no demographics): to tell which of the two explains more, since the
   * demographics are estimated from the photo and take on its style too. @default noFace
   */
  photo?: ReadonlyMap<string, number> | null;
  /** The no-face features and the face's own (its embeddings and landmarks). */
  withFace: ReadonlyMap<string, number>;
}
