import assert from "node:assert/strict";
import { L2_GRID, LogisticRegression } from "../models/logistic.ts";
import { seededUniform } from "../core/statistics.ts";

/** `n` rows of `d` uniform features, 4 classes; the class's own feature shifted by `signal`. */
function data(n: number, d: number, signal: number, seed: number) {
  const random = seededUniform(seed);
  const labels = Array.from({ length: n }, () => Math.floor(random() * 4));
  const rows = labels.map((label) =>
    Float64Array.from({ length: d }, (_, j) => random() + (j === label ? signal : 0))
  );
  return { rows, labels, groups: labels.map((_, i) => `p${Math.floor(i / 2)}`) };
}

Deno.test("fitCv stops down the penalty path once the loss has risen twice, and chooses as the whole grid does", () => {
  for (const [d, signal, seed] of [[40, 0, 1], [40, 0.4, 2], [20, 1.5, 3], [60, 0.2, 4]] as const) {
    const { rows, labels, groups } = data(240, d, signal, seed);
    const whole = LogisticRegression.fitCv(rows, labels, 4, { groups, patience: Infinity });
    const path = LogisticRegression.fitCv(rows, labels, 4, { groups });
    assert.equal(whole.scores.length, L2_GRID.length);
    assert.equal(path.model.l2, whole.model.l2, `d ${d}, signal ${signal}`);
    assert.deepEqual(path.model.weights, whole.model.weights);
    // The penalties it tried scored exactly as in the whole grid: same folds, same warm starts.
    path.scores.forEach((score, i) => assert.equal(score.loss, whole.scores[i]!.loss));
    // It stopped two penalties past the best, or at the grid's end.
    const bestAt = whole.scores.findIndex((s) => s.l2 === whole.model.l2);
    assert.equal(path.scores.length, Math.min(L2_GRID.length, bestAt + 3));
  }
});

Deno.test("fitCv on noise tries only the strong end of the grid", () => {
  const { rows, labels, groups } = data(200, 80, 0, 9);
  const { model, scores } = LogisticRegression.fitCv(rows, labels, 4, { groups });
  assert.ok(model.l2 >= 3, `noise got l2 ${model.l2}`);
  assert.ok(scores.length <= 5, `tried ${scores.length} penalties`);
  assert.throws(() => LogisticRegression.fitCv(rows, labels, 4, { patience: 0 }), RangeError);
});
