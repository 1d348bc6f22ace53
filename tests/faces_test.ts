import assert from "node:assert/strict";
import sharp from "sharp";
import { tf } from "../models/engine.ts";
import { FaceWorkerPool } from "../models/faces/worker_pool.ts";
import {
  describeWholeImage,
  extractFaces,
  FaceInputError,
  loadFaceModels,
  predictGender,
} from "../models/faces/faces.ts";

const fixture = (name: string) =>
  Deno.readFile(new URL(`./testdata/faces/${name}`, import.meta.url));

function distance(a: Float32Array, b: Float32Array): number {
  return Math.hypot(...a.map((value, i) => value - b[i]!));
}

async function rawPixels(png: Uint8Array) {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return { data, info };
}

await loadFaceModels();
const portrait = await extractFaces(await fixture("portrait.jpg"));
const portraitFace = portrait.faces[0]!;

Deno.test("extractFaces() crops, aligns and describes one face as a size×size PNG", async () => {
  assert.equal(portrait.faces.length, 1);
  assert.equal(portrait.faceCount, 1);
  assert.deepEqual([portrait.width, portrait.height], [300, 369]);
  assert.ok(portraitFace.score >= 0.5);
  assert.equal(portraitFace.descriptor.length, 128);
  // The fixture's head is tilted a little; alignment measures and levels it.
  assert.ok(Math.abs(portraitFace.angle) > 3 && Math.abs(portraitFace.angle) < 30);
  const { info } = await rawPixels(portraitFace.crop);
  assert.deepEqual([info.width, info.height, info.channels], [128, 128, 3]);
  const { x, y, width, height } = portraitFace.box;
  assert.ok(x >= 0 && y >= 0 && x + width <= 300 + 1 && y + height <= 369 + 1);
});

Deno.test("extractFaces() takes the largest of several faces and counts them", async () => {
  const bytes = await fixture("group.jpg");
  const all = await extractFaces(bytes, { allFaces: true });
  const largest = await extractFaces(bytes);
  assert.ok(all.faceCount >= 3, `found ${all.faceCount} faces in the group photo`);
  assert.equal(largest.faces.length, 1);
  assert.equal(largest.faceCount, all.faceCount);
  const areas = all.faces.map((f) => f.box.width * f.box.height);
  assert.deepEqual(areas, [...areas].sort((a, b) => b - a));
  assert.deepEqual(largest.faces[0]!.box, all.faces[0]!.box);
  assert.ok(distance(largest.faces[0]!.descriptor, all.faces[1]!.descriptor) > 0.5);
});

Deno.test("extractFaces() reads EXIF-rotated and CMYK JPEGs as the same face", async () => {
  for (const name of ["exif_rotated.jpg", "cmyk.jpg"]) {
    const result = await extractFaces(await fixture(name));
    const face = result.faces[0];
    assert.ok(face, `${name}: no face`);
    assert.deepEqual([result.width, result.height], [300, 369], name);
    assert.ok(Math.abs(face.angle - portraitFace.angle) < 5, `${name}: angle ${face.angle}`);
    const d = distance(face.descriptor, portraitFace.descriptor);
    assert.ok(d < 0.3, `${name}: descriptor distance ${d}`);
  }
});

Deno.test("extractFaces() flattens transparency on white", async () => {
  const result = await extractFaces(await fixture("rgba.png"));
  const face = result.faces[0];
  assert.ok(face, "no face in the RGBA PNG");
  const { data } = await rawPixels(face.crop);
  let green = 0;
  let white = 0;
  for (let i = 0; i < data.length; i += 3) {
    if (data[i]! < 60 && data[i + 1]! > 200 && data[i + 2]! < 60) green++;
    if (data[i]! > 245 && data[i + 1]! > 245 && data[i + 2]! > 245) white++;
  }
  assert.equal(green, 0, "the transparent pixels' colour leaked into the crop");
  assert.ok(white > 500, `only ${white} white pixels where the background was transparent`);
});

