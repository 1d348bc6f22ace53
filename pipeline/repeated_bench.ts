/**
 * Repeated cross-validation for the benchmark: the whole stream once per seed, each seed
 * drawing its own partition, so a figure can be read beside how much it moves with the draw
 * of folds. On 873 congress faces one model moved by up to 2.2 points between two partitions,
 * as much as the face models differ from one another.
 *
 * The first seed runs in the data dir itself, the others in `<data dir>/repeats/seed-<N>/`,
 * each a whole data dir whose caches start as hard links to the first's (they are written by
 * rename, so a link never sees a write), and whose removal list starts as the first's. `forget` reaches into them.
 */
import { join } from "node:path";
import { dataPaths } from "../store/paths.ts";
import { resolvePipelineOptions } from "./options.ts";
import {
  type PeopleBenchOptions,
  type PeopleBenchSummary,
  runPeopleBench,
} from "./people_bench.ts";

/** One figure over the repeats: each partition's value (null where a run had none) and its spread. */
export interface RepeatedFigure {
  each: (number | null)[];
  mean: number | null;
  /** Sample standard deviation over the partitions that have the figure. */
  sd: number | null;
  min: number | null;
  max: number | null;
}

/** A baseline over the repeats, and in how many partitions each model beat it (McNemar). */
export interface RepeatedBaseline extends RepeatedFigure {
  key: string;
  name: string;
  beatenBy: Record<string, { beaten: number; of: number; pValues: (number | null)[] }>;
}

export interface RepeatedSummary {
  seeds: number[];
  dataDirs: string[];
  reports: (string | null)[];
  /** All partitions together, and each partition's run. */
  wall_s: number;
  wall_s_each: number[];
  /** Each model kind's accuracy over the partitions. */
  models: ({ kind: string } & RepeatedFigure)[];
  baselines: RepeatedBaseline[];
  /** The kind with the highest mean accuracy over the partitions. */
  best: { kind: string; mean: number } | null;
}

/** The first partition's summary as `bench` prints it, with the repeats beside it. */
export type RepeatedBenchSummary = PeopleBenchSummary & { repeats?: RepeatedSummary };

/** Where the partition of `seed` runs, for a benchmark whose first partition is in `root`. */
export function repeatDataDir(root: string, seed: number): string {
  return join(dataPaths(root).repeats, `seed-${seed}`);
}

/** `values`' mean, sample sd, min and max, leaving out the nulls. */
export function spreadOf(each: (number | null)[]): RepeatedFigure {
  const present = each.filter((value): value is number => value !== null);
  if (present.length === 0) return { each, mean: null, sd: null, min: null, max: null };
  const mean = present.reduce((sum, value) => sum + value, 0) / present.length;
  const sd = present.length < 2 ? null : Math.sqrt(
    present.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (present.length - 1),
  );
  return { each, mean, sd, min: Math.min(...present), max: Math.max(...present) };
}

interface BaselineFigures {
  key: string;
  name: string;
  score?: { accuracy?: number };
  versus?: Record<string, { modelBeatsIt?: { pValue?: number; significant?: boolean } }>;
}

function baselinesOf(summary: PeopleBenchSummary): BaselineFigures[] {
  const checks = summary.checks.checks as { baselines?: BaselineFigures[] } | undefined;
  return checks?.baselines ?? [];
}

