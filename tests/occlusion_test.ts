import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import type { Box, RgbImage, SplitRecord } from "../core/types.ts";
import { type Classifier, decodeRgb, type FaceInput, isRgbImage } from "../models/classifier.ts";
import { EnsembleClassifier } from "../models/ensemble.ts";
import { cropWindows, describeCrop, extractFaces } from "../models/faces/faces.ts";
import { occlude, occlusionGrid, occlusionSample, peakOf, pixelMap } from "../models/occlusion.ts";
import { occlusionMaps } from "../pipeline/occlusion_run.ts";
import { occlusionSection, occlusionSummaries } from "../report/occlusion_figures.ts";
import { forget } from "../store/forget.ts";
import { Manifest, outcomeToRow } from "../store/manifest.ts";
import { dataPaths, occlusionMapPath } from "../store/paths.ts";
import { ok } from "../core/types.ts";
import { occlusionPanel, readFaceMap } from "../web/occlusion_panel.ts";

const SIDE = 128;

/** The crop's mean brightness inside `box`. */
function meanIn(image: RgbImage, box: Box): number {
  let sum = 0;
  for (let y = box.y; y < box.y + box.height; y++) {
    for (let x = box.x; x < box.x + box.width; x++) {
      for (let c = 0; c < 3; c++) sum += image.data[(y * image.width + x) * 3 + c]!;
    }
  }
  return sum / (box.width * box.height * 3);
}

/**
 * A planted pixel model: p(b) rises with the brightness of `region` and nothing else, so
 * hiding any other place cannot move it.
 */
function plantedClassifier(kind: "cnn" | "descriptor", region: Box): Classifier {
  return {
    metadata: {
      kind,
      classes: ["a", "b"],
      preprocessing: { input: "crop", size: SIDE, channels: 3, scale: 1 / 255 },
    } as Classifier["metadata"],
    predict: (faces: FaceInput[]) =>
      Promise.resolve(faces.map((face) => {
        assert.ok(isRgbImage(face.crop), "the run hands decoded crops");
        const s = (meanIn(face.crop as RgbImage, region) - 128) / 128;
        const b = Math.min(0.99, Math.max(0.01, 0.5 + 0.45 * s));
        return Float32Array.from([1 - b, b]);
      })),
    dispose: () => {},
  };
}

/** Grey noise, with `regions` white for class b and black for class a. */
function plantedCrop(label: "a" | "b", seed: number, regions: Box[]): RgbImage {
  const data = new Uint8Array(SIDE * SIDE * 3);
  let state = seed * 7919 + 1;
  for (let i = 0; i < data.length; i++) {
    state = (state * 1103515245 + 12345) % 2147483648;
    data[i] = 60 + (state % 140);
  }
  const image: RgbImage = { width: SIDE, height: SIDE, data };
  return regions.reduce<RgbImage>((img, r) => occlude(img, r, label === "b" ? 255 : 0), image);
}

function plantedFaces(count: number, regions: Box[]) {
  const records: SplitRecord[] = [];
  const crops = new Map<string, RgbImage>();
  for (let i = 0; i < count; i++) {
    const category = i % 2 ? "b" : "a";
    const id = (0x10000000 + i).toString(16);
    records.push(
      { id, category, split: "test", fold: null, descriptor: [] } as unknown as SplitRecord,
    );
    crops.set(id, plantedCrop(category, i, regions));
  }
  return { records, crops };
}

const box = (x: number, y: number, width: number, height = width): Box => ({ x, y, width, height });
/** Inside the face box ([32, 96)² of a 128 px crop at 50 %), on the 16 px grid. */
const INSIDE = box(48, 48, 32);
/** The bottom-left corner, outside the face box. */
const OUTSIDE = box(0, 96, 32);

Deno.test("occlusionGrid() covers the crop, the last patch at the edge, and checks its options", () => {
  const grid = occlusionGrid(128, 128, 32, 16);
  assert.equal(grid.positions.length, 49);
  assert.deepEqual(grid.positions.at(-1), box(96, 96, 32));
  assert.deepEqual(occlusionGrid(100, 100, 32, 32).positions.map((p) => p.x).slice(0, 4), [
    0,
    32,
    64,
    68,
  ]);
  assert.throws(() => occlusionGrid(128, 128, 32, 40), RangeError);
  assert.throws(() => occlusionGrid(128, 128, 0, 1), RangeError);
  const map = pixelMap(occlusionGrid(4, 4, 2, 2), [1, 0, 0, 0]);
  assert.deepEqual([map[0], map[5], map[2], map[15]], [1, 1, 0, 0]);
});

