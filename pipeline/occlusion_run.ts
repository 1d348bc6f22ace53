/**
 * The run's occlusion maps: on a sample of held-out faces (`occlusionSample`, fixed before any
 * face is scored), a grey patch slides over the aligned crop, and each model that held the
 * face out scores every occluded copy. Pixel models read the occluded crop; the probes read
 * embeddings the face networks compute again from it (`describeCrop`), so a patch reaches a
 * probe the way it would reach its network. Composed models (ensemble, portrait) score with
 * their own prediction. `context` reads no face (the photo with the face box painted grey),
 * so its patch slides over that masked photo instead. Each face's map is kept in `<report>/occlusion/<id>.json`, where the
 * web app reads it and `forget` removes it.
 */
import { join } from "node:path";
import process from "node:process";
import type { Box, RgbImage, SplitRecord } from "../core/types.ts";
import { writeFileAtomic } from "../core/files.ts";
import { type Classifier, type FaceInput, inputsOf, type ModelKind } from "../models/classifier.ts";
import { cropWindows, describeCrop, FACE_DEFAULTS } from "../models/faces/faces.ts";
import { CONTEXT_SIDE, type FaceNetworkName } from "../models/faces/face_networks.ts";
import {
  occlude,
  type OcclusionGrid,
  occlusionGrid,
  occlusionSample,
  overlaps,
} from "../models/occlusion.ts";
import type { FrameFace, KindFalls, OcclusionResult } from "../report/occlusion_figures.ts";
import { OCCLUSION_DIR, occlusionMapPath } from "../store/paths.ts";

