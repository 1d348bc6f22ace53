/**
 * How often the verdict is right: each case of `truth_sites.ts` on R seeds, each site served as
 * a loopback people site and crawled by the whole pipeline as a user would run it, and the
 * run's `verdict.conclusion` (metrics.json) set against the planted truth. Each run has its
 * own data dir under the bench's; their caches are shared by hard links (content-addressed),
 * so a portrait that comes out byte-identical in two runs is detected once.
 */
import { dirname, join } from "node:path";
import { type Conclusion, CONCLUSIONS } from "../stages/verdict.ts";
import { type PeopleBenchSummary, runPeopleBench } from "./people_bench.ts";
import type { PipelineOptions } from "./options.ts";
import { seedRepeatDir } from "./repeated_bench.ts";
import type { FaceWarp } from "../models/faces/face_warp.ts";
import type { LandmarkFinder, PoolPortrait } from "./truth_pool.ts";
import { CASE_TRUTH, makeTruthSite, type TruthCase } from "./truth_sites.ts";

/** What a run concluded: the verdict's, `missing` where metrics.json has none, `failed` where the run threw. */
export type Outcome = Conclusion | "missing" | "failed";
export const OUTCOMES: readonly Outcome[] = [...CONCLUSIONS, "missing", "failed"];

export interface VerdictBenchOptions {
  pool: PoolPortrait[];
  cases: TruthCase[];
  /**
   * Seeds per case: firstSeed … firstSeed + repeats − 1.
   * @default 5
   */
  repeats?: number;
  /**
   * The first seed.
   * @default 1
   */
  firstSeed?: number;
  /** The bench's folder: each run's data dir and site are made under it. */
  dir: string;
  /** The runs' pipeline options (models, folds, …); data dir and seed are set per run. */
  pipeline: PipelineOptions;
  /**
   * Most faces per site.
   * @default 160
   */
  faces?: number;
  warp?: FaceWarp;
  landmarks: LandmarkFinder;
  /** Told each run's result as it ends. */
  onRun?: (run: VerdictRun) => void;
}

export interface VerdictRun {
  case: TruthCase;
  seed: number;
  truth: Conclusion;
  conclusion: Outcome;
  /** The run's headline and why, as metrics.json says them (null where missing). */
  headline: string | null;
  faces: number;
  /** Each model's cross-validated accuracy in the run (how findable the planted signal was). */
  accuracy: Record<string, number | null>;
  wall_s: number;
  dataDir: string;
  error?: string;
}

export interface VerdictBenchSummary {
  bench: "verdict";
  pool: number;
  repeats: number;
  cases: TruthCase[];
  runs: VerdictRun[];
  /** Runs by planted truth (rows) and conclusion (columns). */
  confusion: Record<Conclusion, Record<Outcome, number>>;
  /** Share of runs concluding the truth, per case and over all runs. */
  rightByCase: Record<string, { right: number; of: number; rate: number | null }>;
  right: { right: number; of: number; rate: number | null };
  /** `face` concluded where the truth is not face (null, photo and demographic cases). */
  falseFace: { count: number; of: number; rate: number | null };
  /** `face` concluded where a face signal was planted. */
  faceFound: { count: number; of: number; rate: number | null };
  wall_s: { each: number[]; mean: number | null; total: number };
}

/** The verdict in a bench summary: metrics.json's `verdict`, or one nested in its checks. */
export function conclusionOf(
  summary: PeopleBenchSummary,
): { conclusion: Outcome; headline: string | null } {
  const checks = summary.checks;
  const nested = (checks.checks ?? {}) as Record<string, unknown>;
  const verdict = (checks.verdict ?? nested.verdict) as
    | { conclusion?: unknown; headline?: unknown }
    | undefined;
  const conclusion = verdict?.conclusion;
  if (typeof conclusion !== "string" || !(CONCLUSIONS as readonly string[]).includes(conclusion)) {
    return { conclusion: "missing", headline: null };
  }
  return {
    conclusion: conclusion as Conclusion,
    headline: typeof verdict?.headline === "string" ? verdict.headline : null,
  };
}

