/**
 * The validity checks' training runs: is it the face, or the photo? Each face model is trained
 * again with one source held out at a time (leave-one-source-out), and baselines that never
 * see a face (image statistics, the photo with the face masked, a heavily blurred face) are
 * fitted on the same split as the face models. stages/validity.ts scores what they predict.
 */
import { from, lastValueFrom, mergeMap, toArray } from "rxjs";
import type { RgbImage, SplitRecord } from "../core/types.ts";
import { decodeRgb } from "../models/classifier.ts";
import { isComposed, membersOf, type ModelKind, networksFor } from "../models/classifier.ts";
import { type FaceNetworkName, GEAR_ETHNICITIES } from "../models/faces/face_networks.ts";
import { headPose } from "../models/faces/head_pose.ts";
import { FaceStore } from "../models/dataset.ts";
import { trainClassifier } from "../models/training/train.ts";
import { fitOnSameSplit } from "./same_split.ts";
import { ladderFits } from "./ladder.ts";
import { decideVerdict, headlineModel, seesFaceAlone, type Verdict } from "../stages/verdict.ts";
import {
  blurredFacePixels,
  IMAGE_STATISTIC_NAMES,
  imageStatistics,
  maskedFacePixels,
} from "../models/style_features.ts";
import {
  type Attributes,
  type BaselineKey,
  type BaselineResult,
  compareOnSameFaces,
  type Demographics,
  heldOutScore,
  type LosoResult,
  matchedPairs,
  type SourceScore,
  strataScores,
  tellingFeatures,
  type ValidityChecks,
} from "../stages/validity.ts";

export { fitOnSameSplit };

export interface CheckTraining {
  /** @default 100 */
  epochs?: number;
  /** @default 20 */
  patience?: number;
  /** @default 32 */
  batchSize?: number;
  /** @default 42 */
  seed?: number;
}

/**
 * The face-stage outputs the checks read besides the models' own: GEAR's ethnicity estimate,
 * for the demographic checks. A run asks the face stage for them with the models' networks.
 */
export const CHECK_NETWORKS: readonly FaceNetworkName[] = ["gear-ethnicity"];

/** What a run asks the face stage for: the networks its models read, and the checks'. */
export function runNetworks(kinds: readonly ModelKind[]): FaceNetworkName[] {
  return [...new Set([...networksFor(kinds), ...CHECK_NETWORKS])];
}

export interface ChecksInput {
  records: SplitRecord[];
  /** The run's faces, crops and descriptors, for training the face models again. */
  store: FaceStore;
  kinds: ModelKind[];
  classes: string[];
  /** Each face model's own held-out predictions (record id → class index), by kind. */
  heldOut: Map<string, Map<string, number>>;
  /** Each face model's held-out class probabilities (in `classes` order), by kind. */
  heldOutProbabilities?: Map<string, Map<string, ArrayLike<number>>>;
  /** Estimated gender and age by record id, for the demographic checks. */
  attributes?: Map<string, Attributes>;
  /** The crops as the run decoded them once, by record id. */
  crops: Map<string, RgbImage>;
  /**
   * The source row (its URL) each page came from, by page URL (pages.csv). Without it, or for
   * a page it does not know, the page's host stands for the source.
   */
  sourceOfPage?: Map<string, string>;
  training?: CheckTraining;
  /**
   * Most training runs per model kind for leave-one-source-out; more sources than this are
   * held out in this many groups.
   * @default LOSO_RUNS (5)
   */
  maxLosoRuns?: number;
  /** Progress lines (ids and counts only). @default console.error */
  log?: (line: string) => void;
}

/** Faces a record is held out with: its fold with `--folds`, else the test split. */
function heldOutGroup(record: SplitRecord): number | "test" | "train" {
  if (record.fold !== null) return record.fold;
  return record.split === "test" ? "test" : "train";
}

/** The record's source: its source row when pages.csv knows the page, else its page host. */
export function sourceOf(record: SplitRecord, sourceOfPage?: Map<string, string>): string {
  const known = sourceOfPage?.get(record.pageUrl);
  if (known) return known;
  try {
    return new URL(record.pageUrl).host;
  } catch {
    return record.pageUrl || "unknown";
  }
}

/**
 * Which sources can be held out together, and why the others cannot. Each run holds out one
 * source of every category (the k-th source of each, in name order), so the training faces keep
 * as many sources per category as each other: holding out one source of one category at a time
 * leaves that category outnumbered in training, and a model with little signal then predicts
 * the other class for every held-out face, scoring far below chance on the faces of the held-out
 * source. With more runs than `maxRuns`, the sources are dealt round-robin over `maxRuns` runs.
 */
