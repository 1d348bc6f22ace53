import assert from "node:assert/strict";
import { from } from "rxjs";
import { initEngine, tf } from "../models/engine.ts";
import { buildCnn } from "../models/cnn.ts";
import { collectFaces } from "../pipeline/batches.ts";
import { evaluateFaces, trainClassifier } from "../models/training/train.ts";
import { nativeEngine } from "../models/native/onnx_runtime.ts";
import {
  dropoutMask,
  kernelToOnnx,
  kernelToTfjs,
  type NativeCnnOptions,
  NativeCnnTrainer,
} from "../models/native/cnn_training.ts";
import { seededRandom } from "../models/augment.ts";
import { splitFaces, syntheticFaces } from "./testdata/synthetic/faces.ts";

await initEngine();
const engine = await nativeEngine();
const ignore = !engine.ok;
if (!engine.ok) console.warn(`native training tests skipped: ${engine.reason}`);

const dir = await Deno.makeTempDir({ prefix: "facefield_native_train_" });
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const CLASSES = 4;
const FACES = 6;

/**
 * A batch with random pixels, and two faces whose right half is one flat value: there the
 * conv outputs tie inside pooling windows, and only a max-pool gradient that picks the first
 * of equal maxima, as tfjs' does, agrees.
 */
function batch(): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  const random = seededRandom(21);
  const pixels = new Float32Array(FACES * 64 * 64).map(() => random());
  for (const face of [1, 4]) {
    for (let y = 0; y < 64; y++) {
      pixels.fill(0.8, (face * 64 + y) * 64 + 32, (face * 64 + y) * 64 + 64);
    }
  }
  const labels = Array.from({ length: FACES }, (_, i) => i % CLASSES);
  return {
    xs: tf.tensor4d(pixels, [FACES, 64, 64, 1]),
    ys: tf.tidy(() => tf.oneHot(tf.tensor1d(labels, "int32"), CLASSES).toFloat() as tf.Tensor2D),
  };
}

/** tfjs' own loss gradients of the seed CNN, with `mask` in place of its Dropout layer. */
function tfjsGradients(
  model: tf.LayersModel,
  xs: tf.Tensor,
  ys: tf.Tensor,
  mask: Float32Array,
): {
  loss: number;
  grads: Record<string, tf.Tensor>;
  names: string[];
} {
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const maskTensor = tf.tensor2d(mask, [mask.length / 64, 64]);
  const { value, grads } = tf.variableGrads(() => {
    let h: tf.Tensor = xs;
    for (const layer of model.layers) {
      h = layer.getClassName() === "Dropout" ? tf.mul(h, maskTensor) : layer.apply(h) as tf.Tensor;
    }
    return tf.mean(tf.metrics.categoricalCrossentropy(ys, h)) as tf.Scalar;
  }, variables);
  const loss = value.dataSync()[0]!;
  tf.dispose([value, maskTensor]);
  return { loss, grads, names: variables.map((v) => v.name) };
}

