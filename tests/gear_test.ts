import assert from "node:assert/strict";
import sharp from "sharp";
import { extractFaces, loadFaceModels } from "../models/faces/faces.ts";
import { ethnicityOf, GEAR_ETHNICITIES } from "../models/faces/face_networks.ts";
import { runNetworks } from "../pipeline/checks.ts";

Deno.test("ethnicityOf() names GEAR's most likely class, and nothing for a broken output", () => {
  assert.equal(ethnicityOf([0.1, 0.6, 0.1, 0.1, 0.1]), "black");
  assert.equal(ethnicityOf([0.2, 0.2, 0.2, 0.2, 0.2]), "white", "a tie goes to the first");
  assert.equal(ethnicityOf([0.5, 0.5]), undefined);
  assert.equal(ethnicityOf(undefined), undefined);
  assert.equal(ethnicityOf([NaN, NaN, NaN, NaN, NaN]), undefined);
});

Deno.test("a run asks the face stage for GEAR's estimate besides its models' networks", () => {
  assert.deepEqual(runNetworks(["cnn"]), ["gear-ethnicity"]);
  assert.deepEqual(runNetworks(["cnn", "mobilefacenet", "mobilefacenet"]), [
    "mobilefacenet",
    "gear-ethnicity",
  ]);
});

Deno.test({
  name:
    "the face stage's GEAR output is a distribution over its ethnicities, stable under a mirror",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await loadFaceModels();
    const photo = await Deno.readFile(new URL("./testdata/faces/portrait.jpg", import.meta.url));
    const estimate = async (bytes: Uint8Array) => {
      const face = (await extractFaces(bytes, { describe: false, networks: ["gear-ethnicity"] }))
        .faces[0]!;
      return Array.from(face.embeddings["gear-ethnicity"]!);
    };
    const probabilities = await estimate(photo);
    assert.equal(probabilities.length, GEAR_ETHNICITIES.length);
    const total = probabilities.reduce((sum, p) => sum + p, 0);
    assert.ok(Math.abs(total - 1) < 0.01, `probabilities sum to ${total}`);
    // The mirrored photo is the same person: GEAR's crop is centred on the face, so the
    // answer should hold, and the probabilities stay close.
    const mirrored = await estimate(await sharp(photo).flop().jpeg({ quality: 95 }).toBuffer());
    assert.equal(ethnicityOf(mirrored), ethnicityOf(probabilities));
    const change = Math.max(...mirrored.map((p, i) => Math.abs(p - probabilities[i]!)));
    assert.ok(change < 0.3, `a mirror moved a probability by ${change}`);
  },
});
