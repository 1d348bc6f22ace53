/**
 * A synthetic data dir for the export's tests and memory check: N faces with small PNG crops,
 * originals and face cache entries, written through the Manifest API as a run would leave
 * them. No person in it exists.
 *
 *   deno run -A commands/dev/synthetic_store.ts --out /tmp/synthetic --faces 8730
 */
import { parseArgs } from "node:util";
import sharp from "sharp";
import { sha256Hex } from "../../core/ids.ts";
import { writeFileAtomic } from "../../core/files.ts";
import { Manifest, type ManifestRow } from "../../store/manifest.ts";
import { blobPath, dataPaths } from "../../store/paths.ts";

export interface SyntheticStoreOptions {
  /** Faces with a split (status ok). */
  faces: number;
  /** @default ["alpha", "beta"] */
  categories?: string[];
  /** Side of the crops. @default 32 */
  cropSize?: number;
  /** Give each face a fold 0…k-1 as a run with `--folds k` does. @default none */
  folds?: number;
  /** Dropped records (status rejected at faces), by reason code. @default {} */
  dropped?: Record<string, number>;
  /** Changes to face i's row (a hostile category or id, a role, a score). */
  row?: (i: number) => Partial<ManifestRow>;
}

/** Distinct PNGs of seeded noise (about as large as real crops), reused round-robin. */
async function pngs(size: number, count: number): Promise<Uint8Array[]> {
  const images: Uint8Array[] = [];
  let seed = 1;
  for (let k = 0; k < count; k++) {
    const pixels = new Uint8Array(size * size * 3);
    for (let p = 0; p < pixels.length; p++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      pixels[p] = (seed >> 16) & 0xff;
    }
    const buffer = await sharp(pixels, { raw: { width: size, height: size, channels: 3 } })
      .png().toBuffer();
    images.push(new Uint8Array(buffer));
  }
  return images;
}

function baseRow(i: number, category: string): ManifestRow {
  const id = sha256Hex(`synthetic-id-${i}`).slice(0, 8);
  return {
    id,
    category,
    image_url: `http://127.0.0.1/people/${id}.png`,
    name: `Synthetic Person ${i}`,
    role: i % 3 === 0 ? "Professor" : i % 3 === 1 ? "Secretary" : "",
    page_url: `http://127.0.0.1/${category}/`,
    status: "ok",
    stage: "split",
    reason: "",
    sha256: sha256Hex(`synthetic-image-${i}`),
    format: "png",
    width: "32",
    height: "32",
    bytes: "0",
    face_count: "1",
    face_score: (0.5 + (i % 50) / 100).toFixed(4),
    face_box: "4 4 24 24",
    face_angle: "0.00",
    detector: "tiny",
    split: i % 10 < 7 ? "train" : i % 10 === 7 ? "val" : "test",
    fold: "",
    identity: id,
    updated_at: new Date(0).toISOString(),
  };
}

/** Writes a synthetic data dir at `dir`: manifest, originals, crops and face entries. */
export async function syntheticStore(dir: string, options: SyntheticStoreOptions): Promise<void> {
  const { faces, categories = ["alpha", "beta"], cropSize = 32, folds, dropped = {} } = options;
  const paths = dataPaths(dir);
  const faceDir = `${paths.faceCache}/synthetic`;
  const images = await pngs(cropSize, 16);
  const manifest = await Manifest.open(paths.manifest, { flushIntervalMs: 60_000 });
  const descriptor = Array.from({ length: 128 }, (_, k) => Math.round(Math.sin(k) * 1e4) / 1e4);
  for (let i = 0; i < faces; i++) {
    const row = { ...baseRow(i, categories[i % categories.length]!), ...options.row?.(i) };
    if (folds) row.fold = String(i % folds);
    const png = images[i % images.length]!;
    row.bytes = String(png.length);
    await writeFileAtomic(blobPath(paths.imageCache, row.sha256), png);
    await writeFileAtomic(blobPath(faceDir, row.sha256, ".png"), png);
    const entry = {
      status: "ok",
      record: {
        faceBox: { x: 4, y: 4, width: 24, height: 24 },
        faceScore: Number(row.face_score),
        faceCount: 1,
        faceAngle: 0,
        descriptor,
        detector: "tiny",
      },
    };
    await writeFileAtomic(blobPath(faceDir, row.sha256, ".json"), JSON.stringify(entry));
    manifest.set(row);
  }
  let d = 0;
  for (const [reason, n] of Object.entries(dropped)) {
    for (let k = 0; k < n; k++, d++) {
      const row = baseRow(faces + d, categories[d % categories.length]!);
      manifest.set({ ...row, status: "rejected", stage: "faces", reason, split: "", sha256: "" });
    }
  }
  manifest.flushSync();
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { out: { type: "string" }, faces: { type: "string" }, size: { type: "string" } },
  });
  if (!values.out || !values.faces) {
    console.error("usage: synthetic_store.ts --out DIR --faces N [--size PX]");
    Deno.exit(2);
  }
  await syntheticStore(values.out, {
    faces: Number(values.faces),
    cropSize: Number(values.size ?? 128),
  });
  console.log(`wrote ${values.faces} synthetic faces to ${values.out}`);
}
