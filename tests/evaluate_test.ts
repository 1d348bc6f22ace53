import assert from "node:assert/strict";
import { firstValueFrom, from } from "rxjs";
import sharp from "sharp";
import { parse } from "csv-parse/sync";
import { computeMetrics, evaluate, isGrayscale, type ScoredFace } from "../stages/evaluate.ts";
import { binomialUpperTail, wilsonInterval } from "../core/statistics.ts";
import { sharedPath } from "../core/shared_data.ts";
import { decodeRgb } from "../models/classifier.ts";

const classes = ["cs", "law", "med"];

/** Hand-built case: 10 faces, 3 classes; the expected numbers below were worked out on paper. */
function handCase(): ScoredFace[] {
  // [id, true, probabilities cs/law/med]
  const rows: [string, string, number[]][] = [
    ["a", "cs", [0.9, 0.05, 0.05]], // cs → cs
    ["b", "cs", [0.6, 0.3, 0.1]], // cs → cs
    ["c", "cs", [0.2, 0.7, 0.1]], // cs → law
    ["d", "cs", [0.1, 0.1, 0.8]], // cs → med
    ["e", "law", [0.1, 0.8, 0.1]], // law → law
    ["f", "law", [0.5, 0.4, 0.1]], // law → cs
    ["g", "law", [0.2, 0.55, 0.25]], // law → law
    ["h", "med", [0.3, 0.3, 0.4]], // med → med
    ["i", "med", [0.85, 0.1, 0.05]], // med → cs
    ["j", "med", [0.1, 0.2, 0.7]], // med → med
  ];
  return rows.map(([id, category, probabilities]) => ({ id, category, probabilities }));
}

Deno.test("wilsonInterval() matches published values", () => {
  // Wilson (1927) / Newcombe (1998) table: 5/10 → [0.2366, 0.7634]; 0/10 → [0, 0.2775].
  const [lo, hi] = wilsonInterval(5, 10);
  assertAlmostEquals(lo, 0.2366, 1e-4);
  assertAlmostEquals(hi, 0.7634, 1e-4);
  const [zeroLo, zeroHi] = wilsonInterval(0, 10);
  assert.deepEqual(zeroLo, 0);
  assertAlmostEquals(zeroHi, 0.2775, 1e-4);
  // Newcombe's example 81/263 → [0.2553, 0.3662].
  const [nLo, nHi] = wilsonInterval(81, 263);
  assertAlmostEquals(nLo, 0.2553, 1e-4);
  assertAlmostEquals(nHi, 0.3662, 1e-4);
  // The seed study's 57.1 % on ~235 faces is about ±6 points.
  const [sLo, sHi] = wilsonInterval(134, 235);
  assertAlmostEquals(sLo, 0.507, 1e-3);
  assertAlmostEquals(sHi, 0.632, 1e-3);
});

Deno.test("wilsonInterval() rejects impossible counts", () => {
  assertThrows(() => wilsonInterval(1, 0), RangeError, "positive integer");
  assertThrows(() => wilsonInterval(11, 10), RangeError, "from 0 to n=10");
});

Deno.test("binomialUpperTail() is the exact one-sided tail", () => {
  // P(X ≥ 8 | n=10, p=½) = (C(10,8)+C(10,9)+C(10,10)) / 2^10 = 56/1024.
  assertAlmostEquals(binomialUpperTail(8, 10, 0.5), 56 / 1024, 1e-12);
  assertAlmostEquals(binomialUpperTail(9, 10, 0.5), 11 / 1024, 1e-12);
  // P(X ≥ 2 | n=3, p=0.2) = 3·0.04·0.8 + 0.008 = 0.104.
  assertAlmostEquals(binomialUpperTail(2, 3, 0.2), 0.104, 1e-12);
  assert.deepEqual(binomialUpperTail(0, 5, 0.3), 1);
  // Large n stays finite (log space): 600/1000 at p=0.5 is far in the tail.
  const tiny = binomialUpperTail(600, 1000, 0.5);
  assert.deepEqual(tiny > 0 && tiny < 1e-9, true);
});

