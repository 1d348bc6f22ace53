/**
 * Synthetic faces for the split, bridge and model tests: per class a distinct crop pattern
 * (PNG made with sharp) and a descriptor drawn around a class mean, so a model can learn
 * them, and nothing personal.
 */
import sharp from "sharp";
import { join } from "node:path";
import { from, lastValueFrom, toArray } from "rxjs";
import { sha256Hex } from "../../../core/ids.ts";
import type { FaceRecord, SplitRecord } from "../../../core/types.ts";
import { isOk } from "../../../core/types.ts";
import { seededRandom } from "../../../models/augment.ts";
import { assignSplit, type SplitOptions } from "../../../stages/split.ts";

export interface SyntheticOptions {
  classes?: string[];
  perClass?: number;
  /** Crop side in pixels (the PNG's size; stores resize to their own). */
  size?: number;
  seed?: number;
  /** Descriptor noise per dimension around the class mean (means differ by ~0.2 a dimension). */
  noise?: number;
  /** Write PNG crops (slower); descriptors only otherwise. */
  crops?: boolean;
}

/** Writes crops under `dir` and returns face records, classes interleaved. */
export async function syntheticFaces(
  dir: string,
  options: SyntheticOptions = {},
): Promise<FaceRecord[]> {
  const {
    classes = ["biology", "history", "physics"],
    perClass = 30,
    size = 64,
    seed = 1,
    noise = 0.1,
    crops = true,
  } = options;
  const random = seededRandom(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(random() + 1e-12)) * Math.cos(2 * Math.PI * random());
  const means = classes.map(() => Array.from({ length: 128 }, () => (random() < 0.5 ? -0.1 : 0.1)));
  const records: FaceRecord[] = [];
  for (let i = 0; i < perClass; i++) {
    for (const [c, category] of classes.entries()) {
      const id = sha256Hex(`${seed}/${category}/${i}`).slice(0, 8);
      const cropPath = join(dir, `${id}.png`);
      let sha256 = sha256Hex(id);
      if (crops) {
        const pixels = new Uint8Array(size * size);
        for (let y = 0; y < size; y++) {
          for (let x = 0; x < size; x++) {
            // Class 0 brightens to the right, 1 to the left, 2 downwards, others a checker.
            const t = c === 0
              ? x / size
              : c === 1
              ? 1 - x / size
              : c === 2
              ? y / size
              : ((x >> 3) + (y >> 3)) % 2;
            pixels[y * size + x] = Math.max(
              0,
              Math.min(255, Math.round(40 + 170 * t + 25 * gauss())),
            );
          }
        }
        const png = await sharp(pixels, { raw: { width: size, height: size, channels: 1 } }).png()
          .toBuffer();
        await Deno.writeFile(cropPath, png);
        sha256 = sha256Hex(png);
      }
      records.push({
        id,
        category,
        imageUrl: `https://people.example/${id}.jpg`,
        name: `Person ${id}`,
        pageUrl: `https://people.example/${category}`,
        sha256,
        imagePath: cropPath,
        format: "png",
        width: size,
        height: size,
        bytes: 0,
        cropPath,
        faceBox: { x: 0, y: 0, width: size, height: size },
        faceScore: 0.99,
        faceCount: 1,
        faceAngle: 0,
        descriptor: means[c]!.map((m) => m + noise * gauss()),
        detector: "synthetic",
      });
    }
  }
  return records;
}

/** Runs records through the split stage and keeps the ok ones. */
export async function splitFaces(
  records: FaceRecord[],
  options?: SplitOptions,
): Promise<SplitRecord[]> {
  const outcomes = await lastValueFrom(from(records).pipe(assignSplit(options), toArray()));
  return outcomes.filter(isOk).map((o) => o.record);
}
