/**
 * The run's evaluation step: scores each trained model's held-out faces, adds the cues a
 * model could lean on instead of the face (predicted gender, black-and-white photo), and
 * hands the numbers to the evaluation stage and the report.
 */
import { from, lastValueFrom, mergeMap, toArray } from "rxjs";
import type { RgbImage, SplitRecord } from "../core/types.ts";
import { decodeRgb } from "../models/classifier.ts";
import type { Classifier, EpochStats, ModelKind } from "../models/classifier.ts";
import { predictGender } from "../models/faces/faces.ts";
import { ethnicityOf } from "../models/faces/face_networks.ts";
import {
  evaluate,
  type Gender,
  isGrayscale,
  type Metrics,
  type ScoredFace,
} from "../stages/evaluate.ts";
import { type ModelResult, terminalSummary, writeReport } from "../report/report.ts";
import type { FaceStore } from "../models/dataset.ts";
import type { Attributes, ValidityChecks } from "../stages/validity.ts";
import { checkFeatures, type CheckTraining, runChecks } from "./checks.ts";
import { occlusionMaps, type OcclusionRunOptions } from "./occlusion_run.ts";

export interface TrainedModel {
  kind: ModelKind;
  /** The held-out fold with `--folds`, else null (the test split is held out). */
  fold: number | null;
  dir: string;
  classifier: Classifier;
  history: EpochStats[];
  bestEpoch: number;
}

export interface EvaluateRunOptions {
  trained: TrainedModel[];
  records: SplitRecord[];
  classes: string[];
  out: string;
  /** Shown as the data's name: the data dir. */
  dataName?: string;
  facePercent?: number;
  /** Dropped records by reason code, for the report's provenance. */
  dropped?: Record<string, number>;
  provenance?: Record<string, string | number | boolean>;
  /**
   * The run's faces (crops and descriptors). With it, the validity checks run: each model is
   * trained again per held-out source, and the style baselines are fitted on the same split.
   */
  store?: FaceStore;
  /** The source row of each crawled page, by page URL (pages.csv), to group faces by source. */
  sourceOfPage?: Map<string, string>;
  /** Training settings of the checks' runs: the run's own. */
  training?: CheckTraining;
  /**
   * The occlusion maps' settings (`pipeline/occlusion_run.ts`), or false for none.
   * @default {}
   */
  occlusion?: OcclusionRunOptions | false;
}

interface FaceCues {
  /** The crop as the run decoded it once (the dataset's), for the models and the checks. */
  image: RgbImage;
  /** Its PNG bytes, for the report's montages (read, not decoded). */
  crop: Uint8Array;
  gender?: Gender;
  /** How sure the age/gender net is that the face is a woman's. */
  femaleProbability?: number;
  /** Age in years as face-api's age/gender net estimates it. */
  age?: number;
  /** Ethnicity as GEAR estimated it in the face stage (`CHECK_NETWORKS`). */
  ethnicity?: string;
  grayscale: boolean;
}

function isHeldOut(record: SplitRecord, fold: number | null): boolean {
  return fold === null ? record.split === "test" : record.fold === fold;
}

function isTraining(record: SplitRecord, fold: number | null): boolean {
  return fold === null ? record.split === "train" : record.fold !== fold;
}

/**
 * What the evaluation reads of each face besides the models' scores: estimated gender, age and
 * ethnicity, and whether the photo is black and white, all from the crop the dataset decoded
 * once.
 */
async function faceCues(
  records: SplitRecord[],
  facePercent: number,
  store?: FaceStore,
): Promise<Map<string, FaceCues>> {
  const decoded = new Map(store?.faces.map((face) => [face.id, face.image]) ?? []);
  const cues = await lastValueFrom(
    from(records).pipe(
      mergeMap(async (record) => {
        const crop = await Deno.readFile(record.cropPath);
        const image = decoded.get(record.id) ?? await decodeRgb(crop);
        const estimate = await predictGender(image, { facePercent }).catch(() => undefined);
        return [record.id, {
          image,
          crop,
          gender: estimate?.gender,
          femaleProbability: estimate &&
            (estimate.gender === "female" ? estimate.probability : 1 - estimate.probability),
          age: estimate?.age,
          ethnicity: ethnicityOf(record.embeddings?.["gear-ethnicity"]),
          grayscale: await isGrayscale(image),
        }] as const;
      }, 2),
      toArray(),
    ),
  );
  return new Map(cues);
}

