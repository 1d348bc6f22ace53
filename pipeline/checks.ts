/**
 * The validity checks' training runs: is it the face, or the photo? Baselines that never see a
 * face (image statistics, the photo with the face masked, a heavily blurred face, the
 * demographics, the head's pose) are fitted on the same split as the face models; each face
 * model is trained again with sources held out (pipeline/leave_sources_out.ts); the verdict
 * reads them all (pipeline/verdict_fits.ts). stages/validity.ts scores what they predict.
 */
import { from, lastValueFrom, mergeMap, toArray } from "rxjs";
import { decodeRgb, type ModelKind, networksFor } from "../models/classifier.ts";
import { type FaceNetworkName, GEAR_ETHNICITIES } from "../models/faces/face_networks.ts";
import { headPose } from "../models/faces/head_pose.ts";
import { fitOnSameSplit } from "./same_split.ts";
import {
  type CheckFeatures,
  type ChecksInput,
  type FeatureRow,
  heldOutGroup,
  sourceOf,
} from "./checks_input.ts";
import { leaveOneSourceOut, LOSO_RUNS, losoPlan } from "./leave_sources_out.ts";
import { verdictOf } from "./verdict_fits.ts";
import { processCpuSeconds } from "./run_state.ts";
import { type LinearFitAnswer, linearFitTasks, type StyleKey } from "./checks_fits.ts";
import { runLinearFits } from "./checks_fits_pool.ts";
import type { LadderPredictions } from "../stages/verdict.ts";
import {
  blurredFacePixels,
  IMAGE_STATISTIC_NAMES,
  imageStatistics,
  maskedFacePixels,
} from "../models/style_features.ts";
import {
  type BaselineResult,
  compareOnSameFaces,
  type Demographics,
  heldOutScore,
  matchedPairs,
  strataScores,
  tellingFeatures,
  type ValidityChecks,
} from "../stages/validity.ts";

export { fitOnSameSplit, LOSO_RUNS, losoPlan, sourceOf };
export type { ChecksInput, CheckTraining } from "./checks_input.ts";

/**
 * The face-stage outputs the checks read besides the models' own: GEAR's ethnicity estimate,
 * for the demographic checks. A run asks the face stage for them with the models' networks.
 */
export const CHECK_NETWORKS: readonly FaceNetworkName[] = ["gear-ethnicity"];

/** What a run asks the face stage for: the networks its models read, and the checks'. */
export function runNetworks(kinds: readonly ModelKind[]): FaceNetworkName[] {
  return [...new Set([...networksFor(kinds), ...CHECK_NETWORKS])];
}

/**
 * Reads each record's photo and crop into the style baselines' features; unreadable ones are
 * counted. It needs nothing from the models, so a caller may start it before the checks
 * (`ChecksInput.features`) to read the images while the models are scored.
 */
export async function checkFeatures(
  input: Pick<ChecksInput, "records" | "classes" | "crops">,
): Promise<CheckFeatures> {
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  const skipped: Record<string, number> = {};
  const rows = await lastValueFrom(
    from(input.records).pipe(
      mergeMap(async (record): Promise<FeatureRow | null> => {
        try {
          const image = await Deno.readFile(record.imagePath);
          const crop = input.crops.get(record.id) ?? await decodeRgb(record.cropPath);
          return {
            id: record.id,
            person: record.identity,
            label: classIndex.get(record.category)!,
            group: heldOutGroup(record),
            features: {
              "image-statistics": await imageStatistics(image),
              "masked-face": await maskedFacePixels(image, record.faceBox),
              "blurred-face": await blurredFacePixels(crop),
            },
          };
        } catch (error) {
          const code = error instanceof Deno.errors.NotFound ? "image_gone" : "image_unreadable";
          skipped[code] = (skipped[code] ?? 0) + 1;
          return null;
        }
      }, 2),
      toArray(),
    ),
  );
  return { rows: rows.filter((row): row is FeatureRow => row !== null), skipped };
}

const BASELINE_NAMES: Record<StyleKey, string> = {
  "image-statistics":
    "image statistics (size, aspect ratio, bytes per pixel, JPEG quality, mean colour, brightness, contrast, colourfulness)",
  "masked-face": "the photo with the face box masked (background, clothes, light, crop)",
  "blurred-face": "a heavily blurred face (8×8 pixels of the crop)",
};

const STYLE_KEYS = Object.keys(BASELINE_NAMES) as StyleKey[];

/** A baseline's held-out score, and its comparison with each face model on the same faces. */
function scoredAgainstModels(
  actual: ReadonlyMap<string, number>,
  predictions: ReadonlyMap<string, number>,
  input: ChecksInput,
): Pick<BaselineResult, "score" | "versus"> {
  const ids = [...predictions.keys()];
  return {
    score: heldOutScore(
      ids.map((id) => actual.get(id)!),
      ids.map((id) => predictions.get(id)!),
      input.classes.length,
    ),
    versus: Object.fromEntries(
      input.kinds.flatMap((kind) => {
        const own = input.heldOut.get(kind);
        return own ? [[kind, compareOnSameFaces(actual, own, predictions)]] : [];
      }),
    ),
  };
}

