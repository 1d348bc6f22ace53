/**
 * Multinomial logistic regression on plain typed arrays, fitted to convergence: the linear
 * probes' model and the baselines'. Features are standardised on the training rows, the L2
 * penalty is on the weights (not the biases), and the fit is L-BFGS on the exact objective,
 * so a fit is deterministic and its penalty means what it says; tfjs would add tensors and a
 * backend for a few hundred multiply-adds per row.
 *
 * The penalty is what decides a probe's worth on a few hundred faces: too weak and the probe
 * learns the training faces, too strong and it learns nothing. `fitCv` chooses it by
 * cross-validation inside the training rows (grouped by person), never on held-out faces.
 */

export interface LogisticOptions {
  /**
   * L2 penalty: the objective is mean cross-entropy + l2/2 · Σ weight².
   * @default 0.01
   */
  l2?: number;
  /**
   * Most L-BFGS iterations; the fit stops earlier once the gradient vanishes.
   * @default 300
   */
  iterations?: number;
  /**
   * Weigh each class's rows so that every class counts as much in the loss (n / (classes · n_c)
   * per row): a class outnumbered in training is not simply predicted less often, which on a
   * held-out source of the smaller class would score below chance.
   * @default false
   */
  balanced?: boolean;
}

/** The penalties `fitCv` tries, strong to weak: about three per decade. */
export const L2_GRID: readonly number[] = [30, 10, 3, 1, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001];

export interface CvOptions {
  /** Penalties to try. @default L2_GRID */
  grid?: readonly number[];
  /**
   * Inner folds; fewer when a class has fewer groups than this.
   * @default 5
   */
  folds?: number;
  /**
   * Each row's group (a person): rows of one group stay in one inner fold, so the choice is
   * never made on a face of someone the fit saw. @default every row its own group
   */
  groups?: readonly string[];
  /** Most L-BFGS iterations per fit. @default 300 */
  iterations?: number;
  /** Balanced class weights, in the inner fits and the final one. @default false */
  balanced?: boolean;
  /** Keep each row's out-of-fold probabilities in the scores. @default false */
  outOfFold?: boolean;
  /**
   * Stop going down the grid (strong to weak) once this many penalties in a row have scored a
   * higher inner-CV loss than the best so far: the loss along the path is U-shaped, and its
   * weak end is where fits take longest. `Infinity` tries the whole grid. The choice is made on
   * the inner folds either way; only penalties past a rise that did not turn back are skipped.
   * @default 2
   */
  patience?: number;
}

/**
 * One penalty's inner cross-validation: mean log loss and accuracy over the inner folds. `fitCv`
 * gives one per penalty it tried, in the grid's order (see `CvOptions.patience`).
 */
export interface CvScore {
  l2: number;
  loss: number;
  accuracy: number;
  /**
   * With `CvOptions.outOfFold`: each row's probabilities from the inner fit that did not see
   * it, at this penalty (for stacking: a second model learns from answers like a test face's).
   */
  outOfFold?: Float64Array[];
}

/** A fitted model: standardisation, then one linear score per class, then softmax. */
export class LogisticRegression {
  constructor(
    readonly classes: number,
    readonly means: Float64Array,
    readonly scales: Float64Array,
    /** `classes` rows of `features + 1` values, the bias last. */
    readonly weights: Float64Array,
    /** The penalty it was fitted with. */
    readonly l2: number,
  ) {}

  get features(): number {
    return this.means.length;
  }

  /**
   * Fits on `rows` (all the same length) with labels `0…classes-1`.
   *
   * @example
   * ```ts
   * const model = LogisticRegression.fit([[0], [1], [2], [3]], [0, 0, 1, 1], 2);
   * model.predict([[3]])[0]; // ≈ [0.1, 0.9]
   * ```
   */
  static fit(
    rows: readonly ArrayLike<number>[],
    labels: readonly number[],
    classes: number,
    options: LogisticOptions = {},
  ): LogisticRegression {
    const { l2 = 0.01, iterations = 300, balanced = false } = options;
    checkFitInput(rows, labels, classes);
    if (!(l2 >= 0 && Number.isFinite(l2)) || !Number.isInteger(iterations) || iterations < 1) {
      throw new RangeError(
        `Cannot fit with l2=${l2}, iterations=${iterations}: need l2 ≥ 0 and a positive ` +
          `integer of iterations`,
      );
    }
    const { means, scales } = standardisation(rows);
    const data = standardised(rows, means, scales);
    const problem = new Problem(data, labels, classes, l2, balanced ? classWeights(labels) : null);
    const weights = minimise(problem, new Float64Array(problem.size), iterations);
    return new LogisticRegression(classes, means, scales, weights, l2);
  }

