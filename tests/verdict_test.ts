/** The verdict's rule on constructed predictions whose truth is known. */
import assert from "node:assert/strict";
import {
  facesNeededFor,
  holm,
  normalQuantile,
  oneSampleTUpperTail,
  seededUniform,
} from "../core/statistics.ts";
import {
  decideVerdict,
  headlineModel,
  type LadderPredictions,
  pairedDifference,
  type VerdictInput,
} from "../stages/verdict.ts";

Deno.test("holm() multiplies the k-th smallest p by the hypotheses left, monotone and capped at 1", () => {
  assert.deepEqual(holm([0.01, 0.04, 0.03]).map((p) => +p.toFixed(6)), [0.03, 0.06, 0.06]);
  assert.deepEqual(holm([0.5, 0.9]), [1, 1]);
  assert.deepEqual(holm([]), []);
});

Deno.test("normalQuantile() and facesNeededFor() give the textbook figures", () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5);
  assert.ok(Math.abs(normalQuantile(0.2) + 0.841621) < 1e-5);
  // More faces for a smaller gain, and for more disagreement.
  assert.ok(facesNeededFor(0.05, 0.3) > facesNeededFor(0.1, 0.3));
  assert.ok(facesNeededFor(0.05, 0.4) > facesNeededFor(0.05, 0.2));
  // (1.645 + 0.842)² · 0.2 / 0.1² ≈ 124.
  assert.equal(facesNeededFor(0.1, 0.2), 124);
});

Deno.test("pairedDifference() is the gain on the same faces, with a paired interval and McNemar's p", () => {
  const actual = new Map(Array.from({ length: 100 }, (_, i) => [`f${i}`, i % 2]));
  // The face-holding fit is right on 80, the other on 60; they disagree on 30 faces (25 vs 5).
  const withFace = new Map([...actual].map(([id, y], i) => [id, i < 80 ? y : 1 - y]));
  const without = new Map(
    [...actual].map(([id, y], i) => [id, i < 55 || i >= 80 && i < 85 ? y : 1 - y]),
  );
  const d = pairedDifference(actual, withFace, without)!;
  assert.equal(d.n, 100);
  assert.ok(Math.abs(d.difference - 0.2) < 1e-12);
  assert.ok(d.ci95[0] > 0.05 && d.ci95[1] < 0.35, JSON.stringify(d.ci95));
  assert.ok(d.pValue < 0.001);
  assert.equal(pairedDifference(actual, new Map(), without), null);
});

Deno.test("headlineModel() picks the ensemble, else the first face model, by a rule fixed in advance", () => {
  assert.equal(headlineModel(["cnn", "descriptor", "ensemble"]).kind, "ensemble");
  assert.equal(headlineModel(["context", "cnn", "descriptor"]).kind, "cnn");
  assert.equal(headlineModel(["portrait"]).kind, "portrait");
  assert.throws(() => headlineModel([]), RangeError);
});

/** `n` faces of two classes, and predictions right with the given probability. */
function answers(n: number, seed: number) {
  const random = seededUniform(seed);
  const actual = new Map(Array.from({ length: n }, (_, i) => [`f${i}`, i % 2]));
  const right = (p: number) =>
    new Map([...actual].map(([id, y]) => [id, random() < p ? y : 1 - y]));
  return { actual, right };
}

function input(
  n: number,
  rates: { model: number; demographics: number; noFace: number; withFace: number; photo?: number },
  unseen?: { model: number; noFace: number; withFace: number },
): VerdictInput {
  const { actual, right } = answers(n, 7);
  const ladder: LadderPredictions = {
    actual,
    demographics: right(rates.demographics),
    noFace: right(rates.noFace),
    withFace: right(rates.withFace),
    ...(rates.photo !== undefined ? { photo: right(rates.photo) } : {}),
  };
  return {
    classes: 2,
    model: { kind: "ensemble", rule: "test", predictions: right(rates.model), actual },
    ladder,
    unseen: unseen
      ? {
        actual,
        demographics: right(0.5),
        noFace: right(unseen.noFace),
        withFace: right(unseen.withFace),
        model: right(unseen.model),
        runs: 2,
        // Four held-out sources, two of each class (a face's class is its index mod 2).
        sourceOf: new Map([...actual.keys()].map((id, i) => [id, `source-${i % 4}`])),
      }
      : null,
  };
}

