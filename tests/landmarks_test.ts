/**
 * `landmarks`: a probe on the face's shape, the 68 landmarks in the face's own frame, from the
 * face stage to a saved model that predict runs on an image, and in the default ensemble.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { initEngine } from "../models/engine.ts";
import { describeWholeImage, extractFaces } from "../models/faces/faces.ts";
import { LANDMARK_COUNT, LANDMARK_REGIONS, networkLength } from "../models/faces/face_networks.ts";
import { regionCentre } from "../models/faces/head_pose.ts";
import { plantedStore } from "./_synthetic_faces.ts";
import { trainClassifier } from "../models/training/train.ts";
import {
  DEFAULT_MODEL_KINDS,
  type FaceInput,
  membersOf,
  networksFor,
  saveClassifier,
} from "../models/classifier.ts";
import { loadModel } from "../models/ensemble.ts";
import { seededRandom } from "../models/augment.ts";
import { Predictor } from "../pipeline/predictor.ts";

await initEngine();
const PORTRAIT = new URL("./testdata/faces/portrait.jpg", import.meta.url);

async function shapeOf(bytes: Uint8Array): Promise<Float32Array> {
  const { faces } = await extractFaces(bytes, { networks: ["landmarks"] });
  assert.ok(faces[0], "a face is found");
  return faces[0]!.embeddings.landmarks!;
}

/** How far the landmarks of two shapes lie apart, on average, in face sizes. */
function meanGap(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let k = 0; k < a.length; k += 2) sum += Math.hypot(a[k]! - b[k]!, a[k + 1]! - b[k + 1]!);
  return sum / (a.length / 2);
}

Deno.test("the face stage's landmarks are the face's shape in its own frame, wherever the photo puts it", async () => {
  const bytes = await Deno.readFile(PORTRAIT);
  const shape = await shapeOf(bytes);
  assert.equal(shape.length, networkLength("landmarks"));
  assert.equal(shape.length, LANDMARK_COUNT * 2);
  const { x: leftX, y: leftY } = regionCentre(shape, LANDMARK_REGIONS.leftEye);
  const { x: rightX, y: rightY } = regionCentre(shape, LANDMARK_REGIONS.rightEye);
  const { y: mouthY } = regionCentre(shape, LANDMARK_REGIONS.mouth);
  assert.ok(leftX < 0 && rightX > 0, `eyes either side of the centre: ${leftX}, ${rightX}`);
  assert.ok(Math.abs(leftY - rightY) < 1e-3, `the eyes are level: ${leftY} against ${rightY}`);
  assert.ok(mouthY > leftY + 0.3, "the mouth is below the eyes, in face sizes");

  // The same face turned, twice as large, and moved into a wider photo: the same shape.
  const { width = 0, height = 0 } = await sharp(bytes).metadata();
  const moved = [
    await sharp(bytes).rotate(12, { background: "#808080" }).jpeg({ quality: 95 }).toBuffer(),
    await sharp(bytes).resize(width * 2, height * 2).jpeg({ quality: 95 }).toBuffer(),
    await sharp(bytes).extend({ left: width, right: 20, top: 30, background: "#808080" })
      .jpeg({ quality: 95 }).toBuffer(),
  ];
  // The landmark net's own jitter on another crop of the face is about 0.005–0.02 face sizes.
  const gaps: number[] = [];
  for (const [i, variant] of moved.entries()) {
    gaps.push(meanGap(await shapeOf(new Uint8Array(variant)), shape));
    assert.ok(gaps[i]! < 0.03, `variant ${i}: the landmarks moved by ${gaps[i]} face sizes`);
  }
  // A face squeezed to half its width has another shape.
  const squeezed = await sharp(bytes).resize(Math.round(width / 2), height, { fit: "fill" })
    .jpeg({ quality: 95 }).toBuffer();
  const narrower = await shapeOf(new Uint8Array(squeezed));
  const squeezedGap = meanGap(narrower, shape);
  assert.ok(
    squeezedGap > 3 * Math.max(...gaps),
    `squeezing the face moves its landmarks by ${squeezedGap}, hardly more than ${gaps}`,
  );

  // Without a face, predict --whole-image still gets the net's guess on the centre square.
  const whole = await describeWholeImage(bytes, { networks: ["landmarks"] });
  assert.equal(whole.embeddings.landmarks?.length, LANDMARK_COUNT * 2);
  assert.ok(whole.embeddings.landmarks!.every(Number.isFinite));
});

Deno.test("a landmarks probe learns a planted proportion, saves, loads and predicts on an image", async () => {
  const random = seededRandom(5);
  const length = networkLength("landmarks");
  const store = plantedStore(160, (label) => {
    const landmarks = Float32Array.from({ length }, () => (random() - 0.5) * 0.02);
    // One class's mouths are a little wider: the corners (points 48 and 54) sit further out.
    landmarks[2 * 48]! -= label ? 0.03 : 0;
    landmarks[2 * 54]! += label ? 0.03 : 0;
    return { embeddings: { landmarks } };
  });
  const { classifier } = await trainClassifier("landmarks", store);
  assert.deepEqual(classifier.metadata.preprocessing, {
    input: "descriptor",
    length,
    network: "landmarks",
  });
  const test = store.select({ split: "test" });
  const inputs: FaceInput[] = test.map((face) => ({
    crop: face.crop,
    descriptor: face.descriptor,
    embeddings: face.embeddings,
  }));
  const probabilities = await classifier.predict(inputs);
  const right =
    probabilities.filter((p, i) => (p[1]! > p[0]! ? "b" : "a") === test[i]!.category).length;
  assert.ok(right / test.length >= 0.9, `landmarks probe ${right} of ${test.length}`);
  const dir = await Deno.makeTempDir({ prefix: "facefield_landmarks_" });
  try {
    await saveClassifier(classifier, join(dir, "landmarks"));
    const loaded = await loadModel(join(dir, "landmarks"));
    const [line] = await new Predictor(loaded).predict(
      "portrait.jpg",
      await Deno.readFile(PORTRAIT),
    );
    assert.ok(line && "probabilities" in line, JSON.stringify(line));
    loaded.dispose();
  } finally {
    classifier.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the default ensemble averages the descriptor, mobilefacenet and landmarks probes", () => {
  assert.deepEqual(membersOf("ensemble", DEFAULT_MODEL_KINDS), [
    "descriptor",
    "mobilefacenet",
    "landmarks",
  ]);
  assert.deepEqual(networksFor(["landmarks"]), ["landmarks"]);
});
