/**
 * What the probe thread (probe_thread.ts) is asked and answers, and the fit it runs
 * (probe_thread_worker.ts): `LogisticRegression.fitCv` on plain rows.
 */
import { type CvOptions, type CvScore, LogisticRegression } from "../logistic.ts";

/** A fit asked of the worker. */
export interface ProbeFitRequest {
  id: number;
  rows: Float32Array[];
  labels: number[];
  classes: number;
  options: Omit<CvOptions, "outOfFold">;
}

/** The worker's answer: the fitted model's parts, or why it failed. */
export type ProbeFitReply =
  | {
    id: number;
    kind: "fitted";
    model: { means: Float64Array; scales: Float64Array; weights: Float64Array; l2: number };
    scores: CvScore[];
  }
  | { id: number; kind: "error"; message: string };

/** Fits one request on this thread; what the worker runs. */
export function fitRequest(request: ProbeFitRequest): ProbeFitReply {
  try {
    const { model, scores } = LogisticRegression.fitCv(
      request.rows,
      request.labels,
      request.classes,
      request.options,
    );
    const { means, scales, weights, l2 } = model;
    return { id: request.id, kind: "fitted", model: { means, scales, weights, l2 }, scores };
  } catch (error) {
    return {
      id: request.id,
      kind: "error",
      message: error instanceof Error ? error.stack ?? error.message : String(error),
    };
  }
}
