/**
 * The evaluation stage: reduces a stream of scored test faces to the numbers that say how good a
 * model is, with their uncertainty, against the baselines a model must beat (majority class,
 * chance) and against trivial cues it could have learned instead of the face (gender, colour).
 */
import { map, type OperatorFunction, pipe, toArray } from "rxjs";
import sharp from "sharp";
import type { RgbImage } from "../core/types.ts";
import {
  balancedAccuracy,
  binomialUpperTail,
  permutationPValue,
  wilsonInterval,
} from "../core/statistics.ts";

export type Gender = "male" | "female";

/** A test face with the model's class probabilities. */
export interface ScoredFace {
  id: string;
  /** The true label. */
  category: string;
  /** One probability per class, in the model's `metadata.classes` order. */
  probabilities: ArrayLike<number>;
  /** PNG crop, for the report's montages. */
  crop?: Uint8Array;
  /** Gender as face-api's age/gender net predicts it, for the confound check. */
  gender?: Gender;
  /** Whether the photo is black and white, for the confound check. */
  grayscale?: boolean;
  /** Cross-validation fold with `--folds k`, else null or absent. */
  fold?: number | null;
}

/** A face shown in a top-k list. `confidence` is the probability of the model's prediction. */
export interface RankedFace {
  id: string;
  confidence: number;
  actual: string;
  predicted: string;
}

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  /** Test faces whose true label this is. */
  support: number;
}

export interface SignificanceTest {
  /** One-sided exact binomial test: P(at least this many correct | the baseline's rate). */
  pValue: number;
  significant: boolean;
}

/** How well a rule that sees only one trivial cue does. */
export interface GenderOnlyConfound {
  /** Accuracy of the best gender → class rule on the test faces with a gender; null without. */
  accuracy: number | null;
  /** Faces the accuracy is measured on. */
  n: number;
  /** The rule, e.g. `{ male: "republican", female: "democrat" }`. */
  rule: Partial<Record<Gender, string>>;
  /** `train`: the rule was chosen on training faces. `test`: chosen on the test faces themselves, so its accuracy is optimistic. */
  fitOn: "train" | "test";
  /** Whether the model beats the rule's accuracy; null without gender. */
  modelBeatsIt: SignificanceTest | null;
}

export interface SubsetAccuracy {
  /** null when the subset is empty. */
  accuracy: number | null;
  n: number;
}

export interface FoldMetrics {
  mean: number;
  /** Sample standard deviation across folds (0 with one fold). */
  std: number;
  perFold: { fold: number; accuracy: number; n: number }[];
}

export interface Metrics {
  accuracy: number;
  /** 95 % Wilson score interval of the accuracy. */
  ci95: [number, number];
  n: number;
  correct: number;
  /** Always answering the most common class. */
  majorityBaseline: { label: string; accuracy: number; fitOn: "train" | "test" };
  /** 1 / number of classes. */
  chance: number;
  beatsMajority: SignificanceTest;
  beatsChance: SignificanceTest;
  macroF1: number;
  /** Mean recall over the classes: what the accuracy is worth when classes are unbalanced. */
  balancedAccuracy: number;
  /**
   * Label-permutation p-value: how often shuffled true labels agree with the predictions at
   * least as often as the real labels do (see `permutationPValue`).
   */
  permutation: { pValue: number; permutations: number };
  /** Off-diagonal confusion cells, largest first (fastai's `most_confused`, min count 1). */
  mostConfused: { actual: string; predicted: string; count: number }[];
  perClass: ClassMetrics[];
  /**
   * `counts[i][j]`: faces of class `labels[i]` predicted as `labels[j]`; `ids[i][j]`: their
   * record ids (each face as the model that held it out answered), so a cell can show exactly
   * the faces it counts. Older metrics.json files have no `ids`.
   */
  confusion: {
    labels: string[];
    counts: number[][];
    rowNormalised: number[][];
    ids?: string[][][];
  };
  /** The seed study's table: how many faces of each class there are, and how many are predicted. */
  distribution: { label: string; real: number; predicted: number }[];
  topK: {
    label: string;
    falseNegatives: RankedFace[];
    falsePositives: RankedFace[];
    truePositives: RankedFace[];
  }[];
  confounds: {
    genderOnly: GenderOnlyConfound;
    grayscale: SubsetAccuracy;
    colour: SubsetAccuracy;
  };
  /** With cross-validation folds: accuracy per fold, its mean and spread. */
  folds?: FoldMetrics;
}

