/** Fine-tuning mobilefacenet's last block: the shipped start, learning, saving, the trunk cut. */
import assert from "node:assert/strict";
import { initEngine, tf } from "../models/engine.ts";
import {
  cachedValues,
  embedFaceAll,
  FACE_NETWORKS,
  MOBILEFACENET_CUT_SHAPE,
  TRUNK_DECIMALS,
} from "../models/faces/face_networks.ts";
import { faceSettings } from "../models/faces/faces.ts";
import {
  buildShippedBlock,
  buildTunedMobileFaceNet,
  TUNED_INPUT_LENGTH,
} from "../models/finetune.ts";
import { Pointwise } from "../models/tuned_layers.ts";
import {
  LayersClassifier,
  loadClassifier,
  MODEL_KINDS,
  networksFor,
  saveClassifier,
} from "../models/classifier.ts";
import { FaceStore } from "../models/dataset.ts";
import { trainClassifier } from "../models/training/train.ts";
import { seededRandom } from "../models/augment.ts";
import { buildCnn } from "../models/cnn.ts";
import { trainingWork } from "../models/flops.ts";

await initEngine();

/** A face-like chip: smooth random blobs, not noise, so the network's activations look real. */
function chip(seed: number): tf.Tensor3D {
  return tf.tidy(() => {
    const coarse = tf.randomUniform([8, 8, 3], 0, 255, "float32", seed) as tf.Tensor3D;
    return tf.image.resizeBilinear(coarse, [112, 112]) as tf.Tensor3D;
  });
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(aa * bb);
}

Deno.test("the shipped block on mobilefacenet's trunk reproduces its embedding, also from the cache's rounding", async () => {
  const block = await buildShippedBlock();
  for (const seed of [1, 2, 3]) {
    const input = chip(seed);
    const out = await embedFaceAll(["mobilefacenet", "mobilefacenet-trunk"], input);
    input.dispose();
    const trunk = out["mobilefacenet-trunk"]!;
    assert.equal(trunk.length, MOBILEFACENET_CUT_SHAPE.reduce((a, b) => a * b, 1));
    const shipped = out.mobilefacenet!;
    const rounded = Float32Array.from(cachedValues("mobilefacenet-trunk", trunk));
    assert.ok(rounded.some((v, i) => v !== trunk[i]), "the cache rounds");
    for (const [values, tolerance] of [[trunk, 1e-5], [rounded, 1e-4]] as const) {
      const before = tf.memory().numTensors;
      const tuned = tf.tidy(() =>
        (block.predict(tf.tensor2d(values, [1, TUNED_INPUT_LENGTH])) as tf.Tensor).dataSync()
      );
      assert.equal(tf.memory().numTensors, before, "no tensor left behind");
      assert.equal(tuned.length, FACE_NETWORKS.mobilefacenet.length);
      // The block's output is the unit embedding scaled to √192.
      const scale = Math.sqrt(tuned.length);
      const worst = Math.max(...shipped.map((v, i) => Math.abs(v - tuned[i]! / scale)));
      assert.ok(worst < tolerance, `largest difference ${worst}`);
      assert.ok(cosine(shipped, tuned) > 0.9999, `cosine ${cosine(shipped, tuned)}`);
    }
  }
  block.dispose();
});

Deno.test("a block rate scales the stored weights, not what the block computes", async () => {
  const full = await buildShippedBlock(1);
  const slow = await buildShippedBlock(0.1);
  const layer = (model: tf.LayersModel) => model.getLayer("tuned_expand") as Pointwise;
  const a = layer(full).getWeights()[0]!.dataSync();
  const b = layer(slow).getWeights()[0]!.dataSync();
  assert.ok(Math.abs(b[7]! - a[7]! * 10) < 1e-5 * Math.abs(a[7]! * 10) + 1e-9);
  const x = tf.randomNormal([2, TUNED_INPUT_LENGTH], 0, 5, "float32", 4);
  const ya = (full.predict(x) as tf.Tensor).dataSync();
  const yb = (slow.predict(x) as tf.Tensor).dataSync();
  for (let i = 0; i < ya.length; i++) assert.ok(Math.abs(ya[i]! - yb[i]!) < 1e-3);
  tf.dispose([x]);
  full.dispose();
  slow.dispose();
  assert.throws(() => new Pointwise({ units: 4, rate: 0 }), /rate/);
  await assert.rejects(buildTunedMobileFaceNet(1), /classes/);
  await assert.rejects(buildTunedMobileFaceNet(2, { blockRate: 2 }), /blockRate/);
});

/**
 * Faces of two classes around two real trunk activations (two chips through mobilefacenet),
 * each face its class's activation plus noise as large as half the classes' difference.
 */
