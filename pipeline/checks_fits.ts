/**
 * The checks' linear fits, apart from the face models' retraining: the style baselines and the
 * verdict's ladder on the random split and on held-out sources. They read only features (no
 * model, no crop), depend on each other not at all, and cost as much as training did, so they
 * run in worker threads (pipeline/checks_fits_pool.ts) while the main thread retrains the
 * face models for leave-sources-out: the two cores share the work instead of taking turns.
 * Every fit is the one it was in a single thread, on the same rows, with the same answers.
 */
import type { SplitRecord } from "../core/types.ts";
import type { StoredFace } from "../models/dataset.ts";
import type { Attributes } from "../stages/validity.ts";
import type { LadderPredictions } from "../stages/verdict.ts";
import { type FeatureRow, heldOutGroup } from "./checks_input.ts";
import { ladderFitOn, type LadderFits } from "./ladder.ts";
import { fitOnSameSplit } from "./same_split.ts";

/** The style baselines fitted on the photo's features. */
export type StyleKey = keyof FeatureRow["features"];

/** What every fit reads, sent once to each worker. */
export interface LinearFitData {
  classes: string[];
  records: SplitRecord[];
  /** The faces' descriptors and embeddings, without their crops. */
  faces: Pick<StoredFace, "id" | "descriptor" | "embeddings">[];
  attributes?: Map<string, Attributes>;
  rows: FeatureRow[];
  /** Each leave-sources-out run's held-out sources (pipeline/leave_sources_out.ts's plan). */
  runs: string[][];
  /** Each record's source, by record id. */
  sources: Map<string, string>;
}

export type LinearFitTask =
  | { kind: "baseline"; key: StyleKey }
  | { kind: "ladder"; on: "random" | "unseen" };

export type LinearFitAnswer =
  | { kind: "baseline"; key: StyleKey; predictions: Map<string, number>; seconds: number }
  | {
    kind: "ladder";
    on: "random" | "unseen";
    predictions: LadderPredictions | null;
    widths: LadderFits["widths"];
    seconds: number;
  };

/**
 * The fits of a run with the checks, the longest first (so two threads finish together): the
 * ladder on no grouping, the random split, or both it and held-out sources.
 */
export function linearFitTasks(
  keys: readonly StyleKey[],
  ladder: "none" | "random" | "both",
): LinearFitTask[] {
  const byCost: StyleKey[] = ["masked-face", "blurred-face", "image-statistics"];
  return [
    ...(ladder === "both" ? [{ kind: "ladder", on: "unseen" } as const] : []),
    ...(ladder !== "none" ? [{ kind: "ladder", on: "random" } as const] : []),
    ...byCost.filter((key) => keys.includes(key)).map((
      key,
    ) => ({ kind: "baseline", key } as const)),
  ];
}

/** Runs one fit in this thread. */
export function runLinearFit(data: LinearFitData, task: LinearFitTask): LinearFitAnswer {
  const started = performance.now();
  const seconds = () => Math.round(performance.now() - started) / 1000;
  if (task.kind === "baseline") {
    const predictions = fitOnSameSplit(
      data.rows.map((r) => ({
        id: r.id,
        label: r.label,
        group: r.group,
        x: r.features[task.key],
        person: r.person,
      })),
      data.classes.length,
    );
    return { kind: "baseline", key: task.key, predictions, seconds: seconds() };
  }
  const runOfSource = new Map(data.runs.flatMap((run, i) => run.map((s) => [s, i] as const)));
  const { predictions, widths } = ladderFitOn({
    records: data.records,
    store: { faces: data.faces },
    classes: data.classes,
    attributes: data.attributes,
    photo: new Map(data.rows.map((r) => [r.id, {
      statistics: r.features["image-statistics"],
      masked: r.features["masked-face"],
    }])),
    groupOf: heldOutGroup,
    sourceRunOf: data.runs.length
      ? (record) => runOfSource.get(data.sources.get(record.id)!) ?? "train"
      : null,
  }, task.on);
  return { kind: "ladder", on: task.on, predictions, widths, seconds: seconds() };
}

/** Messages to a fits worker. */
export type FitsRequest =
  | { kind: "data"; data: LinearFitData }
  | { kind: "task"; task: LinearFitTask };

/** Messages from a fits worker. */
export type FitsReply =
  | { kind: "answer"; answer: LinearFitAnswer }
  | { kind: "error"; message: string };