const rate = (count: number, of: number) => of === 0 ? null : count / of;

/** The confusion matrix and rates of a list of runs. */
export function summariseVerdictRuns(
  runs: VerdictRun[],
  meta: { pool: number; repeats: number; cases: TruthCase[] },
): VerdictBenchSummary {
  const truths = [...new Set(Object.values(CASE_TRUTH))];
  const confusion = Object.fromEntries(
    truths.map((truth) => [truth, Object.fromEntries(OUTCOMES.map((o) => [o, 0]))]),
  ) as Record<Conclusion, Record<Outcome, number>>;
  for (const run of runs) confusion[run.truth]![run.conclusion]++;
  const rightByCase: VerdictBenchSummary["rightByCase"] = {};
  for (const name of meta.cases) {
    const of = runs.filter((run) => run.case === name);
    const right = of.filter((run) => run.conclusion === run.truth).length;
    rightByCase[name] = { right, of: of.length, rate: rate(right, of.length) };
  }
  const right = runs.filter((run) => run.conclusion === run.truth).length;
  const notFace = runs.filter((run) => run.truth !== "face");
  const face = runs.filter((run) => run.truth === "face");
  const falseFace = notFace.filter((run) => run.conclusion === "face").length;
  const faceFound = face.filter((run) => run.conclusion === "face").length;
  const each = runs.map((run) => run.wall_s);
  const total = each.reduce((a, b) => a + b, 0);
  return {
    bench: "verdict",
    ...meta,
    runs,
    confusion,
    rightByCase,
    right: { right, of: runs.length, rate: rate(right, runs.length) },
    falseFace: { count: falseFace, of: notFace.length, rate: rate(falseFace, notFace.length) },
    faceFound: { count: faceFound, of: face.length, rate: rate(faceFound, face.length) },
    wall_s: {
      each,
      mean: each.length ? Math.round(total / each.length * 10) / 10 : null,
      total: Math.round(total * 10) / 10,
    },
  };
}

function runDirOf(dir: string, name: TruthCase, seed: number): string {
  return join(dir, name.replace(/[^a-z0-9-]/g, "_"), `seed-${seed}`);
}

/** One case on one seed: the site, the run, its conclusion. A run that throws is `failed`. */
async function runOne(
  options: VerdictBenchOptions,
  name: TruthCase,
  seed: number,
): Promise<VerdictRun> {
  const runDir = runDirOf(options.dir, name, seed);
  const siteDir = join(runDir, "site");
  const dataDir = join(runDir, "data");
  const cacheDir = join(options.dir, "shared-cache");
  const started = performance.now();
  let faces = 0;
  try {
    const site = await makeTruthSite({
      pool: options.pool,
      case: name,
      seed,
      dir: siteDir,
      faces: options.faces,
      warp: options.warp,
      landmarks: options.landmarks,
    });
    faces = site.rows.length;
    await seedRepeatDir(cacheDir, dataDir);
    const summary = await runPeopleBench({
      csv: site.csv,
      baseDir: siteDir,
      columns: { image: "image", category: "label", source: "source", name: "name", id: "id" },
      serve: true,
      pipeline: { ...options.pipeline, dataDir, seed, sources: undefined },
    });
    await seedRepeatDir(dataDir, cacheDir);
    const { conclusion, headline } = conclusionOf(summary);
    return {
      case: name,
      seed,
      truth: CASE_TRUTH[name],
      conclusion,
      headline,
      faces,
      accuracy: Object.fromEntries(summary.models.map((model) => [model.kind, model.accuracy])),
      wall_s: Math.round((performance.now() - started) / 100) / 10,
      dataDir,
    };
  } catch (error) {
    return {
      case: name,
      seed,
      truth: CASE_TRUTH[name],
      conclusion: "failed",
      headline: null,
      faces,
      accuracy: {},
      wall_s: Math.round((performance.now() - started) / 100) / 10,
      dataDir,
      error: error instanceof Error ? error.message.split("\n")[0]! : String(error),
    };
  }
}

