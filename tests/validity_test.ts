/** Each validity check on constructed data whose answer is known. */
import assert from "node:assert/strict";
import { from } from "rxjs";
import sharp from "sharp";
import {
  balancedAccuracy,
  mcnemarUpperTail,
  permutationPValue,
  seededUniform,
} from "../core/statistics.ts";
import { LogisticRegression } from "../models/logistic.ts";
import {
  blurredFacePixels,
  IMAGE_STATISTIC_NAMES,
  imageStatistics,
  jpegQuality,
  maskedFacePixels,
} from "../models/style_features.ts";
import {
  type Attributes,
  compareOnSameFaces,
  heldOutScore,
  matchedPairs,
  strataScores,
  tellingFeatures,
} from "../stages/validity.ts";
import { computeMetrics } from "../stages/evaluate.ts";
import { fitOnSameSplit, LOSO_RUNS, losoPlan, runChecks, sourceOf } from "../pipeline/checks.ts";
import { collectFaces } from "../pipeline/batches.ts";
import { initEngine } from "../models/engine.ts";
import { headPose } from "../models/faces/head_pose.ts";
import { LANDMARK_COUNT } from "../models/faces/face_networks.ts";
import { verdictLines } from "../report/verdict.ts";
import { splitFaces, syntheticFaces } from "./testdata/synthetic/faces.ts";
import type { SplitRecord } from "../core/types.ts";

Deno.test("mcnemarUpperTail() is the exact binomial tail of the discordant pairs", () => {
  // 8 faces only the model gets right, 2 only the baseline: P(X ≥ 8 | 10, ½) = 56/1024.
  assert.ok(Math.abs(mcnemarUpperTail(8, 2) - 56 / 1024) < 1e-12);
  assert.equal(mcnemarUpperTail(0, 0), 1, "no disagreement is no evidence");
  assert.ok(mcnemarUpperTail(2, 8) > 0.9);
});

Deno.test("balancedAccuracy() is mean recall, so always guessing the majority scores 1/k", () => {
  const actual = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
  assert.equal(balancedAccuracy(actual, actual.map(() => 0)), 0.5);
  assert.equal(balancedAccuracy(actual, actual), 1);
  assert.equal(balancedAccuracy([0, 1], [1, 1]), 0.5);
  assert.throws(() => balancedAccuracy([0], [0, 1]), RangeError);
});

Deno.test("permutationPValue() is small for predictions that follow the labels, large for ones that do not", () => {
  const random = seededUniform(5);
  const actual = Array.from({ length: 40 }, (_, i) => i % 2);
  assert.ok(permutationPValue(actual, actual, { permutations: 999 }) <= 0.002);
  const unrelated = actual.map(() => (random() < 0.5 ? 0 : 1));
  assert.ok(permutationPValue(actual, unrelated, { permutations: 999 }) > 0.05);
  // Never 0: the observed labelling counts as one of the permutations.
  assert.ok(permutationPValue(actual, actual, { permutations: 9 }) >= 0.1);
  assert.throws(() => permutationPValue(actual, actual, { permutations: 0 }), RangeError);
});

Deno.test("LogisticRegression learns a separable problem and rejects bad input", () => {
  const random = seededUniform(2);
  const rows = Array.from({ length: 60 }, (_, i) => [i % 3 + 0.2 * random(), random(), 5]);
  const labels = rows.map((_, i) => i % 3);
  const model = LogisticRegression.fit(rows, labels, 3);
  const predicted = model.predict(rows).map((p) => p.indexOf(Math.max(...p)));
  assert.deepEqual(predicted, labels);
  for (const p of model.predict([[2, 0.5, 5]])) {
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  }
  assert.throws(() => LogisticRegression.fit(rows, labels, 1), RangeError);
  assert.throws(() => LogisticRegression.fit(rows, labels.slice(1), 3), RangeError);
  assert.throws(() => LogisticRegression.fit(rows, labels.map(() => 7), 3), RangeError);
  assert.throws(() => model.predict([[1]]), RangeError);
});

async function photo(colour: string, quality: number, width = 80, height = 100) {
  return new Uint8Array(
    await sharp({ create: { width, height, channels: 3, background: colour } })
      .jpeg({ quality }).toBuffer(),
  );
}

