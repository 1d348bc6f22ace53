/** Small statistics the evaluation needs: a binomial interval and an exact test. */

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
