/**
 * Leave-sources-out: each face model trained again with sources held out, one of every
 * category a run, and scored on the faces of sources it never saw. A style per source does not
 * carry over to a new source; a face signal does.
 */
import type { SplitRecord } from "../core/types.ts";
import { isComposed, membersOf, type ModelKind, PROBE_KINDS } from "../models/classifier.ts";
import { FaceStore } from "../models/dataset.ts";
import { trainClassifier } from "../models/training/train.ts";
import { heldOutScore, type LosoResult, type SourceScore } from "../stages/validity.ts";
import type { ChecksInput, CheckTraining } from "./checks_input.ts";

/**
 * Training runs per model kind for leave-sources-out: every source is still held out once,
 * in this many groups. Each run retrains every model, so the runs are what the check costs;
 * five hold out a fifth of each category's sources at a time, as five folds would.
 */
export const LOSO_RUNS = 5;

/**
 * Which sources can be held out together, and why the others cannot. Each run holds out one
 * source of every category (the k-th source of each, in name order), so the training faces keep
 * as many sources per category as each other: holding out one source of one category at a time
 * leaves that category outnumbered in training, and a model with little signal then predicts
 * the other class for every held-out face, scoring far below chance on the faces of the held-out
 * source. With more runs than `maxRuns`, the sources are dealt round-robin over `maxRuns` runs.
 */

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

/** One kind's answers per run, and the held-out sources' scores. */
interface KindRuns {
  answers: (HeldOutFace[] | null)[];
  judged: HeldOutFace[];
  perSource: SourceScore[];
}

/**
 * Leave-one-source-out for each model kind; categories with a single source are reported.
 * The CNN's runs go first (it trains on two threads); then the other epoch-trained kinds' runs
 * on this thread while the probes' fit on the probe thread (models/training/probe_thread.ts);
 * the ensemble last, from its members' answers. Each run's model is what it would be in any
 * order; the results come back in the kinds' order.
 */
export async function leaveOneSourceOut(
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

  /** Each kind's answers per run, for the ensemble. */
  const answersOf = new Map<ModelKind, (HeldOutFace[] | null)[]>();
  const runsOf = new Map<ModelKind, KindRuns>();
  const runKind = async (kind: ModelKind): Promise<void> => {
    const done: KindRuns = { answers: [], judged: [], perSource: [] };
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
      done.answers.push(faces);
      if (!faces) {
        log(`check: leave-one-source-out ${kind}: run ${i + 1} leaves one class; skipped`);
        continue;
      }
      done.judged.push(...faces);
      done.perSource.push(...held.map((source) => sourceScore(source, faces, sources, classes)));
    }
    answersOf.set(kind, done.answers);
    runsOf.set(kind, done);
  };
  if (runs.length > 0) await runInOrder(kinds, runKind);

  const results: LosoResult[] = kinds.map((kind) => {
    const own = [...(heldOut.get(kind) ?? new Map<string, number>())];
    const randomSplitAccuracy = own.length ? accuracyOf(own) : 0;
    const done = runsOf.get(kind);
    if (!done) {
      return { kind, possible: false, reason, perSource: [], notPossible, randomSplitAccuracy };
    }
    const { judged, perSource } = done;
    const heldIds = new Set(judged.map((j) => j.id));
    const onThese = own.filter(([id]) => heldIds.has(id));
    return {
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
    };
  });
  return { results, answersOf, runs };
}

/**
 * Runs `run` for every kind so that both cores stay busy: the CNN first, then the other
 * epoch-trained kinds one at a time on this thread while the probes' runs (on the probe
 * thread) go on beside them, then the composed kinds, which read their members' answers.
 */
async function runInOrder(
  kinds: readonly ModelKind[],
  run: (kind: ModelKind) => Promise<void>,
): Promise<void> {
  const isProbe = (kind: ModelKind) => (PROBE_KINDS as readonly ModelKind[]).includes(kind);
  const onThisThread = kinds.filter((kind) => !isComposed(kind) && !isProbe(kind))
    .sort((a, b) => Number(b === "cnn") - Number(a === "cnn"));
  let probes: Promise<unknown> | undefined;
  const startProbes = () => {
    probes ??= Promise.all(kinds.filter(isProbe).map(run));
    // Awaited below; a failure while this thread trains is not left unhandled.
    probes.catch(() => {});
  };
  for (const kind of onThisThread) {
    if (kind !== "cnn") startProbes();
    await run(kind);
  }
  startProbes();
  await probes;
  for (const kind of kinds.filter(isComposed)) await run(kind);
}