Deno.test("jpegQuality() reads libjpeg's quality back from the quantisation table", async () => {
  for (const quality of [12, 30, 60, 75, 90, 95]) {
    const estimate = jpegQuality(await photo("#808080", quality));
    assert.ok(estimate !== null && Math.abs(estimate - quality) <= 2, `${quality} → ${estimate}`);
  }
  const png = new Uint8Array(
    await sharp({ create: { width: 8, height: 8, channels: 3, background: "#000" } }).png()
      .toBuffer(),
  );
  assert.equal(jpegQuality(png), null);
  assert.equal(jpegQuality(new Uint8Array([0xff, 0xd8, 0x00])), null);
});

Deno.test("imageStatistics() sees size, compression and colour", async () => {
  const blue = await imageStatistics(await photo("#2040c0", 40, 80, 100));
  const named = Object.fromEntries(IMAGE_STATISTIC_NAMES.map((name, i) => [name, blue[i]!]));
  assert.equal(named["width"], 80);
  assert.equal(named["aspect ratio"], 0.8);
  assert.ok(Math.abs(named["JPEG quality"]! - 40) <= 2);
  assert.ok(named["mean blue"]! > named["mean red"]! + 100, JSON.stringify(named));
  assert.ok(named["colourfulness"]! > 30);
  const grey = await imageStatistics(await photo("#808080", 90));
  assert.ok(grey[10]! < 5, "a grey photo has no colourfulness");
});

Deno.test("maskedFacePixels() hides the face box; blurredFacePixels() keeps only colour", async () => {
  // A red face box on a green background: masked, no red is left.
  const image = new Uint8Array(
    await sharp({ create: { width: 100, height: 100, channels: 3, background: "#00ff00" } })
      .composite([{
        input: { create: { width: 50, height: 50, channels: 3, background: "#ff0000" } },
        left: 25,
        top: 25,
      }])
      .png().toBuffer(),
  );
  const masked = await maskedFacePixels(image, { x: 25, y: 25, width: 50, height: 50 }, 10);
  assert.equal(masked.length, 300);
  // Mask grey is 128; lanczos rings a little above it at the edges, pure red would be 255.
  for (let i = 0; i < masked.length; i += 3) assert.ok(masked[i]! <= 160, `red ${masked[i]}`);
  const unmasked = await maskedFacePixels(image, { x: 0, y: 0, width: 0, height: 0 }, 10);
  assert.ok(Math.max(...unmasked.filter((_, i) => i % 3 === 0)) > 200);
  const blurred = await blurredFacePixels(image, 8);
  assert.equal(blurred.length, 192);
  // Blurred beyond recognition: the centre is a mix, no pixel is pure red any more.
  assert.ok(Math.max(...blurred.filter((_, i) => i % 3 === 0)) < 250);
});

Deno.test("tellingFeatures() ranks the feature that separates the classes first", () => {
  const random = seededUniform(9);
  const labels = Array.from({ length: 40 }, (_, i) => i % 2);
  const rows = labels.map((label) => [random(), label * 3 + random(), random()]);
  const ranked = tellingFeatures(rows, labels, ["noise a", "signal", "noise b"]);
  assert.equal(ranked[0]!.feature, "signal");
  assert.ok(ranked[0]!.separation > 10 * ranked[1]!.separation);
});

Deno.test("heldOutScore() and compareOnSameFaces() give the paired figures worked out by hand", () => {
  const score = heldOutScore([0, 0, 1, 1], [0, 1, 1, 1], 2);
  assert.equal(score.accuracy, 0.75);
  assert.equal(score.balancedAccuracy, 0.75);
  assert.equal(score.correct, 3);
  // Ten faces: the model right on 8, the baseline on 5; the model alone on 4, the baseline on 1.
  const actual = new Map(Array.from({ length: 10 }, (_, i) => [`f${i}`, 0]));
  const model = new Map([...actual.keys()].map((id, i) => [id, i < 8 ? 0 : 1]));
  const baseline = new Map([...actual.keys()].map((id, i) => [id, i < 4 || i === 9 ? 0 : 1]));
  const comparison = compareOnSameFaces(actual, model, baseline);
  assert.equal(comparison.n, 10);
  assert.equal(comparison.modelAccuracy, 0.8);
  assert.equal(comparison.baselineAccuracy, 0.5);
  assert.ok(Math.abs(comparison.modelBeatsIt.pValue - 6 / 32) < 1e-12);
  assert.equal(comparison.close, false);
  assert.equal(compareOnSameFaces(actual, model, model).close, true);
});

