/**
 * What the validity checks read: the run's records, faces and models' held-out answers, and
 * how faces group into held-out folds and sources. pipeline/checks.ts runs the checks,
 * pipeline/leave_sources_out.ts and pipeline/verdict_fits.ts fit on it.
 */
import type { RgbImage, SplitRecord } from "../core/types.ts";
import type { ModelKind } from "../models/classifier.ts";
import type { FaceStore } from "../models/dataset.ts";
import type { Attributes, BaselineKey } from "../stages/validity.ts";

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
  /**
   * Worker threads for the checks' linear fits (style baselines, the verdict's ladder), which
   * run beside leave-sources-out; 0 fits them in this thread.
   * @default min(2, the CPU's threads)
   */
  fitThreads?: number;
  /**
   * The style baselines' features (`checkFeatures`), started earlier by the caller so that they
   * are read while something else runs (the evaluation's face estimates).
   * @default read when the checks start
   */
  features?: Promise<CheckFeatures>;
  /** Progress lines (ids and counts only). @default console.error */
  log?: (line: string) => void;
}

/** Faces a record is held out with: its fold with `--folds`, else the test split. */
export function heldOutGroup(record: SplitRecord): number | "test" | "train" {
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

/** The style baselines' feature rows, and the records left out by reason. */
export interface CheckFeatures {
  rows: FeatureRow[];
  skipped: Record<string, number>;
}

/** One face's no-face features for the baselines, keyed by baseline. */
export interface FeatureRow {
  id: string;
  person: string;
  label: number;
  group: number | "test" | "train";
  features: Record<Exclude<BaselineKey, "demographics" | "head-pose">, ArrayLike<number>>;
}