Deno.test("extractFaces() rejects a tiny image as no_face and throws only on undecodable bytes", async () => {
  const tiny = await extractFaces(await fixture("tiny.png"));
  assert.equal(tiny.faces.length, 0);
  assert.equal(tiny.rejection, "no_face");
  const notImage = await assert.rejects(extractFaces(await fixture("not_an_image.jpg")), (e) => {
    assert.ok(e instanceof FaceInputError);
    assert.equal(e.code, "not_an_image");
    return true;
  });
  assert.equal(notImage, undefined);
  await assert.rejects(extractFaces(await fixture("truncated.jpg")), (e) => {
    assert.ok(e instanceof FaceInputError);
    assert.equal(e.code, "decode_failed");
    return true;
  });
});

Deno.test("extractFaces() gives face_too_small and low_score reasons", async () => {
  const bytes = await fixture("portrait.jpg");
  const small = await extractFaces(bytes, { minFaceSize: 1000 });
  assert.match(small.rejection ?? "", /^face_too_small: \d+px < 1000px$/);
  assert.equal(small.faceCount, 1);
  const low = await extractFaces(bytes, { minScore: 1 });
  assert.match(low.rejection ?? "", /^low_score: 0\.\d\d$/);
});

Deno.test("extractFaces() crops to the aspect of width×height and keeps the face share", async () => {
  const bytes = await fixture("portrait.jpg");
  const tall = await extractFaces(bytes, { width: 96, height: 128 });
  const { info } = await rawPixels(tall.faces[0]!.crop);
  assert.deepEqual([info.width, info.height], [96, 128]);
  const unaligned = await extractFaces(bytes, { align: false });
  assert.equal(unaligned.faces[0]!.angle, 0);
});

Deno.test("extractFaces() with ssd and tiny finds the same face", async () => {
  const bytes = await fixture("portrait.jpg");
  const ssd = await extractFaces(bytes, { detector: "ssd" });
  const tiny = await extractFaces(bytes, { detector: "tiny" });
  assert.equal(ssd.detector, "ssd");
  assert.equal(tiny.detector, "tiny");
  // Crops come from landmarks, not the detector box, so both detectors give near-equal faces.
  const d = distance(ssd.faces[0]!.descriptor, tiny.faces[0]!.descriptor);
  assert.ok(d < 0.15, `ssd vs tiny descriptor distance ${d}`);
});

Deno.test("extractFaces() rejects bad options early", async () => {
  const bytes = await fixture("tiny.png");
  await assert.rejects(extractFaces(bytes, { facePercent: 0 }), RangeError);
  await assert.rejects(extractFaces(bytes, { size: 3 }), RangeError);
  // deno-lint-ignore no-explicit-any
  await assert.rejects(extractFaces(bytes, { detector: "haar" as any }), RangeError);
  await assert.rejects(extractFaces(bytes, { tinyInputSizes: [100] }), RangeError);
});

Deno.test("extractFaces() leaves no tensors behind", async () => {
  const bytes = await fixture("group.jpg");
  await extractFaces(bytes);
  const before = tf.memory().numTensors;
  await extractFaces(bytes, { allFaces: true });
  await extractFaces(await fixture("tiny.png"));
  await extractFaces(await fixture("truncated.jpg")).catch(() => {});
  assert.equal(tf.memory().numTensors, before);
});

Deno.test("describeWholeImage() and predictGender() work on the crop pipeline's output", async () => {
  const whole = await describeWholeImage(await fixture("portrait.jpg"), { size: 64 });
  const { info } = await rawPixels(whole.crop);
  assert.deepEqual([info.width, info.height], [64, 64]);
  assert.equal(whole.descriptor.length, 128);
  assert.deepEqual(whole.box, { x: 0, y: (369 - 300) / 2, width: 300, height: 300 });
  const gender = await predictGender(portraitFace.crop);
  assert.equal(gender.gender, "female");
  assert.ok(gender.probability > 0.5 && gender.probability <= 1);
  // An adult's portrait: the net's age is a number of years in an adult's range.
  assert.ok(gender.age > 15 && gender.age < 90, `age ${gender.age}`);
});