/**
 * Training runs per model kind for leave-sources-out: every source is still held out once,
 * in this many groups. Each run retrains every model, so the runs are what the check costs;
 * five hold out a fifth of each category's sources at a time, as five folds would.
 */
export const LOSO_RUNS = 5;

export function losoPlan(
  records: SplitRecord[],
  sources: Map<string, string>,
  maxRuns = LOSO_RUNS,
) {
  const sourceNames = [...new Set(records.map((r) => sources.get(r.id)!))].sort();
  const sourcesOfCategory = new Map<string, Set<string>>();
  for (const record of records) {
    const set = sourcesOfCategory.get(record.category) ?? new Set();
    set.add(sources.get(record.id)!);
    sourcesOfCategory.set(record.category, set);
  }
  const notPossible = [...sourcesOfCategory.entries()]
    .filter(([, set]) => set.size < 2)
    .map(([category, set]) => ({
      category,
      sources: [...set],
      reason: `'${category}' has only one source: holding it out leaves no training face of ` +
        `'${category}', so no model could name it`,
    }));
  // A source that mixes categories could be held out too, but each must keep another source.
  const eligible = sourceNames.filter((source) =>
    records.filter((r) => sources.get(r.id) === source).every((r) =>
      sourcesOfCategory.get(r.category)!.size >= 2
    )
  );
  const reason = sourceNames.length < 2
    ? "all faces come from one source"
    : "no category has two or more sources, so holding one out always removes a class";
  const categoryOfSource = new Map(records.map((r) => [sources.get(r.id)!, r.category]));
  const perCategory = [...sourcesOfCategory.keys()].sort().map((category) =>
    eligible.filter((s) => categoryOfSource.get(s) === category)
  );
  const runs = Math.min(maxRuns, Math.max(0, ...perCategory.map((list) => list.length)));
  const groups: string[][] = Array.from({ length: runs }, () => []);
  for (const list of perCategory) list.forEach((source, k) => groups[k % runs]!.push(source));
  return { heldOut: groups.filter((g) => g.length > 0), notPossible, reason };
}

/**
 * The faces with one source held out, as a two-fold store (fold 0 the held-out source), so
 * foldRole holds it out as test and the others' val faces validate. Faces of the held-out
 * source's people found under other sources are left out of training, as the split keeps a
 * person on one side: else the model would meet them again and answer by who they are.
 */
function storeWithout(
  store: FaceStore,
  records: SplitRecord[],
  sources: Map<string, string>,
  heldOutSources: readonly string[],
): FaceStore {
  const identityOf = new Map(records.map((r) => [r.id, r.identity]));
  const heldOutPeople = new Set(
    records.filter((r) => heldOutSources.includes(sources.get(r.id)!)).map((r) => r.identity),
  );
  const looStore = new FaceStore({ crops: store.crops });
  for (const face of store.faces) {
    const source = sources.get(face.id);
    if (source === undefined) continue;
    const isHeldOut = heldOutSources.includes(source);
    if (!isHeldOut && heldOutPeople.has(identityOf.get(face.id) ?? face.identity)) continue;
    looStore.addStored({
      ...face,
      fold: isHeldOut ? 0 : 1,
      split: face.split === "val" ? "val" : "train",
    });
  }
  return looStore;
}

/** One held-out face as a check's run answered it. */
interface HeldOutFace {
  id: string;
  actual: number;
  predicted: number;
  /** Its probabilities in the run's class order. */
  probabilities: number[];
}

/** The class with the highest probability. */
function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
  return best;
}

/** Trains `kind` without one source and predicts that source's faces, or null. */
async function predictHeldOutSource(
  kind: ModelKind,
  looStore: FaceStore,
  classIndex: Map<string, number>,
  training: Required<CheckTraining>,
): Promise<HeldOutFace[] | null> {
  const testFold = 0;
  if (new Set(looStore.select({ testFold, role: "train" }).map((f) => f.category)).size < 2) {
    return null;
  }
  // A held-out run can leave a class with fewer training faces: a probe weighs the classes alike.
  const { classifier } = await trainClassifier(kind, looStore, {
    ...training,
    testFold,
    balancedClasses: true,
  });
  try {
    const faces = looStore.select({ testFold, role: "test" });
    const probabilities = classifier.predictSamples(
      faces.map((f) => looStore.sample(f, classifier.metadata.preprocessing)),
    );
    const order = classifier.metadata.classes.map((c) => classIndex.get(c)!);
    return faces.map((face, f) => {
      const ordered = order.map(() => 0);
      order.forEach((to, from) => ordered[to] = probabilities[f]![from]!);
      return {
        id: face.id,
        actual: classIndex.get(face.category)!,
        predicted: argmax(ordered),
        probabilities: ordered,
      };
    });
  } finally {
    classifier.dispose();
  }
}