  /**
   * Chooses the penalty by grouped, stratified k-fold cross-validation inside `rows` (the
   * lowest mean log loss; a tie goes to the stronger penalty), then fits on all of them.
   * Log loss, not accuracy, chooses: on a few dozen held-out rows accuracy moves in steps of
   * a few percent and ties often, the loss does not.
   */
  static fitCv(
    rows: readonly ArrayLike<number>[],
    labels: readonly number[],
    classes: number,
    options: CvOptions = {},
  ): { model: LogisticRegression; scores: CvScore[] } {
    const { grid = L2_GRID, iterations = 300, balanced = false } = options;
    checkFitInput(rows, labels, classes);
    if (grid.length === 0 || grid.some((l2) => !(l2 >= 0 && Number.isFinite(l2)))) {
      throw new RangeError(`Cannot fit: the penalty grid must list finite values ≥ 0`);
    }
    const { patience = 2 } = options;
    if (!(patience >= 1)) throw new RangeError(`Cannot fit with patience ${patience}: need ≥ 1`);
    const folds = innerFolds(labels, options.groups, options.folds ?? 5);
    const scores = folds
      ? scorePath(rows, labels, classes, folds, grid, {
        iterations,
        balanced,
        patience,
        outOfFold: options.outOfFold ?? false,
      })
      : [];
    const best = folds
      ? scores.reduce((a, b) => (b.loss < a.loss - 1e-12 ? b : a))
      : { l2: grid[Math.floor(grid.length / 2)]! };
    const model = LogisticRegression.fit(rows, labels, classes, {
      l2: best.l2,
      iterations,
      balanced,
    });
    return { model, scores };
  }

  /** Class probabilities for each row. */
  predict(rows: readonly ArrayLike<number>[]): Float64Array[] {
    const d = this.features;
    return rows.map((row) => {
      if (row.length !== d) {
        throw new RangeError(
          `Cannot predict a row of ${row.length} features: the model takes ${d}`,
        );
      }
      const z = new Float64Array(d + 1);
      for (let j = 0; j < d; j++) z[j] = (row[j]! - this.means[j]!) / this.scales[j]!;
      z[d] = 1;
      const scores = new Float64Array(this.classes);
      softmaxScores(this.weights, z, 0, this.classes, scores);
      return scores;
    });
  }

  /**
   * The model as one affine map on the raw features (standardisation folded in): `kernel` is
   * features × classes, row-major, as a dense layer holds it; `bias` one per class.
   */
  affine(): { kernel: Float32Array; bias: Float32Array } {
    const d = this.features;
    const width = d + 1;
    const kernel = new Float32Array(d * this.classes);
    const bias = new Float32Array(this.classes);
    for (let c = 0; c < this.classes; c++) {
      let b = this.weights[c * width + d]!;
      for (let j = 0; j < d; j++) {
        const w = this.weights[c * width + j]! / this.scales[j]!;
        kernel[j * this.classes + c] = w;
        b -= w * this.means[j]!;
      }
      bias[c] = b;
    }
    return { kernel, bias };
  }
}

function checkFitInput(
  rows: readonly ArrayLike<number>[],
  labels: readonly number[],
  classes: number,
): void {
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(`Cannot fit as 'classes' must be an integer ≥ 2: got ${classes}`);
  }
  if (rows.length === 0 || rows.length !== labels.length) {
    throw new RangeError(
      `Cannot fit on ${rows.length} rows with ${labels.length} labels: need as many, at least 1`,
    );
  }
  const d = rows[0]!.length;
  for (const [i, label] of labels.entries()) {
    if (rows[i]!.length !== d) {
      throw new RangeError(`Row ${i} has ${rows[i]!.length} features, row 0 has ${d}`);
    }
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw new RangeError(`Label ${label} of row ${i} is not in 0…${classes - 1}`);
    }
  }
}

