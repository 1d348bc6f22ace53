/**
 * The fast wasm training kernels against tfjs' cpu reference kernels: the same random inputs,
 * gradients from `tf.grads` on each backend, compared within a relative tolerance.
 */
import assert from "node:assert";
import { initEngine, tf } from "../models/engine.ts";

await initEngine();

type Shape = [number, number, number, number];

/** A small deterministic generator, so a failure reproduces. */
function randomValues(size: number, seed: number, { relu = false } = {}): Float32Array {
  let state = seed >>> 0 || 1;
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    const uniform = (state >>> 0) / 2 ** 32 * 2 - 1;
    values[i] = relu ? Math.max(0, uniform) : uniform;
  }
  return values;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Runs `compute` on one backend with fresh tensors made from `arrays`, returning plain data. */
async function onBackend(
  backend: "wasm" | "cpu",
  arrays: { values: Float32Array; shape: number[] }[],
  compute: (...tensors: tf.Tensor[]) => tf.Tensor[],
): Promise<Float32Array[]> {
  const previous = tf.getBackend();
  await tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const tensors = arrays.map(({ values, shape }) => tf.tensor(values, shape));
      return compute(...tensors).map((t) => t.dataSync() as Float32Array);
    });
  } finally {
    await tf.setBackend(previous);
  }
}

/** Fails when wasm and cpu disagree by more than `tolerance` relative to the largest value. */
async function assertSameGradients(
  label: string,
  arrays: { values: Float32Array; shape: number[] }[],
  compute: (...tensors: tf.Tensor[]) => tf.Tensor[],
  tolerance = 1e-4,
): Promise<void> {
  const fast = await onBackend("wasm", arrays, compute);
  const reference = await onBackend("cpu", arrays, compute);
  assert.strictEqual(fast.length, reference.length);
  reference.forEach((expected, k) => {
    const actual = fast[k]!;
    assert.strictEqual(actual.length, expected.length, `${label} output ${k}: length`);
    let scale = 0;
    let worst = 0;
    for (let i = 0; i < expected.length; i++) {
      scale = Math.max(scale, Math.abs(expected[i]!));
      worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
    }
    assert.ok(scale > 0, `${label} output ${k}: reference gradient is all zeros`);
    assert.ok(
      worst <= tolerance * scale,
      `${label} output ${k}: max |wasm − cpu| = ${worst} exceeds ${tolerance} × ${scale}`,
    );
  });
}

interface ConvCase {
  x: Shape;
  filter: Shape;
  strides: number | [number, number];
  pad: "valid" | "same" | [[number, number], [number, number], [number, number], [number, number]];
}

const convCases: ConvCase[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 1, pad: "valid" },
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 4], strides: 1, pad: "same" },
  { x: [3, 10, 11, 2], filter: [3, 3, 2, 5], strides: 2, pad: "valid" },
  { x: [3, 10, 11, 2], filter: [3, 3, 2, 5], strides: 2, pad: "same" },
  { x: [2, 9, 8, 4], filter: [4, 4, 4, 3], strides: 2, pad: "same" },
  { x: [2, 12, 12, 3], filter: [5, 5, 3, 6], strides: 3, pad: "same" },
  { x: [1, 16, 16, 1], filter: [3, 3, 1, 8], strides: 1, pad: "valid" },
  { x: [3, 12, 10, 1], filter: [3, 3, 1, 4], strides: 1, pad: "same" },
  { x: [8, 32, 32, 1], filter: [3, 3, 1, 32], strides: 1, pad: "valid" },
  { x: [2, 9, 8, 4], filter: [2, 4, 4, 3], strides: 1, pad: [[0, 0], [2, 0], [1, 3], [0, 0]] },
  { x: [2, 7, 9, 3], filter: [2, 3, 3, 4], strides: [1, 2], pad: "valid" },
  { x: [4, 6, 6, 8], filter: [1, 1, 8, 4], strides: 1, pad: "valid" },
  { x: [2, 8, 8, 2], filter: [3, 3, 2, 3], strides: 1, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
  { x: [2, 9, 9, 2], filter: [3, 3, 2, 3], strides: 2, pad: [[0, 0], [0, 1], [1, 1], [0, 0]] },
  { x: [4, 17, 17, 16], filter: [3, 3, 16, 32], strides: 1, pad: "valid" },
];

for (const { x, filter, strides, pad } of convCases) {
  const name = `conv2d gradients match cpu: x ${x} filter ${filter} strides ${strides} pad ${
    JSON.stringify(pad)
  }`;
  Deno.test(name, async () => {
    const outShape = tf.tidy(() =>
      tf.conv2d(tf.zeros(x) as tf.Tensor4D, tf.zeros(filter) as tf.Tensor4D, strides, pad).shape
    );
    await assertSameGradients(
      name,
      [
        { values: randomValues(size(x), 1), shape: x },
        { values: randomValues(size(filter), 2), shape: filter },
        { values: randomValues(size(outShape), 3), shape: outShape },
      ],
      (input, kernel, weights) =>
        tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, strides, pad), weights!))
        )([input!, kernel!]),
    );
  });
}