export interface MetricsOptions {
  /**
   * How many faces each top-k list holds.
   * @default 5
   */
  topK?: number;
  /**
   * Significance level of the tests against the baselines.
   * @default 0.05
   */
  alpha?: number;
  /**
   * Faces per class in the training split. With it the majority class is the training set's
   * (what a model could know); without, the test set's.
   */
  trainDistribution?: Record<string, number>;
  /**
   * Training faces with a predicted gender, to choose the gender-only rule on. Without them
   * the rule is chosen on the test faces, which flatters it (reported as `fitOn: "test"`).
   */
  genderFit?: { gender: Gender; category: string }[];
  /**
   * Random relabellings of the permutation test.
   * @default 2000
   */
  permutations?: number;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function mostCommon(counts: Map<string, number>, order: string[]): string | undefined {
  let best: string | undefined;
  for (const label of order) {
    const count = counts.get(label) ?? 0;
    if (count > 0 && (best === undefined || count > (counts.get(best) ?? 0))) best = label;
  }
  return best;
}

function checkOptions(classes: string[], options: MetricsOptions): Required<
  Pick<MetricsOptions, "topK" | "alpha">
> {
  const { topK = 5, alpha = 0.05 } = options;
  if (classes.length < 2) {
    throw new RangeError(
      `Cannot evaluate as 'classes' must name at least 2 classes: got ${classes.length}`,
    );
  }
  if (new Set(classes).size !== classes.length) {
    throw new RangeError(`Cannot evaluate as 'classes' has duplicates: ${classes.join(", ")}`);
  }
  if (!Number.isInteger(topK) || topK < 0) {
    throw new RangeError(`'topK' must be a non-negative integer: got ${topK}`);
  }
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`'alpha' must be in (0, 1): got ${alpha}`);
  return { topK, alpha };
}

interface Judged {
  face: ScoredFace;
  actual: number;
  predicted: number;
}

function ranked(
  judged: Judged[],
  classes: string[],
  confidenceOf: (j: Judged) => number,
  k: number,
) {
  return judged
    .map((j) => ({
      id: j.face.id,
      confidence: confidenceOf(j),
      actual: classes[j.actual]!,
      predicted: classes[j.predicted]!,
    }))
    .sort((a, b) => b.confidence - a.confidence || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, k);
}

function subsetAccuracy(judged: Judged[]): SubsetAccuracy {
  const correct = judged.filter((j) => j.actual === j.predicted).length;
  return { accuracy: judged.length ? correct / judged.length : null, n: judged.length };
}

function significance(correct: number, n: number, rate: number, alpha: number): SignificanceTest {
  const pValue = binomialUpperTail(correct, n, rate);
  return { pValue, significant: pValue < alpha };
}

function genderOnly(
  judged: Judged[],
  classes: string[],
  correct: number,
  n: number,
  alpha: number,
  fit: MetricsOptions["genderFit"],
): GenderOnlyConfound {
  const withGender = judged.filter((j) => j.face.gender !== undefined);
  const fitOn = fit && fit.length > 0 ? "train" : "test";
  const fitFaces = fitOn === "train"
    ? fit!
    : withGender.map((j) => ({ gender: j.face.gender!, category: j.face.category }));
  // Each gender maps to the class most common among its faces: the best rule there is.
  const rule: Partial<Record<Gender, string>> = {};
  for (const gender of ["male", "female"] as const) {
    const counts = new Map<string, number>();
    for (const face of fitFaces) {
      if (face.gender === gender) counts.set(face.category, (counts.get(face.category) ?? 0) + 1);
    }
    const label = mostCommon(counts, classes);
    if (label !== undefined) rule[gender] = label;
  }
  if (withGender.length === 0) {
    return { accuracy: null, n: 0, rule, fitOn, modelBeatsIt: null };
  }
  const fallback = mostCommon(
    new Map(classes.map((c) => [c, fitFaces.filter((f) => f.category === c).length])),
    classes,
  );
  const right =
    withGender.filter((j) => (rule[j.face.gender!] ?? fallback) === j.face.category).length;
  const accuracy = right / withGender.length;
  return {
    accuracy,
    n: withGender.length,
    rule,
    fitOn,
    modelBeatsIt: significance(correct, n, accuracy, alpha),
  };
}

function mostConfused(
  counts: number[][],
  classes: string[],
): { actual: string; predicted: string; count: number }[] {
  const cells = counts.flatMap((row, i) =>
    row.flatMap((count, j) =>
      i !== j && count > 0 ? [{ actual: classes[i]!, predicted: classes[j]!, count }] : []
    )
  );
  return cells.sort((a, b) => b.count - a.count);
}

