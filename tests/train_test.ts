import assert from "node:assert/strict";
import { from } from "rxjs";
import { initEngine, tf } from "../models/engine.ts";
import { collectFaces } from "../pipeline/batches.ts";
import { evaluateFaces, isBetter, trainClassifier } from "../models/training/train.ts";
import { shardGradients } from "../models/training/shard.ts";
import type { EpochStats } from "../models/classifier.ts";
import { CNN_PREPROCESSING } from "../models/cnn.ts";
import { EMBEDDING_PREPROCESSING } from "../models/embedding.ts";
import { splitFaces, syntheticFaces } from "./testdata/synthetic/faces.ts";

/**
 * Dropout and augmentation make one epoch's loss noisy on a few dozen faces: the last three
 * epochs together must sit below the first.
 */
function assertLossFell(history: { loss: number }[]): void {
  const last = history.slice(-3).reduce((sum, h) => sum + h.loss, 0) / 3;
  assert.ok(last < history[0]!.loss, `loss ${history.map((h) => h.loss.toFixed(3))}`);
}

await initEngine();
const dir = await Deno.makeTempDir({ prefix: "facefield_train_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const descriptors = await collectFaces(
  from(await splitFaces(await syntheticFaces(dir, { perClass: 60, crops: false, seed: 11 }))),
  { crops: false },
);

Deno.test("trainClassifier('embedding') learns separable descriptors, tensors stable per epoch", async () => {
  const before = tf.memory().numTensors;
  const seen: (EpochStats & { etaSeconds: number; tensors: number })[] = [];
  const { classifier, history, bestEpoch } = await trainClassifier("embedding", descriptors, {
    epochs: 30,
    patience: 30,
    seed: 1,
    onEpoch: (stats) => seen.push({ ...stats, tensors: tf.memory().numTensors }),
  });
  assert.equal(history.length, 30);
  assert.deepEqual(seen.map((s) => s.epoch), history.map((h) => h.epoch));
  assert.equal(seen.at(-1)!.etaSeconds, 0);
  assert.ok(seen[0]!.etaSeconds > 0);
  assert.ok(history.at(-1)!.loss < history[0]!.loss, "training loss did not fall");
  // Tensors held between epochs: weights + Adam state, the same every epoch after the first.
  assert.equal(new Set(seen.slice(1).map((s) => s.tensors)).size, 1, JSON.stringify(seen));
  // Real learning: the held-out test faces, never trained or selected on, come out right.
  const test = descriptors.select({ split: "test" });
  const probabilities = classifier.predictSamples(test.map((f) => f.descriptor));
  const correct = test.filter((face, i) => {
    const p = [...probabilities[i]!];
    return classifier.metadata.classes[p.indexOf(Math.max(...p))] === face.category;
  }).length;
  assert.ok(correct / test.length >= 0.9, `test accuracy ${correct}/${test.length}`);
  assert.ok(history[bestEpoch - 1]!.valAccuracy! >= 0.9);
  assert.equal(classifier.metadata.bestEpoch, bestEpoch);
  assert.equal(classifier.metadata.kind, "embedding");
  assert.deepEqual(classifier.metadata.classes, ["biology", "history", "physics"]);
  assert.equal(classifier.metadata.data.counts.test.biology, 12);
  classifier.dispose();
  assert.equal(tf.memory().numTensors, before, "training left tensors behind");
});

Deno.test("trainClassifier() stops early and restores the best epoch's weights", async () => {
  // Noisy faces and a fast learning rate: validation loss soon turns up as the model overfits.
  const noisy = await collectFaces(
    from(await splitFaces(await syntheticFaces(dir, { perClass: 40, crops: false, noise: 0.6 }))),
    { crops: false },
  );
  const { classifier, history, bestEpoch } = await trainClassifier("embedding", noisy, {
    epochs: 200,
    patience: 3,
    learningRate: 0.01,
    seed: 2,
  });
  assert.ok(history.length < 200, "no early stop");
  assert.equal(history.length, bestEpoch + 3);
  const best = history[bestEpoch - 1]!;
  const figures = (h: EpochStats) => ({ accuracy: h.valAccuracy!, loss: h.valLoss! });
  assert.ok(history.every((h) => !isBetter(figures(h), figures(best))));
  assert.ok(history.every((h) => h === best || isBetter(figures(best), figures(h))));
  // The returned weights are the best epoch's: re-evaluating gives its validation figures.
  const again = evaluateFaces(
    classifier.model,
    noisy,
    noisy.select({ split: "val" }),
    EMBEDDING_PREPROCESSING,
    classifier.metadata.classes,
  )!;
  assert.equal(again.accuracy, best.valAccuracy);
  assert.ok(Math.abs(again.loss - best.valLoss!) < 1e-5, `${again.loss} vs ${best.valLoss}`);
  classifier.dispose();
});

Deno.test("trainClassifier() with a test fold trains on the other folds and records it", async () => {
  const folded = await collectFaces(
    from(
      await splitFaces(await syntheticFaces(dir, { perClass: 40, crops: false, seed: 12 }), {
        folds: 4,
      }),
    ),
    { crops: false },
  );
  const { classifier } = await trainClassifier("embedding", folded, { epochs: 2, testFold: 3 });
  const { data } = classifier.metadata;
  assert.deepEqual([data.folds, data.testFold], [4, 3]);
  const testCount = Object.values(data.counts.test).reduce((a, b) => a + b, 0);
  assert.equal(testCount, folded.faces.filter((f) => f.fold === 3).length);
  classifier.dispose();
  await assert.rejects(() => trainClassifier("embedding", folded, { testFold: 4 }), RangeError);
  await assert.rejects(
    () => trainClassifier("embedding", descriptors, { testFold: 0 }),
    RangeError,
  );
});

Deno.test("trainClassifier() rejects bad options early", async () => {
  await assert.rejects(() => trainClassifier("embedding", descriptors, { epochs: 0 }), RangeError);
  await assert.rejects(
    () => trainClassifier("embedding", descriptors, { batchSize: 2.5 }),
    RangeError,
  );
  await assert.rejects(() => trainClassifier("mlp" as "cnn", descriptors), TypeError);
});

/** Trains the seed CNN briefly on 24 synthetic faces and checks what every CNN run must hold. */
async function trainSmallCnn(dataSeed: number, workers?: number, engine?: "wasm") {
  const crops = await collectFaces(
    from(await splitFaces(await syntheticFaces(dir, { perClass: 12, seed: dataSeed, noise: 0.1 }))),
  );
  const before = tf.memory().numTensors;
  const tensors: number[] = [];
  const { classifier, history } = await trainClassifier("cnn", crops, {
    epochs: 12,
    batchSize: 8,
    // Keras' 0.001 over 18 steps sometimes leaves the loss within dropout's noise.
    learningRate: 0.003,
    seed: 3,
    workers,
    engine,
    onEpoch: () => tensors.push(tf.memory().numTensors),
  });
  assert.equal(history.length, 12);
  assert.ok(history.every((h) => Number.isFinite(h.loss)));
  assert.ok(history.every((h) => h.accuracy >= 0 && h.accuracy <= 1));
  assert.equal(new Set(tensors.slice(1)).size, 1, `tensors per epoch ${tensors}`);
  assertLossFell(history);
  return { crops, classifier, before };
}

Deno.test("trainClassifier('cnn') trains the seed CNN on augmented crops without leaking", async () => {
  const { classifier, before } = await trainSmallCnn(13);
  assert.deepEqual(classifier.metadata.inputShape, [64, 64, 1]);
  assert.deepEqual(classifier.metadata.preprocessing, CNN_PREPROCESSING);
  classifier.dispose();
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("shardGradients() of a batch's shares sum to the update trainOnBatch makes", async () => {
  // No dropout here, so the two paths compute the same function and must agree.
  const build = () => {
    const model = tf.sequential();
    model.add(tf.layers.dense({ inputShape: [6], units: 5, activation: "relu" }));
    model.add(tf.layers.dense({ units: 3, activation: "softmax" }));
    model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
    return model;
  };
  const [a, b] = [build(), build()];
  b.setWeights(a.getWeights());
  const flat = (model: tf.LayersModel) => model.getWeights().flatMap((w) => [...w.dataSync()]);
  const initial = flat(a);
  const xs = tf.randomUniform([10, 6], -1, 1, "float32", 3);
  const ys = tf.tidy(() =>
    tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 2], "int32"), 3).toFloat()
  );
  const loss = await a.trainOnBatch(xs, ys) as number;
  const shares = ([[0, 4], [4, 6]] as const).map(([begin, size]) =>
    tf.tidy(() => shardGradients(b, xs.slice(begin, size), ys.slice(begin, size), 10))
  );
  assert.ok(Math.abs((shares[0]!.lossSum + shares[1]!.lossSum) / 10 - loss) < 1e-5);
  const names = b.trainableWeights.map((w) => (w.read() as tf.Variable).name);
  const summed = Object.fromEntries(
    names.map((name, i) => [name, tf.add(shares[0]!.gradients[i]!, shares[1]!.gradients[i]!)]),
  );
  b.optimizer.applyGradients(summed);
  const [afterA, afterB] = [flat(a), flat(b)];
  assert.ok(afterA.some((v, i) => Math.abs(v - initial[i]!) > 1e-4), "trainOnBatch did not move");
  const worst = Math.max(...afterA.map((v, i) => Math.abs(v - afterB[i]!)));
  assert.ok(worst < 1e-6, `weights differ by ${worst}`);
  tf.dispose([xs, ys, ...shares.flatMap((s) => s.gradients), ...Object.values(summed)]);
  for (const model of [a, b]) {
    model.optimizer.dispose();
    model.dispose();
  }
});

Deno.test("trainClassifier('cnn', { workers: 2 }) learns with a replica worker, leaks nothing", async () => {
  const { crops, classifier, before } = await trainSmallCnn(14, 2, "wasm");
  assert.match(classifier.metadata.engine, /wasm, 2 threads$/);
  classifier.dispose();
  assert.equal(tf.memory().numTensors, before);
  await assert.rejects(() => trainClassifier("cnn", crops, { workers: 0 }), RangeError);
});
