/** The wasm Concat for short slices against tfjs' cpu kernel, on the shapes face-api joins. */
import assert from "node:assert/strict";
import { initEngine, tf } from "../models/engine.ts";

await initEngine();

async function concatOn(
  backend: "wasm" | "cpu",
  shapes: number[][],
  axis: number,
  dtype: "float32" | "int32",
): Promise<{ values: number[]; shape: number[] }> {
  const previous = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      let next = 1;
      const tensors = shapes.map((shape) => {
        const size = shape.reduce((a, b) => a * b, 1);
        return tf.tensor(Array.from({ length: size }, () => next++ * 0.5), shape, dtype);
      });
      const joined = tf.concat(tensors, axis);
      return { values: Array.from(joined.dataSync()), shape: joined.shape };
    });
  } finally {
    await tf.setBackend(previous);
  }
}

Deno.test("wasm Concat joins short slices as the cpu kernel does", async () => {
  const cases: [number[][], number, "float32" | "int32"][] = [
    // face-api's normalisation: three channels back into one image.
    [[[1, 5, 4, 1], [1, 5, 4, 1], [1, 5, 4, 1]], 3, "float32"],
    // face-api's padding to a square: columns added on the right.
    [[[1, 6, 5, 3], [1, 6, 2, 3]], 2, "float32"],
    // Unequal slices, negative axis, integers, an empty input in between.
    [[[3, 2], [3, 0], [3, 5]], -1, "int32"],
    // Long slices go to the stock kernel.
    [[[2, 70], [2, 3]], 1, "float32"],
  ];
  for (const [shapes, axis, dtype] of cases) {
    const fast = await concatOn("wasm", shapes, axis, dtype);
    const reference = await concatOn("cpu", shapes, axis, dtype);
    assert.deepEqual(fast, reference, JSON.stringify(shapes));
  }
});

Deno.test("wasm Concat leaves no tensors behind", () => {
  const before = tf.memory().numTensors;
  tf.tidy(() => tf.concat([tf.ones([2, 3, 1]), tf.zeros([2, 3, 1])], 2).dataSync());
  assert.equal(tf.memory().numTensors, before);
});