/** The largest difference between two arrays, over the largest magnitude in `expected`. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  let worst = 0;
  let scale = 1e-12;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return worst / scale;
}

Deno.test({
  name: "native CNN step: loss, gradients and two Adam steps agree with tfjs' on the same batch",
  ignore,
  async fn() {
    if (!engine.ok) return;
    const model = buildCnn(CLASSES, { seed: 5 });
    const optimizer = tf.train.adam(0.001);
    const { xs, ys } = batch();
    const masks = [
      dropoutMask(FACES * 64, 0.5, seededRandom(1)),
      dropoutMask(FACES * 64, 0.5, seededRandom(2)),
    ];
    const trainer = await NativeCnnTrainer.create(
      engine.ort,
      CLASSES,
      model.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape })),
    );
    const images = xs.dataSync() as Float32Array;
    const labels = ys.dataSync() as Float32Array;
    for (const [step, mask] of masks.entries()) {
      const expected = tfjsGradients(model, xs, ys, mask);
      const before = trainer.moments().m;
      const native = await trainer.step(images, labels, mask);
      assert.ok(
        Math.abs(native.loss - expected.loss) < 1e-5,
        `loss ${native.loss} vs ${expected.loss}`,
      );
      // m' = β1·m + (1 − β1)·g, so the moments give back the gradient the graph computed.
      const after = trainer.moments().m;
      expected.names.forEach((name, i) => {
        const gradient = after[i]!.map((m, j) => (m - 0.9 * before[i]![j]!) / 0.1);
        const error = relativeError(gradient, expected.grads[name]!.dataSync() as Float32Array);
        assert.ok(error < 1e-3, `step ${step + 1}, ${name}: gradient off by ${error} of its scale`);
      });
      optimizer.applyGradients(
        Object.entries(expected.grads).map(([name, tensor]) => ({ name, tensor })),
      );
      tf.dispose(Object.values(expected.grads));
      const weights = trainer.tfjsWeights();
      model.getWeights().forEach((w, i) => {
        const tfjs = w.dataSync() as Float32Array;
        const worst = Math.max(...tfjs.map((v, j) => Math.abs(v - weights[i]![j]!)));
        // Adam moves each weight by about the learning rate; they must agree far below it.
        assert.ok(worst < 2e-5, `step ${step + 1}, weight ${i}: off by ${worst}`);
      });
    }
    assert.equal(trainer.steps, 2);
    await trainer.release();
    tf.dispose([xs, ys]);
    optimizer.dispose();
    model.dispose();
  },
});

/** A trainer from the model's current weights. */
function nativeTrainer(model: tf.LayersModel, options: NativeCnnOptions = {}) {
  if (!engine.ok) throw new Error(engine.reason);
  return NativeCnnTrainer.create(
    engine.ort,
    CLASSES,
    model.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape })),
    options,
  );
}

/** The largest difference between two trainers' weights or moments, tensor by tensor. */
function worstDifference(a: Float32Array[], b: Float32Array[]): number {
  return Math.max(
    ...a.map((values, i) => Math.max(...values.map((v, j) => Math.abs(v - b[i]![j]!)))),
  );
}

Deno.test({
  name:
    "native data-parallel step: three Adam steps, split unevenly, equal the one-graph step's and tfjs'",
  ignore,
  async fn() {
    const model = buildCnn(CLASSES, { seed: 8 });
    const optimizer = tf.train.adam(0.001);
    const one = await nativeTrainer(model);
    const parallel = await nativeTrainer(model, { threads: 2, parallelism: "data" });
    assert.deepEqual(parallel.parallelism, { kind: "data", threads: 2 });
    const full = batch();
    // 6 faces split 3 + 3, then 5 (3 + 2 or 2 + 3), then 1 (all on one of the two threads).
    for (const [step, faces] of [6, 5, 1].entries()) {
      const [xs, ys] = tf.tidy(() => [full.xs.slice(0, faces), full.ys.slice(0, faces)]);
      const mask = dropoutMask(faces * 64, 0.5, seededRandom(10 + step));
      const images = xs!.dataSync() as Float32Array;
      const labels = ys!.dataSync() as Float32Array;
      let called = 0;
      const expected = await one.step(images, labels, mask);
      const actual = await parallel.step(images, labels, mask, () => called++);
      assert.equal(called, 1, "meanwhile runs once a step");
      assert.ok(Math.abs(actual.loss - expected.loss) < 1e-5, `${actual.loss} vs ${expected.loss}`);
      assert.ok(
        actual.probabilities.every((p, i) => Math.abs(p - expected.probabilities[i]!) < 1e-5),
        `step ${step + 1}: probabilities differ`,
      );
      const reference = tfjsGradients(model, xs!, ys!, mask);
      optimizer.applyGradients(
        Object.entries(reference.grads).map(([name, tensor]) => ({ name, tensor })),
      );
      tf.dispose([...Object.values(reference.grads), xs!, ys!]);
      const tfjs = model.getWeights().map((w) => w.dataSync() as Float32Array);
      const weights = parallel.tfjsWeights();
      // Adam moves each weight by about the learning rate; they must agree far below it.
      assert.ok(worstDifference(weights, one.tfjsWeights()) < 2e-6, `step ${step + 1}: weights`);
      assert.ok(worstDifference(weights, tfjs) < 2e-5, `step ${step + 1}: weights vs tfjs`);
      const [m, n] = [parallel.moments(), one.moments()];
      assert.ok(worstDifference(m.m, n.m) < 1e-6, `step ${step + 1}: first moments`);
      assert.ok(worstDifference(m.v, n.v) < 1e-9, `step ${step + 1}: second moments`);
    }
    assert.equal(parallel.steps, 3);
    await Promise.all([one.release(), parallel.release()]);
    tf.dispose([full.xs, full.ys]);
    optimizer.dispose();
    model.dispose();
  },
});

