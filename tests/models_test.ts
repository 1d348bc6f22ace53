import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initEngine, tf } from "../models/engine.ts";
import { buildCnn, CNN_PREPROCESSING } from "../models/cnn.ts";
import { buildEmbeddingHead, EMBEDDING_PREPROCESSING } from "../models/embedding.ts";
import {
  type FaceInput,
  LayersClassifier,
  loadClassifier,
  MODEL_FORMAT,
  ModelLoadError,
  type ModelMetadata,
  saveClassifier,
} from "../models/classifier.ts";
import { seededRandom } from "../models/augment.ts";

await initEngine();

function metadata(kind: "cnn" | "embedding", model: tf.LayersModel, classes: string[]) {
  return {
    format: MODEL_FORMAT,
    kind,
    classes,
    inputShape: model.inputs[0]!.shape.slice(1) as number[],
    preprocessing: kind === "cnn" ? CNN_PREPROCESSING : EMBEDDING_PREPROCESSING,
    data: {
      counts: { train: { a: 3 }, val: {}, test: {} },
      identities: 3,
      folds: null,
      testFold: null,
      sources: ["https://people.example"],
    },
    history: [{ epoch: 1, loss: 1, accuracy: 0.5, valLoss: null, valAccuracy: null, seconds: 1 }],
    bestEpoch: 1,
    createdAt: new Date(0).toISOString(),
    engine: "test",
  } satisfies ModelMetadata;
}

async function faces(count: number, seed: number): Promise<FaceInput[]> {
  const random = seededRandom(seed);
  return await Promise.all(Array.from({ length: count }, async () => {
    const pixels = Uint8Array.from({ length: 80 * 80 * 3 }, () => Math.floor(random() * 256));
    const crop = await sharp(pixels, { raw: { width: 80, height: 80, channels: 3 } }).png()
      .toBuffer();
    return {
      crop: new Uint8Array(crop),
      descriptor: Array.from({ length: 128 }, () => random() - 0.5),
    };
  }));
}

const weightBytes = (model: tf.LayersModel) =>
  model.getWeights().map((w) => new Uint8Array((w.dataSync() as Float32Array).slice().buffer));

Deno.test("buildCnn() is the seed's CNN: 92,868 parameters for 4 classes", () => {
  const model = buildCnn(4);
  assert.equal(model.countParams(), 92_868);
  assert.deepEqual(model.inputs[0]!.shape, [null, 64, 64, 1]);
  assert.deepEqual(
    model.layers.map((l) => l.getClassName()),
    [
      ...Array(3).fill(["Conv2D", "MaxPooling2D"]).flat(),
      "Flatten",
      "Dense",
      "Dropout",
      "Dense",
    ],
  );
  assert.deepEqual(model.outputs[0]!.shape, [null, 4]);
  model.dispose();
  assert.throws(() => buildCnn(1), RangeError);
});

Deno.test("buildEmbeddingHead() is Dense(128)+ReLU, Dropout, Dense(classes) on a 128-d descriptor", () => {
  const model = buildEmbeddingHead(3);
  assert.equal(model.countParams(), 128 * 128 + 128 + 128 * 3 + 3);
  assert.deepEqual(model.layers.map((l) => l.getClassName()), ["Dense", "Dropout", "Dense"]);
  model.dispose();
});

for (const kind of ["cnn", "embedding"] as const) {
  Deno.test(`saveClassifier() + loadClassifier() round-trip a ${kind} model bit-exactly`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "facefield_model_" });
    const before = tf.memory().numTensors;
    const classes = ["biology", "history", "physics", "zoology"];
    const model = kind === "cnn" ? buildCnn(4, { seed: 1 }) : buildEmbeddingHead(4, { seed: 1 });
    const original = new LayersClassifier(model, metadata(kind, model, classes));
    const inputs = await faces(5, 2);
    const expected = await original.predict(inputs);
    await saveClassifier(original, dir);
    for (const file of ["model.json", "weights.bin", "metadata.json"]) {
      assert.ok((await Deno.stat(join(dir, file))).isFile, file);
    }
    const loaded = await loadClassifier(dir);
    assert.deepEqual(loaded.metadata, original.metadata);
    assert.ok(loaded instanceof LayersClassifier);
    assert.deepEqual(weightBytes(loaded.model), weightBytes(original.model));
    const actual = await loaded.predict(inputs);
    assert.deepEqual(actual, expected);
    for (const p of actual) assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-5);
    // The weights file is the model's weights, byte for byte.
    const file = await Deno.readFile(join(dir, "weights.bin"));
    const concatenated = new Uint8Array(weightBytes(model).flatMap((w) => [...w]));
    assert.deepEqual(file, concatenated);
    original.dispose();
    loaded.dispose();
    assert.equal(tf.memory().numTensors, before);
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("loadClassifier() says exactly what is wrong with a model folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "facefield_broken_" });
  const model = buildEmbeddingHead(2, { seed: 3 });
  const good = metadata("embedding", model, ["a", "b"]);
  await saveClassifier(new LayersClassifier(model, good), dir);
  model.dispose();
  const files = Object.fromEntries(
    await Promise.all(
      ["model.json", "weights.bin", "metadata.json"].map(async (f) =>
        [f, await Deno.readFile(join(dir, f))] as const
      ),
    ),
  );
  const restore = async () => {
    for (const [name, bytes] of Object.entries(files)) await Deno.writeFile(join(dir, name), bytes);
  };
  const writeMetadata = (change: Record<string, unknown>) =>
    Deno.writeTextFile(join(dir, "metadata.json"), JSON.stringify({ ...good, ...change }));
  const expectError = async (pattern: RegExp) => {
    await assert.rejects(() => loadClassifier(dir), (error: Error) => {
      assert.ok(error instanceof ModelLoadError, `${error.name}: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    });
    await restore();
  };

  await assert.rejects(() => loadClassifier(join(dir, "nope")), /model folder not found/);
  await Deno.remove(join(dir, "model.json"));
  await expectError(/model\.json is missing/);
  await Deno.writeTextFile(join(dir, "model.json"), "{ not json");
  await expectError(/model\.json is not valid JSON/);
  await Deno.writeTextFile(join(dir, "model.json"), JSON.stringify({ format: "layers-model" }));
  await expectError(/corrupt/);
  await Deno.remove(join(dir, "metadata.json"));
  await expectError(/metadata\.json .*is missing/);
  await writeMetadata({ format: "facefield-model/99" });
  await expectError(/format 'facefield-model\/99'/);
  await writeMetadata({ classes: ["a", "b", "c"] });
  await expectError(/class count mismatch: metadata lists 3 classes, the model has 2 outputs/);
  await writeMetadata({ inputShape: [64, 64, 1] });
  await expectError(/input shape mismatch/);
  await Deno.writeFile(join(dir, "weights.bin"), files["weights.bin"]!.slice(0, 100));
  await expectError(/weights\.bin holds 100 bytes/);
  await Deno.remove(join(dir, "weights.bin"));
  await expectError(/weights\.bin is missing/);

  const loaded = await loadClassifier(dir);
  assert.deepEqual(loaded.metadata.classes, ["a", "b"]);
  loaded.dispose();
  await Deno.remove(dir, { recursive: true });
});
