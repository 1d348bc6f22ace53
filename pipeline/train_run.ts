/**
 * A run's training: every model kind, on the train/validation split, or on each of k folds.
 * With folds, `predict`'s model of a kind is the fold model with the best validation score:
 * it saw as many faces as a run without folds would train on, so training one more would cost
 * a sixth of the run for nothing. Each model is saved with the ids of the run's faces, so
 * `forget` knows which models saw a person.
 */
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import type { SplitRecord } from "../core/types.ts";
import {
  type ComposedKind,
  type EpochStats,
  isComposed,
  membersOf,
  type ModelKind,
  PROBE_KINDS,
  saveClassifier,
} from "../models/classifier.ts";
import { EnsembleClassifier, saveEnsemble } from "../models/ensemble.ts";
import type { FaceStore } from "../models/dataset.ts";
import { isBetter, trainClassifier, type TrainResult } from "../models/training/train.ts";
import { MODEL_FILES } from "../store/paths.ts";
import type { TrainedModel } from "./evaluate_run.ts";
import type { ResolvedPipelineOptions } from "./options.ts";
import type { RunEventLog } from "../store/run_events.ts";

export interface TrainRunInput {
  store: FaceStore;
  records: SplitRecord[];
  classes: string[];
  /** The data dir's models folder. */
  modelsDir: string;
  /** Called with each saved model's folder. */
  onSaved?: (dir: string) => void;
  /** Where training's start and epochs are told to `deno task serve`. */
  events?: RunEventLog;
}

/** A line per epoch on stderr: loss, accuracy, validation accuracy and the time left. */
function epochLogger(label: string, epochs: number) {
  return (stats: {
    epoch: number;
    loss: number;
    accuracy: number;
    valAccuracy?: number | null;
    etaSeconds: number;
  }) =>
    console.error(
      `  ${label} epoch ${stats.epoch}/${epochs} loss ${stats.loss.toFixed(3)} ` +
        `acc ${stats.accuracy.toFixed(3)} val_acc ${stats.valAccuracy?.toFixed(3) ?? "n/a"} ` +
        `ETA ${Math.round(stats.etaSeconds)}s`,
    );
}

/** Trains one model (one kind, one fold or none) and saves it with its training ids. */
async function trainAndSave(
  kind: ModelKind,
  fold: number | null,
  dir: string,
  input: TrainRunInput,
  options: ResolvedPipelineOptions,
): Promise<TrainResult> {
  const label = fold === null ? kind : `${kind} fold ${fold + 1}/${options.folds}`;
  const faces = input.records.length;
  console.error(`training ${label} on ${faces} faces, ${input.classes.length} classes`);
  input.events?.append({
    type: "training",
    model: label,
    faces,
    classes: input.classes.length,
    epochs: options.epochs,
  });
  const logEpoch = epochLogger(label, options.epochs);
  const result = await trainClassifier(kind, input.store, {
    epochs: options.epochs,
    patience: options.patience,
    batchSize: options.batchSize,
    seed: options.seed,
    testFold: fold ?? undefined,
    onEpoch: (stats) => {
      input.events?.append({ type: "epoch", model: label, ...stats });
      logEpoch(stats);
    },
  });
  await saveClassifier(result.classifier, dir);
  await Deno.writeTextFile(
    join(dir, MODEL_FILES.trainingIds),
    JSON.stringify(input.records.map((r) => r.id)),
  );
  input.onSaved?.(dir);
  return result;
}

/**
 * The fold model to keep for predict: the best validation accuracy at its kept epoch, then the
 * lower validation loss, then the earlier fold. Never the test folds' figures.
 */
export function bestOnValidation<T extends { history: EpochStats[]; bestEpoch: number }>(
  models: T[],
): T {
  const score = (model: T) => {
    const kept = model.history[model.bestEpoch - 1];
    return { accuracy: kept?.valAccuracy ?? -1, loss: kept?.valLoss ?? Infinity };
  };
  return models.reduce((best, model) => isBetter(score(model), score(best)) ? model : best);
}

/**
 * Trains every kind the options name. Returns the models to evaluate: one per kind, or one per
 * kind and fold with `folds` (then the best fold's copy in the kind's own folder is predict's).
 * The ensemble is not trained: it is composed of the probes trained on the same faces.
 *
 * The order fills both cores: the CNN first (it trains on two threads), then the other
 * epoch-trained kinds on this thread while the probes fit on the probe thread
 * (models/training/probe_thread.ts). No model depends on another's training, so the order
 * changes no model; the models come back in the options' order.
 */
