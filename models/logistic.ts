/**
 * Multinomial logistic regression on plain typed arrays: the baselines' model. The style checks
 * fit one per feature set (image statistics, a masked or blurred picture, estimated age and
 * gender) on every split, so it must be small, deterministic and fast; tfjs would add tensors
 * and a backend for a few hundred multiply-adds. Features are standardised on the training rows.
 */

export interface LogisticOptions {
  /**
   * L2 penalty on the weights (not the biases), per training row.
   * @default 0.01
   */
  l2?: number;
  /**
   * Full-batch gradient steps.
   * @default 300
   */
  iterations?: number;
  /**
   * Step size of Adam.
   * @default 0.05
   */
  learningRate?: number;
}

/** A fitted model: standardisation, then one linear score per class, then softmax. */
export class LogisticRegression {
  private constructor(
    readonly classes: number,
    readonly means: Float64Array,
    readonly scales: Float64Array,
    /** `classes` rows of `features + 1` values, the bias last. */
    readonly weights: Float64Array,
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
    const { l2 = 0.01, iterations = 300, learningRate = 0.05 } = options;
    if (!Number.isInteger(classes) || classes < 2) {
      throw new RangeError(`Cannot fit as 'classes' must be an integer ≥ 2: got ${classes}`);
    }
    if (rows.length === 0 || rows.length !== labels.length) {
      throw new RangeError(
        `Cannot fit on ${rows.length} rows with ${labels.length} labels: need as many, at least 1`,
      );
    }
    if (!(l2 >= 0) || !Number.isInteger(iterations) || iterations < 1 || !(learningRate > 0)) {
      throw new RangeError(
        `Cannot fit with l2=${l2}, iterations=${iterations}, learningRate=${learningRate}: ` +
          `need l2 ≥ 0, a positive integer of iterations and a positive rate`,
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
    const n = rows.length;
    const means = new Float64Array(d);
    const scales = new Float64Array(d);
    for (const row of rows) for (let j = 0; j < d; j++) means[j]! += row[j]! / n;
    for (const row of rows) {
      for (let j = 0; j < d; j++) scales[j]! += (row[j]! - means[j]!) ** 2 / n;
    }
    // A constant feature carries nothing; a scale of 1 keeps it at 0 instead of dividing by 0.
    for (let j = 0; j < d; j++) scales[j] = scales[j]! > 1e-12 ? Math.sqrt(scales[j]!) : 1;
    const x = rows.map((row) => {
      const z = new Float64Array(d + 1);
      for (let j = 0; j < d; j++) z[j] = (row[j]! - means[j]!) / scales[j]!;
      z[d] = 1;
      return z;
    });

    const width = d + 1;
    const weights = new Float64Array(classes * width);
    const gradient = new Float64Array(weights.length);
    const m = new Float64Array(weights.length);
    const v = new Float64Array(weights.length);
    const scores = new Float64Array(classes);
    const [beta1, beta2] = [0.9, 0.999];
    for (let step = 1; step <= iterations; step++) {
      gradient.fill(0);
      for (let i = 0; i < n; i++) {
        softmaxScores(weights, x[i]!, classes, scores);
        for (let c = 0; c < classes; c++) {
          const error = (scores[c]! - (labels[i] === c ? 1 : 0)) / n;
          const offset = c * width;
          for (let j = 0; j < width; j++) gradient[offset + j]! += error * x[i]![j]!;
        }
      }
      for (let k = 0; k < weights.length; k++) {
        const isBias = k % width === d;
        const g = gradient[k]! + (isBias ? 0 : l2 * weights[k]!);
        m[k] = beta1 * m[k]! + (1 - beta1) * g;
        v[k] = beta2 * v[k]! + (1 - beta2) * g * g;
        const mHat = m[k]! / (1 - beta1 ** step);
        const vHat = v[k]! / (1 - beta2 ** step);
        weights[k]! -= learningRate * mHat / (Math.sqrt(vHat) + 1e-8);
      }
    }
    return new LogisticRegression(classes, means, scales, weights);
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
      softmaxScores(this.weights, z, this.classes, scores);
      return scores;
    });
  }
}

/** Softmax of the linear scores of `x` (bias included) into `out`. */
function softmaxScores(
  weights: Float64Array,
  x: Float64Array,
  classes: number,
  out: Float64Array,
): void {
  const width = x.length;
  let max = -Infinity;
  for (let c = 0; c < classes; c++) {
    let s = 0;
    const offset = c * width;
    for (let j = 0; j < width; j++) s += weights[offset + j]! * x[j]!;
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