Deno.test({
  name: "native data-parallel step: falls back to intra-op threads where no worker starts",
  ignore,
  async fn() {
    const model = buildCnn(CLASSES, { seed: 2 });
    const { xs, ys } = batch();
    const images = xs.dataSync() as Float32Array;
    const labels = ys.dataSync() as Float32Array;
    const workers = globalThis.Worker;
    let trainers: NativeCnnTrainer[];
    // No worker threads at all, then workers in which ONNX Runtime declines to load.
    globalThis.Worker = class {
      constructor() {
        throw new Error("no workers here");
      }
    } as unknown as typeof Worker;
    try {
      trainers = [await nativeTrainer(model, { threads: 2, parallelism: "data" })];
    } finally {
      globalThis.Worker = workers;
    }
    Deno.env.set("FACEFIELD_ENGINE", "wasm");
    try {
      trainers.push(await nativeTrainer(model, { threads: 2, parallelism: "data" }));
    } finally {
      Deno.env.delete("FACEFIELD_ENGINE");
    }
    const reasons = [/no workers here/, /FACEFIELD_ENGINE=wasm/];
    for (const [i, trainer] of trainers.entries()) {
      const { kind, threads, fallback } = trainer.parallelism;
      assert.equal(kind, "intra-op");
      assert.equal(threads, 2);
      assert.match(fallback ?? "", /^no native replica worker started: /);
      assert.match(fallback ?? "", reasons[i]!);
      const { loss } = await trainer.step(images, labels);
      assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
      await trainer.release();
    }
    tf.dispose([xs, ys]);
    model.dispose();
  },
});

Deno.test("native CNN step: kernels convert between tfjs' and ONNX's layouts and back", () => {
  const shape = [3, 3, 2, 4];
  const values = Float32Array.from({ length: 72 }, (_, i) => i);
  const onnx = kernelToOnnx(values, shape);
  // tfjs [ky, kx, in, out] = [1, 2, 1, 3] is ONNX [out, in, ky, kx] = [3, 1, 1, 2].
  assert.equal(onnx[((3 * 2 + 1) * 3 + 1) * 3 + 2], values[((1 * 3 + 2) * 2 + 1) * 4 + 3]);
  assert.deepEqual(kernelToTfjs(onnx, [4, 2, 3, 3]), values);
  const mask = dropoutMask(10_000, 0.5, seededRandom(3));
  assert.ok(mask.every((v) => v === 0 || v === 2));
  const kept = mask.filter((v) => v > 0).length / mask.length;
  assert.ok(kept > 0.45 && kept < 0.55, `kept ${kept}`);
});

Deno.test({
  name: "native CNN step: rejects a batch whose pixels and labels do not match",
  ignore,
  async fn() {
    if (!engine.ok) return;
    const model = buildCnn(CLASSES, { seed: 1 });
    const trainer = await NativeCnnTrainer.create(
      engine.ort,
      CLASSES,
      model.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape })),
    );
    await assert.rejects(
      () => trainer.step(new Float32Array(2 * 4096), new Float32Array(3 * CLASSES)),
      RangeError,
    );
    await assert.rejects(
      () =>
        trainer.step(
          new Float32Array(2 * 4096),
          new Float32Array(2 * CLASSES),
          new Float32Array(5),
        ),
      /a mask of 5, not 128/,
    );
    await assert.rejects(
      () => NativeCnnTrainer.create(engine.ort, CLASSES, []),
      /has 10 weights, got 0/,
    );
    await trainer.release();
    model.dispose();
  },
});

const crops = await collectFaces(
  from(await splitFaces(await syntheticFaces(dir, { perClass: 30, seed: 31, noise: 0.1 }))),
);