/** Mean and standard deviation of each feature; a constant feature gets a scale of 1. */
function standardisation(rows: readonly ArrayLike<number>[]) {
  const n = rows.length;
  const d = rows[0]!.length;
  const means = new Float64Array(d);
  const scales = new Float64Array(d);
  for (const row of rows) for (let j = 0; j < d; j++) means[j]! += row[j]! / n;
  for (const row of rows) {
    for (let j = 0; j < d; j++) scales[j]! += (row[j]! - means[j]!) ** 2 / n;
  }
  // A constant feature carries nothing; a scale of 1 keeps it at 0 instead of dividing by 0.
  for (let j = 0; j < d; j++) scales[j] = scales[j]! > 1e-12 ? Math.sqrt(scales[j]!) : 1;
  return { means, scales };
}

/** The rows standardised, each with a trailing 1 for the bias, in one flat array. */
function standardised(
  rows: readonly ArrayLike<number>[],
  means: Float64Array,
  scales: Float64Array,
): { x: Float64Array; width: number } {
  const d = means.length;
  const width = d + 1;
  const x = new Float64Array(rows.length * width);
  rows.forEach((row, i) => {
    for (let j = 0; j < d; j++) x[i * width + j] = (row[j]! - means[j]!) / scales[j]!;
    x[i * width + d] = 1;
  });
  return { x, width };
}

/** The penalised objective of one fit: its value and gradient at given weights. */
class Problem {
  readonly n: number;
  readonly size: number;
  readonly #scores: Float64Array;

  constructor(
    readonly data: { x: Float64Array; width: number },
    readonly labels: readonly number[],
    readonly classes: number,
    readonly l2: number,
    /** Each row's weight in the loss (mean 1); null weighs every row alike. */
    readonly rowWeights: Float64Array | null = null,
  ) {
    this.n = labels.length;
    this.size = classes * data.width;
    this.#scores = new Float64Array(classes);
  }

  /** The objective at `weights`; its gradient is written into `gradient`. */
  evaluate(weights: Float64Array, gradient: Float64Array): number {
    const { x, width } = this.data;
    const { n, classes, l2 } = this;
    const scores = this.#scores;
    gradient.fill(0);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const offset = i * width;
      softmaxScores(weights, x, offset, classes, scores);
      const weight = this.rowWeights?.[i] ?? 1;
      loss -= weight * Math.log(Math.max(scores[this.labels[i]!]!, 1e-300));
      for (let c = 0; c < classes; c++) {
        const error = weight * (scores[c]! - (this.labels[i] === c ? 1 : 0)) / n;
        const g = c * width;
        for (let j = 0; j < width; j++) gradient[g + j]! += error * x[offset + j]!;
      }
    }
    let penalty = 0;
    for (let k = 0; k < weights.length; k++) {
      if (k % width === width - 1) continue;
      penalty += weights[k]! * weights[k]!;
      gradient[k]! += l2 * weights[k]!;
    }
    return loss / n + l2 / 2 * penalty;
  }
}

/** Balanced class weights: n / (classes present · rows of the class), so they average 1. */
function classWeights(labels: readonly number[]): Float64Array {
  const counts = new Map<number, number>();
  for (const label of labels) counts.set(label, (counts.get(label) ?? 0) + 1);
  return Float64Array.from(labels, (label) => labels.length / (counts.size * counts.get(label)!));
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k]! * b[k]!;
  return s;
}

/**
 * L-BFGS (10 pairs) with a backtracking Armijo line search, from `start`; stops when the
 * largest gradient component is under 1e-7 or the objective stops moving.
 */