Deno.test("occlusionSample() takes the same faces whatever their order, at most n per class", () => {
  const faces = Array.from({ length: 40 }, (_, i) => ({
    id: `id${i}`,
    category: i % 4 === 0 ? "rare" : "common",
  }));
  const sample = occlusionSample(faces, 6);
  assert.equal(sample.filter((f) => f.category === "rare").length, 6);
  assert.equal(sample.filter((f) => f.category === "common").length, 6);
  const reversed = occlusionSample([...faces].reverse(), 6);
  assert.deepEqual(reversed.map((f) => f.id).sort(), sample.map((f) => f.id).sort());
  // A smaller sample is part of the larger one: the rule ranks ids, it does not draw.
  const small = new Set(occlusionSample(faces, 3).map((f) => f.id));
  assert.ok([...small].every((id) => sample.some((f) => f.id === id)));
  assert.equal(occlusionSample(faces, 100).length, 40);
  assert.throws(() => occlusionSample(faces, -1), RangeError);
});

Deno.test("a model that reads one region inside the face: the map peaks there, all of it inside", async () => {
  const { records, crops } = plantedFaces(8, [INSIDE]);
  const trained = [{
    kind: "cnn" as const,
    fold: null,
    classifier: plantedClassifier("cnn", INSIDE),
  }];
  const result = await occlusionMaps(trained, records, crops, {
    perClass: 3,
    patch: 16,
    stride: 16,
  });
  assert.equal(result.frames.crop.faces.length, 6, "3 per class");
  const summary = occlusionSummaries(result).cnn!;
  assert.equal(summary.insideFace, 1);
  for (const face of result.frames.crop.faces) {
    const map = pixelMap(result.frames.crop.grid, face.kinds.cnn!.falls);
    const peak = peakOf(map, SIDE);
    assert.ok(
      peak.x >= INSIDE.x && peak.x < INSIDE.x + 32 && peak.y >= INSIDE.y && peak.y < INSIDE.y + 32,
      `peak ${JSON.stringify(peak)} of ${face.id} lies in the planted region`,
    );
    assert.ok(face.kinds.cnn!.falls.some((f) => f > 0.05), "hiding the region lowers p(true)");
  }
});

Deno.test("a region outside the face gives 0 % inside; an ensemble of both gives half", async () => {
  const { records, crops } = plantedFaces(8, [INSIDE, OUTSIDE]);
  const inside = plantedClassifier("cnn", INSIDE);
  const outside = plantedClassifier("descriptor", OUTSIDE);
  const trained = [
    { kind: "descriptor" as const, fold: null, classifier: outside },
    {
      kind: "ensemble" as const,
      fold: null,
      classifier: new EnsembleClassifier([inside, outside]),
    },
  ];
  // Default grid (32 px patches every 16 px): falls spread over a patch, so the share is
  // measured on the 16 px grid below, where it is exact.
  const result = await occlusionMaps(trained, records, crops, { patch: 16, stride: 16 });
  const summaries = occlusionSummaries(result);
  assert.equal(summaries.descriptor!.insideFace, 0);
  assert.ok(Math.abs(summaries.ensemble!.insideFace! - 0.5) < 1e-3, "equal regions, equal weights");
  const coarse = await occlusionMaps(trained, records, crops, {});
  assert.equal(coarse.frames.crop.grid.positions.length, 49);
  assert.ok(occlusionSummaries(coarse).descriptor!.insideFace! < 0.2, "spill from 32 px patches");
});

/** A planted context model: p(b) rises with the brightness of one cell block of the masked photo. */
function plantedContext(region: Box): Classifier {
  return {
    metadata: {
      kind: "context",
      classes: ["a", "b"],
      preprocessing: { input: "descriptor", length: 432, network: "context" },
    } as Classifier["metadata"],
    predict: (faces: FaceInput[]) =>
      Promise.resolve(faces.map((face) => {
        const photo = face.embeddings!.context!;
        const image = { width: 12, height: 12, data: Uint8Array.from(photo) };
        const b = Math.min(0.99, Math.max(0.01, 0.5 + 0.45 * (meanIn(image, region) - 128) / 128));
        return Float32Array.from([1 - b, b]);
      })),
    dispose: () => {},
  };
}

