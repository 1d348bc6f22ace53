import assert from "node:assert/strict";
import { initEngine } from "../models/engine.ts";
import { L2_GRID, LogisticRegression } from "../models/logistic.ts";
import { seededUniform } from "../core/statistics.ts";
import { plantedStore } from "./_synthetic_faces.ts";
import { trainClassifier } from "../models/training/train.ts";
import { loadClassifier, saveClassifier } from "../models/classifier.ts";
import { FACE_NETWORKS } from "../models/faces/face_networks.ts";
import { seededRandom } from "../models/augment.ts";

await initEngine();

/** The penalised objective the fit minimises, from outside: mean cross-entropy + l2/2 Σw². */
function objective(model: LogisticRegression, rows: number[][], labels: number[]): number {
  const width = model.features + 1;
  const loss = model.predict(rows).reduce((sum, p, i) => sum - Math.log(p[labels[i]!]!), 0);
  let penalty = 0;
  model.weights.forEach((w, k) => (k % width === width - 1 ? 0 : penalty += w * w));
  return loss / rows.length + model.l2 / 2 * penalty;
}

Deno.test("LogisticRegression.fit reaches the optimum: no nearby weights do better", () => {
  const random = seededRandom(5);
  const rows = Array.from({ length: 80 }, () => [random(), random(), random() - 0.5]);
  const labels = rows.map((r) => (r[0]! + 0.5 * r[1]! + 0.3 * random() > 0.9 ? 1 : 0));
  const model = LogisticRegression.fit(rows, labels, 2, { l2: 0.1 });
  const best = objective(model, rows, labels);
  for (let trial = 0; trial < 20; trial++) {
    const nudged = model.weights.slice();
    nudged.forEach((_, k) => nudged[k]! += 1e-3 * (random() - 0.5));
    const other = new LogisticRegression(2, model.means, model.scales, nudged, model.l2);
    assert.ok(objective(other, rows, labels) >= best - 1e-12, `trial ${trial} beat the fit`);
  }
});

Deno.test("LogisticRegression.fitCv: a weak penalty for signal, a strong one for noise, grouped by person", () => {
  const random = seededRandom(11);
  const signal = Array.from({ length: 120 }, (_, i) => [(i % 2) + 0.3 * random(), random()]);
  const signalLabels = signal.map((_, i) => i % 2);
  const fitted = LogisticRegression.fitCv(signal, signalLabels, 2);
  assert.ok(fitted.model.l2 <= 0.1, `signal got l2 ${fitted.model.l2}`);
  assert.equal(fitted.scores.length, L2_GRID.length);

  // Noise in 40 dimensions, each person photographed twice with the same features and label:
  // without groups the inner folds reward remembering people; with them, nothing is learnable.
  const people = Array.from({ length: 60 }, () => ({
    x: Array.from({ length: 40 }, () => random()),
    label: random() < 0.5 ? 0 : 1,
  }));
  const rows = people.flatMap((p) => [p.x, p.x]);
  const labels = people.flatMap((p) => [p.label, p.label]);
  const groups = people.flatMap((_, i) => [`p${i}`, `p${i}`]);
  const ungrouped = LogisticRegression.fitCv(rows, labels, 2);
  const grouped = LogisticRegression.fitCv(rows, labels, 2, { groups });
  assert.ok(grouped.model.l2 > ungrouped.model.l2, `${grouped.model.l2} vs ${ungrouped.model.l2}`);
  assert.ok(grouped.model.l2 >= 3, `noise got l2 ${grouped.model.l2}`);
  assert.throws(() => LogisticRegression.fitCv(rows, labels, 2, { groups: ["a"] }), RangeError);
});

