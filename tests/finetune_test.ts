/** Fine-tuning mobilefacenet's last block: the shipped start, learning, saving, the trunk cut. */
import assert from "node:assert/strict";
import { initEngine, tf } from "../models/engine.ts";
import {
  cachedValues,
  embedFaceAll,
  FACE_NETWORKS,
  MOBILEFACENET_CUT_SHAPE,
} from "../models/faces/face_networks.ts";
import {
  blockMultiplyAdds,
  buildShippedBlock,
  buildTunedMobileFaceNet,
  TUNED_INPUT_LENGTH,
} from "../models/finetune.ts";
import { Pointwise } from "../models/tuned_layers.ts";
import { loadClassifier, saveClassifier } from "../models/classifier.ts";
import { FaceStore } from "../models/dataset.ts";
import { trainClassifier } from "../models/training/train.ts";
import { seededRandom } from "../models/augment.ts";

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
    for (const values of [trunk, Float32Array.from(cachedValues("mobilefacenet-trunk", trunk))]) {
      const before = tf.memory().numTensors;
      const tuned = tf.tidy(() =>
        (block.predict(tf.tensor2d(values, [1, TUNED_INPUT_LENGTH])) as tf.Tensor).dataSync()
      );
      assert.equal(tf.memory().numTensors, before, "no tensor left behind");
      assert.equal(tuned.length, FACE_NETWORKS.mobilefacenet.length);
      // The block's output is the unit embedding scaled to √192.
      const scale = Math.sqrt(tuned.length);
      const worst = Math.max(...shipped.map((v, i) => Math.abs(v - tuned[i]! / scale)));
      assert.ok(worst < 2e-3, `largest difference ${worst}`);
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
 * Trunk activations of two classes whose only difference is a planted direction, weak
 * against the spread between faces.
 */
function plantedStore(faces: number, strength: number, seed: number): FaceStore {
  const random = seededRandom(seed);
  const store = new FaceStore({ crops: false });
  const direction = Float32Array.from({ length: TUNED_INPUT_LENGTH }, () => random() - 0.5);
  for (let i = 0; i < faces; i++) {
    const label = i % 2;
    const trunk = Float32Array.from(
      { length: TUNED_INPUT_LENGTH },
      (_, j) => 4 * (random() - 0.5) + (label ? strength : -strength) * direction[j]!,
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

Deno.test("training the tuned model lowers its loss and separates a planted signal; it saves and loads", async () => {
  const store = plantedStore(100, 0.5, 5);
  const before = tf.memory().numTensors;
  const { classifier, history } = await trainClassifier("mobilefacenet-tuned", store, {
    epochs: 12,
    patience: 12,
    seed: 1,
  });
  assert.ok(history.at(-1)!.loss < history[0]!.loss, "loss falls");
  const valAccuracy = Math.max(...history.map((epoch) => epoch.valAccuracy ?? 0));
  assert.ok(valAccuracy >= 0.8, `validation accuracy ${valAccuracy}`);
  assert.equal(classifier.metadata.kind, "mobilefacenet-tuned");
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

Deno.test("blockMultiplyAdds() counts the 1×1 expansion, the GDC and the two linear layers", () => {
  assert.equal(blockMultiplyAdds(), 49 * 128 * 512 + 49 * 512 + 512 * 512 + 512 * 192);
});
