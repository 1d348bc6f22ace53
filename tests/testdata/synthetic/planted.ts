/**
 * A planted confound: the faces carry no signal, the photos do. The demo's people (cut at run
 * time from face-api's sample photos with data/demo/people.json's boxes) each appear once in
 * `alpha` and once in `beta`, so a face says nothing about its class. Every `alpha` photo
 * carries a style of its source: `alpha-cast` a dark blue colour cast, `alpha-jpeg` an
 * overexposed look at JPEG quality 12. `beta`'s two sources are plain photos at quality 90.
 * A model that scores well here has learned the style; leaving one source out must expose it.
 * The descriptors are random per person: they carry who it is, never the class.
 */
import sharp from "sharp";
import { join } from "node:path";
import { sha256Hex } from "../../../core/ids.ts";
import type { FaceRecord } from "../../../core/types.ts";
import { seededRandom } from "../../../models/augment.ts";
import { faceApiPackageDir } from "../../../models/faces/package_files.ts";

interface DemoPerson {
  sample: string;
  box: { x: number; y: number; width: number; height: number };
  flop?: boolean;
}

export const PLANTED_SOURCES = {
  "alpha-cast": "alpha",
  "alpha-jpeg": "alpha",
  "beta-one": "beta",
  "beta-two": "beta",
} as const;

export type PlantedSource = keyof typeof PLANTED_SOURCES;

/** The source row's URL of a planted source: every page of it lies under it. */
export const plantedSourceUrl = (source: PlantedSource) => `https://planted.example/${source}/`;

const WIDTH = 120;
const HEIGHT = 150;

/** Applies a source's photo style to a portrait and encodes it as that source's JPEG. */
function styled(image: sharp.Sharp, source: PlantedSource): Promise<Buffer> {
  switch (source) {
    case "alpha-cast":
      return image.recomb([[0.45, 0, 0], [0, 0.5, 0], [0.05, 0.05, 0.9]]).jpeg({ quality: 90 })
        .toBuffer();
    case "alpha-jpeg":
      return image.linear(0.5, 128).jpeg({ quality: 12 }).toBuffer();
    default:
      return image.jpeg({ quality: 90 }).toBuffer();
  }
}

/**
 * Writes the planted set's images and crops under `dir`: 2 × the demo's people, half of each
 * class per source, faces assigned to sources at random (seeded).
 */
export async function plantedFaces(dir: string, seed = 7): Promise<FaceRecord[]> {
  const people = JSON.parse(
    await Deno.readTextFile(new URL("../../../data/demo/people.json", import.meta.url)),
  ) as DemoPerson[];
  const random = seededRandom(seed);
  const sampleDir = join(faceApiPackageDir(), "demo");
  const records: FaceRecord[] = [];
  for (const [i, person] of people.entries()) {
    let portrait = sharp(join(sampleDir, person.sample)).rotate().extract({
      left: person.box.x,
      top: person.box.y,
      width: person.box.width,
      height: person.box.height,
    });
    if (person.flop) portrait = portrait.flop();
    const plain = await portrait.resize(WIDTH, HEIGHT, { fit: "cover" }).removeAlpha().png()
      .toBuffer();
    const coin = random() < 0.5;
    // One descriptor per person (as the face net would give both photos), so the split sees
    // one identity and keeps the person's two records on one side.
    const descriptor = Array.from({ length: 128 }, () => random() - 0.5);
    const alphaSource: PlantedSource = (i % 2 === 0) === coin ? "alpha-cast" : "alpha-jpeg";
    const betaSource: PlantedSource = (i % 2 === 0) === coin ? "beta-one" : "beta-two";
    for (const source of [alphaSource, betaSource]) {
      const bytes = await styled(sharp(plain), source);
      const id = sha256Hex(`planted/${seed}/${source}/${i}`).slice(0, 8);
      const imagePath = join(dir, `${id}.jpg`);
      const cropPath = join(dir, `${id}.png`);
      await Deno.writeFile(imagePath, bytes);
      // The crop: a square around the face, as the face stage would align it.
      const top = Math.round(HEIGHT * 0.45 - WIDTH / 2);
      await Deno.writeFile(
        cropPath,
        await sharp(bytes).extract({ left: 0, top, width: WIDTH, height: WIDTH }).resize(128, 128)
          .png().toBuffer(),
      );
      records.push({
        id,
        category: PLANTED_SOURCES[source],
        imageUrl: `${plantedSourceUrl(source)}${id}.jpg`,
        name: `Planted ${id}`,
        pageUrl: plantedSourceUrl(source),
        sha256: sha256Hex(bytes),
        imagePath,
        format: "jpeg",
        width: WIDTH,
        height: HEIGHT,
        bytes: bytes.length,
        cropPath,
        faceBox: {
          x: WIDTH * 0.25,
          y: HEIGHT * 0.45 - WIDTH * 0.3,
          width: WIDTH * 0.5,
          height: WIDTH * 0.6,
        },
        faceScore: 0.99,
        faceCount: 1,
        faceAngle: 0,
        descriptor,
        detector: "planted",
      });
    }
  }
  return records;
}