/** The ensemble's answers for one run: the mean of its members' answers, or null. */
function ensembleOfRun(answers: (HeldOutFace[] | null)[]): HeldOutFace[] | null {
  if (answers.length === 0 || answers.some((a) => a === null)) return null;
  const [first, ...others] = answers as HeldOutFace[][];
  return first!.map((face, i) => {
    const probabilities = face.probabilities.map((p, c) =>
      (p + others.reduce((sum, member) => sum + member[i]!.probabilities[c]!, 0)) /
      answers.length
    );
    return { ...face, predicted: argmax(probabilities), probabilities };
  });
}

/** One held-out source's score in a run that held out several. */
function sourceScore(
  source: string,
  faces: HeldOutFace[],
  sources: Map<string, string>,
  classes: string[],
): SourceScore {
  const ofSource = faces.filter((f) => sources.get(f.id) === source);
  const correct = ofSource.filter((f) => f.actual === f.predicted).length;
  return {
    source,
    category: [...new Set(ofSource.map((f) => classes[f.actual]!))].join(", "),
    n: ofSource.length,
    correct,
    accuracy: ofSource.length ? correct / ofSource.length : 0,
  };
}

/** Leave-one-source-out for each model kind; categories with a single source are reported. */
async function leaveOneSourceOut(
  input: ChecksInput,
  sources: Map<string, string>,
  log: (line: string) => void,
): Promise<
  { results: LosoResult[]; answersOf: Map<ModelKind, (HeldOutFace[] | null)[]>; runs: string[][] }
> {
  const { store, records, classes, kinds, heldOut } = input;
  const { epochs = 100, patience = 20, batchSize = 32, seed = 42 } = input.training ?? {};
  const training = { epochs, patience, batchSize, seed };
  const categoryOf = new Map(records.map((r) => [r.id, r.category]));
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const { heldOut: runs, notPossible, reason } = losoPlan(records, sources, input.maxLosoRuns);
  const accuracyOf = (predictions: [string, number][]) =>
    predictions.filter(([id, p]) => classIndex.get(categoryOf.get(id)!) === p).length /
    predictions.length;

  const results: LosoResult[] = [];
  /** Each kind's answers per run, for the ensemble. */
  const answersOf = new Map<ModelKind, (HeldOutFace[] | null)[]>();
  for (const kind of kinds) {
    const own = [...(heldOut.get(kind) ?? new Map<string, number>())];
    const randomSplitAccuracy = own.length ? accuracyOf(own) : 0;
    if (runs.length === 0) {
      results.push({
        kind,
        possible: false,
        reason,
        perSource: [],
        notPossible,
        randomSplitAccuracy,
      });
      continue;
    }
    const perSource: SourceScore[] = [];
    const judged: HeldOutFace[] = [];
    const answers: (HeldOutFace[] | null)[] = [];
    answersOf.set(kind, answers);
    for (const [i, held] of runs.entries()) {
      log(`check: leave-one-source-out ${kind}, run ${i + 1}/${runs.length}`);
      // The ensemble is not trained again: it averages its members' answers in the same run.
      const faces = isComposed(kind)
        ? ensembleOfRun(membersOf(kind, kinds).map((member) => answersOf.get(member)?.[i] ?? null))
        : await predictHeldOutSource(
          kind,
          storeWithout(store, records, sources, held),
          classIndex,
          training,
        );
      answers.push(faces);
      if (!faces) {
        log(`check: leave-one-source-out ${kind}: run ${i + 1} leaves one class; skipped`);
        continue;
      }
      judged.push(...faces);
      perSource.push(...held.map((source) => sourceScore(source, faces, sources, classes)));
    }
    const heldIds = new Set(judged.map((j) => j.id));
    const onThese = own.filter(([id]) => heldIds.has(id));
    results.push({
      kind,
      possible: judged.length > 0,
      perSource,
      notPossible,
      score: judged.length
        ? heldOutScore(judged.map((j) => j.actual), judged.map((j) => j.predicted), classes.length)
        : undefined,
      randomSplitAccuracy,
      randomSplitOnTheseSources: onThese.length
        ? { accuracy: accuracyOf(onThese), n: onThese.length }
        : undefined,
    });
  }
  return { results, answersOf, runs };
}