/** One model's held-out faces, scored: for the evaluation stage and for the checks. */
interface HeldOutScores {
  scored: ScoredFace[];
  /** Each face's predicted class, as an index into the run's classes. */
  predictions: Map<string, number>;
  /** Each face's probabilities in the run's class order (the model's may differ). */
  inClassOrder: Map<string, number[]>;
}

async function scoreHeldOut(
  model: TrainedModel,
  records: SplitRecord[],
  classes: string[],
  cues: Map<string, FaceCues>,
): Promise<HeldOutScores> {
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const modelClasses = model.classifier.metadata.classes;
  const heldOut = records.filter((record) => isHeldOut(record, model.fold));
  const probabilities = await model.classifier.predict(
    heldOut.map((record) => ({
      crop: cues.get(record.id)!.image,
      descriptor: record.descriptor,
      embeddings: record.embeddings,
    })),
  );
  const scores: HeldOutScores = { scored: [], predictions: new Map(), inClassOrder: new Map() };
  heldOut.forEach((record, i) => {
    const cue = cues.get(record.id)!;
    const p = probabilities[i]!;
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
    scores.predictions.set(record.id, classIndex.get(modelClasses[best]!)!);
    const ordered = classes.map(() => 0);
    modelClasses.forEach((c, k) => ordered[classIndex.get(c)!] = p[k]!);
    scores.inClassOrder.set(record.id, ordered);
    scores.scored.push({
      id: record.id,
      category: record.category,
      probabilities: p,
      crop: cue.crop,
      gender: cue.gender,
      grayscale: cue.grayscale,
      fold: model.fold,
    });
  });
  return scores;
}

/** What a model was trained on, as the evaluation compares against: categories and genders. */
function trainingMix(records: SplitRecord[], fold: number | null, cues: Map<string, FaceCues>) {
  const trainDistribution: Record<string, number> = {};
  const genderFit: { gender: Gender; category: string }[] = [];
  for (const record of records.filter((r) => isTraining(r, fold))) {
    trainDistribution[record.category] = (trainDistribution[record.category] ?? 0) + 1;
    const gender = cues.get(record.id)?.gender;
    if (gender) genderFit.push({ gender, category: record.category });
  }
  return { trainDistribution, genderFit };
}

/** One kind's models (all its folds) scored together into one set of metrics. */
async function evaluateKind(
  kind: ModelKind,
  models: TrainedModel[],
  records: SplitRecord[],
  classes: string[],
  cues: Map<string, FaceCues>,
): Promise<{ result: ModelResult } & Omit<HeldOutScores, "scored">> {
  const scored: ScoredFace[] = [];
  const predictions = new Map<string, number>();
  const inClassOrder = new Map<string, number[]>();
  for (const model of models) {
    const scores = await scoreHeldOut(model, records, classes, cues);
    scored.push(...scores.scored);
    for (const [id, index] of scores.predictions) predictions.set(id, index);
    for (const [id, ordered] of scores.inClassOrder) inClassOrder.set(id, ordered);
  }
  // With folds each model has its own training set; the first one stands for them all.
  const first = models[0]!;
  const { trainDistribution, genderFit } = trainingMix(records, first.fold, cues);
  const metrics = await lastValueFrom(
    from(scored).pipe(evaluate({ classes, trainDistribution, genderFit })),
  );
  const fit = first.classifier.metadata.fit;
  const result: ModelResult = {
    kind,
    metrics,
    history: first.history,
    bestEpoch: first.bestEpoch,
    ...(fit ? { fit } : {}),
  };
  return { result, predictions, inClassOrder };
}

/** Faces per category in each split, for the report's dataset table. */
function splitCounts(records: SplitRecord[]): Record<string, Record<string, number>> {
  const splits: Record<string, Record<string, number>> = {};
  for (const record of records) {
    const split = splits[record.split] ??= {};
    split[record.category] = (split[record.category] ?? 0) + 1;
  }
  return splits;
}

