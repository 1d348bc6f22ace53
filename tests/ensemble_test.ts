import assert from "node:assert/strict";
import { join } from "node:path";
import { initEngine } from "../models/engine.ts";
import type { FaceStore } from "../models/dataset.ts";
import { plantedStore } from "./_synthetic_faces.ts";
import { trainClassifier } from "../models/training/train.ts";
import { type Classifier, type FaceInput, saveClassifier } from "../models/classifier.ts";
import { EnsembleClassifier, loadModel, saveEnsemble } from "../models/ensemble.ts";
import { FACE_NETWORKS } from "../models/faces/face_networks.ts";
import { seededRandom } from "../models/augment.ts";
import { pipelineOptionsFromFlags } from "../pipeline/options.ts";

await initEngine();

/** Faces whose descriptor and mobilefacenet embedding each carry a little of the class. */
function syntheticStore(): FaceStore {
  const random = seededRandom(8);
  const length = FACE_NETWORKS.mobilefacenet.length;
  return plantedStore(160, (label) => {
    const descriptor = Float32Array.from({ length: 128 }, () => random() - 0.5);
    descriptor[3]! += label ? 0.3 : -0.3;
    const embedding = Float32Array.from({ length }, () => 1 + 0.01 * (random() - 0.5));
    embedding[7]! += label ? 0.004 : -0.004;
    return { descriptor, embeddings: { mobilefacenet: embedding } };
  });
}

const inputsOfTest = (store: FaceStore): FaceInput[] =>
  store.select({ split: "test" }).map((face) => ({
    crop: face.crop,
    descriptor: face.descriptor,
    embeddings: face.embeddings,
  }));

Deno.test("the ensemble is the mean of its members' probabilities, and saves and loads alone", async () => {
  const store = syntheticStore();
  const members: Classifier[] = [
    (await trainClassifier("descriptor", store)).classifier,
    (await trainClassifier("mobilefacenet", store)).classifier,
  ];
  const ensemble = new EnsembleClassifier(members);
  const inputs = inputsOfTest(store);
  const [a, b, mean] = [
    await members[0]!.predict(inputs),
    await members[1]!.predict(inputs),
    await ensemble.predict(inputs),
  ];
  mean.forEach((p, i) => {
    assert.ok(Math.abs(p[0]! - (a[i]![0]! + b[i]![0]!) / 2) < 1e-6);
    assert.ok(Math.abs(p[0]! + p[1]! - 1) < 1e-5);
  });
  assert.deepEqual(ensemble.metadata.members!.map((m) => m.kind), ["descriptor", "mobilefacenet"]);
  const dir = await Deno.makeTempDir();
  try {
    const memberDirs = members.map((_, i) => join(dir, `member${i}`));
    for (const [i, member] of members.entries()) await saveClassifier(member, memberDirs[i]!);
    await saveEnsemble(ensemble, memberDirs, join(dir, "ensemble"));
    // The saved ensemble holds copies: removing the originals changes nothing.
    for (const memberDir of memberDirs) await Deno.remove(memberDir, { recursive: true });
    const loaded = await loadModel(join(dir, "ensemble"));
    assert.equal(loaded.metadata.kind, "ensemble");
    (await loaded.predict(inputs)).forEach((p, i) =>
      assert.ok(Math.abs(p[1]! - mean[i]![1]!) < 1e-6)
    );
    loaded.dispose();
    await Deno.remove(join(dir, "ensemble", "members", "mobilefacenet", "weights.bin"));
    await assert.rejects(() => loadModel(join(dir, "ensemble")), /missing/);
  } finally {
    ensemble.dispose(); // shares its members: they stay usable
    assert.equal((await members[0]!.predict(inputs.slice(0, 1))).length, 1);
    for (const member of members) member.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the ensemble refuses one member or members over other classes", async () => {
  const store = syntheticStore();
  const one = (await trainClassifier("descriptor", store)).classifier;
  assert.throws(() => new EnsembleClassifier([one]), /two or more/);
  const other: Classifier = {
    metadata: { ...one.metadata, classes: ["x", "y"] },
    predict: (faces) => one.predict(faces),
    dispose: () => {},
  };
  assert.throws(() => new EnsembleClassifier([one, other]), /classes differ/);
  await assert.rejects(() => trainClassifier("ensemble", store), /on its own/);
  one.dispose();
});

Deno.test("--models: the ensemble needs two probes to average and comes after them", () => {
  assert.throws(
    () => pipelineOptionsFromFlags({ models: "ensemble,cnn" }),
    /name two or more of them/,
  );
  assert.deepEqual(
    pipelineOptionsFromFlags({ models: "ensemble,mobilefacenet,descriptor" }).models,
    ["descriptor", "mobilefacenet", "ensemble"],
  );
});