interface FeatureRow {
  id: string;
  person: string;
  label: number;
  group: number | "test" | "train";
  features: Record<Exclude<BaselineKey, "demographics" | "head-pose">, ArrayLike<number>>;
}

/** Reads each record's photo and crop into the baselines' features; unreadable ones are counted. */
async function featureRows(
  input: ChecksInput,
): Promise<{ rows: FeatureRow[]; skipped: Record<string, number> }> {
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

const BASELINE_NAMES: Record<Exclude<BaselineKey, "demographics" | "head-pose">, string> = {
  "image-statistics":
    "image statistics (size, aspect ratio, bytes per pixel, JPEG quality, mean colour, brightness, contrast, colourfulness)",
  "masked-face": "the photo with the face box masked (background, clothes, light, crop)",
  "blurred-face": "a heavily blurred face (8×8 pixels of the crop)",
};

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
  { rows, skipped }: { rows: FeatureRow[]; skipped: Record<string, number> },
): BaselineResult[] {
  const actual = new Map(rows.map((r) => [r.id, r.label]));
  const results: BaselineResult[] = [];
  for (const key of Object.keys(BASELINE_NAMES) as (keyof typeof BASELINE_NAMES)[]) {
    const predictions = fitOnSameSplit(
      rows.map((r) => ({
        id: r.id,
        label: r.label,
        group: r.group,
        x: r.features[key],
        person: r.person,
      })),
      input.classes.length,
    );
    if (predictions.size === 0) continue;
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
  const timed = async <T>(name: string, work: () => T | Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      seconds[name] = Math.round(performance.now() - started) / 1000;
    }
  };
  log("check: style baselines");
  const features = await timed("image features", () => featureRows(input));
  const baselines = await timed("style baselines", () => styleBaselines(input, features));
  const { baseline: demographic, demographics } = await timed(
    "demographics",
    () => demographicChecks(input),
  );
  if (demographic) baselines.push(demographic);
  if (input.store.faces.some((face) => face.embeddings?.landmarks)) {
    const pose = await timed("head pose", () => headPoseBaseline(input));
    if (pose) baselines.push(pose);
  }
  const loso = await timed(
    "leave-one-source-out",
    () => leaveOneSourceOut(input, sources, log),
  );
  log("check: what the face adds");
  const verdict = await timed(
    "what the face adds",
    () => verdictOf(input, features.rows, loso, sources),
  );
  return {
    seconds,
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

/**
 * The run's verdict: the ladder's fits (pipeline/ladder.ts) on the random split and on the
 * held-out sources' runs, and the headline model's answers on both, judged by decideVerdict.
 */
function verdictOf(
  input: ChecksInput,
  rows: FeatureRow[],
  loso: Awaited<ReturnType<typeof leaveOneSourceOut>>,
  sources: Map<string, string>,
): Verdict | undefined {
  if (input.kinds.length === 0) return undefined;
  const { kind, rule } = headlineModel(input.kinds);
  const predictions = input.heldOut.get(kind);
  if (!predictions || predictions.size === 0) return undefined;
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  const actual = new Map(input.records.map((r) => [r.id, classIndex.get(r.category)!]));
  const runOfSource = new Map(loso.runs.flatMap((run, i) => run.map((s) => [s, i] as const)));
  const fits = ladderFits({
    records: input.records,
    store: input.store,
    classes: input.classes,
    attributes: input.attributes,
    photo: new Map(rows.map((r) => [r.id, {
      statistics: r.features["image-statistics"],
      masked: r.features["masked-face"],
    }])),
    groupOf: heldOutGroup,
    sourceRunOf: loso.runs.length
      ? (record) => runOfSource.get(sources.get(record.id)!) ?? "train"
      : null,
  });
  const answersOn = (model: string) =>
    new Map(
      (loso.answersOf.get(model as ModelKind) ?? []).flatMap((run) => run ?? []).map((a) =>
        [a.id, a.predicted] as const
      ),
    );
  const answers = answersOn(kind);
  const faceModels = new Map(input.kinds.filter(seesFaceAlone).map((k) => [k, answersOn(k)]));
  return decideVerdict({
    classes: input.classes.length,
    model: { kind, rule, predictions, actual },
    ladder: fits.random,
    unseen: fits.unseen && {
      ...fits.unseen,
      model: answers.size ? answers : null,
      runs: loso.runs.length,
      sourceOf: sources,
      faceModels: new Map([...faceModels].filter(([, a]) => a.size > 0)),
    },
  });
}