/** The figures of every partition, model by model and baseline by baseline, in seed order. */
export function summariseRepeats(
  runs: { seed: number; dataDir: string; summary: PeopleBenchSummary }[],
  wallS: number,
): RepeatedSummary {
  const summaries = runs.map((run) => run.summary);
  const kinds = [...new Set(summaries.flatMap((s) => s.models.map((model) => model.kind)))];
  const models = kinds.map((kind) => ({
    kind,
    ...spreadOf(summaries.map((s) => s.models.find((m) => m.kind === kind)?.accuracy ?? null)),
  }));
  const keys = [...new Set(summaries.flatMap((s) => baselinesOf(s).map((b) => b.key)))];
  const baselines = keys.map((key): RepeatedBaseline => {
    const found = summaries.map((s) => baselinesOf(s).find((b) => b.key === key));
    const beatenBy = Object.fromEntries(kinds.map((kind) => {
      const tests = found.map((baseline) => baseline?.versus?.[kind]?.modelBeatsIt);
      return [kind, {
        beaten: tests.filter((test) => test?.significant === true).length,
        of: tests.filter((test) => test !== undefined).length,
        pValues: tests.map((test) => test?.pValue ?? null),
      }];
    }));
    return {
      key,
      name: found.find((baseline) => baseline)?.name ?? key,
      ...spreadOf(found.map((baseline) => baseline?.score?.accuracy ?? null)),
      beatenBy,
    };
  });
  let best: RepeatedSummary["best"] = null;
  for (const model of models) {
    if (model.mean !== null && (best === null || model.mean > best.mean)) {
      best = { kind: model.kind, mean: model.mean };
    }
  }
  return {
    seeds: runs.map((run) => run.seed),
    dataDirs: runs.map((run) => run.dataDir),
    reports: summaries.map((s) => s.report),
    wall_s: Math.round(wallS * 10) / 10,
    wall_s_each: summaries.map((s) => s.wall_s),
    models,
    baselines,
    best,
  };
}

/** Hard-links (or, across file systems, copies) every file under `from` that `to` lacks. */
async function linkTree(from: string, to: string): Promise<void> {
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(from));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  await Deno.mkdir(to, { recursive: true });
  for (const entry of entries) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory) {
      await linkTree(source, target);
    } else if (entry.isFile) {
      try {
        await Deno.link(source, target);
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue;
        await Deno.copyFile(source, target);
      }
    }
  }
}

/**
 * Starts a repeat's data dir from the first's caches, so its pages and images are revalidated
 * rather than fetched again and its faces not detected again, and from its removal list, so
 * nobody forgotten comes back. The manifest stays behind: the repeat draws its own partition.
 */
export async function seedRepeatDir(first: string, repeat: string): Promise<void> {
  const from = dataPaths(first);
  const to = dataPaths(repeat);
  await linkTree(from.cache, to.cache);
  await Deno.mkdir(repeat, { recursive: true });
  try {
    await Deno.copyFile(from.removed, to.removed);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * `runPeopleBench` once per seed, from the run's own seed up: `repeats` partitions. With one
 * repeat it is `runPeopleBench` as it is.
 */
export async function runRepeatedBench(
  options: PeopleBenchOptions,
  repeats: number,
): Promise<RepeatedBenchSummary> {
  if (!Number.isInteger(repeats) || repeats < 1) {
    throw new RangeError(`repeats must be a whole number of 1 or more: got ${repeats}`);
  }
  const { dataDir, seed } = resolvePipelineOptions(options.pipeline);
  const started = performance.now();
  const runs: { seed: number; dataDir: string; summary: PeopleBenchSummary }[] = [];
  for (let i = 0; i < repeats; i++) {
    const runSeed = seed + i;
    const runDir = i === 0 ? dataDir : repeatDataDir(dataDir, runSeed);
    if (i > 0) {
      console.error(`bench: partition ${i + 1} of ${repeats}, seed ${runSeed}, in ${runDir}`);
      await seedRepeatDir(dataDir, runDir);
    }
    const summary = await runPeopleBench({
      ...options,
      pipeline: { ...options.pipeline, dataDir: runDir, seed: runSeed },
    });
    runs.push({ seed: runSeed, dataDir: runDir, summary });
  }
  const [first] = runs;
  if (repeats === 1) return first!.summary;
  return {
    ...first!.summary,
    repeats: summariseRepeats(runs, (performance.now() - started) / 1000),
  };
}
