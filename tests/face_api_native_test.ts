/**
 * face-api's nets on the native engine compute what they compute on tfjs wasm, on real faces:
 * the project's fixtures and the demo photos that ship in the face-api package.
 */
import assert from "node:assert/strict";
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import sharp from "sharp";
import { tf } from "../models/engine.ts";
import { loadFaceModels } from "../models/faces/faces.ts";
import { demoImagePaths } from "../models/faces/package_files.ts";
import {
  cropAndResize,
  tinyDetections,
  tinyDetectorInput,
} from "../models/faces/face_api_inputs.ts";
import { NativeFaceNets } from "../models/native/face_api_sessions.ts";
import { nativeEngine } from "../models/native/onnx_runtime.ts";

const engine = await nativeEngine();
const ignore = !engine.ok;
if (!engine.ok) console.warn(`face-api native tests skipped: ${engine.reason}`);

const FIXTURES = ["portrait.jpg", "group.jpg", "exif_rotated.jpg"].map((name) =>
  new URL(`./testdata/faces/${name}`, import.meta.url).pathname
);
const IMAGES = [...FIXTURES, ...demoImagePaths()];

interface Image {
  path: string;
  pixels: Float32Array;
  width: number;
  height: number;
}

async function decode(path: string): Promise<Image> {
  const { data, info } = await sharp(path).rotate().removeAlpha().raw().toBuffer({
    resolveWithObject: true,
  });
  return { path, pixels: Float32Array.from(data), width: info.width, height: info.height };
}

/** Faces as face-api's tiny detector on wasm finds them: real face content to feed the nets. */
async function wasmFaces(image: Image) {
  const tensor = tf.tensor3d(image.pixels, [image.height, image.width, 3]);
  try {
    return await faceapi.nets.tinyFaceDetector.locateFaces(
      // deno-lint-ignore no-explicit-any
      tensor as any,
      new faceapi.TinyFaceDetectorOptions({ inputSize: 416, scoreThreshold: 0.4 }),
    );
  } finally {
    tensor.dispose();
  }
}

