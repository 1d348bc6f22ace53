/** The verdict's ladder fits: stacking blocks of evidence, and holding people apart. */
import assert from "node:assert/strict";
import { seededUniform } from "../core/statistics.ts";
import { type BlockRow, fitOnSameSplit, fitStackedOnSameSplit } from "../pipeline/same_split.ts";

/** Rows in 4 folds: block 0 a few strong features, block 1 many that say nothing. */
function rows(n: number): BlockRow[] {
  const random = seededUniform(3);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  return Array.from({ length: n }, (_, i) => {
    const label = i % 2;
    return {
      id: `r${i}`,
      label,
      group: i % 4,
      blocks: [
        Array.from({ length: 4 }, () => gauss() + (label ? 1.2 : -1.2)),
        Array.from({ length: 300 }, gauss),
      ],
    };
  });
}

const accuracy = (data: BlockRow[], predicted: Map<string, number>) =>
  data.filter((r) => predicted.get(r.id) === r.label).length / data.length;

Deno.test("fitStackedOnSameSplit(): a block of noise does not drag a strong block down", () => {
  const data = rows(160);
  const [strong, stacked] = fitStackedOnSameSplit(data, 2, [[0], [0, 1]]);
  const joined = fitOnSameSplit(
    data.map((r) => ({ ...r, x: [...Array.from(r.blocks[0]!), ...Array.from(r.blocks[1]!)] })),
    2,
  );
  const [a, b, c] = [accuracy(data, strong!), accuracy(data, stacked!), accuracy(data, joined)];
  assert.ok(a >= 0.85, `strong block alone ${a}`);
  assert.ok(b >= a - 0.05, `stacked ${b} against the strong block's ${a}`);
  // One regression on both takes one penalty for both, and the noise costs it.
  assert.ok(c < b, `one regression ${c}, stacked ${b}`);
  // Every held-out row is answered once by each stack.
  assert.equal(strong!.size, 160);
  assert.equal(stacked!.size, 160);
  console.log(`strong ${a}, stacked ${b}, one regression on both ${c}`);
});

Deno.test("fitOnSameSplit(): keepPeopleApart leaves a held-out person's other faces out of training", () => {
  // Each person has two faces in two groups, and the only feature is who they are: met again in
  // training, a face is answered by who it is, and right; kept apart, nothing is learned.
  const data: BlockRow[] = Array.from({ length: 80 }, (_, i) => {
    const person = i >> 1;
    return {
      id: `r${i}`,
      person: `p${person}`,
      label: person % 2,
      group: (person + (i % 2)) % 4,
      blocks: [Array.from({ length: 40 }, (_, j) => (j === person ? 1 : 0))],
    };
  });
  const single = data.map((r) => ({ ...r, x: r.blocks[0]! }));
  const met = fitOnSameSplit(single, 2);
  const apart = fitOnSameSplit(single, 2, { keepPeopleApart: true });
  assert.ok(accuracy(data, met) >= 0.9, `met again: ${accuracy(data, met)}`);
  assert.ok(accuracy(data, apart) <= 0.65, `kept apart: ${accuracy(data, apart)}`);
});