function minimise(problem: Problem, start: Float64Array, iterations: number): Float64Array {
  const memory = 10;
  const w = start.slice();
  let g = new Float64Array(w.length);
  let f = problem.evaluate(w, g);
  const pairs: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  const direction = new Float64Array(w.length);
  const trial = new Float64Array(w.length);
  let trialGradient = new Float64Array(w.length);
  for (let iteration = 0; iteration < iterations; iteration++) {
    if (g.reduce((max, v) => Math.max(max, Math.abs(v)), 0) < 1e-7) break;
    // Two-loop recursion: direction = −H·g.
    direction.set(g);
    const alphas: number[] = [];
    for (let k = pairs.length - 1; k >= 0; k--) {
      const { s, y, rho } = pairs[k]!;
      const alpha = rho * dot(s, direction);
      alphas[k] = alpha;
      for (let j = 0; j < w.length; j++) direction[j]! -= alpha * y[j]!;
    }
    const last = pairs.at(-1);
    const gamma = last
      ? dot(last.s, last.y) / dot(last.y, last.y)
      : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let j = 0; j < w.length; j++) direction[j]! *= gamma;
    for (let k = 0; k < pairs.length; k++) {
      const { s, y, rho } = pairs[k]!;
      const beta = rho * dot(y, direction);
      for (let j = 0; j < w.length; j++) direction[j]! += s[j]! * (alphas[k]! - beta);
    }
    for (let j = 0; j < w.length; j++) direction[j] = -direction[j]!;
    const slope = dot(g, direction);
    if (!(slope < 0)) {
      pairs.length = 0;
      continue;
    }
    let step = 1;
    let fTrial = Infinity;
    for (let tries = 0; tries < 40; tries++, step /= 2) {
      for (let j = 0; j < w.length; j++) trial[j] = w[j]! + step * direction[j]!;
      fTrial = problem.evaluate(trial, trialGradient);
      if (fTrial <= f + 1e-4 * step * slope) break;
    }
    if (!(fTrial < f)) break;
    const s = new Float64Array(w.length);
    const y = new Float64Array(w.length);
    for (let j = 0; j < w.length; j++) {
      s[j] = trial[j]! - w[j]!;
      y[j] = trialGradient[j]! - g[j]!;
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      pairs.push({ s, y, rho: 1 / sy });
      if (pairs.length > memory) pairs.shift();
    }
    w.set(trial);
    [g, trialGradient] = [trialGradient, g];
    const moved = f - fTrial;
    f = fTrial;
    if (moved < 1e-12 * Math.max(1, Math.abs(f))) break;
  }
  return w;
}

/**
 * Each row's inner fold: groups dealt round-robin per class, in an order fixed by their
 * names, so every fold holds every class where it can. Null when a class has fewer than two
 * groups (there is nothing to hold out then).
 */
function innerFolds(
  labels: readonly number[],
  groups: readonly string[] | undefined,
  wanted: number,
): { of: Int32Array; count: number } | null {
  const groupOf = groups ?? labels.map((_, i) => String(i));
  if (groupOf.length !== labels.length) {
    throw new RangeError(`Cannot fit: ${groupOf.length} groups for ${labels.length} rows`);
  }
  const groupsByClass = new Map<number, string[]>();
  const classOfGroup = new Map<string, number>();
  labels.forEach((label, i) => {
    const group = groupOf[i]!;
    if (classOfGroup.has(group)) return;
    classOfGroup.set(group, label);
    groupsByClass.set(label, [...(groupsByClass.get(label) ?? []), group]);
  });
  const fewest = Math.min(...[...groupsByClass.values()].map((list) => list.length));
  const count = Math.min(wanted, fewest);
  if (count < 2) return null;
  const foldOfGroup = new Map<string, number>();
  let next = 0;
  for (const label of [...groupsByClass.keys()].sort((a, b) => a - b)) {
    for (const group of groupsByClass.get(label)!.sort(byHash)) {
      foldOfGroup.set(group, next++ % count);
    }
  }
  return { of: Int32Array.from(groupOf, (group) => foldOfGroup.get(group)!), count };
}

