/**
 * `predict` of a model made only of probes cuts no crop (`crop: false`): the faces, boxes and
 * descriptors are the same as with the crop, and only a model that reads crops asks for one.
 */
import assert from "node:assert/strict";
import { inputsOf, type ModelMetadata, type Preprocessing } from "../models/classifier.ts";
import { extractFaces, loadFaceModels } from "../models/faces/faces.ts";
import { faceSettings } from "../models/faces/face_options.ts";

const fixture = (name: string) =>
  Deno.readFile(new URL(`./testdata/faces/${name}`, import.meta.url));

/** Only what `inputsOf` reads: each member's preprocessing. */
function metadata(preprocessing: Preprocessing, members: Preprocessing[] = []): ModelMetadata {
  const one = (p: Preprocessing) => ({ preprocessing: p }) as ModelMetadata;
  return { ...one(preprocessing), members: members.length ? members.map(one) : undefined };
}

const descriptor: Preprocessing = { input: "descriptor", length: 128, normalise: "l2" };
const landmarks: Preprocessing = { input: "descriptor", length: 136, network: "landmarks" };
const crop: Preprocessing = {
  input: "crop",
  size: 64,
  channels: 3,
  scale: 1 / 255,
  resize: "sharp fill (lanczos3)",
};

Deno.test("inputsOf() asks for the crop only where a member reads it", () => {
  assert.equal(inputsOf(metadata(descriptor)).crop, false);
  assert.equal(inputsOf(metadata(descriptor, [descriptor, landmarks])).crop, false);
  assert.equal(inputsOf(metadata(crop)).crop, true);
  assert.equal(inputsOf(metadata(descriptor, [descriptor, crop])).crop, true);
});

Deno.test("faceSettings() keeps its key with the crop and changes it without", () => {
  assert.equal("crop" in faceSettings({}), false);
  assert.deepEqual(faceSettings({ crop: true }), faceSettings({}));
  assert.notDeepEqual(faceSettings({ crop: false }), faceSettings({}));
});

Deno.test("extractFaces({ crop: false }) finds and describes the same faces, with no crop", async () => {
  await loadFaceModels();
  const bytes = await fixture("portrait.jpg");
  const networks = ["landmarks" as const];
  const full = await extractFaces(bytes, { allFaces: true, networks });
  const bare = await extractFaces(bytes, { allFaces: true, networks, crop: false });
  assert.ok(full.faces.length >= 1);
  assert.equal(bare.faces.length, full.faces.length);
  full.faces.forEach((face, i) => {
    const other = bare.faces[i]!;
    assert.ok(face.crop.length > 0);
    assert.equal(other.crop.length, 0);
    assert.deepEqual(other.box, face.box);
    assert.deepEqual(other.descriptor, face.descriptor);
    assert.deepEqual(other.embeddings, face.embeddings);
  });
});