Deno.test("computeMetrics() gets accuracy, confusion and distribution right", () => {
  const m = computeMetrics(handCase(), classes);
  assert.deepEqual(m.n, 10);
  assert.deepEqual(m.correct, 6);
  assert.deepEqual(m.accuracy, 0.6);
  assert.deepEqual(m.confusion.labels, classes);
  assert.deepEqual(m.confusion.counts, [
    [2, 1, 1],
    [1, 2, 0],
    [1, 0, 2],
  ]);
  // Each cell names exactly the faces it counts.
  m.confusion.counts.forEach((row, i) =>
    row.forEach((count, j) => assert.equal(m.confusion.ids![i]![j]!.length, count))
  );
  assert.equal(new Set(m.confusion.ids!.flat(2)).size, 10);
  assertAlmostEquals(m.confusion.rowNormalised[0]![0]!, 0.5, 1e-12);
  assertAlmostEquals(m.confusion.rowNormalised[1]![1]!, 2 / 3, 1e-12);
  assert.deepEqual(m.distribution, [
    { label: "cs", real: 4, predicted: 4 },
    { label: "law", real: 3, predicted: 3 },
    { label: "med", real: 3, predicted: 3 },
  ]);
  const [lo, hi] = wilsonInterval(6, 10);
  assert.deepEqual(m.ci95, [lo, hi]);
  assert.deepEqual(m.chance, 1 / 3);
  assert.deepEqual(m.majorityBaseline, { label: "cs", accuracy: 0.4, fitOn: "test" });
});

Deno.test("computeMetrics() gets precision, recall and macro-F1 right", () => {
  const m = computeMetrics(handCase(), classes);
  // cs: tp 2, predicted 4, real 4 → P = R = F1 = 0.5
  // law: tp 2, predicted 3, real 3 → 2/3 each; med: tp 2, predicted 3, real 3 → 2/3 each.
  const [cs, law, med] = m.perClass;
  assert.deepEqual(cs, { label: "cs", precision: 0.5, recall: 0.5, f1: 0.5, support: 4 });
  assertAlmostEquals(law!.f1, 2 / 3, 1e-12);
  assertAlmostEquals(med!.precision, 2 / 3, 1e-12);
  assertAlmostEquals(m.macroF1, (0.5 + 2 / 3 + 2 / 3) / 3, 1e-12);
});

Deno.test("computeMetrics() macro-F1 counts a never-predicted class as 0", () => {
  const faces: ScoredFace[] = [
    { id: "1", category: "a", probabilities: [0.9, 0.1] },
    { id: "2", category: "a", probabilities: [0.8, 0.2] },
    { id: "3", category: "b", probabilities: [0.7, 0.3] },
  ];
  const m = computeMetrics(faces, ["a", "b"]);
  // a: P = 2/3, R = 1, F1 = 0.8; b: never predicted → 0.
  assertAlmostEquals(m.perClass[0]!.f1, 0.8, 1e-12);
  assert.deepEqual(m.perClass[1]!.f1, 0);
  assertAlmostEquals(m.macroF1, 0.4, 1e-12);
});

Deno.test("computeMetrics() orders top-k lists by confidence", () => {
  const m = computeMetrics(handCase(), classes, { topK: 2 });
  const cs = m.topK.find((t) => t.label === "cs")!;
  // True positives of cs by P(cs): a 0.9, b 0.6.
  assert.deepEqual(cs.truePositives.map((f) => f.id), ["a", "b"]);
  // False negatives of cs (cs faces predicted otherwise) by the confidence of the wrong call:
  // d → med 0.8, c → law 0.7.
  assert.deepEqual(cs.falseNegatives.map((f) => [f.id, f.predicted, f.confidence]), [
    ["d", "med", 0.8],
    ["c", "law", 0.7],
  ]);
  // False positives of cs (predicted cs, not cs) by P(cs): i 0.85, f 0.5.
  assert.deepEqual(cs.falsePositives.map((f) => [f.id, f.actual]), [["i", "med"], ["f", "law"]]);
  const law = m.topK.find((t) => t.label === "law")!;
  assert.deepEqual(law.truePositives.map((f) => f.id), ["e", "g"]);
  assert.deepEqual(m.topK.every((t) => t.truePositives.length <= 2), true);
});