/** The estimated gender, age and ethnicity of each face with an age and gender, for the demographic checks. */
function attributesOf(cues: Map<string, FaceCues>): Map<string, Attributes> {
  return new Map(
    [...cues].flatMap(([id, cue]): [string, Attributes][] =>
      cue.gender !== undefined && cue.age !== undefined
        ? [[id, {
          gender: cue.gender,
          ...(cue.femaleProbability !== undefined
            ? { femaleProbability: cue.femaleProbability }
            : {}),
          age: cue.age,
          ...(cue.ethnicity ? { ethnicity: cue.ethnicity } : {}),
        }]]
        : []
    ),
  );
}

/**
 * The style baselines' image features, started before the face estimates and the scoring: they
 * need no model, so they are read meanwhile. Undefined without the checks (no store).
 */
function startCheckFeatures(
  { store, records, classes }: EvaluateRunOptions,
): ReturnType<typeof checkFeatures> | undefined {
  if (!store) return undefined;
  const features = checkFeatures({
    records,
    classes,
    crops: new Map(store.faces.flatMap((face) => face.image ? [[face.id, face.image]] : [])),
  });
  // Awaited in the checks; a failure meanwhile is not left unhandled.
  features.catch(() => {});
  return features;
}

/** Evaluates every trained model (all folds of a kind together) and writes the report. */
export async function evaluateModels(
  options: EvaluateRunOptions,
): Promise<{
  reportPath: string;
  terminalSummary: string;
  metrics: Map<string, Metrics>;
  checks?: ValidityChecks;
}> {
  const { trained, records, classes, out, facePercent = 50 } = options;
  const features = startCheckFeatures(options);
  const cuesStarted = performance.now();
  const cues = await faceCues(records, facePercent, options.store);
  const cueSeconds = Math.round(performance.now() - cuesStarted) / 1000;
  const kinds = [...new Set(trained.map((model) => model.kind))];
  const results: ModelResult[] = [];
  const metricsByKind = new Map<string, Metrics>();
  /** Each kind's held-out predictions as class indices, for the checks' paired comparisons. */
  const heldOutByKind = new Map<string, Map<string, number>>();
  const probabilitiesByKind = new Map<string, Map<string, number[]>>();
  for (const kind of kinds) {
    const models = trained.filter((model) => model.kind === kind);
    const { result, predictions, inClassOrder } = await evaluateKind(
      kind,
      models,
      records,
      classes,
      cues,
    );
    results.push(result);
    metricsByKind.set(kind, result.metrics);
    heldOutByKind.set(kind, predictions);
    probabilitiesByKind.set(kind, inClassOrder);
  }

  const occlusion = options.occlusion === false ? undefined : await occlusionMaps(
    trained,
    records,
    new Map([...cues].map(([id, cue]) => [id, cue.image])),
    { facePercent, reportDir: out, ...options.occlusion },
  );
  const checks = options.store
    ? await runChecks({
      records,
      store: options.store,
      kinds,
      classes,
      heldOut: heldOutByKind,
      heldOutProbabilities: probabilitiesByKind,
      attributes: attributesOf(cues),
      crops: new Map([...cues].map(([id, cue]) => [id, cue.image])),
      sourceOfPage: options.sourceOfPage,
      training: options.training,
      features,
    })
    : undefined;
  if (checks) {
    checks.seconds = { "face estimates (age, gender, ethnicity)": cueSeconds, ...checks.seconds };
  }
  const files = await writeReport(out, {
    models: results,
    checks,
    occlusion,
    faces: new Map([...cues].map(([id, cue]) => [id, cue.crop])),
    dataset: {
      name: options.dataName ?? out,
      splits: splitCounts(records),
      dropped: options.dropped,
      folds: trained.some((model) => model.fold !== null)
        ? new Set(trained.map((m) => m.fold)).size
        : null,
      provenance: options.provenance,
    },
  });
  return {
    reportPath: files.html,
    terminalSummary: terminalSummary(results, files.html, checks),
    metrics: metricsByKind,
    checks,
  };
}