export async function trainModels(
  input: TrainRunInput,
  options: ResolvedPipelineOptions,
): Promise<TrainedModel[]> {
  const isProbe = (kind: ModelKind) => (PROBE_KINDS as readonly ModelKind[]).includes(kind);
  const trainedKinds = options.models.filter((kind) => !isComposed(kind));
  const onThisThread = trainedKinds.filter((kind) => !isProbe(kind))
    .sort((a, b) => Number(b === "cnn") - Number(a === "cnn"));
  const byKind = new Map<ModelKind, { models: TrainedModel[]; kept: TrainedModel }>();
  let probes: Promise<void> | undefined;
  const startProbes = () => {
    probes ??= Promise.all(
      trainedKinds.filter(isProbe).map(async (kind) => {
        byKind.set(kind, await trainKind(kind, input, options));
      }),
    ).then(() => {});
    // Awaited below; a failure while this thread trains is not left unhandled.
    probes.catch(() => {});
  };
  for (const kind of onThisThread) {
    if (kind !== "cnn") startProbes();
    byKind.set(kind, await trainKind(kind, input, options));
  }
  startProbes();
  await probes;
  const trained = trainedKinds.flatMap((kind) => byKind.get(kind)!.models);
  const kept = new Map(trainedKinds.map((kind) => [kind, byKind.get(kind)!.kept]));
  for (const kind of options.models.filter(isComposed)) {
    trained.push(...await composeEnsembles(kind, trained, kept, input, options));
  }
  return trained;
}

/** One kind's models: the only one, or one per fold and predict's copy of the best. */
async function trainKind(
  kind: ModelKind,
  input: TrainRunInput,
  options: ResolvedPipelineOptions,
): Promise<{ models: TrainedModel[]; kept: TrainedModel }> {
  const finalDir = join(input.modelsDir, kind);
  if (!options.folds) {
    const model: TrainedModel = {
      kind,
      fold: null,
      dir: finalDir,
      ...await trainAndSave(kind, null, finalDir, input, options),
    };
    return { models: [model], kept: model };
  }
  const folds: TrainedModel[] = [];
  for (let fold = 0; fold < options.folds; fold++) {
    const dir = join(input.modelsDir, `${kind}-fold${fold}`);
    folds.push({ kind, fold, dir, ...await trainAndSave(kind, fold, dir, input, options) });
  }
  const best = bestOnValidation(folds);
  await rm(finalDir, { recursive: true, force: true });
  await cp(best.dir, finalDir, { recursive: true });
  console.error(`${kind}: predict keeps fold ${best.fold! + 1} (best validation)`);
  input.onSaved?.(finalDir);
  return { models: folds, kept: best };
}

/**
 * A composed kind's mean of each fold's (or the run's) probes, to evaluate, and predict's mean
 * of each probe's kept model, saved under `models/<kind>/` with the run's training ids.
 */
async function composeEnsembles(
  kind: ComposedKind,
  trained: readonly TrainedModel[],
  kept: ReadonlyMap<ModelKind, TrainedModel>,
  input: TrainRunInput,
  options: ResolvedPipelineOptions,
): Promise<TrainedModel[]> {
  const members = membersOf(kind, options.models);
  const dir = join(input.modelsDir, kind);
  const folds = options.folds ? Array.from({ length: options.folds }, (_, i) => i) : [null];
  const composed = folds.map((fold): TrainedModel => ({
    kind,
    fold,
    dir,
    classifier: new EnsembleClassifier(
      members.map((member) =>
        trained.find((m) => m.kind === member && m.fold === fold)!.classifier
      ),
      { kind },
    ),
    history: [],
    bestEpoch: 0,
  }));
  const forPredict = new EnsembleClassifier(
    members.map((member) => kept.get(member)!.classifier),
    { kind },
  );
  await saveEnsemble(forPredict, members.map((member) => join(input.modelsDir, member)), dir);
  await Deno.writeTextFile(
    join(dir, MODEL_FILES.trainingIds),
    JSON.stringify(input.records.map((r) => r.id)),
  );
  console.error(`${kind}: the mean of ${members.join(", ")}`);
  input.onSaved?.(dir);
  return composed;
}