async function plantedStore(faces: number, seed: number): Promise<FaceStore> {
  const bases = await Promise.all([1, 2].map(async (chipSeed) => {
    const input = chip(chipSeed);
    const trunk = (await embedFaceAll(["mobilefacenet-trunk"], input))["mobilefacenet-trunk"]!;
    input.dispose();
    return trunk;
  }));
  const spread = Math.sqrt(
    bases[0]!.reduce((sum, v, i) => sum + (v - bases[1]![i]!) ** 2, 0) / TUNED_INPUT_LENGTH,
  );
  const random = seededRandom(seed);
  const store = new FaceStore({ crops: false });
  for (let i = 0; i < faces; i++) {
    const label = i % 2;
    const trunk = Float32Array.from(
      bases[label]!,
      (v) => v + spread * (random() - 0.5) * Math.sqrt(3),
    );
    store.addStored({
      id: `f${i}`,
      category: label ? "b" : "a",
      split: i % 5 === 0 ? "val" : "train",
      fold: null,
      identity: `f${i}`,
      crop: new Uint8Array(0),
      descriptor: new Float32Array(128),
      embeddings: { "mobilefacenet-trunk": trunk },
      source: "",
    });
  }
  return store;
}

Deno.test("training the tuned model lowers its loss, separates the classes and moves the shipped block; it saves and loads", async () => {
  const store = await plantedStore(80, 5);
  const shipped = await buildShippedBlock();
  const before = tf.memory().numTensors;
  const { classifier, history } = await trainClassifier("mobilefacenet-tuned", store, {
    epochs: 8,
    patience: 8,
    seed: 1,
  });
  assert.ok(history.at(-1)!.loss < history[0]!.loss, "loss falls");
  const valAccuracy = Math.max(...history.map((epoch) => epoch.valAccuracy ?? 0));
  assert.ok(valAccuracy >= 0.9, `validation accuracy ${valAccuracy}`);
  assert.equal(classifier.metadata.kind, "mobilefacenet-tuned");
  const model = (classifier as LayersClassifier).model;
  const expand = (m: tf.LayersModel) => {
    const layer = m.getLayer("tuned_expand") as Pointwise;
    return Array.from(layer.getWeights()[0]!.dataSync(), (v) => v * layer.rate);
  };
  const moved = expand(model).some((v, i) => Math.abs(v - expand(shipped)[i]!) > 1e-7);
  assert.ok(moved, "the shipped block learns too");
  shipped.dispose();
  const dir = await Deno.makeTempDir();
  try {
    await saveClassifier(classifier, dir);
    const loaded = await loadClassifier(dir);
    const faces = store.select({ split: "val" }).slice(0, 4).map((face) => ({
      crop: new Uint8Array(0),
      descriptor: [],
      embeddings: { "mobilefacenet-trunk": face.embeddings!["mobilefacenet-trunk"]! },
    }));
    const [a, b] = [await classifier.predict(faces), await loaded.predict(faces)];
    a.forEach((p, i) => p.forEach((v, c) => assert.ok(Math.abs(v - b[i]![c]!) < 1e-5)));
    loaded.dispose();
  } finally {
    classifier.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(tf.memory().numTensors <= before + 2, "training leaves no tensors behind");
});

Deno.test("trainingWork() counts the seed CNN's convolutions and dense layers from their shapes", () => {
  const cnn = buildCnn(4);
  const conv = (side: number, depth: number) => side * side * 9 * depth * 32;
  // 64 → conv 62 → pool 31 → conv 29 → pool 14 → conv 12 → pool 6: 6·6·32 = 1152 into Dense(64).
  const forward = conv(62, 1) + conv(29, 32) + conv(12, 32) + 1152 * 64 + 64 * 4;
  const work = trainingWork(cnn);
  assert.equal(work.forward, forward);
  assert.equal(work.inputGradients, forward - conv(62, 1), "no gradient for the image");
  assert.equal(work.flops, 2 * (2 * forward + forward - conv(62, 1)));
  cnn.dispose();
});

Deno.test("trainingWork() sees the tuned block's own layers: the 1×1 expansion, the GDC, two linear layers", async () => {
  const block = await buildShippedBlock();
  assert.equal(trainingWork(block).forward, 49 * 128 * 512 + 49 * 512 + 512 * 512 + 512 * 192);
  block.dispose();
});

Deno.test("networksFor() asks the face stage for the trunk for the tuned kind, each network once", () => {
  assert.deepEqual(networksFor(["mobilefacenet-tuned"]), ["mobilefacenet-trunk"]);
  assert.deepEqual(networksFor(["cnn", "mobilefacenet", "mobilefacenet-tuned", "mobilefacenet"]), [
    "mobilefacenet",
    "mobilefacenet-trunk",
  ]);
  assert.ok(MODEL_KINDS.includes("mobilefacenet-tuned"));
  assert.ok(!(MODEL_KINDS as readonly string[]).includes("mobilefacenet-trunk"), "no probe on it");
});

Deno.test("faceSettings() keys the trunk's cache by its rounding, and leaves the probe's key alone", () => {
  const probe = faceSettings({ networks: ["mobilefacenet"] });
  const both = faceSettings({ networks: ["mobilefacenet", "mobilefacenet-trunk"] });
  assert.ok(!("trunkDecimals" in probe));
  assert.equal(both.trunkDecimals, TRUNK_DECIMALS);
});