Deno.test({
  name: "trainClassifier('cnn') on the native engine learns separable crops into the tfjs model",
  ignore,
  async fn() {
    const before = tf.memory().numTensors;
    const tensors: number[] = [];
    const { classifier, history, bestEpoch } = await trainClassifier("cnn", crops, {
      epochs: 10,
      batchSize: 16,
      learningRate: 0.003,
      // Without augmentation the crops separate in a few epochs; dropout stays random.
      augment: false,
      seed: 3,
      onEpoch: () => tensors.push(tf.memory().numTensors),
    });
    assert.match(classifier.metadata.engine, /^onnxruntime-node .* \(native\)$/);
    // Two threads by default where there are two cores: this thread and one replica worker.
    if (navigator.hardwareConcurrency >= 2) {
      assert.match(
        classifier.metadata.engine,
        /, 2 threads \(data-parallel: this one and 1 replica worker\)/,
      );
    }
    assert.ok(history.every((h) => Number.isFinite(h.loss)));
    assert.equal(new Set(tensors.slice(1)).size, 1, `tensors per epoch ${tensors}`);
    assert.ok(history.at(-1)!.loss < history[0]!.loss, `loss ${history.map((h) => h.loss)}`);
    assert.equal(classifier.metadata.bestEpoch, bestEpoch);
    // Validation ran on the native forward graph; tfjs on the restored weights must agree.
    const val = evaluateFaces(
      classifier.model,
      crops,
      crops.select({ split: "val" }),
      classifier.metadata.preprocessing,
      classifier.metadata.classes,
    )!;
    const recorded = history[bestEpoch - 1]!;
    assert.ok(Math.abs(val.loss - recorded.valLoss!) < 1e-4, `${val.loss} vs ${recorded.valLoss}`);
    assert.equal(val.accuracy, recorded.valAccuracy);
    // The weights went back into the tfjs model: its predictions on faces never trained on.
    const test = crops.select({ split: "test" });
    const probabilities = classifier.predictSamples(
      test.map((face) => crops.sample(face, classifier.metadata.preprocessing)),
    );
    const correct = test.filter((face, i) => {
      const p = [...probabilities[i]!];
      return classifier.metadata.classes[p.indexOf(Math.max(...p))] === face.category;
    }).length;
    assert.ok(correct / test.length >= 0.9, `test accuracy ${correct}/${test.length}`);
    classifier.dispose();
    assert.equal(tf.memory().numTensors, before, "training left tensors behind");
  },
});

Deno.test("trainClassifier('cnn', { engine: 'wasm' }) trains on tfjs, as without ORT", async () => {
  const { classifier, history } = await trainClassifier("cnn", crops, {
    epochs: 1,
    batchSize: 8,
    workers: 1,
    engine: "wasm",
  });
  assert.equal(history.length, 1);
  assert.match(classifier.metadata.engine, /^tfjs \S+ wasm$/);
  classifier.dispose();
  await assert.rejects(
    () => trainClassifier("cnn", crops, { engine: "gpu" as "wasm" }),
    /'engine' must be "native" or "wasm"/,
  );
});

Deno.test("FACEFIELD_ENGINE=wasm: the CNN falls back to tfjs and the metadata says why", async () => {
  const script = `
    import { initEngine } from "${new URL("../models/engine.ts", import.meta.url)}";
    import { FaceStore } from "${new URL("../models/dataset.ts", import.meta.url)}";
    import { trainClassifier } from "${new URL("../models/training/train.ts", import.meta.url)}";
    await initEngine();
    const store = new FaceStore({ crops: { size: 64, channels: 1 } });
    for (let i = 0; i < 8; i++) {
      store.addStored({
        id: "f" + i, category: "c" + (i % 2), split: i < 6 ? "train" : "val", fold: null,
        identity: "p" + i, crop: new Uint8Array(64 * 64).fill(i * 30), descriptor: new Float32Array(0),
        source: "",
      });
    }
    const { classifier } = await trainClassifier("cnn", store, { epochs: 1, batchSize: 4, workers: 1 });
    console.log(JSON.stringify(classifier.metadata.engine));
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    env: { FACEFIELD_ENGINE: "wasm" },
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.ok(output.success, stderr);
  const line = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1)!;
  assert.match(
    JSON.parse(line),
    /^tfjs \S+ wasm \(native engine not used: FACEFIELD_ENGINE=wasm asks for the wasm engine\)$/,
  );
});