Deno.test("decideVerdict(): the face, where it adds to everything that sees no face", () => {
  const v = decideVerdict(
    input(200, { model: 0.8, demographics: 0.5, noFace: 0.5, withFace: 0.8 }),
  );
  assert.equal(v.conclusion, "face");
  assert.equal(v.alsoNoFace, false);
  assert.ok(v.faceAdds!.difference > 0.15 && v.faceAdds!.holmP < 0.05);
  assert.match(v.headline, /^Yes: the face itself/);
  assert.deepEqual(v.ladder.map((r) => r.key), ["chance", "demographics", "photo", "face"]);
  assert.ok(v.ladder.slice(1).every((r) => r.n === 200 && r.ci95 !== null));
});

Deno.test("decideVerdict(): the photo, where what sees no face does as well as the model", () => {
  const v = decideVerdict(
    input(200, { model: 0.85, demographics: 0.5, noFace: 0.9, withFace: 0.9 }),
  );
  assert.equal(v.conclusion, "photo");
  assert.match(v.headline, /reads the photo, not the face/);
  assert.ok(v.explainedBy.photo! > 0.8, JSON.stringify(v.explainedBy));
});

Deno.test("decideVerdict(): the demographics, where age, gender and ethnicity alone do as well", () => {
  const v = decideVerdict(
    input(200, { model: 0.78, demographics: 0.8, noFace: 0.8, withFace: 0.8, photo: 0.6 }),
  );
  assert.equal(v.conclusion, "demographics");
  assert.ok(v.explainedBy.demographics! > 0.8, JSON.stringify(v.explainedBy));
});

Deno.test("decideVerdict(): no signal, where nothing beats chance after Holm's correction", () => {
  const v = decideVerdict(
    input(200, { model: 0.5, demographics: 0.5, noFace: 0.5, withFace: 0.5 }),
  );
  assert.equal(v.conclusion, "no-signal");
  assert.ok(v.tests.every((t) => t.holmP >= t.pValue));
});

Deno.test("decideVerdict(): undetermined, with the faces needed, where the model leads but nothing is sure", () => {
  const v = decideVerdict(
    input(40, { model: 0.8, demographics: 0.5, noFace: 0.55, withFace: 0.6 }),
  );
  assert.equal(v.conclusion, "undetermined", JSON.stringify(v.tests));
  assert.ok(v.facesNeeded! > 40, String(v.facesNeeded));
  assert.match(v.headline, /Too few faces to tell.*about \d+ faces/);
});

Deno.test("decideVerdict(): a face signal behind per-site styles shows on sources never seen", () => {
  // Random split: the style gives everything away, with or without the face. New sources: the
  // style does not carry over, the face does.
  const v = decideVerdict(
    input(200, { model: 0.95, demographics: 0.5, noFace: 0.97, withFace: 0.97 }, {
      model: 0.75,
      noFace: 0.5,
      withFace: 0.75,
    }),
  );
  assert.equal(v.conclusion, "face");
  assert.equal(v.alsoNoFace, true);
  assert.match(v.headline, /on sources it never saw/);
  assert.ok(v.unseenSources!.faceAdds!.holmP < 0.05);
});

Deno.test("decideVerdict(): the photo, where the estimates only echo a style the photo shows better", () => {
  // A colour cast moves the estimated age: the demographics score well, the photo alone better.
  const v = decideVerdict(
    input(200, { model: 0.85, demographics: 0.75, noFace: 0.95, withFace: 0.95, photo: 0.95 }),
  );
  assert.equal(v.conclusion, "photo");
  // The estimates only echo the photo's style: the headline names the photo alone.
  assert.match(v.headline, /reads the photo, not the face/);
});

Deno.test("decideVerdict(): a no-face fit below chance on new sources does not make a face model at chance 'the face'", () => {
  // A photographer per source: on a new source the learnt look points to the wrong class.
  const v = decideVerdict(
    input(200, { model: 0.95, demographics: 0.5, noFace: 0.99, withFace: 0.99 }, {
      model: 0.5,
      noFace: 0.15,
      withFace: 0.3,
    }),
  );
  assert.notEqual(v.conclusion, "face");
  assert.ok(v.unseenSources!.faceAdds!.difference > 0.2, "the gap alone would have passed");
  assert.equal(v.conclusion, "photo");
});