Deno.test("context is mapped over the masked photo: its peak where it reads, none in the face box", async () => {
  const { records, crops } = plantedFaces(6, [INSIDE]);
  const top = box(0, 0, 12, 3);
  for (const record of records) {
    // A 120×120 photo squeezed to 12×12: its top 3 rows carry the class, noise elsewhere, and
    // the face box (its middle third) painted grey, as the face stage does.
    const data = Uint8Array.from(
      { length: 432 },
      (_, i) => i < 12 * 3 * 3 ? (record.category === "b" ? 255 : 0) : 90 + (i * 37) % 80,
    );
    const photo = occlude({ width: 12, height: 12, data }, box(4, 4, 4));
    Object.assign(record, {
      width: 120,
      height: 120,
      faceBox: box(40, 40, 40),
      embeddings: { context: Array.from(photo.data) },
    });
  }
  const trained = [
    { kind: "cnn" as const, fold: null, classifier: plantedClassifier("cnn", INSIDE) },
    { kind: "context" as const, fold: null, classifier: plantedContext(top) },
  ];
  const root = await Deno.makeTempDir();
  const result = await occlusionMaps(trained, records, crops, { reportDir: root });
  const photo = result.frames.photo!;
  assert.equal(photo.grid.positions.length, 100, "3 px patches every px over 12×12");
  const summaries = occlusionSummaries(result);
  assert.equal(summaries.context!.frame, "photo");
  assert.equal(summaries.cnn!.frame, "crop");
  // The box is grey already: only patches that reach from the planted rows into it spill there.
  assert.ok(summaries.context!.insideFace! < 0.05, `${summaries.context!.insideFace}`);
  for (const face of photo.faces) {
    const peak = peakOf(pixelMap(photo.grid, face.kinds.context!.falls), 12);
    assert.ok(peak.y < 3, `peak ${JSON.stringify(peak)} in the planted top rows`);
  }
  const file = await readFaceMap(root, records[0]!.id);
  assert.equal(file?.photo?.kinds.context?.falls.length, 100);
  assert.deepEqual(file?.photo?.faceBox, box(4, 4, 4));
  await Deno.remove(root, { recursive: true });
});

