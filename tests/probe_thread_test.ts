import assert from "node:assert/strict";
import { LogisticRegression } from "../models/logistic.ts";
import { fitCvOffThread } from "../models/training/probe_thread.ts";
import { seededRandom } from "../models/augment.ts";

/** Rows of noise with a planted direction, labels 0..classes-1, a person per two rows. */
function problem(seed: number, n: number, width: number, classes: number) {
  const random = seededRandom(seed);
  const labels = Array.from({ length: n }, (_, i) => i % classes);
  const rows = labels.map((label) =>
    Float32Array.from({ length: width }, (_, j) => random() - 0.5 + (j === label ? 0.3 : 0))
  );
  return { rows, labels, groups: labels.map((_, i) => `person-${Math.floor(i / 2)}`) };
}

Deno.test({
  name: "fitCvOffThread: fits on the probe thread, several at once, each as fitCv does here",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const problems = [problem(1, 120, 12, 3), problem(2, 90, 20, 4), problem(3, 150, 8, 2)];
    const classesOf = [3, 4, 2];
    const offThread = await Promise.all(
      problems.map((p, k) =>
        fitCvOffThread(p.rows, p.labels, classesOf[k]!, { groups: p.groups, balanced: k === 1 })
      ),
    );
    problems.forEach((p, k) => {
      const here = LogisticRegression.fitCv(p.rows, p.labels, classesOf[k]!, {
        groups: p.groups,
        balanced: k === 1,
      });
      const there = offThread[k]!;
      assert.ok(there.model instanceof LogisticRegression);
      assert.equal(there.model.l2, here.model.l2);
      assert.deepEqual(there.model.weights, here.model.weights, `problem ${k}: the same weights`);
      assert.deepEqual(there.model.means, here.model.means);
      assert.deepEqual(there.scores, here.scores);
      assert.deepEqual(there.model.predict(p.rows), here.model.predict(p.rows));
    });
    // On this thread when asked: the same answer.
    const p = problems[0]!;
    const same = await fitCvOffThread(p.rows, p.labels, 3, { groups: p.groups }, false);
    assert.deepEqual(same.model.weights, offThread[0]!.model.weights);
  },
});

Deno.test({
  name: "fitCvOffThread: a fit that fails on the probe thread rejects with its reason",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const p = problem(4, 40, 5, 2);
    await assert.rejects(
      fitCvOffThread(p.rows, p.labels.slice(1), 2),
      /a probe fit failed: .*/,
    );
    // The thread takes the next fit after a failure.
    const next = await fitCvOffThread(p.rows, p.labels, 2, { groups: p.groups });
    assert.equal(next.model.classes, 2);
  },
});
