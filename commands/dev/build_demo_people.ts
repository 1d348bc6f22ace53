/**
 * Builds data/demo/people.json, the offline demo's staff: one entry per face that face-api's
 * SSD MobileNet v1 finds in its sample photos, with a portrait crop box, an invented name and a
 * department. Run once by hand; the demo site only crops with these boxes, so it starts fast
 * and the same crops come out every time.
 *
 *   deno run -A commands/dev/build_demo_people.ts
 *
 * The names are fictional. The sample photos ship with @vladmandic/face-api (MIT).
 */
import * as faceapi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import sharp from "sharp";
import { initEngine, tf } from "../../models/engine.ts";

const require = createRequire(import.meta.url);
const faceApiDir = dirname(require.resolve("@vladmandic/face-api/package.json"));
const SAMPLES = [1, 2, 3, 4, 5, 6].map((n) => `sample${n}.jpg`);

export const DEPARTMENTS = [
  "computer-science",
  "economics",
  "german-studies",
  "mechanical-engineering",
] as const;

/** Fictional names; titles on some, as real staff pages show them. */
const NAMES = [
  "Prof. Dr. Helena Varga",
  "Johanna Brettschneider",
  "Dr. Amara Okafor",
  "Lena Feldmann",
  "Prof. Dr. Ingrid Solberg",
  "Marisol Alvarez",
  "Dr. Yuki Tanabe",
  "Clara Weinreich",
  "Prof. Dr.-Ing. Teresa Randall",
  "Sofia Lindqvist",
  "Dr. rer. nat. Emilia Kowalczyk",
  "Nadia Haddad",
  "Prof. Maren Oosterhuis",
  "Leonie Strassberg",
  "Dr. Farah Mansour",
  "Greta Holmgren",
  "Dipl.-Ing. Paula Ebner",
  "Dr. Ines Carvalho",
  "Prof. Dr. Katrin Albrecht",
  "Mira Petrovic",
  "Dr. phil. Ruth Abendroth",
  "Selma Achterberg",
  "Prof. Dr. Elif Demirci",
  "Thea Lindemann",
  "Dr. Hanna Vossberg",
  "Bianca Castellanos",
  "Prof. Dr. Agnes Wiltshire",
  "Olivia Brandl",
];

export interface DemoPerson {
  sample: string;
  /** Portrait crop in the sample photo's pixels: the face box widened to a 4:5 head shot. */
  box: { x: number; y: number; width: number; height: number };
  name: string;
  department: string;
  /** Detector score, kept to show the faces are real detections. */
  score: number;
  /** Served mirrored: a second person made from a face already used, to even out departments. */
  flop?: boolean;
}

/** Faces per department the demo aims for; mirrored faces fill the gap. */
const PER_DEPARTMENT = 6;

/** Widens a face box to a 4:5 portrait (face about half the height), clamped to the photo. */
function portraitBox(
  face: { x: number; y: number; width: number; height: number },
  imageWidth: number,
  imageHeight: number,
) {
  const height = Math.min(imageHeight, face.height * 2.1);
  const width = Math.min(imageWidth, height * 0.8);
  const centerX = face.x + face.width / 2;
  const centerY = face.y + face.height * 0.55;
  const x = Math.min(Math.max(0, centerX - width / 2), imageWidth - width);
  const y = Math.min(Math.max(0, centerY - height / 2), imageHeight - height);
  return {
    x: Math.round(x),
    y: Math.round(y),
    width: Math.round(width),
    height: Math.round(height),
  };
}

async function main() {
  await initEngine();
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(join(faceApiDir, "model"));
  const options = new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5, maxResults: 50 });
  const found: Omit<DemoPerson, "name" | "department">[] = [];
  for (const sample of SAMPLES) {
    const { data, info } = await sharp(join(faceApiDir, "demo", sample))
      .rotate()
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const pixels = tf.tensor3d(new Uint8Array(data), [info.height, info.width, 3], "int32");
    const detections = await faceapi.detectAllFaces(pixels as never, options);
    pixels.dispose();
    // Reading order (rows, then left to right) keeps the ids stable between builds.
    const faces = detections
      .map((d) => ({ box: d.box, score: d.score }))
      .filter(({ box }) => box.width >= 48)
      .sort((a, b) =>
        Math.abs(a.box.y - b.box.y) > a.box.height / 2 ? a.box.y - b.box.y : a.box.x - b.box.x
      );
    for (const { box, score } of faces) {
      found.push({
        sample,
        box: portraitBox(box, info.width, info.height),
        score: Math.round(score * 1000) / 1000,
      });
    }
    console.error(`${sample}: ${faces.length} faces`);
  }
  const target = PER_DEPARTMENT * DEPARTMENTS.length;
  const mirrored = found.slice(0, Math.max(0, target - found.length))
    .map((face) => ({ ...face, flop: true }));
  const faces = [...found, ...mirrored];
  if (faces.length > NAMES.length) {
    throw new Error(`found ${faces.length} faces but have only ${NAMES.length} names`);
  }
  // Round-robin keeps every department's share of each photo about even.
  const people: DemoPerson[] = faces.map((face, index) => ({
    ...face,
    name: NAMES[index]!,
    department: DEPARTMENTS[index % DEPARTMENTS.length]!,
  }));
  const out = new URL("../../data/demo/people.json", import.meta.url);
  await Deno.writeTextFile(out, JSON.stringify(people, null, 1) + "\n");
  console.error(`wrote ${people.length} people to ${out.pathname}`);
}

if (import.meta.main) await main();
