/**
 * `predict` as a one-shot process (its face nets' sessions on the session thread, opened from
 * the graph cache as ORT optimized them) says what the pipeline's own code says in process (each
 * session built here from the cached graph, optimized as it loads): the same lines, to the
 * digit, for each fixture image, with an ensemble that reads what the demo's does (face-api's
 * descriptor, mobilefacenet, the landmarks).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { initEngine, tf } from "../models/engine.ts";
import {
  LayersClassifier,
  MODEL_FORMAT,
  type ModelKind,
  type ModelMetadata,
  saveClassifier,
} from "../models/classifier.ts";
import { EMBEDDING_PREPROCESSING, probePreprocessing } from "../models/embedding.ts";
import { EnsembleClassifier, loadModel, saveEnsemble } from "../models/ensemble.ts";
import { type PredictionLine, Predictor } from "../pipeline/predictor.ts";

const root = new URL("..", import.meta.url).pathname;
const fixtures = new URL("./testdata/faces/", import.meta.url).pathname;
const IMAGES = ["portrait.jpg", "group.jpg", "exif_rotated.jpg", "cmyk.jpg"];
const CLASSES = ["one", "other", "third"];

/** A head with fixed random weights (no training: only its arithmetic is under test). */
async function head(dir: string, kind: ModelKind, seed: number): Promise<LayersClassifier> {
  const preprocessing = kind === "descriptor"
    ? EMBEDDING_PREPROCESSING
    : probePreprocessing(kind === "mobilefacenet" ? "mobilefacenet" : "landmarks");
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [preprocessing.input === "descriptor" ? preprocessing.length : 0],
        units: CLASSES.length,
        activation: "softmax",
        kernelInitializer: tf.initializers.randomNormal({ stddev: 2, seed }),
        biasInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed: seed + 1 }),
      }),
    ],
  });
  const metadata: ModelMetadata = {
    format: MODEL_FORMAT,
    kind,
    classes: CLASSES,
    inputShape: [preprocessing.input === "descriptor" ? preprocessing.length : 0],
    preprocessing,
    data: {
      counts: { train: {}, val: {}, test: {} },
      identities: 0,
      folds: null,
      testFold: null,
      sources: ["tests/predict_same_test.ts"],
    },
    history: [],
    bestEpoch: 0,
    createdAt: new Date().toISOString(),
    engine: `tfjs ${tf.version_core} ${tf.getBackend()}`,
  };
  const classifier = new LayersClassifier(model, metadata);
  await saveClassifier(classifier, join(dir, kind));
  return classifier;
}

async function cli(modelDir: string, cacheDir: string, image: string): Promise<PredictionLine[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "predict", "--model", modelDir],
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", FACEFIELD_CACHE_DIR: cacheDir },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(await Deno.readFile(join(fixtures, image)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout).trim().split("\n").map((line) => JSON.parse(line));
}

Deno.test({
  name: "predict in its own process gives the lines the in-process predictor gives",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "facefield-predict-same-" });
    const cacheDir = join(work, "cache");
    try {
      await initEngine();
      const kinds: ModelKind[] = ["descriptor", "mobilefacenet", "landmarks"];
      const members = await Promise.all(kinds.map((kind, i) => head(work, kind, 7 + 10 * i)));
      const modelDir = join(work, "ensemble");
      await saveEnsemble(
        new EnsembleClassifier(members, { ownsMembers: true }),
        kinds.map((kind) => join(work, kind)),
        modelDir,
      );
      // The first process builds the graphs into the fresh cache; the next one opens them on the
      // session thread and writes them as ORT optimized them, which the ones after read.
      await cli(modelDir, cacheDir, IMAGES[0]!);
      const onnx = join(cacheDir, "onnx");
      const optimized = [...Deno.readDirSync(onnx)].filter((e) =>
        /-ort-[0-9a-f]+\.onnx$/.test(e.name)
      );
      Deno.env.set("FACEFIELD_CACHE_DIR", cacheDir);
      const classifier = await loadModel(modelDir);
      const predictor = new Predictor(classifier);
      let faces = 0;
      for (const image of IMAGES) {
        const expected = await predictor.predict("-", await Deno.readFile(join(fixtures, image)));
        const got = await cli(modelDir, cacheDir, image);
        assert.deepEqual(got, expected, image);
        faces += got.filter((line) => "result" in line && line.result === "face").length;
      }
      assert.ok(faces >= IMAGES.length, `faces found: ${faces}`);
      // Only the session thread writes ORT's optimized graphs: the one-shot path did run.
      const after = [...Deno.readDirSync(onnx)].filter((e) => /-ort-[0-9a-f]+\.onnx$/.test(e.name));
      assert.ok(after.length >= 4, `optimized graphs: ${after.map((e) => e.name)}`);
      assert.equal(optimized.length, 0, "the first process built the graphs on its own thread");
      classifier.dispose();
    } finally {
      Deno.env.delete("FACEFIELD_CACHE_DIR");
      await Deno.remove(work, { recursive: true });
    }
  },
});