/** The style baselines, each on the same split as the face models and compared with them. */
function styleBaselines(
  input: ChecksInput,
  { rows, skipped }: CheckFeatures,
  fitted: ReadonlyMap<StyleKey, Map<string, number>>,
): BaselineResult[] {
  const actual = new Map(rows.map((r) => [r.id, r.label]));
  const results: BaselineResult[] = [];
  for (const key of STYLE_KEYS) {
    const predictions = fitted.get(key);
    if (!predictions || predictions.size === 0) continue;
    const result: BaselineResult = {
      key,
      name: BASELINE_NAMES[key],
      ...scoredAgainstModels(actual, predictions, input),
      skipped,
    };
    if (key === "image-statistics") {
      result.telling = tellingFeatures(
        rows.map((r) => r.features[key]),
        rows.map((r) => r.label),
        IMAGE_STATISTIC_NAMES,
      ).slice(0, 3);
    }
    results.push(result);
  }
  return results;
}

/**
 * Starts the checks' linear fits (the style baselines, the verdict's ladder) on worker threads,
 * to run while the face models are trained again for leave-sources-out.
 */
function startLinearFits(
  input: ChecksInput,
  rows: FeatureRow[],
  sources: Map<string, string>,
  runs: string[][],
): Promise<LinearFitAnswer[]> {
  const { fitThreads = Math.min(2, navigator.hardwareConcurrency || 1) } = input;
  const ladder = input.kinds.length === 0 ? "none" : runs.length ? "both" : "random";
  const fits = runLinearFits(
    {
      classes: input.classes,
      // The ladder reads the faces' descriptors and embeddings from `faces`: not sent twice.
      records: input.records.map((r) => ({ ...r, descriptor: [], embeddings: undefined })),
      faces: input.store.faces.map(({ id, descriptor, embeddings }) => ({
        id,
        descriptor,
        embeddings,
      })),
      attributes: input.attributes,
      rows,
      runs,
      sources,
    },
    linearFitTasks(STYLE_KEYS, ladder),
    fitThreads,
  );
  // Awaited after leave-sources-out; a failure meanwhile is not left unhandled.
  fits.catch(() => {});
  return fits;
}

/**
 * The baseline from estimated gender, age and (where GEAR estimated it) ethnicity, on the same
 * split, and the model's strata and pairs.
 */
function demographicChecks(
  input: ChecksInput,
): { baseline?: BaselineResult; demographics?: Demographics } {
  const attributes = input.attributes;
  if (!attributes || attributes.size === 0) return {};
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  const withEthnicity = [...attributes.values()].some((a) => a.ethnicity !== undefined);
  const rows = input.records.filter((r) => attributes.has(r.id)).map((r) => {
    const a = attributes.get(r.id)!;
    const ethnicity = withEthnicity ? GEAR_ETHNICITIES.map((e) => a.ethnicity === e ? 1 : 0) : [];
    return {
      id: r.id,
      person: r.identity,
      label: classIndex.get(r.category)!,
      group: heldOutGroup(r),
      x: [a.gender === "female" ? 1 : 0, a.age, a.age * a.age / 100, ...ethnicity],
    };
  });
  const actual = new Map(rows.map((r) => [r.id, r.label]));
  const predictions = fitOnSameSplit(rows, input.classes.length);
  const baseline: BaselineResult | undefined = predictions.size
    ? {
      key: "demographics",
      name: withEthnicity
        ? "estimated age, gender (face-api's age/gender net) and ethnicity (GEAR), no face otherwise"
        : "estimated age and gender (face-api's age/gender net), no face otherwise",
      ...scoredAgainstModels(actual, predictions, input),
      skipped: input.records.length - rows.length
        ? { no_estimate: input.records.length - rows.length }
        : {},
    }
    : undefined;
  const demographics: Demographics = {
    estimatedBy: withEthnicity
      ? "face-api age/gender net (age, gender), GEAR (ethnicity)"
      : "face-api age/gender net",
    n: rows.length,
    strata: Object.fromEntries(
      input.kinds.map((kind) => [
        kind,
        strataScores(actual, input.heldOut.get(kind) ?? new Map(), attributes),
      ]),
    ),
    matchedPairs: Object.fromEntries(
      input.kinds.map((kind) => [
        kind,
        matchedPairs(
          actual,
          input.heldOutProbabilities?.get(kind) ?? new Map(),
          attributes,
          input.classes.length,
        ),
      ]),
    ),
  };
  return { baseline, demographics };
}

/**
 * The baseline from the head's pose alone (roll, yaw, pitch: models/faces/head_pose.ts), on
 * the same split, where the face stage kept the faces' landmarks (a run that trains the
 * `landmarks` probe): the photographer sets the pose as much as the person does.
 */