/** Every case on seeds 1 … repeats, seed by seed (so a short run still covers every case). */
export async function runVerdictBench(options: VerdictBenchOptions): Promise<VerdictBenchSummary> {
  const { repeats = 5, firstSeed = 1, cases } = options;
  if (!Number.isInteger(repeats) || repeats < 1) {
    throw new RangeError(`'repeats' must be a whole number >= 1: current value is ${repeats}`);
  }
  if (cases.length === 0) throw new RangeError("'cases' must name at least one case");
  const runs: VerdictRun[] = [];
  for (let seed = firstSeed; seed < firstSeed + repeats; seed++) {
    for (const name of cases) {
      const done = join(runDirOf(options.dir, name, seed), "run.json");
      // A run that ended before (the bench was stopped and started again) is not run again.
      let run = await Deno.readTextFile(done).then((text) => JSON.parse(text) as VerdictRun)
        .catch(() => undefined);
      if (!run || run.conclusion === "failed" || run.conclusion === "missing") {
        run = await runOne(options, name, seed);
        await Deno.mkdir(dirname(done), { recursive: true });
        await Deno.writeTextFile(done, JSON.stringify(run, null, 2) + "\n");
      }
      runs.push(run);
      options.onRun?.(run);
    }
  }
  return summariseVerdictRuns(runs, { pool: options.pool.length, repeats, cases });
}

const pct = (value: number | null) => value === null ? "–" : `${(value * 100).toFixed(0)} %`;

/** Each model's mean accuracy over some runs, as `kind 61 %, …`. */
function meanAccuracies(runs: VerdictRun[]): string {
  const kinds = [...new Set(runs.flatMap((run) => Object.keys(run.accuracy)))];
  return kinds.map((kind) => {
    const values = runs.map((run) => run.accuracy[kind]).filter((v): v is number =>
      typeof v === "number"
    );
    return `${kind} ${
      pct(values.length ? values.reduce((a, b) => a + b, 0) / values.length : null)
    }`;
  }).join(", ") || "–";
}

/** The summary as a person reads it: the answer, the matrix, the rates, the times. */
export function formatVerdictBench(summary: VerdictBenchSummary): string {
  const lines: string[] = [];
  lines.push(
    `verdict right on ${summary.right.right} of ${summary.right.of} runs (${
      pct(summary.right.rate)
    }); ` +
      `false "face" on ${summary.falseFace.count} of ${summary.falseFace.of} runs without a face signal (${
        pct(summary.falseFace.rate)
      }); "face" found on ${summary.faceFound.count} of ${summary.faceFound.of} face runs (${
        pct(summary.faceFound.rate)
      })`,
    "",
    "truth \\ conclusion",
  );
  const columns = OUTCOMES.filter((o) =>
    (CONCLUSIONS as readonly string[]).includes(o) ||
    Object.values(summary.confusion).some((row) => row[o] > 0)
  );
  const width = 13;
  lines.push(["".padEnd(width), ...columns.map((c) => c.padStart(width))].join(""));
  for (const [truth, row] of Object.entries(summary.confusion)) {
    if (columns.every((c) => row[c] === 0)) continue;
    lines.push(
      [truth.padEnd(width), ...columns.map((c) => String(row[c]).padStart(width))].join(""),
    );
  }
  lines.push("", "right per case:");
  for (const [name, figure] of Object.entries(summary.rightByCase)) {
    const mine = summary.runs.filter((run) => run.case === name);
    lines.push(
      `  ${name.padEnd(18)} ${figure.right}/${figure.of} (${pct(figure.rate)})  conclusions: ${
        mine.map((run) => run.conclusion).join(", ")
      }`,
      `  ${"".padEnd(18)} mean accuracy: ${meanAccuracies(mine)}`,
    );
  }
  lines.push(
    "",
    `wall time per run: mean ${summary.wall_s.mean ?? "–"} s, total ${summary.wall_s.total} s`,
  );
  const failed = summary.runs.filter((run) => run.error);
  for (const run of failed) lines.push(`  failed: ${run.case} seed ${run.seed}: ${run.error}`);
  return lines.join("\n");
}