Deno.test("computeMetrics() tests the model against the majority class", () => {
  // 70 of 100 right where the majority class holds 50: clearly better.
  const faces: ScoredFace[] = [];
  for (let i = 0; i < 100; i++) {
    const category = i < 50 ? "a" : "b";
    const right = i % 10 < 7;
    const guess = right ? category : category === "a" ? "b" : "a";
    faces.push({ id: String(i), category, probabilities: guess === "a" ? [0.7, 0.3] : [0.3, 0.7] });
  }
  const m = computeMetrics(faces, ["a", "b"]);
  assert.deepEqual(m.accuracy, 0.7);
  assertAlmostEquals(m.beatsMajority.pValue, binomialUpperTail(70, 100, 0.5), 1e-15);
  assert.deepEqual(m.beatsMajority.significant, true);
  // The hand case: 6/10 against a 0.4 majority is not significant (P ≈ 0.166).
  const small = computeMetrics(handCase(), classes);
  assertAlmostEquals(small.beatsMajority.pValue, 0.16623861, 1e-7);
  assert.deepEqual(small.beatsMajority.significant, false);
});

Deno.test("computeMetrics() takes the majority class from training counts when given", () => {
  const m = computeMetrics(handCase(), classes, { trainDistribution: { cs: 5, law: 9, med: 2 } });
  assert.deepEqual(m.majorityBaseline, { label: "law", accuracy: 0.3, fitOn: "train" });
});

Deno.test("computeMetrics() reports the gender-only rule and colour confounds", () => {
  const faces = handCase().map((face, i): ScoredFace => ({
    ...face,
    gender: ["a", "b", "c", "d", "e"].includes(face.id) ? "male" : "female",
    grayscale: i < 4,
  }));
  const onTest = computeMetrics(faces, classes);
  // Male faces a–e: cs 4, law 1 → male ↦ cs. Female f–j: law 2, med 3 → female ↦ med.
  // Right: a b c d (cs) + h i j (med) = 7 of 10.
  assert.deepEqual(onTest.confounds.genderOnly.rule, { male: "cs", female: "med" });
  assert.deepEqual(onTest.confounds.genderOnly.accuracy, 0.7);
  assert.deepEqual(onTest.confounds.genderOnly.fitOn, "test");
  assert.deepEqual(onTest.confounds.genderOnly.modelBeatsIt?.significant, false);
  // Grayscale a–d: a, b right → 0.5; colour e–j: e g h j right → 4/6.
  assert.deepEqual(onTest.confounds.grayscale, { accuracy: 0.5, n: 4 });
  assert.deepEqual(onTest.confounds.colour, { accuracy: 4 / 6, n: 6 });

  const onTrain = computeMetrics(faces, classes, {
    genderFit: [
      { gender: "male", category: "law" },
      { gender: "male", category: "law" },
      { gender: "female", category: "cs" },
    ],
  });
  // male ↦ law: e right; female ↦ cs: none of f–j is cs → 1/10.
  assert.deepEqual(onTrain.confounds.genderOnly.rule, { male: "law", female: "cs" });
  assert.deepEqual(onTrain.confounds.genderOnly.accuracy, 0.1);
  assert.deepEqual(onTrain.confounds.genderOnly.fitOn, "train");

  const none = computeMetrics(handCase(), classes);
  assert.deepEqual(none.confounds.genderOnly.accuracy, null);
  assert.deepEqual(none.confounds.grayscale, { accuracy: null, n: 0 });
});

Deno.test("computeMetrics() gives mean and spread across folds", () => {
  const faces = handCase().map((face, i): ScoredFace => ({ ...face, fold: i < 5 ? 0 : 1 }));
  const m = computeMetrics(faces, classes);
  // Fold 0 (a–e): a b e right → 0.6; fold 1 (f–j): g h j → 0.6.
  assert.deepEqual(m.folds?.perFold, [{ fold: 0, accuracy: 0.6, n: 5 }, {
    fold: 1,
    accuracy: 0.6,
    n: 5,
  }]);
  assertAlmostEquals(m.folds!.mean, 0.6, 1e-12);
  assertAlmostEquals(m.folds!.std, 0, 1e-12);
  const unfolded = computeMetrics(handCase(), classes);
  assert.deepEqual(unfolded.folds, undefined);
});

