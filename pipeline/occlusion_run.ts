/**
 * The run's occlusion maps: on a sample of held-out faces (`occlusionSample`, fixed before any
 * face is scored), a grey patch slides over the aligned crop, and each model that held the
 * face out scores every occluded copy. Pixel models read the occluded crop; the probes read
 * embeddings the face networks compute again from it (`describeCrop`), so a patch reaches a
 * probe the way it would reach its network. Composed models (ensemble, portrait) score with
 * their own prediction. Each face's map is kept in `<report>/occlusion/<id>.json`, where the
 * web app reads it and `forget` removes it.
 */
import { join } from "node:path";
import type { Box, RgbImage, SplitRecord } from "../core/types.ts";
import { writeFileAtomic } from "../core/files.ts";
import { type Classifier, type FaceInput, inputsOf, type ModelKind } from "../models/classifier.ts";
import { cropWindows, describeCrop, FACE_DEFAULTS } from "../models/faces/faces.ts";
import type { FaceNetworkName } from "../models/faces/face_networks.ts";
import {
  occlude,
  type OcclusionGrid,
  occlusionGrid,
  occlusionSample,
  overlaps,
} from "../models/occlusion.ts";
import type { FaceOcclusion, OcclusionResult } from "../report/occlusion_figures.ts";
import { OCCLUSION_DIR, occlusionMapPath } from "../store/paths.ts";

export interface OcclusionRunOptions {
  /**
   * Held-out faces per class at most, by the sample rule.
   * @default 8
   */
  perClass?: number;
  /**
   * Side of the grey patch in crop px: about an eye's width.
   * @default a quarter of the crop's side (32 px on 128 px crops)
   */
  patch?: number;
  /**
   * Step between patches in crop px.
   * @default half the patch
   */
  stride?: number;
  /**
   * Share of the crop height the face fills, as the face stage cut it.
   * @default 50
   */
  facePercent?: number;
  /**
   * Where the line that says what was mapped, in how long, goes.
   * @default console.error
   */
  log?: (line: string) => void;
  /**
   * The report folder: each face's map goes to `<reportDir>/occlusion/<id>.json`, the folder
   * emptied first; none is written without it.
   */
  reportDir?: string;
}

/** A trained model as the run holds it: its kind, the fold it held out, the classifier. */
export interface OcclusionModel {
  kind: ModelKind;
  fold: number | null;
  classifier: Classifier;
}

/** Why a kind gets no map, where a patch on the face crop cannot reach what it reads. */
export const NOT_MAPPED: Partial<Record<ModelKind, string>> = {
  context: "reads the photo with the face box painted grey (12×12 px), not the face crop: " +
    "a patch on the face does not reach it",
};

function heldOutBy(record: SplitRecord, fold: number | null): boolean {
  return fold === null ? record.split === "test" : record.fold === fold;
}

/** The face networks a set of models reads, and whether any reads the descriptor. */
function networksOf(models: readonly OcclusionModel[]) {
  const inputs = models.map((m) => inputsOf(m.classifier.metadata));
  const networks = [...new Set(inputs.flatMap((i) => i.networks))]
    .filter((name) => name !== "context");
  return { describe: inputs.some((i) => i.describe), networks };
}

/**
 * The whole crop and each occluded copy, as the models' input: the face networks run again
 * only on a copy whose patch reaches their window (elsewhere their input is unchanged, so the
 * whole crop's embedding stands); `context` keeps the stored masked photo.
 */
async function occludedInputs(
  crop: RgbImage,
  record: SplitRecord,
  grid: OcclusionGrid,
  reads: { describe: boolean; networks: FaceNetworkName[] },
  facePercent: number,
): Promise<FaceInput[]> {
  const windows = cropWindows(crop.width, crop.height, facePercent, reads.networks);
  const whole = reads.describe || reads.networks.length > 0
    ? await describeCrop(crop, { facePercent, ...reads })
    : { descriptor: Float32Array.from(record.descriptor), embeddings: {} };
  const embeddings = { ...record.embeddings, ...whole.embeddings };
  const inputs: FaceInput[] = [{ crop, descriptor: whole.descriptor, embeddings }];
  for (const rect of grid.positions) {
    const occluded = occlude(crop, rect);
    const networks = reads.networks.filter((name) => overlaps(rect, windows[name]!));
    const describe = reads.describe && overlaps(rect, windows.descriptor!);
    const again = networks.length > 0 || describe
      ? await describeCrop(occluded, { facePercent, networks, describe })
      : undefined;
    inputs.push({
      crop: occluded,
      descriptor: describe ? again!.descriptor : whole.descriptor,
      embeddings: { ...embeddings, ...again?.embeddings },
    });
  }
  return inputs;
}

