import assert from "node:assert/strict";
import { from } from "rxjs";
import { initEngine, tf } from "../models/engine.ts";
import { collectFaces } from "../pipeline/batches.ts";
import { FaceStore } from "../models/dataset.ts";
import { augmentBatch, augmentPixels, drawAugmentations, seededRandom } from "../models/augment.ts";
import { CNN_PREPROCESSING } from "../models/cnn.ts";
import { EMBEDDING_PREPROCESSING } from "../models/embedding.ts";
import { splitFaces, syntheticFaces } from "./testdata/synthetic/faces.ts";

await initEngine();
const dir = await Deno.makeTempDir({ prefix: "facefield_batches_" });
const records = await splitFaces(await syntheticFaces(dir, { perClass: 20, size: 72 }));
const store: FaceStore = await collectFaces(from(records));
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

/** All batches of one epoch as plain arrays; each batch is disposed once read. */
async function epoch(dataset: ReturnType<FaceStore["dataset"]>) {
  const batches: { xs: Float32Array; ys: Float32Array; shape: number[] }[] = [];
  const iterator = await dataset.iterator();
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    const { xs, ys } = next.value;
    batches.push({
      xs: xs.dataSync() as Float32Array,
      ys: ys.dataSync() as Float32Array,
      shape: xs.shape,
    });
    tf.dispose([xs, ys]);
  }
  return batches;
}

Deno.test("collectFaces() keeps every face as uint8 crops at the model's size plus descriptors", () => {
  assert.equal(store.size, 60);
  assert.deepEqual(store.classes, ["biology", "history", "physics"]);
  for (const face of store.faces) {
    assert.ok(face.crop instanceof Uint8Array);
    assert.equal(face.crop.length, 64 * 64);
    assert.equal(face.descriptor.length, 128);
  }
  assert.deepEqual(store.provenance().sources, ["https://people.example"]);
  const counts = store.counts();
  assert.equal(Object.values(counts.train).reduce((a, b) => a + b, 0), 42);
  assert.equal(Object.values(counts.test).reduce((a, b) => a + b, 0), 12);
});

Deno.test("FaceStore.add() skips a face whose crop is gone, with the reason", async () => {
  const other = await collectFaces(from([
    records[0]!,
    { ...records[1]!, cropPath: `${dir}/missing.png` },
  ]));
  assert.equal(other.size, 1);
  assert.equal(other.skipped.length, 1);
  assert.equal(other.skipped[0]!.id, records[1]!.id);
  assert.match(other.skipped[0]!.reason, /^crop_unreadable: /);
});

Deno.test("FaceStore.dataset() batches a split into one-hot {xs, ys}, all faces once per epoch", async () => {
  const train = store.select({ split: "train" });
  const dataset = store.dataset({
    filter: { split: "train" },
    preprocessing: CNN_PREPROCESSING,
    batchSize: 16,
  });
  const batches = await epoch(dataset);
  assert.deepEqual(batches.map((b) => b.shape[0]), [16, 16, 10]);
  assert.deepEqual(batches[0]!.shape, [16, 64, 64, 1]);
  const labels = batches.flatMap((b) => {
    const rows = [];
    for (let r = 0; r < b.ys.length / 3; r++) {
      const row = [...b.ys.slice(r * 3, r * 3 + 3)];
      assert.equal(row.reduce((a, c) => a + c, 0), 1);
      rows.push(store.classes[row.indexOf(1)]);
    }
    return rows;
  });
  assert.deepEqual(labels, train.map((f) => f.category));
  // Pixels are the stored bytes scaled to [0, 1].
  const first = train[0]!.crop;
  assert.ok(Math.abs(batches[0]!.xs[100]! - first[100]! / 255) < 1e-6);
});

Deno.test("FaceStore.dataset() reshuffles every epoch, reproducibly from its seed", async () => {
  const options = {
    filter: { split: "train" } as const,
    preprocessing: EMBEDDING_PREPROCESSING,
    batchSize: 8,
    shuffle: true,
    seed: 5,
  };
  const a = store.dataset(options);
  const orderOf = (batches: Awaited<ReturnType<typeof epoch>>) =>
    batches.flatMap((b) => [...b.xs.filter((_, i) => i % 128 === 0)]);
  const a1 = orderOf(await epoch(a));
  const a2 = orderOf(await epoch(a));
  assert.notDeepEqual(a1, a2, "second epoch kept the first epoch's order");
  assert.deepEqual([...a1].sort(), [...a2].sort(), "an epoch lost or repeated faces");
  const b = store.dataset(options);
  assert.deepEqual(orderOf(await epoch(b)), a1);
  assert.deepEqual(orderOf(await epoch(b)), a2);
});

Deno.test("FaceStore.dataset() leaks no tensors over epochs, augmentation included", async () => {
  const dataset = store.dataset({
    filter: { split: ["train", "val"] },
    preprocessing: CNN_PREPROCESSING,
    batchSize: 8,
    shuffle: true,
    augment: true,
  });
  await epoch(dataset);
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const batches = await epoch(dataset);
    assert.equal(batches.length, 6);
    for (const b of batches) assert.ok(b.xs.every((v) => v >= 0 && v <= 1));
    assert.equal(tf.memory().numTensors, before, `epoch ${i + 2} left tensors behind`);
  }
});