function foldMetrics(judged: Judged[]): FoldMetrics | undefined {
  const byFold = new Map<number, Judged[]>();
  for (const j of judged) {
    const fold = j.face.fold;
    if (fold === undefined || fold === null) continue;
    byFold.set(fold, [...(byFold.get(fold) ?? []), j]);
  }
  if (byFold.size === 0) return undefined;
  const perFold = [...byFold.entries()]
    .sort(([a], [b]) => a - b)
    .map(([fold, faces]) => ({
      fold,
      accuracy: faces.filter((j) => j.actual === j.predicted).length / faces.length,
      n: faces.length,
    }));
  const mean = perFold.reduce((sum, f) => sum + f.accuracy, 0) / perFold.length;
  const variance = perFold.length > 1
    ? perFold.reduce((sum, f) => sum + (f.accuracy - mean) ** 2, 0) / (perFold.length - 1)
    : 0;
  return { mean, std: Math.sqrt(variance), perFold };
}

/**
 * Every number the report shows, from the scored test faces of one model.
 *
 * @example
 * ```ts
 * const metrics = computeMetrics(
 *   [{ id: "a1", category: "cs", probabilities: [0.8, 0.2] }, { id: "b2", category: "law", probabilities: [0.6, 0.4] }],
 *   ["cs", "law"],
 * );
 * metrics.accuracy; // 0.5
 * ```
 */
export function computeMetrics(
  faces: ScoredFace[],
  classes: string[],
  options: MetricsOptions = {},
): Metrics {
  const { topK, alpha } = checkOptions(classes, options);
  if (faces.length === 0) {
    throw new RangeError("Cannot evaluate on 0 faces: the test split is empty");
  }
  const judged = judgeFaces(faces, classes);
  const n = judged.length;
  const { counts, ids, rowNormalised, real, predicted, correct } = confusionOf(judged, classes);
  const perClass = perClassMetrics(classes, counts, real, predicted);
  const majority = majorityBaseline(classes, real, n, options.trainDistribution);
  const chance = 1 / classes.length;
  const actualLabels = judged.map((j) => j.actual);
  const predictedLabels = judged.map((j) => j.predicted);
  const permutations = options.permutations ?? 2000;
  const metrics: Metrics = {
    accuracy: correct / n,
    ci95: wilsonInterval(correct, n),
    n,
    correct,
    majorityBaseline: majority,
    chance,
    beatsMajority: significance(correct, n, majority.accuracy, alpha),
    beatsChance: significance(correct, n, chance, alpha),
    macroF1: perClass.reduce((sum, c) => sum + c.f1, 0) / classes.length,
    balancedAccuracy: balancedAccuracy(actualLabels, predictedLabels),
    permutation: {
      pValue: permutationPValue(actualLabels, predictedLabels, { permutations }),
      permutations,
    },
    mostConfused: mostConfused(counts, classes),
    perClass,
    confusion: { labels: [...classes], counts, rowNormalised, ids },
    distribution: classes.map((label, i) => ({ label, real: real[i]!, predicted: predicted[i]! })),
    topK: topKLists(judged, classes, topK),
    confounds: {
      genderOnly: genderOnly(judged, classes, correct, n, alpha, options.genderFit),
      grayscale: subsetAccuracy(judged.filter((j) => j.face.grayscale === true)),
      colour: subsetAccuracy(judged.filter((j) => j.face.grayscale === false)),
    },
  };
  const folds = foldMetrics(judged);
  if (folds) metrics.folds = folds;
  return metrics;
}

/** Each face with its true class and the model's answer; a face that does not fit throws. */
function judgeFaces(faces: ScoredFace[], classes: string[]): Judged[] {
  const index = new Map(classes.map((label, i) => [label, i]));
  return faces.map((face) => {
    if (face.probabilities.length !== classes.length) {
      throw new TypeError(
        `Face ${face.id} has ${face.probabilities.length} probabilities for ${classes.length} classes`,
      );
    }
    const actual = index.get(face.category);
    if (actual === undefined) {
      throw new RangeError(
        `Face ${face.id} is labelled '${face.category}', which the model does not know (${
          classes.join(", ")
        })`,
      );
    }
    return { face, actual, predicted: argmax(face.probabilities) };
  });
}

/**
 * The confusion matrix, its rows normalised, its row sums (`real`: faces per true class), its
 * column sums (`predicted`: faces per predicted class) and its diagonal's sum (`correct`).
 */
