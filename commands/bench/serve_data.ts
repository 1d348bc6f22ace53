/**
 * A synthetic data dir for `bench:serve` and the web app's tests, built through the store's own
 * code (manifest rows, page log, content-addressed blobs): `faces` records with a crop and a
 * descriptor in the face cache, spread over four sources and the 70/10/20 split, plus
 * `rejected` records that kept their image and a reason. No trained model.
 */
import { join } from "node:path";
import sharp from "sharp";
import { sha256Hex } from "../../core/ids.ts";
import { writeFileAtomic } from "../../core/files.ts";
import { ok, type SplitName } from "../../core/types.ts";
import { Manifest, outcomeToRow } from "../../store/manifest.ts";
import { PageLog } from "../../store/page_log.ts";
import { blobPath, type DataPaths, dataPaths } from "../../store/paths.ts";
import { startDemoSite } from "../../pipeline/demo_site.ts";
import type { FaceCacheEntry } from "../../stages/detect_faces.ts";

export const SYNTHETIC_CATEGORIES = ["biology", "chemistry", "history", "law"];
/** The face settings folder the synthetic crops go under. */
export const SYNTHETIC_SETTINGS = "synthetic000";

export interface SyntheticOptions {
  /**
   * Records with a face in the split.
   * @default 24
   */
  faces?: number;
  /**
   * Records rejected at the face stage (`no_face`), with their image kept.
   * @default 2
   */
  rejected?: number;
}

/** A 64×64 PNG of seeded noise: every index gives other bytes, hence another sha256. */
async function noisePng(index: number): Promise<Uint8Array> {
  const pixels = new Uint8Array(64 * 64 * 3);
  let state = (index + 1) * 2654435761 >>> 0;
  for (let i = 0; i < pixels.length; i++) {
    state = (state * 1664525 + 1013904223) >>> 0;
    pixels[i] = state >>> 24;
  }
  const png = await sharp(pixels, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
  return new Uint8Array(png);
}

const SPLIT_CYCLE: SplitName[] = [
  "train",
  "train",
  "train",
  "train",
  "train",
  "train",
  "train",
  "val",
  "test",
  "test",
];

/** Writes one record: its image, its face stage cache entry (a crop or a rejection), its row. */
async function writeRecord(
  paths: DataPaths,
  manifest: Manifest,
  source: { category: string; url: string },
  index: number,
  split: SplitName | "rejected",
): Promise<string> {
  const settingsDir = join(paths.faceCache, SYNTHETIC_SETTINGS);
  const png = await noisePng(index);
  const sha256 = sha256Hex(png);
  await writeFileAtomic(blobPath(paths.imageCache, sha256), png);
  const id = sha256Hex(`synthetic ${index}`).slice(0, 8);
  const person = {
    id,
    category: source.category,
    imageUrl: `${source.url}/${index}.png`,
    name: `Person ${index}`,
    pageUrl: source.url,
    sha256,
    format: "png",
    width: 64,
    height: 64,
    bytes: png.length,
  };
  if (split === "rejected") {
    // The face cache's own shape (stages/detect_faces.ts): an Outcome of the face fields.
    const entry: FaceCacheEntry = {
      status: "rejected",
      stage: "faces",
      reason: "no_face",
      record: { faceCount: 0 },
    };
    await writeFileAtomic(blobPath(settingsDir, sha256, ".json"), JSON.stringify(entry));
    manifest.set(
      outcomeToRow({ ...entry, record: { ...person, faceCount: 0 } }, "faces"),
    );
    return id;
  }
  const faceBox = { x: 8, y: 8, width: 48, height: 48 };
  const descriptor = Array.from({ length: 128 }, (_, d) => Math.sin(index * 0.37 + d) * 0.1);
  await writeFileAtomic(blobPath(settingsDir, sha256, ".png"), png);
  const face = { faceBox, faceScore: 0.9, faceCount: 1, faceAngle: 0, detector: "synthetic" };
  const entry: FaceCacheEntry = ok({ ...face, descriptor });
  await writeFileAtomic(blobPath(settingsDir, sha256, ".json"), JSON.stringify(entry));
  manifest.set(outcomeToRow(ok({ ...person, ...face, split, fold: null, identity: id }), "split"));
  return id;
}

/** Writes the data dir under `root` (made if missing) and returns the ids it holds. */
export async function buildSyntheticDataDir(
  root: string,
  options: SyntheticOptions = {},
): Promise<{ faces: string[]; rejected: string[] }> {
  const { faces = 24, rejected = 2 } = options;
  for (const [name, value] of Object.entries({ faces, rejected })) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`'${name}' must be a non-negative integer: got ${value}`);
    }
  }
  const paths = dataPaths(root);
  await Deno.mkdir(root, { recursive: true });
  const pageLog = await PageLog.open(paths.pages);
  const sources = SYNTHETIC_CATEGORIES.map((category) => ({
    category,
    url: `https://${category}.example.org/people`,
  }));
  for (const source of sources) {
    pageLog.record({
      source_url: source.url,
      page_url: source.url,
      category: source.category,
      status: "ok",
      reason: "",
      people: "0",
    });
    pageLog.recordComplete(source.url, source.category);
  }
  const manifest = await Manifest.open(paths.manifest, { flushIntervalMs: 60_000 });
  const ids = { faces: [] as string[], rejected: [] as string[] };
  for (let i = 0; i < faces + rejected; i++) {
    const source = sources[i % sources.length]!;
    if (i >= faces) {
      ids.rejected.push(await writeRecord(paths, manifest, source, i, "rejected"));
      continue;
    }
    const split = SPLIT_CYCLE[Math.floor(i / sources.length) % SPLIT_CYCLE.length]!;
    ids.faces.push(await writeRecord(paths, manifest, source, i, split));
  }
  manifest.flushSync();
  return ids;
}

/**
 * The embedded demo site on a free port of its own, with a sources file for it. Not the demo's
 * fixed port: a demo run elsewhere (a parallel test) may hold that one, and a run that falls
 * back to another port gives its records new ids.
 */
export async function demoSourcesFile(
  dir: string,
): Promise<{ path: string; close(): Promise<void> }> {
  const site = await startDemoSite();
  const path = join(dir, "demo-sources.csv");
  await Deno.writeTextFile(path, site.sourcesCsv);
  return { path, close: () => site.close() };
}

/** The `pipeline` command's arguments for a short demo run (`epochs` epochs) into `root`. */
export function demoRunArgs(sources: string, root: string, epochs = 2): string[] {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  return [
    "run",
    "-A",
    main,
    "pipeline",
    "--sources",
    sources,
    "--data",
    root,
    "--epochs",
    String(epochs),
    "--patience",
    String(epochs),
    "--delay-ms",
    "0",
  ];
}

/** Trains the demo into `root` with the real command, in a process of its own. */
export async function trainDemoDataDir(root: string, epochs = 2): Promise<void> {
  const scratch = await Deno.makeTempDir({ prefix: "facefield-demo-sources-" });
  const sources = await demoSourcesFile(scratch);
  try {
    const run = await new Deno.Command(Deno.execPath(), {
      args: demoRunArgs(sources.path, root, epochs),
      stdout: "null",
      stderr: "piped",
    }).output();
    if (run.code !== 0) {
      throw new Error(`the demo run failed: ${new TextDecoder().decode(run.stderr).slice(-600)}`);
    }
  } finally {
    await sources.close();
    await Deno.remove(scratch, { recursive: true });
  }
}