Deno.test("a probe kind is fitted by cross-validation, predicts as the fit does, and saves and loads", async () => {
  const random = seededRandom(3);
  const length = FACE_NETWORKS.mobilefacenet.length;
  const store = plantedStore(300, (label) => {
    // Like mobilefacenet's embeddings: one shared direction plus a hundredth of signal.
    const embedding = Float32Array.from({ length }, () => 1 + 0.01 * (random() - 0.5));
    embedding[5]! += label ? 0.02 : -0.02;
    return { embeddings: { mobilefacenet: embedding } };
  });
  const { classifier, history, bestEpoch } = await trainClassifier("mobilefacenet", store);
  assert.equal(bestEpoch, 1);
  assert.equal(history.length, 1);
  const fit = classifier.metadata.fit!;
  assert.ok(L2_GRID.includes(fit.l2));
  assert.equal(
    fit.faces,
    store.select({ split: "train" }).length + store.select({ split: "val" }).length,
  );
  assert.equal(history[0]!.valAccuracy, fit.cv.find((s) => s.l2 === fit.l2)!.accuracy);
  const test = store.select({ split: "test" });
  const inputs = test.map((face) => ({
    crop: face.crop,
    descriptor: face.descriptor,
    embeddings: face.embeddings,
  }));
  const predicted = await classifier.predict(inputs);
  // The same regression fitted outside the probe, on the inputs as the probe preprocesses them
  // (scaled to length √n), answers the same: the standardisation is folded in right.
  const scaled = (face: (typeof test)[number]) => {
    const x = Array.from(face.embeddings!.mobilefacenet!);
    const factor = Math.sqrt(length) / Math.hypot(...x);
    return x.map((v) => v * factor);
  };
  const fitted = [...store.select({ split: "train" }), ...store.select({ split: "val" })];
  const outside = LogisticRegression.fit(
    fitted.map(scaled),
    fitted.map((face) => face.category === "b" ? 1 : 0),
    2,
    { l2: fit.l2 },
  );
  outside.predict(test.map(scaled)).forEach((p, i) =>
    assert.ok(
      Math.abs(p[1]! - predicted[i]![1]!) < 1e-3,
      `face ${i}: ${p[1]} vs ${predicted[i]![1]}`,
    )
  );
  const right = test.filter((face, i) =>
    (predicted[i]![1]! > predicted[i]![0]! ? "b" : "a") === face.category
  );
  assert.ok(
    right.length / test.length > 0.9,
    `${right.length}/${test.length} right, ${JSON.stringify(fit)}`,
  );
  const dir = await Deno.makeTempDir();
  try {
    await saveClassifier(classifier, dir);
    const loaded = await loadClassifier(dir);
    const again = await loaded.predict(inputs);
    again.forEach((p, i) => assert.ok(Math.abs(p[0]! - predicted[i]![0]!) < 1e-5));
    assert.equal(loaded.metadata.fit?.l2, fit.l2);
    loaded.dispose();
  } finally {
    classifier.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("LogisticRegression balanced: an outnumbered class is not simply predicted less", () => {
  // 90 rows of class 0, 10 of class 1, and a feature that says little: unweighted, the fit
  // calls nearly everything 0; weighted, it calls about as many rows of each class its own.
  const random = seededUniform(11);
  const labels = Array.from({ length: 100 }, (_, i) => (i < 90 ? 0 : 1));
  const rows = labels.map((label) => [label * 0.3 + random()]);
  const called = (balanced: boolean) => {
    const model = LogisticRegression.fit(rows, labels, 2, { l2: 0.1, balanced });
    return model.predict(rows).filter((p) => p[1]! > p[0]!).length;
  };
  assert.ok(called(false) <= 2, `unweighted called ${called(false)} rows 1`);
  assert.ok(called(true) >= 25, `weighted called ${called(true)} rows 1`);
  const { model } = LogisticRegression.fitCv(rows, labels, 2, { balanced: true, outOfFold: true });
  assert.equal(model.features, 1);
});

Deno.test("LogisticRegression.fitCv() keeps each row's out-of-fold answer at every penalty", () => {
  const labels = Array.from({ length: 40 }, (_, i) => i % 2);
  const rows = labels.map((label, i) => [label + (i % 7) / 10]);
  const { model, scores } = LogisticRegression.fitCv(rows, labels, 2, { outOfFold: true });
  const chosen = scores.find((s) => s.l2 === model.l2)!;
  assert.equal(chosen.outOfFold!.length, 40);
  assert.ok(chosen.outOfFold!.every((p) => p.length === 2 && Math.abs(p[0]! + p[1]! - 1) < 1e-9));
  // Out of fold, a row's answer came from a fit that did not see it.
  assert.notDeepEqual(chosen.outOfFold![0], model.predict([rows[0]!])[0]);
});