Deno.test("computeMetrics() rejects inputs that cannot be evaluated", () => {
  assertThrows(() => computeMetrics([], classes), RangeError, "0 faces");
  assertThrows(() => computeMetrics(handCase(), ["cs"]), RangeError, "at least 2");
  assertThrows(
    () => computeMetrics([{ id: "x", category: "art", probabilities: [1, 0, 0] }], classes),
    RangeError,
    "'art'",
  );
  assertThrows(
    () => computeMetrics([{ id: "x", category: "cs", probabilities: [1, 0] }], classes),
    TypeError,
    "2 probabilities for 3 classes",
  );
  assertThrows(() => computeMetrics(handCase(), classes, { topK: -1 }), RangeError, "topK");
});

Deno.test("evaluate() reduces a stream of scored faces to one Metrics", async () => {
  const metrics = await firstValueFrom(from(handCase()).pipe(evaluate({ classes, topK: 1 })));
  assert.deepEqual(metrics.accuracy, 0.6);
  assert.deepEqual(metrics.topK[0]!.truePositives.map((f) => f.id), ["a"]);
  assertThrows(() => evaluate({ classes: ["only"] }), RangeError);
});

/** A 96×96 gradient PNG; `tint` multiplies the channels (1,1,1 is gray). */
async function gradient(tint: [number, number, number], colourful = false): Promise<Uint8Array> {
  const pixels = new Uint8Array(96 * 96 * 3);
  for (let y = 0; y < 96; y++) {
    for (let x = 0; x < 96; x++) {
      const v = (x + y) * 1.3;
      const i = (y * 96 + x) * 3;
      pixels[i] = colourful ? x * 2.6 : v * tint[0];
      pixels[i + 1] = colourful ? y * 2.6 : v * tint[1];
      pixels[i + 2] = colourful ? 255 - x * 2.6 : v * tint[2];
    }
  }
  return new Uint8Array(
    await sharp(pixels, { raw: { width: 96, height: 96, channels: 3 } }).png().toBuffer(),
  );
}

Deno.test("isGrayscale() tells black-and-white photos from colour ones", async () => {
  assert.equal(await isGrayscale(await gradient([1, 1, 1])), true);
  assert.equal(await isGrayscale(await gradient([1, 0.6, 0.3])), false, "a strong tint is colour");
  assert.equal(await isGrayscale(await gradient([1, 1, 1], true)), false);
  const gray = await sharp(await gradient([1, 1, 1], true)).grayscale().png().toBuffer();
  assert.equal(await isGrayscale(new Uint8Array(gray)), true);
});

const congress = sharedPath("data/congress");
const haveCongress = await Deno.stat(`${congress}/people.csv`).then(() => true, () => false);
if (!haveCongress) console.warn(`evaluate_test: congress check skipped, ${congress} is absent`);

Deno.test({
  name: "isGrayscale() agrees with the congress data's grayscale column",
  ignore: !haveCongress,
  fn: async () => {
    const rows = parse(await Deno.readTextFile(`${congress}/people.csv`), { columns: true }) as {
      image: string;
      grayscale: string;
    }[];
    // Every b/w photo and as many colour ones, to keep the test quick.
    const sample = [
      ...rows.filter((r) => r.grayscale === "1"),
      ...rows.filter((r) => r.grayscale === "0").slice(0, 60),
    ];
    for (const row of sample) {
      const found = await isGrayscale(await Deno.readFile(`${congress}/${row.image}`));
      assert.equal(found, row.grayscale === "1", row.image);
    }
  },
});

Deno.test("isGrayscale() answers alike on PNG bytes and on the pixels the run decoded once", async () => {
  for (const [weights, colour] of [[[1, 1, 1], true], [[1, 1, 1], false]] as const) {
    const png = await gradient([...weights], colour);
    const decoded = await decodeRgb(png);
    assert.equal(await isGrayscale(decoded), await isGrayscale(png));
    assert.equal(await isGrayscale(decoded), !colour);
  }
});

function assertAlmostEquals(actual: number, expected: number, tolerance: number): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `expected ${expected} ± ${tolerance}, got ${actual}`,
  );
}

function assertThrows(
  fn: () => unknown,
  type: new (...args: never[]) => Error,
  includes?: string,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected a ${type.name}, got ${error}`);
    if (includes) assert.match(error.message, new RegExp(RegExp.escape(includes)));
    return true;
  });
}