export interface OcclusionRunOptions {
  /**
   * Held-out faces per class at most, by the sample rule; 0 maps none (and removes the maps of
   * an earlier run, so none goes stale).
   * @default 6
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

/** The kind that reads the photo around the face, mapped over that photo, not the crop. */
const PHOTO_KIND: ModelKind = "context";

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

/** Each model's probability of the true class on the first input, and its fall on the rest. */
async function fallsOf(
  models: readonly OcclusionModel[],
  category: string,
  inputs: FaceInput[],
): Promise<Record<string, KindFalls>> {
  const kinds: Record<string, KindFalls> = {};
  for (const { kind, classifier } of models) {
    const truth = classifier.metadata.classes.indexOf(category);
    if (truth < 0) continue;
    const probabilities = await classifier.predict(inputs);
    const base = probabilities[0]![truth]!;
    kinds[kind] = {
      base: round(base),
      falls: probabilities.slice(1).map((p) => round(base - p[truth]!)),
    };
  }
  return kinds;
}

/** One face's crop-frame map for each model that held it out and reads the face. */
async function mapFace(
  record: SplitRecord,
  crop: RgbImage,
  models: readonly OcclusionModel[],
  frame: { grid: OcclusionGrid; faceBox: Box; facePercent: number },
): Promise<FrameFace> {
  const { grid, facePercent } = frame;
  const inputs = await occludedInputs(crop, record, grid, networksOf(models), facePercent);
  const kinds = await fallsOf(models, record.category, inputs);
  return { id: record.id, category: record.category, image: crop, faceBox: frame.faceBox, kinds };
}

/**
 * One face's photo-frame map for `context`: the patch slides over the masked photo as the
 * model reads it (CONTEXT_SIDE² px, the whole photo squeezed square, the face box already
 * grey), so its map shows which part of the photo around the face it reads.
 */
async function mapPhoto(
  record: SplitRecord,
  crop: RgbImage,
  models: readonly OcclusionModel[],
  grid: OcclusionGrid,
): Promise<FrameFace | undefined> {
  const context = record.embeddings?.context;
  if (!context || context.length !== grid.width * grid.height * 3) return undefined;
  const photo: RgbImage = {
    width: grid.width,
    height: grid.height,
    data: Uint8Array.from(context, (v) => Math.max(0, Math.min(255, Math.round(v)))),
  };
  const input = (image: RgbImage): FaceInput => ({
    crop,
    descriptor: record.descriptor,
    embeddings: { ...record.embeddings, context: Float32Array.from(image.data) },
  });
  const inputs = [input(photo), ...grid.positions.map((rect) => input(occlude(photo, rect)))];
  const [sx, sy] = [grid.width / (record.width || 1), grid.height / (record.height || 1)];
  const { x = 0, y = 0, width = 0, height = 0 } = record.faceBox ?? {};
  return {
    id: record.id,
    category: record.category,
    image: photo,
    faceBox: { x: x * sx, y: y * sy, width: width * sx, height: height * sy },
    kinds: await fallsOf(models, record.category, inputs),
  };
}

const round = (value: number) => Math.round(value * 1e5) / 1e5;

/** One sampled face's maps: on its crop, and for `context` on its masked photo. */
async function mapRecord(
  record: SplitRecord,
  crop: RgbImage,
  trained: readonly OcclusionModel[],
  frame: { grid: OcclusionGrid; faceBox: Box; facePercent: number; photoGrid: OcclusionGrid },
): Promise<{ face?: FrameFace; photo?: FrameFace }> {
  const models = trained.filter((model) => heldOutBy(record, model.fold));
  const faceModels = models.filter((model) => model.kind !== PHOTO_KIND);
  const photoModels = models.filter((model) => model.kind === PHOTO_KIND);
  return {
    face: faceModels.length ? await mapFace(record, crop, faceModels, frame) : undefined,
    photo: photoModels.length
      ? await mapPhoto(record, crop, photoModels, frame.photoGrid)
      : undefined,
  };
}

/**
 * Occlusion maps of every model on the sampled held-out faces (see the file's comment).
 *
 * @example
 * ```ts
 * const result = await occlusionMaps(trained, records, crops, { reportDir: "data/report" });
 * result.frames.crop.faces[0]!.kinds.cnn!.falls; // the true class's fall, patch by patch
 * ```
 */
export async function occlusionMaps(
  trained: readonly OcclusionModel[],
  records: readonly SplitRecord[],
  crops: ReadonlyMap<string, RgbImage>,
  options: OcclusionRunOptions = {},
): Promise<OcclusionResult> {
  const {
    perClass = 6,
    facePercent = FACE_DEFAULTS.facePercent,
    reportDir,
    log = (line: string) => console.error(line),
  } = options;
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const heldOut = records.filter((record) =>
    crops.has(record.id) && trained.some((model) => heldOutBy(record, model.fold))
  );
  const sample = occlusionSample(heldOut, perClass);
  const first = sample[0] && crops.get(sample[0].id)!;
  const side = Math.min(first?.width ?? 128, first?.height ?? 128);
  const { patch = Math.max(2, Math.round(side / 4)) } = options;
  const { stride = Math.max(1, Math.floor(patch / 2)) } = options;
  const grid = occlusionGrid(first?.width ?? 128, first?.height ?? 128, patch, stride);
  const faceBox: Box = cropWindows(grid.width, grid.height, facePercent, []).descriptor!;
  // The masked photo's grid: a patch a quarter of its side, as on the crop.
  const photoGrid = occlusionGrid(CONTEXT_SIDE, CONTEXT_SIDE, CONTEXT_SIDE / 4, 1);
  if (reportDir) {
    await Deno.remove(join(reportDir, OCCLUSION_DIR), { recursive: true }).catch(() => {});
  }
  const frames: OcclusionResult["frames"] = {
    crop: { grid, faces: [] },
    photo: { grid: photoGrid, faces: [] },
  };
  const failed: OcclusionResult["failed"] = [];
  for (const record of sample) {
    const crop = crops.get(record.id)!;
    if (crop.width !== grid.width || crop.height !== grid.height) {
      failed.push({ id: record.id, reason: `crop_size: ${crop.width}×${crop.height}` });
      continue;
    }
    let maps: Awaited<ReturnType<typeof mapRecord>>;
    try {
      maps = await mapRecord(record, crop, trained, { grid, faceBox, facePercent, photoGrid });
    } catch (error) {
      // One face that cannot be mapped is a reason in the result, not the end of the run.
      const detail = String((error as Error)?.message ?? error).split("\n")[0];
      failed.push({ id: record.id, reason: `occlusion_failed: ${detail}` });
      continue;
    }
    const { face, photo } = maps;
    if (face) frames.crop.faces.push(face);
    if (photo) frames.photo!.faces.push(photo);
    if (reportDir) await writeFaceMap(reportDir, record, { crop: face, photo }, frames);
  }
  if (frames.photo!.faces.length === 0) delete frames.photo;
  const seconds = Math.round(performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  const cpuSeconds = Math.round((cpu.user + cpu.system) / 1000) / 1000;
  if (perClass > 0) {
    log(
      `occlusion maps: ${sample.length} held-out faces, ${grid.positions.length} patches on the ` +
        `crop, ${new Set(trained.map((m) => m.kind)).size} model kinds, ${seconds.toFixed(1)} s ` +
        `(${cpuSeconds.toFixed(1)} s of CPU)${
          failed.length ? `; ${failed.length} not mapped: ${failed[0]!.reason}` : ""
        }`,
    );
  }
  return {
    frames,
    failed,
    portraitNote: trained.some((m) => m.kind === "portrait") ? PORTRAIT_NOTE : undefined,
    seconds,
    cpuSeconds,
  };
}

const PORTRAIT_NOTE = "portrait averages the face probes with context: the patch reaches its " +
  "face members through the face networks, while context's input (the masked photo) stays " +
  "as it was";

/** One frame of a face's map file: the grid, the face box in it, each kind's falls. */
export interface FrameMapFile {
  width: number;
  height: number;
  patch: number;
  stride: number;
  positions: Box[];
  faceBox: Box;
  kinds: Record<string, KindFalls>;
}

/**
 * What `<report>/occlusion/<id>.json` holds: one face's maps, on its crop and (for `context`)
 * on its masked photo; no pixels and no name.
 */
export interface FaceMapFile {
  id: string;
  category: string;
  crop?: FrameMapFile;
  photo?: FrameMapFile;
}

function frameFile(face: FrameFace | undefined, grid: OcclusionGrid): FrameMapFile | undefined {
  if (!face) return undefined;
  const { width, height, patch, stride, positions } = grid;
  return { width, height, patch, stride, positions, faceBox: face.faceBox, kinds: face.kinds };
}

async function writeFaceMap(
  reportDir: string,
  record: SplitRecord,
  faces: { crop?: FrameFace; photo?: FrameFace },
  frames: OcclusionResult["frames"],
): Promise<void> {
  if (!/^[A-Za-z0-9_-]+$/.test(record.id)) return; // Not a safe file name: no per-face map.
  if (!faces.crop && !faces.photo) return;
  const file: FaceMapFile = {
    id: record.id,
    category: record.category,
    crop: frameFile(faces.crop, frames.crop.grid),
    photo: frames.photo && frameFile(faces.photo, frames.photo.grid),
  };
  await writeFileAtomic(occlusionMapPath(reportDir, record.id), JSON.stringify(file));
}