Deno.test({
  name: "FaceWorkerPool gives the same result as extractFaces on this thread",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const pool = new FaceWorkerPool({ workers: 1 });
    try {
      const result = await pool.extractFaces(await fixture("portrait.jpg"));
      assert.equal(result.faces.length, 1);
      assert.ok(distance(result.faces[0]!.descriptor, portraitFace.descriptor) < 1e-3);
      await assert.rejects(pool.extractFaces(await fixture("not_an_image.jpg")), FaceInputError);
    } finally {
      pool.close();
    }
  },
});

Deno.test({
  name: "FaceWorkerPool holds two jobs a worker and answers each with its own result",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert.throws(() => new FaceWorkerPool({ workers: 1, jobsPerWorker: 0 }), RangeError);
    const pool = new FaceWorkerPool({ workers: 1, jobsPerWorker: 2 });
    try {
      const names = ["portrait.jpg", "tiny.png", "group.jpg", "rgba.png", "portrait.jpg"];
      const inputs = await Promise.all(names.map(fixture));
      const results = await Promise.all(inputs.map((bytes) => pool.extractFaces(bytes)));
      for (const [k, result] of results.entries()) {
        const alone = await extractFaces(inputs[k]!);
        const name = names[k]!;
        assert.equal(result.faces.length, alone.faces.length, name);
        assert.deepEqual(result.faces[0]?.box, alone.faces[0]?.box, name);
      }
    } finally {
      pool.close();
    }
  },
});

Deno.test("extractFaces() on its own crop frames the face the same way: level, centred, same size", async () => {
  for (const name of ["portrait.jpg", "group.jpg"]) {
    const first = (await extractFaces(await fixture(name), { size: 160 })).faces[0]!;
    const again = (await extractFaces(first.crop, { size: 160 })).faces[0];
    assert.ok(again, `${name}: no face in its own crop`);
    assert.ok(Math.abs(again.angle) < 3, `${name}: the crop is still tilted ${again.angle}°`);
    const { x, y, width, height } = again.box;
    assert.ok(Math.hypot(x + width / 2 - 80, y + height / 2 - 80) < 10, `${name}: off centre`);
    const { data: a } = await rawPixels(first.crop);
    const { data: b } = await rawPixels(again.crop);
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
    // Landmarks move by a pixel or two between the two, so the crops differ a little.
    assert.ok(sum / a.length < 16, `${name}: the re-crop differs by ${sum / a.length} per value`);
  }
});

Deno.test("extractFaces() encodes the crop as cropFormat asks", async () => {
  const bytes = await fixture("portrait.jpg");
  for (const format of ["jpeg", "webp", "png"] as const) {
    const face = (await extractFaces(bytes, { describe: false, cropFormat: format })).faces[0]!;
    assert.equal((await sharp(face.crop).metadata()).format, format);
    assert.equal(face.descriptor.length, 0);
  }
  // deno-lint-ignore no-explicit-any
  await assert.rejects(extractFaces(bytes, { cropFormat: "gif" as any }), RangeError);
});

Deno.test("extractFaces() finds the same face, in original px, in a large copy of the image", async () => {
  // 1800×2214: shrunk to the 1024 px work copy, then to the detectors' 512 px copy.
  const large = new Uint8Array(
    await sharp(await fixture("portrait.jpg")).resize(1800).jpeg({ quality: 95 }).toBuffer(),
  );
  const result = await extractFaces(large, { describe: false });
  const face = result.faces[0];
  assert.ok(face, "no face in the large copy");
  assert.deepEqual([result.width, result.height], [1800, 2214]);
  const scale = 1800 / 300;
  const expected = portraitFace.box;
  for (const key of ["x", "y", "width", "height"] as const) {
    const want = expected[key] * scale;
    assert.ok(
      Math.abs(face.box[key] - want) < 0.05 * expected.width * scale,
      `${key}: ${face.box[key]} against ${want}`,
    );
  }
  assert.ok(Math.abs(face.angle - portraitFace.angle) < 3, `angle ${face.angle}`);
});
