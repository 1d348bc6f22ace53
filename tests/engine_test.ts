/**
 * The engine end to end: a small CNN trains on wasm with the fast kernels, its gradients match
 * the cpu backend's, and repeated training steps leak neither tensors nor wasm memory.
 */
import assert from "node:assert";
import { engineInfo, initEngine, tf } from "../models/engine.ts";

await initEngine();

/** A scaled-down seed CNN: the same layer kinds, a 20×20×1 input, 3 classes. */
function smallCnn(seed: number): tf.Sequential {
  let next = seed;
  const init = () => tf.initializers.glorotUniform({ seed: next++ });
  const model = tf.sequential();
  model.add(tf.layers.conv2d({
    inputShape: [20, 20, 1],
    filters: 6,
    kernelSize: 3,
    activation: "relu",
    kernelInitializer: init(),
  }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.conv2d({
    filters: 8,
    kernelSize: 3,
    strides: 2,
    padding: "same",
    activation: "relu",
    kernelInitializer: init(),
  }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2, padding: "same" }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 3, activation: "softmax", kernelInitializer: init() }));
  return model;
}

function batch(size: number, seed: number): { xs: tf.Tensor4D; ys: tf.Tensor2D } {
  return tf.tidy(() => ({
    xs: tf.randomUniform([size, 20, 20, 1], 0, 1, "float32", seed) as tf.Tensor4D,
    ys: tf.oneHot(tf.tensor1d([...Array(size).keys()].map((i) => i % 3), "int32"), 3)
      .toFloat() as tf.Tensor2D,
  }));
}

Deno.test("engineInfo() names the backend and the fast kernels", () => {
  const info = engineInfo();
  assert.strictEqual(info.backend, "wasm");
  assert.strictEqual(info.threads, 1);
  for (const name of ["Conv2DBackpropFilter", "Conv2DBackpropInput", "MaxPoolGrad"]) {
    assert.ok(info.fastKernels.includes(name), `${name} is registered`);
  }
});

Deno.test("a CNN's weight gradients on wasm match the cpu backend's", async () => {
  const gradients = async (backend: "wasm" | "cpu") => {
    await tf.setBackend(backend);
    const model = smallCnn(7);
    const { xs, ys } = batch(6, 3);
    try {
      const { grads } = tf.variableGrads(() =>
        tf.losses.softmaxCrossEntropy(ys, model.apply(xs) as tf.Tensor).asScalar()
      );
      const values = model.trainableWeights.map((w) => grads[w.originalName]!.dataSync());
      tf.dispose(grads);
      return values;
    } finally {
      model.dispose();
      tf.dispose([xs, ys]);
      await tf.setBackend("wasm");
    }
  };
  const fast = await gradients("wasm");
  const reference = await gradients("cpu");
  assert.strictEqual(fast.length, 6);
  reference.forEach((expected, k) => {
    const scale = Math.max(...expected.map(Math.abs));
    const worst = Math.max(...expected.map((v, i) => Math.abs(v - fast[k]![i]!)));
    assert.ok(scale > 0, `weight ${k}: gradient is all zeros`);
    assert.ok(worst <= 1e-4 * scale, `weight ${k}: max |wasm − cpu| ${worst} vs scale ${scale}`);
  });
});

Deno.test("training steps learn and leak neither tensors nor wasm memory", async () => {
  const model = smallCnn(11);
  model.compile({ optimizer: tf.train.adam(0.01), loss: "categoricalCrossentropy" });
  const { xs, ys } = batch(12, 5);
  const backend = tf.engine().backend;
  try {
    const first = await model.trainOnBatch(xs, ys) as number;
    await model.trainOnBatch(xs, ys);
    const tensors = tf.memory().numTensors;
    const dataIds = backend.numDataIds();
    let loss = first;
    for (let step = 0; step < 30; step++) {
      loss = await model.trainOnBatch(xs, ys) as number;
      assert.strictEqual(tf.memory().numTensors, tensors, `tensors after step ${step}`);
      assert.strictEqual(backend.numDataIds(), dataIds, `wasm data after step ${step}`);
    }
    assert.ok(loss < 0.5 * first, `loss fell from ${first} to ${loss} over 32 steps on one batch`);
  } finally {
    model.optimizer.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  }
});