/** A detector box of an image resized to side×side RGB floats (the nets' square chip). */
async function chipOf(path: string, box: faceapi.Box, side: number): Promise<Float32Array> {
  const meta = await sharp(path).rotate().toBuffer({ resolveWithObject: true });
  const left = Math.max(0, Math.round(box.x));
  const top = Math.max(0, Math.round(box.y));
  const width = Math.min(meta.info.width - left, Math.round(box.width));
  const height = Math.min(meta.info.height - top, Math.round(box.height));
  const { data } = await sharp(meta.data).extract({ left, top, width, height })
    .resize(side, side, { fit: "fill" }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return Float32Array.from(data);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    aa += a[i]! ** 2;
    bb += b[i]! ** 2;
  }
  return dot / Math.sqrt(aa * bb);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.max(...Array.from(a, (value, i) => Math.abs(value - b[i]!)));

let nets: NativeFaceNets | undefined;
let chips: { path: string; box: faceapi.Box }[] = [];
await loadFaceModels();
if (engine.ok) {
  const landmarkNet = faceapi.nets.faceLandmark68Net;
  // Built from the weights here, not read from the graph cache: this tests the converter.
  Deno.env.set("FACEFIELD_CACHE_DIR", "none");
  nets = await NativeFaceNets.create(engine.ort, () =>
    Promise.resolve({
      recognition: faceapi.nets.faceRecognitionNet.params!,
      landmarks: {
        // deno-lint-ignore no-explicit-any
        extractor: (landmarkNet.faceFeatureExtractor as any).params,
        fc: landmarkNet.params!.fc,
      },
      // deno-lint-ignore no-explicit-any
      tinyDetector: faceapi.nets.tinyFaceDetector.params as any,
    }));
  for (const path of IMAGES) {
    const faces = await wasmFaces(await decode(path));
    chips = chips.concat(faces.map((face) => ({ path, box: face.box })));
  }
}

Deno.test({
  name: "native recognition net: descriptors match tfjs wasm on every face of the fixtures",
  ignore,
  async fn() {
    assert.ok(chips.length >= 8, `only ${chips.length} faces found in ${IMAGES.length} images`);
    for (const { path, box } of chips) {
      const chip = await chipOf(path, box, 150);
      const tensor = tf.tensor3d(chip, [150, 150, 3]);
      // deno-lint-ignore no-explicit-any
      const wasm = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(tensor as any);
      tensor.dispose();
      const native = await nets!.describe(chip);
      const reference = wasm as Float32Array;
      assert.equal(native.length, 128);
      const similarity = cosine(native, reference);
      const diff = maxAbsDiff(native, reference);
      assert.ok(similarity >= 0.9999 && diff <= 1e-3, `${path}: cosine ${similarity}, Δ ${diff}`);
    }
  },
});

Deno.test({
  name: "native landmark net: the 68 points match tfjs wasm within 0.5 px on every face",
  ignore,
  async fn() {
    for (const { path, box } of chips) {
      const patch = await chipOf(path, box, 112);
      const tensor = tf.tensor3d(patch, [112, 112, 3]);
      // deno-lint-ignore no-explicit-any
      const output = await faceapi.nets.faceLandmark68Net.forward(tensor as any);
      const wasm = await output.data();
      tensor.dispose();
      output.dispose();
      const native = await nets!.landmarks(patch);
      assert.equal(native.length, 136);
      // Shares of the patch, times the face's side in the image: image px.
      const px = maxAbsDiff(native, wasm) * Math.max(box.width, box.height);
      assert.ok(px <= 0.5, `${path}: landmarks differ by ${px.toFixed(3)} px`);
    }
  },
});

Deno.test({
  name: "native tiny detector: the same faces as tfjs wasm (IoU ≥ 0.98, scores within 1e-3)",
  ignore,
  async fn() {
    let compared = 0;
    for (const path of IMAGES) {
      const image = await decode(path);
      const tensor = tf.tensor3d(image.pixels, [image.height, image.width, 3]);
      for (const side of [128, 224, 416]) {
        const wasm = await faceapi.nets.tinyFaceDetector.locateFaces(
          // deno-lint-ignore no-explicit-any
          tensor as any,
          new faceapi.TinyFaceDetectorOptions({ inputSize: side, scoreThreshold: 0.3 }),
        );
        const grid = await nets!.tinyGrid(
          tinyDetectorInput({ ...image, data: image.pixels }, side),
          side,
        );
        const native = tinyDetections(grid, image, side, 0.3);
        // A score right at the threshold may fall either side of it; none here is that close.
        assert.equal(native.length, wasm.length, `${path} at ${side}: face counts differ`);
        for (const [i, found] of native.entries()) {
          const reference = wasm[i]!;
          const overlap = iou(found.box, reference.box);
          assert.ok(overlap >= 0.98, `${path} at ${side}: face ${i} IoU ${overlap}`);
          assert.ok(Math.abs(found.score - reference.score) <= 1e-3, `${path}: score`);
          compared++;
        }
      }
      tensor.dispose();
    }
    assert.ok(compared >= 20, `only ${compared} detections compared`);
  },
});

Deno.test("cropAndResize() samples a patch as tf.image.cropAndResize does, zero outside", async () => {
  const image = await decode(FIXTURES[0]!);
  const tensor = tf.tensor4d(image.pixels, [1, image.height, image.width, 3]);
  // A square that runs off the image's top left, as a face at its edge asks for.
  const rect = { x: -20.5, y: -10.25, width: 180.3, height: 180.3 };
  const reference = tf.image.cropAndResize(
    tensor,
    [[
      rect.y / image.height,
      rect.x / image.width,
      (rect.y + rect.height) / image.height,
      (rect.x + rect.width) / image.width,
    ]],
    [0],
    [112, 112],
    "bilinear",
  );
  const expected = await reference.data();
  tf.dispose([tensor, reference]);
  const patch = cropAndResize({ ...image, data: image.pixels }, rect, 112);
  assert.ok(maxAbsDiff(patch, expected) < 1e-2, `Δ ${maxAbsDiff(patch, expected)}`);
  assert.equal(patch[0], 0);
});

function iou(a: faceapi.IRect, b: faceapi.IRect): number {
  const width = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
  const height = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
  const overlap = Math.max(0, width) * Math.max(0, height);
  return overlap / (a.width * a.height + b.width * b.height - overlap);
}
