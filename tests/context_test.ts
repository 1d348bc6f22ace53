/**
 * The models that read the photo around the face: `context` (a probe on the photo with the
 * face box masked, the masked-photo baseline's features) and `portrait` (its mean with the face
 * probes), from the face stage to a saved model that predict runs on an image.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initEngine } from "../models/engine.ts";
import { extractFaces } from "../models/faces/faces.ts";
import { CONTEXT_SIDE, networkLength } from "../models/faces/face_networks.ts";
import { maskedFacePixels, maskedPixels } from "../models/style_features.ts";
import type { FaceStore } from "../models/dataset.ts";
import { plantedStore } from "./_synthetic_faces.ts";
import { trainClassifier } from "../models/training/train.ts";
import { type FaceInput, inputsOf, saveClassifier } from "../models/classifier.ts";
import { EnsembleClassifier, loadModel, saveEnsemble } from "../models/ensemble.ts";
import { seededRandom } from "../models/augment.ts";
import { pipelineOptionsFromFlags } from "../pipeline/options.ts";
import { Predictor } from "../pipeline/predictor.ts";

await initEngine();
const PORTRAIT = new URL("./testdata/faces/portrait.jpg", import.meta.url);

Deno.test("the face stage's context is the masked-photo baseline's features, and no face pixel moves it", async () => {
  const bytes = await Deno.readFile(PORTRAIT);
  const { faces } = await extractFaces(bytes, { networks: ["context"] });
  const face = faces[0]!;
  const context = face.embeddings.context!;
  assert.equal(context.length, networkLength("context"));
  assert.equal(context.length, CONTEXT_SIDE * CONTEXT_SIDE * 3);
  const baseline = await maskedFacePixels(bytes, face.box);
  const largest = Math.max(...context.map((v, i) => Math.abs(v - baseline[i]!)));
  assert.ok(largest <= 1, `context and the masked-photo baseline differ by ${largest}`);

  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  const image = { width: info.width, height: info.height, data: new Uint8Array(data) };
  const box = face.box;
  const before = await maskedPixels(image, box);
  // Noise over the whole face box: what the context sees stays exactly the same.
  const random = seededRandom(3);
  const noisy = Uint8Array.from(image.data);
  for (let y = Math.floor(box.y); y < Math.ceil(box.y + box.height); y++) {
    for (let x = Math.floor(box.x); x < Math.ceil(box.x + box.width); x++) {
      for (let c = 0; c < 3; c++) noisy[(y * image.width + x) * 3 + c] = random() * 255;
    }
  }
  assert.deepEqual(await maskedPixels({ ...image, data: noisy }, box), before);
  // A white corner (background) moves it.
  const corner = Uint8Array.from(image.data);
  for (let y = 0; y < image.height / 4; y++) {
    corner.fill(255, y * image.width * 3, (y * image.width + Math.floor(image.width / 4)) * 3);
  }
  assert.notDeepEqual(await maskedPixels({ ...image, data: corner }, box), before);
  assert.deepEqual(await maskedPixels(image, box), before, "the image it reads is left as it was");
});

/** Faces whose background carries the class plainly and whose descriptor a little. */
function backgroundStore(): FaceStore {
  const random = seededRandom(11);
  const length = networkLength("context");
  return plantedStore(160, (label) => {
    const descriptor = Float32Array.from({ length: 128 }, () => random() - 0.5);
    descriptor[5]! += label ? 0.15 : -0.15;
    const context = Float32Array.from({ length }, () => 100 + 40 * random());
    // The blue of the top rows: a background one class's photographer lit bluer.
    for (let pixel = 0; pixel < 2 * CONTEXT_SIDE; pixel++) {
      context[pixel * 3 + 2]! += label ? 8 : -8;
    }
    return { descriptor, embeddings: { context } };
  });
}

Deno.test("a context probe learns the background; portrait averages it with a face probe and saves, loads and predicts as one model", async () => {
  const store = backgroundStore();
  const descriptor = (await trainClassifier("descriptor", store)).classifier;
  const context = (await trainClassifier("context", store)).classifier;
  assert.deepEqual(context.metadata.preprocessing, {
    input: "descriptor",
    length: networkLength("context"),
    network: "context",
  });
  const test = store.select({ split: "test" });
  const inputs: FaceInput[] = test.map((face) => ({
    crop: face.crop,
    descriptor: face.descriptor,
    embeddings: face.embeddings,
  }));
  const accuracy = (probabilities: Float32Array[]) =>
    probabilities.filter((p, i) => (p[1]! > p[0]! ? "b" : "a") === test[i]!.category).length /
    test.length;
  const contextProbabilities = await context.predict(inputs);
  assert.ok(accuracy(contextProbabilities) >= 0.9, `context ${accuracy(contextProbabilities)}`);

  const portrait = new EnsembleClassifier([descriptor, context], { kind: "portrait" });
  assert.equal(portrait.metadata.kind, "portrait");
  // The context probe reads the photo around the masked face, not the crop: predict cuts none.
  assert.deepEqual(inputsOf(portrait.metadata), {
    crop: false,
    describe: true,
    networks: ["context"],
  });
  const dir = await Deno.makeTempDir({ prefix: "facefield_portrait_" });
  try {
    const memberDirs = [join(dir, "descriptor"), join(dir, "context")];
    await saveClassifier(descriptor, memberDirs[0]!);
    await saveClassifier(context, memberDirs[1]!);
    await saveEnsemble(portrait, memberDirs, join(dir, "portrait"));
    const loaded = await loadModel(join(dir, "portrait"));
    assert.equal(loaded.metadata.kind, "portrait");
    assert.deepEqual(loaded.metadata.members!.map((m) => m.kind), ["descriptor", "context"]);
    const mean = await portrait.predict(inputs);
    (await loaded.predict(inputs)).forEach((p, i) =>
      assert.ok(Math.abs(p[1]! - mean[i]![1]!) < 1e-6)
    );
    // predict on a real image: the face stage computes the context the model reads.
    const [line] = await new Predictor(loaded).predict(
      "portrait.jpg",
      await Deno.readFile(PORTRAIT),
    );
    assert.ok(line && "probabilities" in line, JSON.stringify(line));
    const total = Object.values(line.probabilities).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-5);
    loaded.dispose();
  } finally {
    descriptor.dispose();
    context.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--models: portrait needs context and a face probe, and comes after them", () => {
  assert.throws(
    () => pipelineOptionsFromFlags({ models: "portrait,descriptor" }),
    /name 'context' and one or more/,
  );
  assert.throws(
    () => pipelineOptionsFromFlags({ models: "portrait,context" }),
    /name 'context' and one or more/,
  );
  assert.deepEqual(
    pipelineOptionsFromFlags({ models: "portrait,context,descriptor" }).models,
    ["descriptor", "context", "portrait"],
  );
});