function headPoseBaseline(input: ChecksInput): BaselineResult | undefined {
  const shapes = new Map(
    input.store.faces.flatMap((face) =>
      face.embeddings?.landmarks ? [[face.id, face.embeddings.landmarks]] : []
    ),
  );
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  let unreadable = 0;
  const rows = input.records.flatMap((r) => {
    const shape = shapes.get(r.id);
    const pose = shape && headPose(shape, r.faceAngle);
    if (!pose) {
      unreadable++;
      return [];
    }
    return [{
      id: r.id,
      person: r.identity,
      label: classIndex.get(r.category)!,
      group: heldOutGroup(r),
      x: pose,
    }];
  });
  const predictions = fitOnSameSplit(rows, input.classes.length);
  if (predictions.size === 0) return undefined;
  return {
    key: "head-pose",
    name: "the head's pose (roll, yaw and pitch from the face's landmarks), no face otherwise",
    ...scoredAgainstModels(new Map(rows.map((r) => [r.id, r.label])), predictions, input),
    skipped: unreadable ? { no_landmarks: unreadable } : {},
  };
}

/**
 * Runs every check on a run's faces: leave-one-source-out per model kind, the style
 * baselines and the demographic ones, all on the face models' own split.
 */
export async function runChecks(input: ChecksInput): Promise<ValidityChecks> {
  const { maxLosoRuns = LOSO_RUNS } = input;
  if (!Number.isInteger(maxLosoRuns) || maxLosoRuns < 1) {
    throw new RangeError(
      `Cannot run the checks as 'maxLosoRuns' must be a positive integer: got ${maxLosoRuns}`,
    );
  }
  const log = input.log ?? ((line: string) => console.error(line));
  const sources = new Map(input.records.map((r) => [r.id, sourceOf(r, input.sourceOfPage)]));
  const seconds: Record<string, number> = {};
  const cpuSeconds: Record<string, number> = {};
  const timed = async <T>(name: string, work: () => T | Promise<T>): Promise<T> => {
    const started = performance.now();
    const cpu = processCpuSeconds();
    try {
      return await work();
    } finally {
      seconds[name] = Math.round(performance.now() - started) / 1000;
      cpuSeconds[name] = Math.round((processCpuSeconds() - cpu) * 10) / 10;
    }
  };
  log("check: style baselines");
  // Started by the caller where it could be: then only the wait for the rest is timed here.
  const features = await timed("image features", () => input.features ?? checkFeatures(input));
  const runs = losoPlan(input.records, sources, maxLosoRuns).heldOut;
  // In their threads, beside leave-sources-out: each fit's own wall time, added up below.
  seconds["style baselines"] = 0;
  const fitting = startLinearFits(input, features.rows, sources, runs);
  const { baseline: demographic, demographics } = await timed(
    "demographics",
    () => demographicChecks(input),
  );
  const pose = input.store.faces.some((face) => face.embeddings?.landmarks)
    ? await timed("head pose", () => headPoseBaseline(input))
    : undefined;
  const loso = await timed(
    "leave-one-source-out",
    () => leaveOneSourceOut(input, sources, log),
  );
  log("check: what the face adds");
  const answers = await timed("waiting for the linear fits", () => fitting);
  const fitted = new Map<StyleKey, Map<string, number>>();
  const ladder: { random?: LadderPredictions | null; unseen?: LadderPredictions | null } = {};
  let ladderSeconds = 0;
  for (const answer of answers) {
    if (answer.kind === "baseline") {
      fitted.set(answer.key, answer.predictions);
      seconds["style baselines"] += answer.seconds;
    } else {
      ladder[answer.on] = answer.predictions;
      ladderSeconds += answer.seconds;
    }
  }
  const baselines = styleBaselines(input, features, fitted);
  if (demographic) baselines.push(demographic);
  if (pose) baselines.push(pose);
  const verdict = await timed(
    "what the face adds",
    () => verdictOf(input, loso, sources, ladder.random ?? null, ladder.unseen ?? null),
  );
  seconds["what the face adds"] =
    Math.round((seconds["what the face adds"]! + ladderSeconds) * 1000) / 1000;
  seconds["style baselines"] = Math.round(seconds["style baselines"] * 1000) / 1000;
  return {
    seconds,
    cpuSeconds,
    ...sourceSummary(input, sources),
    loso: loso.results,
    baselines,
    ...(demographics ? { demographics } : {}),
    verdict,
  };
}

/** How faces are grouped into sources, and each source's faces. */
function sourceSummary(
  input: ChecksInput,
  sources: Map<string, string>,
): Pick<ValidityChecks, "groupedBy" | "sources"> {
  const sourceFaces = new Map<string, { category: Set<string>; faces: number }>();
  for (const record of input.records) {
    const entry = sourceFaces.get(sources.get(record.id)!) ?? { category: new Set(), faces: 0 };
    entry.category.add(record.category);
    entry.faces++;
    sourceFaces.set(sources.get(record.id)!, entry);
  }
  return {
    groupedBy: input.records.some((r) => input.sourceOfPage?.has(r.pageUrl))
      ? "source row"
      : "page host",
    sources: [...sourceFaces.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map((
      [source, { category, faces }],
    ) => ({ source, category: [...category].sort().join(", "), faces })),
  };
}
