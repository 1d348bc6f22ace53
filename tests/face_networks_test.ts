/** The shipped face networks (human-models): loading, embeddings on an aligned face, probes. */
import assert from "node:assert/strict";
import { initEngine, tf } from "../models/engine.ts";
import { extractFaces, faceSettings } from "../models/faces/faces.ts";
import { FACE_NETWORKS, loadFaceNetwork } from "../models/faces/face_networks.ts";
import { buildLinearProbe, probePreprocessing } from "../models/embedding.ts";
import { facesToSamples, inputBatch } from "../models/classifier.ts";
import { FaceStore } from "../models/dataset.ts";
import { plantedStore } from "./_synthetic_faces.ts";
import { preprocessingOf } from "../models/training/train.ts";
import { seededRandom } from "../models/augment.ts";

await initEngine();
const PORTRAIT = new URL("./testdata/faces/portrait.jpg", import.meta.url);

Deno.test("faceSettings() keeps the old cache key without networks and changes it with them", () => {
  const plain = faceSettings({});
  assert.deepEqual(faceSettings({ networks: [] }), plain);
  assert.ok(!("networks" in plain), "caches made before networks keep their key");
  assert.deepEqual(faceSettings({ networks: ["mobilefacenet", "faceres"] }).networks, [
    "faceres",
    "mobilefacenet",
  ]);
  assert.throws(() => faceSettings({ networks: ["vggface" as "faceres"] }), /faceres/);
});

Deno.test("extractFaces({ networks }) adds each network's embedding, with no tensor left behind", async () => {
  const bytes = await Deno.readFile(PORTRAIT);
  await extractFaces(bytes, { networks: ["faceres", "mobilefacenet"] });
  const before = tf.memory().numTensors;
  const { faces } = await extractFaces(bytes, { networks: ["faceres", "mobilefacenet"] });
  assert.equal(tf.memory().numTensors, before);
  const face = faces[0]!;
  for (const name of ["faceres", "mobilefacenet"] as const) {
    const embedding = face.embeddings[name]!;
    assert.equal(embedding.length, FACE_NETWORKS[name].length);
    assert.ok(embedding.every(Number.isFinite));
    assert.ok(embedding.some((v) => v !== 0));
  }
  assert.ok(Math.abs(Math.hypot(...face.embeddings.mobilefacenet!) - 1) < 1e-3, "unit length");
  const plain = await extractFaces(bytes);
  assert.deepEqual(plain.faces[0]!.embeddings, {}, "none unless asked for");
});

Deno.test("a shipped network's embedding depends on the face: a flipped face differs, a copy does not", async () => {
  const model = await loadFaceNetwork("faceres");
  const chip = tf.randomUniform([224, 224, 3], 0, 255, "float32", 7) as tf.Tensor3D;
  const run = (input: tf.Tensor3D) =>
    tf.tidy(() =>
      (model.execute(input.expandDims(0), FACE_NETWORKS.faceres.output) as tf.Tensor).dataSync()
    );
  const a = run(chip);
  const b = run(chip.clone());
  const flipped = tf.tidy(() => tf.reverse(chip, 0) as tf.Tensor3D);
  const c = run(flipped);
  tf.dispose([chip, flipped]);
  assert.deepEqual(Array.from(a), Array.from(b));
  assert.notDeepEqual(Array.from(a), Array.from(c));
});

Deno.test("a linear probe learns a direction hidden in nearly identical embeddings", async () => {
  // Like mobilefacenet's: every vector is a shared direction plus a hundredth of signal.
  const random = seededRandom(3);
  const length = 32;
  const store = plantedStore(120, (label) => {
    const embedding = Float32Array.from({ length }, () => 1 + 0.01 * (random() - 0.5));
    embedding[5]! += label ? 0.01 : -0.01;
    return { embeddings: { mobilefacenet: embedding } };
  }, (i) => i % 6 === 0 ? "val" : "train");
  const preprocessing = { ...probePreprocessing("mobilefacenet"), length };
  const model = buildLinearProbe(2, length, { seed: 1 });
  model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
  const faces = store.select({ split: "train" });
  const xs = inputBatch(preprocessing, faces.map((face) => store.sample(face, preprocessing)));
  const ys = tf.oneHot(faces.map((face) => face.category === "b" ? 1 : 0), 2);
  await model.fit(xs, ys, { epochs: 60, batchSize: 32, verbose: 0 });
  const predicted = tf.tidy(() => (model.predict(xs) as tf.Tensor).argMax(1).dataSync());
  const correct = faces.filter((face, i) => (face.category === "b" ? 1 : 0) === predicted[i]);
  tf.dispose([xs, ys]);
  model.dispose();
  assert.ok(correct.length / faces.length > 0.9, `${correct.length}/${faces.length} right`);
});

Deno.test("a probe kind reads its network's embedding and says so when a face lacks it", async () => {
  const preprocessing = preprocessingOf("faceres");
  assert.equal(preprocessing.input === "descriptor" && preprocessing.network, "faceres");
  await assert.rejects(
    () => facesToSamples(preprocessing, [{ crop: new Uint8Array(0), descriptor: [] }]),
    /no faceres embedding/,
  );
  const store = new FaceStore({ crops: false });
  store.addStored({
    id: "x",
    category: "a",
    split: "train",
    fold: null,
    identity: "x",
    crop: new Uint8Array(0),
    descriptor: new Float32Array(128),
    source: "",
  });
  assert.throws(() => store.sample(store.faces[0]!, preprocessing), /face stage ran without it/);
});