function confusionOf(judged: Judged[], classes: string[]) {
  const counts = classes.map(() => classes.map(() => 0));
  const ids = classes.map(() => classes.map((): string[] => []));
  for (const j of judged) {
    counts[j.actual]![j.predicted]!++;
    ids[j.actual]![j.predicted]!.push(j.face.id);
  }
  const correct = classes.reduce((sum, _, i) => sum + counts[i]![i]!, 0);
  const rowNormalised = counts.map((row) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((c) => (total ? c / total : 0));
  });
  const real = counts.map((row) => row.reduce((a, b) => a + b, 0));
  const predicted = classes.map((_, j) => counts.reduce((sum, row) => sum + row[j]!, 0));
  return { counts, ids, rowNormalised, real, predicted, correct };
}

/** Precision, recall and F1 of each class against the rest. */
function perClassMetrics(
  classes: string[],
  counts: number[][],
  real: number[],
  predicted: number[],
): ClassMetrics[] {
  return classes.map((label, i) => {
    const truePositives = counts[i]![i]!;
    const precision = predicted[i]! ? truePositives / predicted[i]! : 0;
    const recall = real[i]! ? truePositives / real[i]! : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support: real[i]! };
  });
}

/**
 * Always answering the most common class: the training set's when its counts are known (what
 * a model could know), else the test set's. `real` counts the test faces per class.
 */
function majorityBaseline(
  classes: string[],
  real: number[],
  n: number,
  trainCounts: MetricsOptions["trainDistribution"],
): Metrics["majorityBaseline"] {
  const fitOn = trainCounts && Object.values(trainCounts).some((c) => c > 0) ? "train" : "test";
  const label = fitOn === "train"
    ? mostCommon(new Map(Object.entries(trainCounts!)), classes)!
    : mostCommon(new Map(classes.map((c, i) => [c, real[i]!])), classes)!;
  return { label, accuracy: real[classes.indexOf(label)]! / n, fitOn };
}

/** Per class, the most confident mistakes either way and the most confident right answers. */
function topKLists(judged: Judged[], classes: string[], k: number): Metrics["topK"] {
  return classes.map((label, c) => ({
    label,
    falseNegatives: ranked(
      judged.filter((j) => j.actual === c && j.predicted !== c),
      classes,
      (j) => j.face.probabilities[j.predicted]!,
      k,
    ),
    falsePositives: ranked(
      judged.filter((j) => j.predicted === c && j.actual !== c),
      classes,
      (j) => j.face.probabilities[c]!,
      k,
    ),
    truePositives: ranked(
      judged.filter((j) => j.actual === c && j.predicted === c),
      classes,
      (j) => j.face.probabilities[c]!,
      k,
    ),
  }));
}

export interface EvaluateOptions extends MetricsOptions {
  /** The model's classes, in the order of its probabilities. */
  classes: string[];
}

/**
 * The evaluation stage: collects the scored test faces of one model and emits its metrics once
 * the stream completes.
 *
 * @example
 * ```ts
 * from(scoredFaces).pipe(evaluate({ classes: ["democrat", "republican"] })).subscribe(console.log);
 * ```
 */
export function evaluate(options: EvaluateOptions): OperatorFunction<ScoredFace, Metrics> {
  const { classes, ...metricsOptions } = options;
  checkOptions(classes, metricsOptions);
  return pipe(toArray(), map((faces) => computeMetrics(faces, classes, metricsOptions)));
}

/**
 * Whether a photo is black and white: the spread of its chroma (Hasler & Süsstrunk's opponent
 * channels, without their mean, so a uniform colour cast does not count) stays under `threshold`.
 * On the congress portraits the 60 b/w photos measure 0 and the colour ones 21 to 89.
 */
export async function isGrayscale(
  image: Uint8Array | RgbImage,
  threshold = 5,
): Promise<boolean> {
  const source = image instanceof Uint8Array
    ? sharp(image)
    : sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  const { data } = await source
    .removeAlpha()
    .toColourspace("srgb")
    .resize(64, 64, { fit: "fill" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  let sumRg = 0, sumYb = 0, sumRg2 = 0, sumYb2 = 0;
  const pixels = data.length / 3;
  for (let i = 0; i < data.length; i += 3) {
    const [r, g, b] = [data[i]!, data[i + 1]!, data[i + 2]!];
    const rg = r - g;
    const yb = (r + g) / 2 - b;
    sumRg += rg;
    sumYb += yb;
    sumRg2 += rg * rg;
    sumYb2 += yb * yb;
  }
  const variance = sumRg2 / pixels - (sumRg / pixels) ** 2 + sumYb2 / pixels -
    (sumYb / pixels) ** 2;
  return Math.sqrt(Math.max(0, variance)) < threshold;
}
