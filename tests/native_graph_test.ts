import assert from "node:assert/strict";
import { OnnxGraph } from "../models/native/onnx_graph.ts";
import { createSession, nativeEngine } from "../models/native/onnx_runtime.ts";

const engine = await nativeEngine();
const ignore = !engine.ok;
if (!engine.ok) console.warn(`native engine tests skipped: ${engine.reason}`);

Deno.test({
  name: "native graph: a built conv + bias + leaky relu graph computes what the arithmetic says",
  ignore,
  async fn() {
    if (!engine.ok) return;
    const graph = new OnnxGraph("conv");
    const x = graph.input("x", ["n", 1, 2, 2]);
    // One 2×2 filter of ones: each output is the sum of the four pixels, plus a bias of -5.
    const w = graph.floats("w", [1, 1, 1, 1], [1, 1, 2, 2]);
    const b = graph.floats("b", [-5]);
    const conv = graph.node("Conv", [x, w, b], { kernel_shape: [2, 2] });
    graph.output(graph.node("LeakyRelu", [conv], { alpha: { float: 0.5 } }, "y"), ["n", 1, 1, 1]);
    const session = await createSession(engine.ort, graph.toBytes());
    const input = new engine.ort.Tensor("float32", Float32Array.from([1, 2, 3, 4, 0, 1, 0, 1]), [
      2,
      1,
      2,
      2,
    ]);
    const { y } = await session.run({ x: input });
    const values = y!.data as Float32Array;
    assert.deepEqual(y!.dims, [2, 1, 1, 1]);
    assert.ok(Math.abs(values[0]! - (10 - 5)) < 1e-6);
    assert.ok(Math.abs(values[1]! - (2 - 5) * 0.5) < 1e-6);
    await session.release();
  },
});

Deno.test("native graph: constants must match their dims, floats must say so, inputs are unique", () => {
  const graph = new OnnxGraph("bad");
  assert.throws(() => graph.floats("w", [1, 2, 3], [2, 2]), /3 values, dims say 4/);
  graph.input("x", [1]);
  assert.throws(() => graph.input("x", [1]), /defined twice/);
  assert.throws(() => graph.node("LeakyRelu", ["x"], { alpha: 0.5 }), /\{ float: 0.5 \}/);
});