Deno.test("decideVerdict(): on new sources the face must hold on every source, not on pooled faces", () => {
  const made = input(200, { model: 0.95, demographics: 0.5, noFace: 0.99, withFace: 0.99 }, {
    model: 0.7,
    noFace: 0.5,
    withFace: 0.6,
  });
  // Two held-out sources, one per class: the model right on all of one, wrong on most of the other.
  const unseen = made.unseen!;
  const random = seededUniform(9);
  const model = new Map(
    [...unseen.actual].map(([id, y]) => [id, y === 0 ? 0 : random() < 0.4 ? 1 : 0]),
  );
  const pooledOnly = decideVerdict({ ...made, unseen: { ...unseen, model } });
  assert.equal(pooledOnly.unseenSources!.everySourceAboveChance, false);
  assert.notEqual(pooledOnly.conclusion, "face");
  // The same faces with the model above chance on each source: the face, on new sources.
  const onEach = decideVerdict(made);
  assert.equal(onEach.unseenSources!.everySourceAboveChance, true);
  assert.equal(onEach.conclusion, "face");
  assert.deepEqual(
    onEach.unseenSources!.perSource.map((s) => s.source),
    ["source-0", "source-1", "source-2", "source-3"],
  );
});

Deno.test("oneSampleTUpperTail() gives the textbook one-sided p", () => {
  // t = 2.262 on 3 degrees of freedom: p ≈ 0.0544.
  assert.ok(Math.abs(oneSampleTUpperTail([0.8, 0.72, 0.56, 0.52], 0.5) - 0.0545) < 0.001);
  assert.ok(oneSampleTUpperTail([0.4, 0.45, 0.5], 0.5) > 0.85, "below the mean: p near 1");
  assert.equal(oneSampleTUpperTail([0.7], 0.5), 1, "one source is no test");
});

/** Answers right on each of four held-out sources with the given rates (sources 0, 2: class 0). */
function perSourceAnswers(actual: ReadonlyMap<string, number>, rates: number[], seed: number) {
  const random = seededUniform(seed);
  return new Map(
    [...actual].map(([id, y], i) => [id, random() < rates[i % 4]! ? y : 1 - y]),
  );
}

Deno.test("decideVerdict(): a face model that ignores the style shows the face where the ensemble is thrown by a new photographer", () => {
  const made = input(200, { model: 0.95, demographics: 0.5, noFace: 0.99, withFace: 0.99 }, {
    model: 0.75,
    noFace: 0.5,
    withFace: 0.55,
  });
  const unseen = made.unseen!;
  // The ensemble trusts a style-reading member: one new source's look sends it the wrong way.
  const ensemble = perSourceAnswers(unseen.actual, [0.95, 0.95, 0.25, 0.9], 3);
  const descriptor = perSourceAnswers(unseen.actual, [0.8, 0.78, 0.82, 0.8], 4);
  const withOnlyEnsemble = decideVerdict({ ...made, unseen: { ...unseen, model: ensemble } });
  assert.notEqual(withOnlyEnsemble.conclusion, "face");
  const v = decideVerdict({
    ...made,
    unseen: {
      ...unseen,
      model: ensemble,
      faceModels: new Map([["ensemble", ensemble], ["descriptor", descriptor]]),
    },
  });
  assert.equal(v.conclusion, "face", JSON.stringify(v.tests));
  assert.equal(v.unseenSources!.faceEvidence!.model, "descriptor");
  assert.match(v.headline, /on sources it never saw \(the descriptor model\)/);
  // Bonferroni over the two face models tried.
  const own = v.unseenSources!.faceModels.find((m) => m.model === "descriptor")!;
  assert.ok(v.unseenSources!.faceEvidence!.pValue >= 2 * own.faceAdds!.pValue - 1e-12);
});

Deno.test("decideVerdict(): on new sources, sources that disagree are not a face signal however many faces they hold", () => {
  // Every source above chance, pooled far above it, but two sources barely so: with four
  // sources the spread between them leaves the mean unsure, whatever the faces' count.
  const made = input(2000, { model: 0.95, demographics: 0.5, noFace: 0.99, withFace: 0.99 }, {
    model: 0.7,
    noFace: 0.5,
    withFace: 0.6,
  });
  const model = perSourceAnswers(made.unseen!.actual, [0.99, 0.56, 0.98, 0.55], 5);
  const v = decideVerdict({ ...made, unseen: { ...made.unseen!, model } });
  assert.equal(v.unseenSources!.everySourceAboveChance, true);
  assert.ok(v.unseenSources!.pValue < 1e-6, "pooled over faces it is far above chance");
  assert.ok(v.unseenSources!.sourcesPValue > 0.05, String(v.unseenSources!.sourcesPValue));
  assert.notEqual(v.conclusion, "face");
});