/** One face's map for each model that held it out. */
async function mapFace(
  record: SplitRecord,
  crop: RgbImage,
  models: readonly OcclusionModel[],
  grid: OcclusionGrid,
  facePercent: number,
): Promise<FaceOcclusion> {
  const inputs = await occludedInputs(crop, record, grid, networksOf(models), facePercent);
  const kinds: FaceOcclusion["kinds"] = {};
  for (const { kind, classifier } of models) {
    const truth = classifier.metadata.classes.indexOf(record.category);
    if (truth < 0) continue;
    const probabilities = await classifier.predict(inputs);
    const base = probabilities[0]![truth]!;
    kinds[kind] = {
      base: round(base),
      falls: probabilities.slice(1).map((p) => round(base - p[truth]!)),
    };
  }
  return { id: record.id, category: record.category, crop, kinds };
}

const round = (value: number) => Math.round(value * 1e5) / 1e5;

/**
 * Occlusion maps of every model on the sampled held-out faces (see the file's comment).
 *
 * @example
 * ```ts
 * const result = await occlusionMaps(trained, records, crops, { reportDir: "data/report" });
 * result.faces[0]!.kinds.cnn!.falls; // one fall of the true class's probability per patch
 * ```
 */
export async function occlusionMaps(
  trained: readonly OcclusionModel[],
  records: readonly SplitRecord[],
  crops: ReadonlyMap<string, RgbImage>,
  options: OcclusionRunOptions = {},
): Promise<OcclusionResult> {
  const {
    perClass = 8,
    facePercent = FACE_DEFAULTS.facePercent,
    reportDir,
    log = (line: string) => console.error(line),
  } = options;
  const started = performance.now();
  const mapped = trained.filter((model) => !NOT_MAPPED[model.kind]);
  const heldOut = records.filter((record) =>
    crops.has(record.id) && mapped.some((model) => heldOutBy(record, model.fold))
  );
  const sample = occlusionSample(heldOut, perClass);
  const first = sample[0] && crops.get(sample[0].id)!;
  const side = Math.min(first?.width ?? 128, first?.height ?? 128);
  const { patch = Math.max(2, Math.round(side / 4)) } = options;
  const { stride = Math.max(1, Math.floor(patch / 2)) } = options;
  const grid = occlusionGrid(first?.width ?? 128, first?.height ?? 128, patch, stride);
  const faceBox: Box = cropWindows(grid.width, grid.height, facePercent, []).descriptor!;
  if (reportDir) {
    await Deno.remove(join(reportDir, OCCLUSION_DIR), { recursive: true }).catch(() => {});
  }
  const faces: FaceOcclusion[] = [];
  for (const record of sample) {
    const crop = crops.get(record.id)!;
    if (crop.width !== grid.width || crop.height !== grid.height) continue;
    const models = mapped.filter((model) => heldOutBy(record, model.fold));
    const face = await mapFace(record, crop, models, grid, facePercent);
    faces.push(face);
    if (reportDir) await writeFaceMap(reportDir, face, grid, faceBox);
  }
  const skipped = Object.fromEntries(
    [...new Set(trained.map((m) => m.kind))].flatMap((kind) =>
      NOT_MAPPED[kind] ? [[kind, NOT_MAPPED[kind]!]] : []
    ),
  );
  const seconds = Math.round(performance.now() - started) / 1000;
  log(
    `occlusion maps: ${faces.length} held-out faces × ${grid.positions.length} patches, ` +
      `${new Set(mapped.map((m) => m.kind)).size} model kinds, ${seconds.toFixed(1)} s`,
  );
  return {
    grid,
    faceBox,
    faces,
    skipped,
    portraitNote: trained.some((m) => m.kind === "portrait") ? PORTRAIT_NOTE : undefined,
    seconds,
  };
}

const PORTRAIT_NOTE = "portrait averages the face probes with context: the patch reaches its " +
  "face members through the face networks, while context's input (the masked photo) stays " +
  "as it was";

/** What `<report>/occlusion/<id>.json` holds: one face's map, no pixels and no name. */
export interface FaceMapFile {
  id: string;
  category: string;
  width: number;
  height: number;
  patch: number;
  stride: number;
  positions: Box[];
  faceBox: Box;
  kinds: FaceOcclusion["kinds"];
}

async function writeFaceMap(
  reportDir: string,
  face: FaceOcclusion,
  grid: OcclusionGrid,
  faceBox: Box,
): Promise<void> {
  if (!/^[A-Za-z0-9_-]+$/.test(face.id)) return; // Not a safe file name: no per-face map.
  const file: FaceMapFile = {
    id: face.id,
    category: face.category,
    width: grid.width,
    height: grid.height,
    patch: grid.patch,
    stride: grid.stride,
    positions: grid.positions,
    faceBox,
    kinds: face.kinds,
  };
  await writeFileAtomic(occlusionMapPath(reportDir, face.id), JSON.stringify(file));
}