Deno.test("computeMetrics() adds balanced accuracy, a permutation p-value and the most confused pairs", () => {
  const faces = [
    ["a", "cs", [0.9, 0.1]],
    ["b", "cs", [0.8, 0.2]],
    ["c", "cs", [0.3, 0.7]],
    ["d", "cs", [0.4, 0.6]],
    ["e", "cs", [0.2, 0.8]],
    ["f", "law", [0.1, 0.9]],
  ] as const;
  const metrics = computeMetrics(
    faces.map(([id, category, p]) => ({ id, category, probabilities: [...p] })),
    ["cs", "law"],
  );
  assert.equal(metrics.accuracy, 0.5);
  assert.equal(metrics.balancedAccuracy, (2 / 5 + 1) / 2);
  assert.deepEqual(metrics.mostConfused, [{ actual: "cs", predicted: "law", count: 3 }]);
  assert.ok(metrics.permutation.pValue > 0 && metrics.permutation.pValue <= 1);
});

Deno.test("fitOnSameSplit() trains on the other folds (or train+val) and predicts each held-out face once", () => {
  const rows = Array.from({ length: 30 }, (_, i) => ({
    id: `r${i}`,
    label: i % 2,
    group: i % 3 as number | "test" | "train",
    x: [i % 2, (i * 7) % 5],
  }));
  const byFold = fitOnSameSplit(rows, 2);
  assert.equal(byFold.size, 30);
  for (const row of rows) assert.equal(byFold.get(row.id), row.label);
  const split = rows.map((r, i) => ({
    ...r,
    group: (i < 20 ? "train" : "test") as "train" | "test",
  }));
  assert.deepEqual([...fitOnSameSplit(split, 2).keys()], split.slice(20).map((r) => r.id));
});

/** Synthetic faces whose descriptors carry the class, spread over `perCategory` sources each. */
async function sourcedFaces(dir: string, perCategory: number): Promise<SplitRecord[]> {
  const faces = await syntheticFaces(dir, { perClass: 24, seed: 4, classes: ["bio", "law"] });
  return (await splitFaces(faces, { seed: "sources" })).map((record, i) => ({
    ...record,
    pageUrl: `https://${record.category}-${(i >> 1) % perCategory}.example/people`,
  }));
}