Deno.test("the report's section writes one PNG per model with the per-class panels", async () => {
  const { records, crops } = plantedFaces(6, [INSIDE]);
  const trained = [{
    kind: "cnn" as const,
    fold: null,
    classifier: plantedClassifier("cnn", INSIDE),
  }];
  const result = await occlusionMaps(trained, records, crops, {});
  const dir = await Deno.makeTempDir();
  const written: string[] = [];
  const section = await occlusionSection(result, {
    figure: async (name, png) => {
      await Deno.writeFile(join(dir, name), png);
      written.push(name);
      return `<figure>${name}</figure>`;
    },
  });
  assert.deepEqual(written, ["occlusion-cnn.png"]);
  const { width = 0, height = 0, format } = await sharp(join(dir, "occlusion-cnn.png")).metadata();
  assert.equal(format, "png");
  assert.equal(width, 2 * (2 * SIDE + 10) + 10, "two class panels at twice the crop's size");
  assert.ok(height > 2 * SIDE);
  assert.match(section.html, /<details class="occlusion"><summary><h2[^>]*>Where the models look/);
  assert.equal(section.summaries.cnn!.faces, 6);
  assert.deepEqual(Object.keys(section.summaries.cnn!.classes), ["a", "b"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("describeCrop() reads a crop as the face stage read the photo; outside its windows nothing moves", async () => {
  const bytes = await Deno.readFile(new URL("./testdata/faces/portrait.jpg", import.meta.url));
  const networks = ["mobilefacenet", "landmarks"] as const;
  const face = (await extractFaces(bytes, { networks: [...networks] })).faces[0]!;
  const crop = await decodeRgb(face.crop);
  const again = await describeCrop(crop, { networks });
  const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    let [dot, x, y] = [0, 0, 0];
    for (let i = 0; i < a.length; i++) {
      [dot, x, y] = [dot + a[i]! * b[i]!, x + a[i]! ** 2, y + b[i]! ** 2];
    }
    return dot / Math.sqrt(x * y);
  };
  assert.ok(cosine(again.descriptor, face.descriptor) > 0.98, "descriptor");
  for (const name of networks) {
    assert.ok(cosine(again.embeddings[name]!, face.embeddings[name]!) > 0.98, name);
  }
  // A patch in the corner lies outside every window: every embedding stays as it was.
  const windows = cropWindows(crop.width, crop.height, 50, [...networks]);
  const corner = box(0, 0, 12);
  for (const window of Object.values(windows)) assert.ok(window!.x > 12 && window!.y > 12);
  const cornered = await describeCrop(occlude(crop, corner), { networks });
  assert.deepEqual(cornered.descriptor, again.descriptor);
  for (const name of networks) assert.deepEqual(cornered.embeddings[name], again.embeddings[name]);
  // A patch over the face moves the descriptor.
  const hidden = await describeCrop(occlude(crop, windows.descriptor!), { networks: [] });
  assert.ok(cosine(hidden.descriptor, again.descriptor) < 0.95);
});

Deno.test("the face page shows its own maps, and forget removes them with the person", async () => {
  const root = await Deno.makeTempDir();
  const paths = dataPaths(root);
  const { records, crops } = plantedFaces(4, [INSIDE]);
  const manifest = await Manifest.open(paths.manifest);
  for (const record of records) {
    manifest.set(outcomeToRow(
      ok({
        id: record.id,
        category: record.category,
        name: `person ${record.id}`,
        imageUrl: `https://u.example/${record.id}.jpg`,
        pageUrl: "https://u.example/p",
        sha256: record.id.repeat(8),
        identity: record.id,
      }),
      "split",
    ));
  }
  manifest.flushSync();
  const trained = [{
    kind: "cnn" as const,
    fold: null,
    classifier: plantedClassifier("cnn", INSIDE),
  }];
  await occlusionMaps(trained, records, crops, { reportDir: paths.reports });
  const gone = records[0]!.id;
  assert.ok((await Deno.stat(occlusionMapPath(paths.reports, gone))).isFile);
  const file = await readFaceMap(paths.reports, gone);
  assert.equal(file?.crop?.kinds.cnn?.falls.length, 49);
  assert.equal(file?.photo, undefined, "no context model, no photo map");
  assert.equal(JSON.stringify(file).includes("person"), false, "no name in the map");
  const row = manifest.rows().find((r) => r.id === gone)!;
  const page = String(await occlusionPanel(paths.reports, { ...row, status: "ok" }));
  assert.match(page, /<svg[^>]*aria-label="occlusion map of cnn"/);
  assert.match(page, /fill="#e61e14"/, "red where hiding the region lowers p(true)");

  const result = await forget({ dataDir: root, ids: [gone] });
  assert.equal(result.records, 1);
  assert.equal(result.faceFiles, 1, "the map is the one per-face file this data dir had");
  assert.equal(await readFaceMap(paths.reports, gone), undefined);
  const after = String(await occlusionPanel(paths.reports, { ...row, status: "ok" }));
  assert.match(after, /No occlusion map for this face/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("--occlusion-faces 0 maps nothing and leaves no earlier run's map behind", async () => {
  const root = await Deno.makeTempDir();
  const { records, crops } = plantedFaces(4, [INSIDE]);
  const trained = [
    { kind: "cnn" as const, fold: null, classifier: plantedClassifier("cnn", INSIDE) },
  ];
  const log = () => {};
  await occlusionMaps(trained, records, crops, { reportDir: root, log });
  assert.ok(await readFaceMap(root, records[0]!.id));
  const none = await occlusionMaps(trained, records, crops, { reportDir: root, perClass: 0, log });
  assert.equal(none.frames.crop.faces.length, 0);
  assert.equal(await readFaceMap(root, records[0]!.id), undefined);
  const section = await occlusionSection(none, { figure: () => Promise.resolve("") });
  assert.equal(section.html, "", "no section without maps");
  await Deno.remove(root, { recursive: true });
});

Deno.test("a face the models cannot score is a reason in the result; the others are mapped", async () => {
  const { records, crops } = plantedFaces(6, [INSIDE]);
  const planted = plantedClassifier("cnn", INSIDE);
  const broken = records[2]!.id;
  const classifier: Classifier = {
    ...planted,
    predict: (faces) =>
      faces.some((f) => f.crop === crops.get(broken))
        ? Promise.reject(new Error("no such input\nsecond line"))
        : planted.predict(faces),
  };
  const lines: string[] = [];
  const result = await occlusionMaps([{ kind: "cnn", fold: null, classifier }], records, crops, {
    log: (line) => lines.push(line),
  });
  assert.deepEqual(result.failed, [{ id: broken, reason: "occlusion_failed: no such input" }]);
  assert.equal(result.frames.crop.faces.length, 5);
  assert.match(lines[0]!, /1 not mapped: occlusion_failed: no such input$/);
  const section = await occlusionSection(result, { figure: () => Promise.resolve("") });
  assert.match(section.html, /1 sampled faces could not be mapped/);
});