/** A stable order that does not follow the names' own order (ids often sort by date). */
function byHash(a: string, b: string): number {
  return hash(a) - hash(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** One inner fold, standardised on its training rows once for the whole path. */
interface InnerFold {
  data: { x: Float64Array; width: number };
  labels: number[];
  means: Float64Array;
  scales: Float64Array;
  heldIndex: number[];
  /** The last penalty's optimum: the next, weaker one starts from it (their optima are close). */
  weights: Float64Array;
}

function innerFold(
  rows: readonly ArrayLike<number>[],
  labels: readonly number[],
  classes: number,
  foldOf: Int32Array,
  fold: number,
): InnerFold | null {
  const inside = rows.filter((_, i) => foldOf[i] !== fold);
  const insideLabels = labels.filter((_, i) => foldOf[i] !== fold);
  if (new Set(insideLabels).size < 2) return null;
  const { means, scales } = standardisation(inside);
  const data = standardised(inside, means, scales);
  return {
    data,
    labels: insideLabels,
    means,
    scales,
    heldIndex: rows.flatMap((_, i) => foldOf[i] === fold ? [i] : []),
    weights: new Float64Array(classes * data.width),
  };
}

/**
 * Scores the grid's penalties strong to weak, every inner fold at each, until `patience`
 * penalties in a row score worse than the best so far; the scores of the penalties tried.
 */
function scorePath(
  rows: readonly ArrayLike<number>[],
  labels: readonly number[],
  classes: number,
  folds: { of: Int32Array; count: number },
  grid: readonly number[],
  options: { iterations: number; balanced: boolean; patience: number; outOfFold: boolean },
): CvScore[] {
  const inner = Array.from(
    { length: folds.count },
    (_, fold) => innerFold(rows, labels, classes, folds.of, fold),
  ).filter((f): f is InnerFold => f !== null);
  const scores: CvScore[] = [];
  let best = Infinity;
  let worse = 0;
  for (const l2 of grid) {
    const score: CvScore = {
      l2,
      loss: 0,
      accuracy: 0,
      ...(options.outOfFold ? { outOfFold: new Array<Float64Array>(rows.length) } : {}),
    };
    for (const fold of inner) scoreFold(rows, labels, classes, fold, score, options);
    score.loss /= rows.length;
    score.accuracy /= rows.length;
    scores.push(score);
    if (score.loss < best - 1e-12) [best, worse] = [score.loss, 0];
    else if (++worse >= options.patience) break;
  }
  return scores;
}

/** Adds one inner fold's held-out log loss and correct count at one penalty to its score. */
function scoreFold(
  rows: readonly ArrayLike<number>[],
  labels: readonly number[],
  classes: number,
  fold: InnerFold,
  score: CvScore,
  { iterations, balanced }: { iterations: number; balanced: boolean },
): void {
  const problem = new Problem(
    fold.data,
    fold.labels,
    classes,
    score.l2,
    balanced ? classWeights(fold.labels) : null,
  );
  fold.weights = minimise(problem, fold.weights, iterations);
  const model = new LogisticRegression(classes, fold.means, fold.scales, fold.weights, score.l2);
  model.predict(fold.heldIndex.map((i) => rows[i]!)).forEach((p, k) => {
    const label = labels[fold.heldIndex[k]!]!;
    score.loss -= Math.log(Math.max(p[label]!, 1e-15));
    if (p.indexOf(Math.max(...p)) === label) score.accuracy++;
    if (score.outOfFold) score.outOfFold[fold.heldIndex[k]!] = p;
  });
}

/** Softmax of the linear scores of the row at `x[offset…]` (bias included) into `out`. */
function softmaxScores(
  weights: Float64Array,
  x: Float64Array,
  offset: number,
  classes: number,
  out: Float64Array,
): void {
  const width = weights.length / classes;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) {
    let s = 0;
    const w = c * width;
    for (let j = 0; j < width; j++) s += weights[w + j]! * x[offset + j]!;
    out[c] = s;
    if (s > max) max = s;
  }
  let total = 0;
  for (let c = 0; c < classes; c++) {
    out[c] = Math.exp(out[c]! - max);
    total += out[c]!;
  }
  for (let c = 0; c < classes; c++) out[c] = out[c]! / total;
}
