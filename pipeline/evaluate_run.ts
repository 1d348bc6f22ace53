/**
 * The run's evaluation step: scores each trained model's held-out faces, adds the cues a
 * model could lean on instead of the face (predicted gender, black-and-white photo), and
 * hands the numbers to the evaluation stage and the report.
 */
import { from, lastValueFrom, mergeMap, toArray } from "rxjs";
import type { SplitRecord } from "../core/types.ts";
import type { Classifier, EpochStats, ModelKind } from "../models/classifier.ts";
import { predictGender } from "../models/faces/faces.ts";
import {
  evaluate,
  type Gender,
  isGrayscale,
  type Metrics,
  type ScoredFace,
} from "../stages/evaluate.ts";
import { type ModelResult, terminalSummary, writeReport } from "../report/report.ts";

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
}

interface FaceCues {
  crop: Uint8Array;
  gender?: Gender;
  grayscale: boolean;
}

function isHeldOut(record: SplitRecord, fold: number | null): boolean {
  return fold === null ? record.split === "test" : record.fold === fold;
}

function isTraining(record: SplitRecord, fold: number | null): boolean {
  return fold === null ? record.split === "train" : record.fold !== fold;
}

async function faceCues(
  records: SplitRecord[],
  facePercent: number,
): Promise<Map<string, FaceCues>> {
  const cues = await lastValueFrom(
    from(records).pipe(
      mergeMap(async (record) => {
        const crop = await Deno.readFile(record.cropPath);
        const gender = await predictGender(crop, { facePercent }).then((g) => g.gender).catch(
          () => undefined,
        );
        return [record.id, { crop, gender, grayscale: await isGrayscale(crop) }] as const;
      }, 2),
      toArray(),
    ),
  );
  return new Map(cues);
}

/** Evaluates every trained model (all folds of a kind together) and writes the report. */
export async function evaluateModels(
  options: EvaluateRunOptions,
): Promise<{ reportPath: string; terminalSummary: string; metrics: Map<string, Metrics> }> {
  const { trained, records, classes, out, facePercent = 50 } = options;
  const cues = await faceCues(records, facePercent);
  const kinds = [...new Set(trained.map((model) => model.kind))];
  const results: ModelResult[] = [];
  const metricsByKind = new Map<string, Metrics>();

  for (const kind of kinds) {
    const models = trained.filter((model) => model.kind === kind);
    const scored: ScoredFace[] = [];
    const trainDistribution: Record<string, number> = {};
    const genderFit: { gender: Gender; category: string }[] = [];
    for (const model of models) {
      const heldOut = records.filter((record) => isHeldOut(record, model.fold));
      const probabilities = await model.classifier.predict(
        heldOut.map((record) => ({
          crop: cues.get(record.id)!.crop,
          descriptor: record.descriptor,
          embeddings: record.embeddings,
        })),
      );
      heldOut.forEach((record, i) => {
        const cue = cues.get(record.id)!;
        scored.push({
          id: record.id,
          category: record.category,
          probabilities: probabilities[i]!,
          crop: cue.crop,
          gender: cue.gender,
          grayscale: cue.grayscale,
          fold: model.fold,
        });
      });
      // With folds each model has its own training set; the first one stands for them all.
      if (model === models[0]) {
        for (const record of records.filter((r) => isTraining(r, model.fold))) {
          trainDistribution[record.category] = (trainDistribution[record.category] ?? 0) + 1;
          const gender = cues.get(record.id)?.gender;
          if (gender) genderFit.push({ gender, category: record.category });
        }
      }
    }
    const metrics = await lastValueFrom(
      from(scored).pipe(evaluate({ classes, trainDistribution, genderFit })),
    );
    metricsByKind.set(kind, metrics);
    const first = models[0]!;
    results.push({ kind, metrics, history: first.history, bestEpoch: first.bestEpoch });
  }

  const splits: Record<string, Record<string, number>> = {};
  for (const record of records) {
    const split = splits[record.split] ??= {};
    split[record.category] = (split[record.category] ?? 0) + 1;
  }
  const faces = new Map([...cues].map(([id, cue]) => [id, cue.crop]));
  const files = await writeReport(out, {
    models: results,
    faces,
    dataset: {
      name: options.dataName ?? out,
      splits,
      dropped: options.dropped,
      folds: trained.some((model) => model.fold !== null)
        ? new Set(trained.map((m) => m.fold)).size
        : null,
      provenance: options.provenance,
    },
  });
  return {
    reportPath: files.html,
    terminalSummary: terminalSummary(results, files.html),
    metrics: metricsByKind,
  };
}
