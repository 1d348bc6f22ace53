/** Small statistics the evaluation needs: a binomial interval and an exact test. */
import studentTCdf from "@stdlib/stats-base-dists-t-cdf";

/** z for a two-sided 95 % interval. */
export const Z95 = 1.959963984540054;

/**
 * Wilson score interval for a proportion: stays inside [0, 1] and is honest for small n,
 * where the normal approximation is not.
 *
 * @example
 * ```ts
 * wilsonInterval(134, 235); // ≈ [0.507, 0.632]
 * ```
 */
export function wilsonInterval(successes: number, n: number, z = Z95): [number, number] {
  if (!Number.isInteger(n) || n <= 0) {
    throw new RangeError(`Cannot compute an interval as 'n' must be a positive integer: got ${n}`);
  }
  if (!Number.isInteger(successes) || successes < 0 || successes > n) {
    throw new RangeError(`'successes' must be an integer from 0 to n=${n}: got ${successes}`);
  }
  const p = successes / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z * Math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / denominator;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** ln(k!) for k = 0…n. */
function logFactorials(n: number): Float64Array {
  const table = new Float64Array(n + 1);
  for (let k = 2; k <= n; k++) table[k] = table[k - 1]! + Math.log(k);
  return table;
}

/**
 * One-sided exact binomial test: the probability of `successes` or more out of `n` if each
 * trial succeeds with probability `p0`.
 */
export function binomialUpperTail(successes: number, n: number, p0: number): number {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(successes) || successes < 0) {
    throw new RangeError(`successes and n must be non-negative integers: got ${successes}/${n}`);
  }
  if (!(p0 >= 0 && p0 <= 1)) throw new RangeError(`'p0' must be in [0, 1]: got ${p0}`);
  if (successes === 0) return 1;
  if (successes > n) return 0;
  if (p0 === 0) return 0;
  if (p0 === 1) return 1;
  const lf = logFactorials(n);
  const logP = Math.log(p0);
  const logQ = Math.log1p(-p0);
  let tail = 0;
  for (let k = successes; k <= n; k++) {
    tail += Math.exp(lf[n]! - lf[k]! - lf[n - k]! + k * logP + (n - k) * logQ);
  }
  return Math.min(1, tail);
}

/**
 * Exact one-sided McNemar test for two classifiers judged on the same faces: the probability
 * that the first is right where the second is wrong `firstOnly` times or more out of the
 * `firstOnly + secondOnly` faces where they disagree, if neither were better. A paired test,
 * so it is far sharper than comparing two accuracies with their own intervals.
 */
export function mcnemarUpperTail(firstOnly: number, secondOnly: number): number {
  return binomialUpperTail(firstOnly, firstOnly + secondOnly, 0.5);
}

/** A small seeded generator (mulberry32), so permutation tests repeat exactly. */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mean recall over the classes that occur among `actual`: accuracy that a majority guess cannot inflate. */
export function balancedAccuracy(actual: readonly number[], predicted: readonly number[]): number {
  if (actual.length !== predicted.length) {
    throw new RangeError(
      `Cannot compare ${actual.length} labels with ${predicted.length} predictions`,
    );
  }
  const seen = new Map<number, { n: number; right: number }>();
  actual.forEach((label, i) => {
    const entry = seen.get(label) ?? { n: 0, right: 0 };
    entry.n++;
    if (predicted[i] === label) entry.right++;
    seen.set(label, entry);
  });
  if (seen.size === 0) return 0;
  return [...seen.values()].reduce((sum, c) => sum + c.right / c.n, 0) / seen.size;
}

export interface PermutationOptions {
  /**
   * Random relabellings drawn.
   * @default 2000
   */
  permutations?: number;
  /**
   * Seed of the relabellings.
   * @default 1
   */
  seed?: number;
}

/**
 * Label-permutation p-value of an accuracy on held-out faces: how often the true labels,
 * shuffled among the same faces, agree with the predictions at least as often as the real
 * ones do. `(1 + hits) / (1 + permutations)`, so it is never 0. It tests the predictions
 * against the labels; retraining the model on every shuffle (Ojala & Garriga's test 1) would
 * cost a training run per permutation.
 */
export function permutationPValue(
  actual: readonly number[],
  predicted: readonly number[],
  options: PermutationOptions = {},
): number {
  const { permutations = 2000, seed = 1 } = options;
  if (!Number.isInteger(permutations) || permutations < 1) {
    throw new RangeError(`'permutations' must be a positive integer: got ${permutations}`);
  }
  if (actual.length !== predicted.length) {
    throw new RangeError(
      `Cannot compare ${actual.length} labels with ${predicted.length} predictions`,
    );
  }
  const observed = actual.reduce((sum, label, i) => sum + (label === predicted[i] ? 1 : 0), 0);
  const random = seededUniform(seed);
  const labels = [...actual];
  let hits = 0;
  for (let p = 0; p < permutations; p++) {
    for (let i = labels.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [labels[i], labels[j]] = [labels[j]!, labels[i]!];
    }
    let right = 0;
    for (let i = 0; i < labels.length; i++) if (labels[i] === predicted[i]) right++;
    if (right >= observed) hits++;
  }
  return (1 + hits) / (1 + permutations);
}

/**
 * Holm's step-down correction: each p multiplied by the number of hypotheses not yet rejected,
 * made monotone, capped at 1; in the order given.
 *
 * @example
 * ```ts
 * holm([0.01, 0.04, 0.03]); // [0.03, 0.06, 0.06]
 * ```
 */
export function holm(pValues: readonly number[]): number[] {
  const order = pValues.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(pValues.length);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, p * (pValues.length - rank)));
    adjusted[i] = running;
  });
  return adjusted;
}

/** The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`Cannot take the quantile of ${p}: need 0 < p < 1`);
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269];
  const a5 = [-30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972];
  const b5 = -13.28068155288572;
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734];
  const c5 = [4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) =>
    (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c5[0]!) * q + c5[1]!) /
    ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a5[0]!) * r + a5[1]!) * q /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b5) * r + 1);
}

/**
 * Faces a paired comparison needs to find a gain of `difference` with 80 % power in a
 * one-sided test at `alpha`, when the two disagree on a share `discordant` of the faces
 * (Connor's approximation for McNemar's test).
 */
export function facesNeededFor(difference: number, discordant: number, alpha = 0.05): number {
  const d = Math.max(Math.abs(difference), 0.01);
  const q = Math.min(1, Math.max(discordant, d));
  const z = normalQuantile(1 - alpha) + normalQuantile(0.8);
  return Math.ceil(z * z * q / (d * d));
}

/**
 * One-sided one-sample t-test that the mean of `values` exceeds `mean`: the p-value. Used where
 * the unit of evidence is a group (a source's faces share its photographer), so the spread
 * between groups, not the count of faces, sets how sure we are. Needs two values; equal values
 * give 0 above `mean` and 1 otherwise.
 *
 * @example
 * ```ts
 * oneSampleTUpperTail([0.8, 0.72, 0.56, 0.52], 0.5); // ≈ 0.054 (t = 2.26, 3 degrees of freedom)
 * ```
 */
export function oneSampleTUpperTail(values: readonly number[], mean: number): number {
  const n = values.length;
  if (n < 2) return 1;
  const average = values.reduce((sum, v) => sum + v, 0) / n;
  const spread = Math.sqrt(values.reduce((sum, v) => sum + (v - average) ** 2, 0) / (n - 1));
  if (spread === 0) return average > mean ? 0 : 1;
  return 1 - studentTCdf((average - mean) / (spread / Math.sqrt(n)), n - 1);
}