Deno.test("fused conv2d + bias + relu gradients (the layers path) match cpu", async () => {
  const x: Shape = [4, 12, 12, 3];
  const filter: Shape = [3, 3, 3, 8];
  const outShape = [4, 10, 10, 8];
  await assertSameGradients(
    "fused conv2d",
    [
      { values: randomValues(size(x), 4), shape: x },
      { values: randomValues(size(filter), 5), shape: filter },
      { values: randomValues(8, 6), shape: [8] },
      { values: randomValues(size(outShape), 7), shape: outShape },
    ],
    (input, kernel, bias, weights) =>
      tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(
          tf.fused.conv2d({
            x: a as tf.Tensor4D,
            filter: b as tf.Tensor4D,
            bias: c,
            strides: 1,
            pad: "valid",
            activation: "relu",
          }),
          weights!,
        ))
      )([input!, kernel!, bias!]),
  );
});

interface PoolCase {
  x: Shape;
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: "valid" | "same";
  relu: boolean;
}

const poolCases: PoolCase[] = [
  { x: [2, 8, 8, 3], filterSize: 2, strides: 2, pad: "valid", relu: false },
  { x: [2, 9, 7, 3], filterSize: 2, strides: 2, pad: "valid", relu: false },
  { x: [2, 9, 7, 3], filterSize: 2, strides: 2, pad: "same", relu: false },
  { x: [2, 8, 8, 2], filterSize: 3, strides: 1, pad: "same", relu: false },
  { x: [2, 9, 9, 2], filterSize: 3, strides: 2, pad: "same", relu: false },
  { x: [1, 10, 10, 4], filterSize: [2, 3], strides: [1, 2], pad: "valid", relu: false },
  // After a ReLU many windows are all zeros: ties go to the first position, as on cpu.
  { x: [4, 12, 12, 5], filterSize: 2, strides: 2, pad: "valid", relu: true },
  { x: [2, 11, 11, 4], filterSize: 3, strides: 2, pad: "valid", relu: true },
];

for (const { x, filterSize, strides, pad, relu } of poolCases) {
  const name =
    `maxPool gradient matches cpu: x ${x} window ${filterSize} strides ${strides} ${pad}${
      relu ? " with ties" : ""
    }`;
  Deno.test(name, async () => {
    const outShape = tf.tidy(() =>
      tf.maxPool(tf.zeros(x) as tf.Tensor4D, filterSize, strides, pad).shape
    );
    await assertSameGradients(
      name,
      [
        { values: randomValues(size(x), 8, { relu }), shape: x },
        { values: randomValues(size(outShape), 9), shape: outShape },
      ],
      (input, weights) => [
        tf.grad((a: tf.Tensor) =>
          tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, filterSize, strides, pad), weights!))
        )(input!),
      ],
      1e-6,
    );
  });
}

Deno.test("maxPool gradient ignores the pixel past the edge of a 'same' window", async () => {
  // The last window covers column 2 only; the pixel one step right (the next row's first)
  // equals its maximum and must not receive its gradient.
  await assertSameGradients(
    "same-padded 2×2 pool",
    [{ values: Float32Array.of(0, 0, 1, 5, 0, 5), shape: [1, 2, 3, 1] }],
    (input) => [
      tf.grad((a: tf.Tensor) =>
        tf.sum(
          tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, "same"), tf.tensor4d([1, 10], [1, 1, 2, 1])),
        )
      )(input!),
    ],
    1e-6,
  );
});

Deno.test("the fast kernels reject NCHW with a clear error", () => {
  const dy = tf.zeros([1, 4, 3, 3]) as tf.Tensor4D;
  const x = tf.zeros([1, 4, 5, 5]) as tf.Tensor4D;
  try {
    assert.throws(
      () => tf.conv2d(x, tf.zeros([3, 3, 4, 4]) as tf.Tensor4D, 1, "valid", "NCHW"),
      /NHWC|channelsLast/,
    );
    assert.throws(
      () =>
        tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
          strides: 1,
          pad: "valid",
          dataFormat: "NCHW",
          filterShape: [3, 3, 4, 4],
        }),
      /supports dataFormat 'NHWC' only/,
    );
  } finally {
    tf.dispose([dy, x]);
  }
});

/** Runs a forward computation on wasm and on cpu and compares the results. */
async function assertSameForward(
  label: string,
  arrays: { values: Float32Array; shape: number[] }[],
  compute: (...tensors: tf.Tensor[]) => tf.Tensor[],
  tolerance = 1e-5,
): Promise<void> {
  await assertSameGradients(label, arrays, compute, tolerance);
}

for (
  const [shape, axis, keepDims] of [
    [[16, 32, 32, 8], [0, 1, 2], false],
    [[16, 32, 32, 8], [2, 0, 1], true],
    [[64, 40, 30], [0], false],
    // Rows not a multiple of four: the tail after the four-row passes.
    [[3, 37, 23, 32], [0, 1, 2], false],
    [[16, 32, 32, 8], [1, 2], false],
    [[4, 8, 8, 4], [0, 1, 2], false],
  ] as [number[], number[], boolean][]
) {
  Deno.test(`sum over axes ${axis} of ${shape} (keepDims ${keepDims}) matches cpu`, async () => {
    await assertSameForward(
      "sum",
      [{ values: randomValues(size(shape), 10), shape }],
      (x) => [tf.sum(x!, axis, keepDims)],
    );
  });
}

Deno.test("identity shares data and survives its source's disposal", () => {
  const backend = tf.engine().backend;
  const source = tf.tensor([1, 2, 3, 4], [2, 2]);
  const dataIds = backend.numDataIds();
  const copy = tf.clone(source);
  assert.strictEqual(backend.numDataIds(), dataIds, "a clone adds no data");
  source.dispose();
  assert.deepStrictEqual([...copy.dataSync()], [1, 2, 3, 4]);
  copy.dispose();
  assert.strictEqual(backend.numDataIds(), dataIds - 1, "the last reference frees the data");
});
