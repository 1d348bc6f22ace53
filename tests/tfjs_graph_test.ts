/**
 * The tfjs graph → ONNX converter: the human-models face networks compute on ONNX Runtime what
 * they compute on tfjs wasm, on a real face; an op it does not know is refused, not guessed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initEngine, tf } from "../models/engine.ts";
import { FACE_NETWORKS } from "../models/faces/face_networks.ts";
import { humanModelsDir, loadHumanModel } from "../models/faces/package_files.ts";
import { createSession, nativeEngine } from "../models/native/onnx_runtime.ts";
import { tfjsGraphToOnnx, UnsupportedGraphError } from "../models/native/tfjs_graph.ts";

await initEngine();
const engine = await nativeEngine();
const ignore = !engine.ok;
if (!engine.ok) console.warn(`tfjs graph conversion tests skipped: ${engine.reason}`);

const PORTRAIT = new URL("./testdata/faces/portrait.jpg", import.meta.url).pathname;

/** The portrait's face region at `side` px, scaled as the network takes it. */
async function faceInput(side: number, scale: (x: tf.Tensor4D) => tf.Tensor4D) {
  const { data } = await sharp(PORTRAIT).extract({ left: 60, top: 70, width: 180, height: 180 })
    .resize(side, side).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return tf.tidy(() => scale(tf.tensor4d(Float32Array.from(data), [1, side, side, 3])));
}

const CASES = [
  { file: "gear", scale: (x: tf.Tensor4D) => x.div(255) as tf.Tensor4D },
  { file: "mobilefacenet", scale: (x: tf.Tensor4D) => x.sub(127.5).div(128) as tf.Tensor4D },
  {
    file: "faceres",
    scale: (x: tf.Tensor4D) =>
      tf.reverse(x, -1).sub(tf.tensor1d([103.939, 116.779, 123.68])) as tf.Tensor4D,
  },
];

async function topology(file: string) {
  const json = JSON.parse(await Deno.readTextFile(join(humanModelsDir(), `${file}.json`)));
  return json.modelTopology.node as { name: string; op: string }[];
}

for (const { file, scale } of CASES) {
  Deno.test({
    name: `tfjs graph → ONNX: ${file}'s outputs match tfjs wasm on a real face`,
    ignore,
    async fn() {
      if (!engine.ok) return;
      const network = Object.values(FACE_NETWORKS).find((n) => n.file === file)!;
      const outputs = [
        ...new Set(
          Object.values(FACE_NETWORKS).filter((n) => n.file === file).map((n) => n.output),
        ),
      ];
      // Also the heads no network reads today: faceres' and GEAR's gender and age.
      if (file === "faceres") outputs.push("gender_pred/Sigmoid", "age_pred/Softmax");
      if (file === "gear") outputs.push("Identity", "Identity_1");
      const nodes = await topology(file);
      const input = nodes.find((node) => node.op === "Placeholder")!.name;
      const model = await loadHumanModel(file);
      const { side } = network;
      const bytes = tfjsGraphToOnnx(
        nodes,
        // deno-lint-ignore no-explicit-any
        model.weights as any,
        { input, inputShape: [side, side, 3], outputs },
      );
      const session = await createSession(engine.ort, bytes);
      const x = await faceInput(side, scale);
      const result = model.execute(x, outputs);
      const expected = Array.isArray(result) ? result : [result];
      const feeds = { [input]: new engine.ort.Tensor("float32", x.dataSync(), [1, side, side, 3]) };
      const got = await session.run(feeds);
      for (const [i, output] of outputs.entries()) {
        const reference = expected[i]!.dataSync();
        const values = got[output]!.data as Float32Array;
        assert.equal(values.length, reference.length, output);
        const largest = Math.max(...Array.from(reference, Math.abs));
        const worst = Math.max(...Array.from(reference, (v, k) => Math.abs(v - values[k]!)));
        assert.ok(worst <= 1e-3 * Math.max(1, largest), `${file} ${output}: Δ ${worst}`);
      }
      tf.dispose([x, ...expected]);
      await session.release();
      model.dispose();
    },
  });
}

Deno.test("tfjs graph → ONNX: an op it does not know is refused with its name", () => {
  const nodes = [
    { name: "x", op: "Placeholder" },
    { name: "y", op: "Cumprod", input: ["x"] },
  ];
  assert.throws(
    () => tfjsGraphToOnnx(nodes, {}, { input: "x", inputShape: [4, 4, 3], outputs: ["y"] }),
    (error: Error) => error instanceof UnsupportedGraphError && /Cumprod/.test(error.message),
  );
});
