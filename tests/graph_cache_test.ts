/**
 * The graph cache (models/native/graph_cache.ts): a graph is built once, then read from the
 * cache, with the same outputs; a damaged file is rebuilt; a new
 * fingerprint is a new file; `FACEFIELD_CACHE_DIR=none` writes nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { nativeEngine, type OrtModule } from "../models/native/onnx_runtime.ts";
import { cachedSession, graphCacheDir, graphCachePath } from "../models/native/graph_cache.ts";
import { OnnxGraph } from "../models/native/onnx_graph.ts";

const engine = await nativeEngine();

/** A small graph: y = relu(x · W + b), W and b from a seed. */
function smallGraph(seed: number): Uint8Array {
  const g = new OnnxGraph("small");
  const x = g.input("x", [1, 8]);
  const w = g.constant("w", Float32Array.from({ length: 32 }, (_, i) => Math.sin(seed + i)), [
    8,
    4,
  ]);
  const b = g.constant("b", Float32Array.from({ length: 4 }, (_, i) => Math.cos(seed * i)), [4]);
  g.node("Relu", [g.node("Add", [g.node("MatMul", [x, w]), b])], {}, "y");
  g.output("y", [1, 4]);
  return g.toBytes();
}

async function outputOf(ort: OrtModule, session: Awaited<ReturnType<typeof cachedSession>>) {
  const x = new ort.Tensor("float32", Float32Array.from({ length: 8 }, (_, i) => i / 8), [1, 8]);
  const result = await session.session.run({ x });
  return Array.from(result.y!.data as Float32Array);
}

Deno.test({
  name: "a graph is built once, then read from the cache with the same outputs",
  ignore: !engine.ok,
  async fn() {
    if (!engine.ok) return;
    const dir = await Deno.makeTempDir({ prefix: "facefield-graph-cache-" });
    const previous = Deno.env.get("FACEFIELD_CACHE_DIR");
    Deno.env.set("FACEFIELD_CACHE_DIR", dir);
    try {
      assert.equal(graphCacheDir(), join(dir, "onnx"));
      let builds = 0;
      const build = () => (builds++, smallGraph(1));
      const first = await cachedSession(engine.ort, "test-small", build, { variant: "a" });
      assert.equal(first.source, "built");
      const second = await cachedSession(engine.ort, "test-small", build, { variant: "a" });
      assert.equal(second.source, "cache");
      assert.equal(builds, 1);
      assert.deepEqual(await outputOf(engine.ort, second), await outputOf(engine.ort, first));
      const files = [...Deno.readDirSync(join(dir, "onnx"))].map((e) => e.name).sort();
      assert.equal(files.length, 1, files.join(", "));
      assert.ok(files.every((name) => name.startsWith("test-small-") && name.endsWith(".onnx")));

      // Another variant is another file: the first one's bytes are never read for it.
      const other = await cachedSession(engine.ort, "test-small", () => smallGraph(2), {
        variant: "b",
      });
      assert.equal(other.source, "built");
      assert.notDeepEqual(await outputOf(engine.ort, other), await outputOf(engine.ort, first));

      // Damaged files (a disk that filled up) are rebuilt from the weights and replaced.
      for (const name of files) await Deno.writeFile(join(dir, "onnx", name), new Uint8Array(10));
      const repaired = await cachedSession(engine.ort, "test-small", build, { variant: "a" });
      assert.equal(repaired.source, "built");
      assert.equal(builds, 2);
      assert.deepEqual(await outputOf(engine.ort, repaired), await outputOf(engine.ort, first));
      const again = await cachedSession(engine.ort, "test-small", build, { variant: "a" });
      assert.equal(again.source, "cache");
      const left = [...Deno.readDirSync(join(dir, "onnx"))].map((e) => e.name);
      assert.ok(left.every((name) => !name.endsWith(".tmp")), left.join(", "));

      Deno.env.set("FACEFIELD_CACHE_DIR", "none");
      assert.equal(graphCacheDir(), undefined);
      assert.equal(await graphCachePath("test-small"), undefined);
      const off = await cachedSession(engine.ort, "test-small", build);
      assert.equal(off.source, "built");
      assert.equal(builds, 3);
    } finally {
      if (previous === undefined) Deno.env.delete("FACEFIELD_CACHE_DIR");
      else Deno.env.set("FACEFIELD_CACHE_DIR", previous);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