Deno.test({
  name:
    "runChecks(): with one source per category, leave-one-source-out says it cannot be made and why",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_checks_" });
    try {
      const records = await sourcedFaces(dir, 1);
      assert.equal(sourceOf(records[0]!), new URL(records[0]!.pageUrl).host);
      const checks = await runChecks({
        records,
        store: await collectFaces(from(records), {}),
        kinds: ["embedding"],
        classes: ["bio", "law"],
        heldOut: new Map(),
        crops: new Map(),
        log: () => {},
      });
      assert.equal(checks.groupedBy, "page host");
      const loso = checks.loso[0]!;
      assert.equal(loso.possible, false);
      assert.equal(loso.score, undefined);
      assert.deepEqual(loso.notPossible.map((n) => n.category).sort(), ["bio", "law"]);
      assert.match(loso.notPossible[0]!.reason, /only one source/);
      assert.match(loso.reason!, /no category has two or more sources/);
      // The synthetic crops differ by class in their brightness pattern: the baselines see it.
      const blurred = checks.baselines.find((b) => b.key === "blurred-face")!;
      assert.ok(blurred.score.accuracy >= 0.9, JSON.stringify(blurred.score));
      const line = verdictLines([{
        kind: "embedding",
        metrics: computeMetrics(
          records.filter((r) => r.split === "test").map((r) => ({
            id: r.id,
            category: r.category,
            probabilities: r.category === "bio" ? [1, 0] : [0, 1],
          })),
          ["bio", "law"],
        ),
      }], checks).join("\n");
      assert.match(
        line,
        /leave-one-source-out cannot be made: no category has two or more sources/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A 68-point face shape with its eyes at y = −0.1, mouth at 0.3 and nose tip at (yaw, 0.1 + pitch). */
function shapeWithPose(yaw: number, pitch: number): number[] {
  const shape = new Array(LANDMARK_COUNT * 2).fill(0);
  const put = (k: number, x: number, y: number) => {
    shape[2 * k] = x;
    shape[2 * k + 1] = y;
  };
  for (let k = 36; k < 42; k++) put(k, -0.2 + (k - 38.5) * 0.01, -0.1);
  for (let k = 42; k < 48; k++) put(k, 0.2 + (k - 44.5) * 0.01, -0.1);
  for (let k = 48; k < 68; k++) put(k, (k - 57.5) * 0.01, 0.3);
  put(30, yaw, 0.1 + pitch);
  return shape;
}

Deno.test("headPose() reads roll, yaw in eye distances and pitch between the eyes and the mouth", () => {
  const [roll, yaw, pitch] = headPose(shapeWithPose(0.04, 0.1), 3)!;
  assert.equal(roll, 3);
  assert.ok(Math.abs(yaw - 0.1) < 1e-9, `yaw ${yaw}`); // 0.04 of an eye distance of 0.4
  assert.ok(Math.abs(pitch - 0.75) < 1e-9, `pitch ${pitch}`); // 0.3 of the eyes-to-mouth 0.4
  assert.equal(headPose(new Array(10).fill(0), 0), undefined);
});

Deno.test({
  name: "runChecks(): the head-pose baseline reads a class that one photographer posed chin-down",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_checks_" });
    try {
      const random = seededUniform(8);
      const records = await sourcedFaces(dir, 1);
      const run = async (posed: boolean, withLandmarks = true) => {
        const withPose = records.map((record) => {
          const down = posed && record.category === "law" ? 0.06 : 0;
          const shape = shapeWithPose((random() - 0.5) * 0.04, down + (random() - 0.5) * 0.04);
          return {
            ...record,
            faceAngle: (random() - 0.5) * 6,
            embeddings: withLandmarks ? { landmarks: shape } : undefined,
          };
        });
        const checks = await runChecks({
          records: withPose,
          store: await collectFaces(from(withPose), {}),
          kinds: ["embedding"],
          classes: ["bio", "law"],
          heldOut: new Map(),
          crops: new Map(),
          log: () => {},
        });
        return checks.baselines.find((b) => b.key === "head-pose");
      };
      const posed = await run(true);
      assert.ok(posed && posed.score.accuracy >= 0.9, JSON.stringify(posed?.score));
      assert.match(posed.name, /pose/);
      const unposed = await run(false);
      assert.ok(unposed && unposed.score.accuracy < 0.75, JSON.stringify(unposed?.score));
      assert.equal(await run(true, false), undefined, "no landmarks, no pose baseline");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "runChecks(): where the face carries the class, leave-one-source-out keeps the accuracy",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await initEngine();
    const dir = await Deno.makeTempDir({ prefix: "facefield_checks_" });
    try {
      const records = await sourcedFaces(dir, 2);
      const checks = await runChecks({
        records,
        store: await collectFaces(from(records), {}),
        kinds: ["embedding"],
        classes: ["bio", "law"],
        heldOut: new Map(),
        crops: new Map(),
        training: { epochs: 15, patience: 15, batchSize: 8, seed: 1 },
        log: () => {},
      });
      const loso = checks.loso[0]!;
      assert.equal(checks.sources.length, 4);
      assert.equal(loso.possible, true);
      assert.equal(loso.perSource.length, 4);
      assert.equal(loso.score!.n, records.length);
      assert.ok(loso.score!.accuracy >= 0.9, JSON.stringify(loso.perSource));
      assert.equal(loso.score!.beatsChance.significant, true);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "runChecks(): the ensemble's leave-one-source-out averages its members' runs, not trained again",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await initEngine();
    const dir = await Deno.makeTempDir({ prefix: "facefield_checks_" });
    try {
      const records = await sourcedFaces(dir, 2);
      const lines: string[] = [];
      const checks = await runChecks({
        records,
        store: await collectFaces(from(records), {}),
        kinds: ["descriptor", "ensemble"],
        classes: ["bio", "law"],
        heldOut: new Map(),
        crops: new Map(),
        log: (line) => lines.push(line),
      });
      const [probe, ensemble] = checks.loso;
      assert.equal(ensemble!.kind, "ensemble");
      assert.equal(ensemble!.possible, true);
      // One member: its mean is the member, run by run.
      assert.deepEqual(ensemble!.perSource, probe!.perSource);
      assert.ok(probe!.score!.accuracy >= 0.9, JSON.stringify(probe!.perSource));
      // Each run holds out one source of each of the two categories.
      assert.equal(
        lines.filter((l) => l.includes("ensemble")).length,
        probe!.perSource.length / 2,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("strataScores() counts each stratum of estimated gender and age", () => {
  const actual = new Map([["a", 0], ["b", 0], ["c", 1], ["d", 1], ["e", 1]]);
  const predicted = new Map([["a", 0], ["b", 1], ["c", 1], ["d", 1], ["e", 0]]);
  const attributes = new Map<string, { gender: "male" | "female"; age: number }>([
    ["a", { gender: "female", age: 30 }],
    ["b", { gender: "female", age: 40 }],
    ["c", { gender: "male", age: 52 }],
    ["d", { gender: "male", age: 70 }],
    ["e", { gender: "male", age: 34 }],
  ]);
  const strata = Object.fromEntries(
    strataScores(actual, predicted, attributes).map((s) => [s.stratum, s]),
  );
  assert.equal(strata["women"]!.accuracy, 0.5);
  assert.equal(strata["men"]!.accuracy, 2 / 3);
  assert.equal(strata["age < 35"]!.n, 2);
  assert.equal(strata["age < 35"]!.correct, 1);
  assert.equal(strata["age 35–49"]!.n, 1);
  assert.equal(strata["age 50–64"]!.accuracy, 1);
  assert.equal(strata["age ≥ 65"]!.accuracy, 1);
});

Deno.test("matchedPairs() pairs faces of different classes on gender and age, each once", () => {
  const actual = new Map([["a", 0], ["b", 1], ["c", 0], ["d", 1], ["e", 1]]);
  const attributes = new Map<string, { gender: "male" | "female"; age: number }>([
    ["a", { gender: "female", age: 40 }],
    ["b", { gender: "female", age: 42 }],
    ["c", { gender: "male", age: 60 }],
    ["d", { gender: "male", age: 61 }],
    ["e", { gender: "female", age: 41 }],
  ]);
  // A model that ranks each face's own class higher.
  const right = new Map(
    [...actual].map(([id, label]) => [id, label === 0 ? [0.7, 0.3] : [0.4, 0.6]]),
  );
  const pairs = matchedPairs(actual, right, attributes, 2);
  assert.equal(pairs.pairs, 2, "a with e (nearest age), c with d; b is left over");
  assert.equal(pairs.accuracy, 1);
  const backwards = new Map([...right].map(([id, p]) => [id, [p[1]!, p[0]!]]));
  assert.equal(matchedPairs(actual, backwards, attributes, 2).accuracy, 0);
  // Nobody of the other class within a year: no pair at all.
  assert.equal(matchedPairs(actual, right, attributes, 2, 0).pairs, 0);
});

Deno.test("strataScores() and matchedPairs() read the ethnicity estimate where there is one", () => {
  const actual = new Map([["a", 0], ["b", 1], ["c", 0], ["d", 1]]);
  const predicted = new Map([["a", 0], ["b", 0], ["c", 0], ["d", 1]]);
  const attributes = new Map<string, Attributes>([
    ["a", { gender: "male", age: 50, ethnicity: "black" }],
    ["b", { gender: "male", age: 50, ethnicity: "white" }],
    ["c", { gender: "male", age: 50, ethnicity: "white" }],
    ["d", { gender: "male", age: 51, ethnicity: "white" }],
  ]);
  const strata = Object.fromEntries(
    strataScores(actual, predicted, attributes).map((s) => [s.stratum, s]),
  );
  assert.equal(strata["estimated black"]!.n, 1);
  assert.equal(strata["estimated white"]!.n, 3);
  assert.equal(strata["estimated white"]!.correct, 2);
  assert.equal(strata["estimated asian"]!.n, 0);
  const withoutEthnicity = new Map(
    [...attributes].map(([id, a]) => [id, { gender: a.gender, age: a.age }]),
  );
  assert(
    !strataScores(actual, predicted, withoutEthnicity).some((s) =>
      s.stratum.startsWith("estimated")
    ),
  );
  const right = new Map(
    [...actual].map(([id, label]) => [id, label === 0 ? [0.7, 0.3] : [0.4, 0.6]]),
  );
  // a (black) may not pair with b (white) although gender and age match: c pairs with b, and
  // a is left without a partner.
  const pairs = matchedPairs(actual, right, attributes, 2);
  assert.equal(pairs.pairs, 1);
  assert.equal(matchedPairs(actual, right, withoutEthnicity, 2).pairs, 2);
  assert.equal(pairs.sameEthnicity, true);
  assert.equal(matchedPairs(actual, right, withoutEthnicity, 2).sameEthnicity, false);
});

Deno.test({
  name:
    "runChecks(): where the class is the estimated ethnicity, the demographics baseline finds it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_checks_" });
    try {
      const records = await sourcedFaces(dir, 1);
      const random = seededUniform(5);
      const attributes = new Map(records.map((r): [string, Attributes] => [r.id, {
        gender: random() < 0.5 ? "female" : "male",
        age: 25 + Math.floor(random() * 40),
        ethnicity: r.category === "bio" ? "asian" : "white",
      }]));
      const input = {
        records,
        store: await collectFaces(from(records), {}),
        kinds: [],
        classes: ["bio", "law"],
        heldOut: new Map(),
        crops: new Map(),
        log: () => {},
      };
      const checks = await runChecks({ ...input, attributes });
      const demographic = checks.baselines.find((b) => b.key === "demographics")!;
      assert.equal(demographic.score.accuracy, 1);
      assert.match(demographic.name, /ethnicity/);
      assert.deepEqual(Object.keys(checks.seconds!), [
        "image features",
        "style baselines",
        "demographics",
        "leave-one-source-out",
        // The style baselines and the ladder run in threads beside leave-one-source-out.
        "waiting for the linear fits",
        "what the face adds",
      ]);
      assert.ok(Object.values(checks.seconds!).every((s) => s >= 0 && s < 600));
      // The same faces without the ethnicity estimate: gender and age are noise here.
      const blind = new Map(
        [...attributes].map(([id, a]) => [id, { gender: a.gender, age: a.age }]),
      );
      const without = await runChecks({ ...input, attributes: blind });
      const blindScore = without.baselines.find((b) => b.key === "demographics")!.score;
      assert(blindScore.accuracy! < 0.8, `gender and age alone scored ${blindScore.accuracy}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "runChecks(): where the class is the estimated gender, the demographics baseline finds it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_checks_" });
    try {
      const records = await sourcedFaces(dir, 1);
      const random = seededUniform(3);
      const attributes = new Map(records.map((r) => [r.id, {
        gender: (r.category === "bio" ? "female" : "male") as "female" | "male",
        age: 25 + Math.floor(random() * 40),
      }]));
      const checks = await runChecks({
        records,
        store: await collectFaces(from(records), {}),
        kinds: [],
        classes: ["bio", "law"],
        heldOut: new Map(),
        attributes,
        crops: new Map(),
        log: () => {},
      });
      const demographic = checks.baselines.find((b) => b.key === "demographics")!;
      assert.equal(demographic.score.accuracy, 1);
      assert.equal(checks.demographics!.n, records.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("verdictLines() says what the model beats, what it does not, and which check explains it", () => {
  // 20 faces, the model right on 16; a colour baseline right on 17 of the same faces.
  const faces = Array.from({ length: 20 }, (_, i) => ({
    id: `f${i}`,
    category: i % 2 ? "law" : "bio",
    probabilities: (i < 16) === (i % 2 === 0) ? [0.8, 0.2] : [0.2, 0.8],
  }));
  const metrics = computeMetrics(faces, ["bio", "law"]);
  assert.equal(metrics.accuracy, 0.8);
  const actual = new Map(faces.map((f) => [f.id, f.category === "bio" ? 0 : 1]));
  const model = new Map(faces.map((f) => [f.id, f.probabilities[0]! > 0.5 ? 0 : 1]));
  const baseline = new Map([...actual].map(([id, label], i) => [id, i < 17 ? label : 1 - label]));
  const checks = {
    groupedBy: "source row" as const,
    sources: [],
    loso: [{
      kind: "cnn",
      possible: true,
      perSource: [],
      notPossible: [],
      score: heldOutScore([0, 1, 0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 1, 0, 0, 1], 2),
      randomSplitAccuracy: 0.8,
    }],
    baselines: [{
      key: "image-statistics" as const,
      name: "image statistics",
      score: heldOutScore([...actual.values()], [...baseline.values()], 2),
      versus: { cnn: compareOnSameFaces(actual, model, baseline) },
      skipped: {},
      telling: [{ feature: "mean blue", separation: 3 }],
    }],
  };
  const lines = verdictLines([{ kind: "cnn", metrics }], checks);
  assert.match(lines[0]!, /^cnn: 80\.0 % .* random split, n = 20/);
  assert.match(lines[1]!, /beats: chance 50\.0 %/);
  assert.match(lines[2]!, /does not beat: .*image statistics 85\.0 %/);
  assert.match(
    lines[3]!,
    /comes close: image statistics \(most telling: mean blue\) reaches 85\.0 %/,
  );
  assert.match(lines[4]!, /leave-one-source-out\): 50\.0 % .*NOT above chance/);
  assert.match(
    lines[5]!,
    /explains most of its accuracy: image statistics \(most telling: mean blue\), 100 %/,
  );

  // With matched pairs, the verdict says what the pairs were matched on.
  const pairs = { pairs: 12, right: 9, accuracy: 0.75, ci95: [0.47, 0.91] as [number, number] };
  const withPairs = (sameEthnicity: boolean) =>
    verdictLines([{ kind: "cnn", metrics }], {
      ...checks,
      demographics: {
        estimatedBy: "test",
        n: 20,
        strata: {},
        matchedPairs: { cnn: { ...pairs, maxAgeGap: 3, sameEthnicity } },
      },
    }).join("\n");
  assert.match(
    withPairs(true),
    /matched pairs \(same estimated gender and ethnicity, age within 3 years\): 75\.0 % of 12/,
  );
  assert.match(withPairs(false), /matched pairs \(same estimated gender, age within 3 years\)/);

  // A model at chance gets no "comes close" warning and nothing to explain.
  const atChance = computeMetrics(
    faces.map((f, i) => ({ ...f, probabilities: i < 10 ? [0.9, 0.1] : [0.1, 0.9] })),
    ["bio", "law"],
  );
  const quiet = verdictLines([{ kind: "cnn", metrics: atChance }], checks).join("\n");
  assert.ok(!quiet.includes("comes close"), quiet);
  assert.match(quiet, /no better than chance, so there is no accuracy to explain/);

  // Models that read more than the face's pixels say what they read; a face model does not.
  const said = (kind: string) => verdictLines([{ kind, metrics }]).join("\n");
  assert.match(said("portrait"), /reads the photo around the face .* beside the face/);
  assert.match(said("context"), /reads the photo around the face .* and no face/);
  assert.match(said("landmarks"), /68 landmarks and no pixel: .* expression and the head's pose/);
  assert.ok(!/reads the|landmarks/.test(said("descriptor")), said("descriptor"));
});

Deno.test("losoPlan() holds out one source of every category at a time, or groups that leave every category a source", () => {
  const records = ["a1", "a2", "a3", "b1", "b2", "b3", "c1"].map((source, i) => ({
    id: `r${i}`,
    category: source[0]!,
    pageUrl: source,
    identity: `r${i}`,
  })) as unknown as SplitRecord[];
  const sources = new Map(records.map((r) => [r.id, r.pageUrl]));
  const single = losoPlan(records, sources);
  // One source of each category a run: training keeps two sources of each.
  assert.deepEqual(single.heldOut, [["a1", "b1"], ["a2", "b2"], ["a3", "b3"]]);
  assert.deepEqual(single.notPossible.map((n) => n.category), ["c"]);
  const grouped = losoPlan(records, sources, 2);
  assert.equal(grouped.heldOut.length, 2);
  assert.deepEqual(grouped.heldOut.flat().sort(), ["a1", "a2", "a3", "b1", "b2", "b3"]);
  for (const group of grouped.heldOut) {
    for (const category of ["a", "b"]) {
      const left = ["1", "2", "3"].map((n) => category + n).filter((s) => !group.includes(s));
      assert.ok(left.length >= 1, `holding out ${group} leaves '${category}' no source`);
    }
  }
  // The seed's shape, 14 sources a category: five runs by default, every source held out once.
  const many = Array.from({ length: 56 }, (_, i) => ({
    id: `m${i}`,
    category: "abcd"[i % 4]!,
    pageUrl: `${"abcd"[i % 4]}-site-${Math.floor(i / 4)}`,
    identity: `m${i}`,
  })) as unknown as SplitRecord[];
  const plan = losoPlan(many, new Map(many.map((r) => [r.id, r.pageUrl])));
  assert.equal(plan.heldOut.length, LOSO_RUNS);
  assert.equal(new Set(plan.heldOut.flat()).size, 56);
  assert.equal(plan.heldOut.flat().length, 56);
});