Deno.test("FaceStore.select() by test fold: roles are disjoint, cover every face, test = the fold", async () => {
  const folded = await collectFaces(
    from(
      await splitFaces(
        await syntheticFaces(dir, { perClass: 30, crops: false, seed: 2 }),
        { folds: 5 },
      ),
    ),
    { crops: false },
  );
  assert.equal(folded.folds, 5);
  const roles = (["train", "val", "test"] as const).map((role) =>
    folded.select({ testFold: 1, role }).map((f) => f.id)
  );
  const all = roles.flat();
  assert.equal(new Set(all).size, folded.size);
  assert.equal(all.length, folded.size);
  assert.ok(folded.select({ testFold: 1, role: "test" }).every((f) => f.fold === 1));
  assert.ok(roles[1]!.length > 0, "no validation faces carved from the training folds");
  assert.throws(
    () => folded.dataset({ filter: { split: "train" }, preprocessing: CNN_PREPROCESSING }),
    RangeError,
  );
});

Deno.test("augmentBatch() with flips only gives each image or its mirror", () => {
  const images = tf.tidy(() => tf.randomUniform([6, 8, 8, 1], 0, 1) as tf.Tensor4D);
  const before = tf.memory().numTensors;
  const out = augmentBatch(images, seededRandom(3), {
    maxRotationDegrees: 0,
    zoom: 0,
    maxBrightness: 0,
  });
  assert.equal(tf.memory().numTensors, before + 1);
  const mirrored = tf.image.flipLeftRight(images);
  const rounded = (t: tf.Tensor, k: number) =>
    JSON.stringify((t.arraySync() as number[][][][])[k]!.flat(2).map((v) => v.toFixed(4)));
  let flips = 0;
  for (let k = 0; k < 6; k++) {
    const same = rounded(out, k);
    const isOriginal = same === rounded(images, k);
    const isMirror = same === rounded(mirrored, k);
    assert.ok(isOriginal || isMirror, `image ${k} is neither itself nor its mirror`);
    if (isMirror && !isOriginal) flips++;
  }
  assert.ok(flips > 0 && flips < 6, `${flips} of 6 flipped`);
  tf.dispose([images, out, mirrored]);
});

Deno.test("augmentBatch() with rotation and zoom changes the image but keeps its shape and range", () => {
  const images = tf.tidy(() => tf.randomUniform([4, 16, 16, 1], 0, 1) as tf.Tensor4D);
  const out = augmentBatch(images, seededRandom(4), { flip: false, maxBrightness: 0 });
  assert.deepEqual(out.shape, images.shape);
  const difference = tf.tidy(() => tf.abs(tf.sub(out, images)).mean().dataSync()[0]!);
  assert.ok(difference > 0.01, `augmented images barely differ (${difference})`);
  tf.dispose([images, out]);
  assert.throws(() => augmentBatch(images, Math.random, { zoom: 1.5 }), RangeError);
});

Deno.test("augmentPixels() computes what tfjs' image ops compute: zoom, rotation, flip, brightness", () => {
  const shape: [number, number, number, number] = [8, 24, 24, 1];
  const images = tf.tidy(() => tf.randomUniform(shape, 0, 1, "float32", 9) as tf.Tensor4D);
  const draws = drawAugmentations(8, seededRandom(6), { zoom: 0.3, maxRotationDegrees: 30 });
  assert.ok(draws.some((d) => d.flip) && draws.some((d) => !d.flip));
  const reference = tf.tidy(() => {
    const boxes = draws.map((
      { scale },
    ) => [0.5 - scale / 2, 0.5 - scale / 2, 0.5 + scale / 2, 0.5 + scale / 2]);
    const zoomed = tf.image.cropAndResize(images, tf.tensor2d(boxes), tf.range(0, 8, 1, "int32"), [
      24,
      24,
    ]);
    return tf.concat(
      tf.split(zoomed, 8).map((image, i) => {
        const rotated = tf.image.rotateWithOffset(image as tf.Tensor4D, draws[i]!.radians, 0);
        const flipped = draws[i]!.flip ? tf.image.flipLeftRight(rotated) : rotated;
        return tf.clipByValue(tf.add(flipped, draws[i]!.brightness), 0, 1);
      }),
    ).dataSync();
  });
  const ours = new Float32Array(reference.length);
  augmentPixels(images.dataSync() as Float32Array, ours, shape, draws);
  // A rotated coordinate landing on .5 may round the other way in float32: allow a handful.
  const differing = ours.filter((value, i) => Math.abs(value - reference[i]!) > 1e-4).length;
  assert.ok(differing <= ours.length / 500, `${differing} of ${ours.length} pixels differ`);
  images.dispose();
  assert.throws(() => augmentPixels(ours, ours, [9, 24, 24, 1], draws), RangeError);
});

Deno.test("FaceStore.dataset() augments reproducibly from its seed, and differently each epoch", async () => {
  const options = {
    filter: { split: "train" } as const,
    preprocessing: CNN_PREPROCESSING,
    batchSize: 16,
    shuffle: true,
    seed: 4,
    augment: true,
  };
  const a = store.dataset(options);
  const [a1, a2] = [await epoch(a), await epoch(a)];
  const b1 = await epoch(store.dataset(options));
  assert.deepEqual(b1.map((batch) => [...batch.xs]), a1.map((batch) => [...batch.xs]));
  assert.notDeepEqual(a2[0]!.xs, a1[0]!.xs);
});

Deno.test("FaceStore.addStored() keeps decoded faces once and rejects a crop of the wrong size", () => {
  const kept = new FaceStore();
  const face = { ...store.faces[0]! };
  kept.addStored(face);
  kept.addStored({ ...face, category: "other" });
  assert.deepEqual(kept.faces, [face]);
  assert.throws(() => kept.addStored({ ...face, id: "x", crop: new Uint8Array(10) }), RangeError);
});
