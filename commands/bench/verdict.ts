/**
 * `deno task bench:verdict`: how often the verdict is right, on sites whose truth is known
 * (pipeline/truth_sites.ts), each crawled by the whole pipeline as a loopback people site.
 */
import { join } from "node:path";
import { type Command, intOption, log, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { missingShared } from "../../core/shared_data.ts";
import { pipelineOptionsFrom } from "../pipeline.ts";
import { BENCH_PIPELINE_FLAGS, benchPipelineFlagSpec } from "./people.ts";
import { landmarkCache, loadPool, POOL_NAMES, type PoolName } from "../../pipeline/truth_pool.ts";
import { TRUTH_CASES, type TruthCase } from "../../pipeline/truth_sites.ts";
import { formatVerdictBench, runVerdictBench } from "../../pipeline/verdict_bench.ts";

function casesOption(raw: string | undefined): TruthCase[] {
  if (raw === undefined) return [...TRUTH_CASES];
  const names = raw.split(",").map((name) => name.trim()).filter((name) => name !== "");
  for (const name of names) {
    if (!(TRUTH_CASES as readonly string[]).includes(name)) {
      fail(`--cases: unknown case '${name}': one of ${TRUTH_CASES.join(", ")}`, 2);
    }
  }
  if (names.length === 0) fail(`--cases names no case: one of ${TRUTH_CASES.join(", ")}`, 2);
  return names as TruthCase[];
}

function warpOption(raw: string | undefined) {
  if (raw === undefined) return undefined;
  const [eyes, chin = eyes] = raw.split(",").map(Number);
  if (![eyes, chin].every((v) => v !== undefined && Number.isFinite(v) && v >= 0 && v <= 0.15)) {
    fail(`--warp takes EYES[,CHIN] in face widths, each 0–0.15: got '${raw}'`, 2);
  }
  return { eyesOut: eyes!, chinDown: chin! };
}

export const benchVerdictCommand: Command = {
  name: "bench:verdict",
  summary: "how often the verdict is right, on sites whose truth is planted",
  usage: `
usage: deno task bench:verdict [--repeats R] [--first-seed S] [--cases a,b] [--pool congress-dev|demo]
         [--faces N] [--warp EYES[,CHIN]] [--data DIR] [--json FILE] [pipeline options]

Builds a site whose truth is known for each case and seed (S … S+R−1; 1 … 5 by default), serves it as a
loopback people site, runs the whole pipeline on it (as bench --people --serve), and reads
metrics.json's verdict.conclusion. Prints the confusion matrix truth × conclusion, the share
right per case and overall, how often "face" is concluded without a face signal and found
with one, and the wall time per run; --json FILE writes the same as JSON.
Cases (truth): ${TRUTH_CASES.join(", ")}.
  null (no-signal), style-per-source and style-per-class (photo), demographic (demographics:
  85 % women in one class, 15 % in the other), face and face+style (face: eyes moved apart and
  the chin down by --warp face widths, default 0.02,0.02), four-class (photo: 4 × 3 sources).
--pool congress-dev (default; ../shared/data/congress set=dev, 200 people) or demo (22 women
  from face-api's samples: every case but demographic). --faces N: most faces per site (160).
Data: DIR (default facefield-verdict-bench), a data dir per case and seed under it.
A run with no verdict in metrics.json counts as 'missing'. Each run's result is kept in
DIR/<case>/seed-N/run.json and not run again: a stopped bench goes on where it stopped, and one
process per seed (--first-seed N --repeats 1) keeps the memory of a long bench low. Pipeline options passed on:
${BENCH_PIPELINE_FLAGS.map((flag) => `--${flag}`).join(", ")} (default --folds 4).
`,
  options: {
    cases: { type: "string" },
    pool: { type: "string" },
    faces: { type: "string" },
    warp: { type: "string" },
    data: { type: "string" },
    json: { type: "string" },
    "first-seed": { type: "string" },
    ...benchPipelineFlagSpec(),
  },
  async run(values) {
    const poolName = stringOption(values, "pool", "congress-dev");
    if (!(POOL_NAMES as readonly string[]).includes(poolName)) {
      fail(`--pool must be ${POOL_NAMES.join(" or ")}: got '${poolName}'`, 2);
    }
    if (poolName === "congress-dev") {
      const missing = missingShared("data/congress/people.csv");
      if (missing) {
        fail(`--pool congress-dev needs the congress portraits: ${missing}; try --pool demo`);
      }
    }
    const cases = casesOption(stringOption(values, "cases"));
    if (poolName === "demo" && cases.includes("demographic")) {
      fail(
        "--pool demo has women only: the demographic case needs congress-dev (or leave it out with --cases)",
        2,
      );
    }
    const dir = stringOption(values, "data", "facefield-verdict-bench");
    const passed = Object.fromEntries(BENCH_PIPELINE_FLAGS.map((flag) => [flag, values[flag]]));
    const pipeline = pipelineOptionsFrom({
      ...passed,
      folds: passed.folds ?? "4",
      data: dir,
      sources: "-",
    });
    await Deno.mkdir(dir, { recursive: true });
    const pool = await loadPool(poolName as PoolName);
    const summary = await runVerdictBench({
      pool,
      cases,
      repeats: intOption(values, "repeats", 5, { min: 1, max: 100 }),
      firstSeed: intOption(values, "first-seed", 1, { min: 1, max: 1_000_000 }),
      dir,
      pipeline,
      faces: intOption(values, "faces", 160, { min: 8, max: 10000 }),
      warp: warpOption(stringOption(values, "warp")),
      landmarks: landmarkCache(join(dir, `landmarks-${poolName}.json`)),
      onRun: (run) =>
        log(
          `bench:verdict: ${run.case} seed ${run.seed}: ${run.conclusion} (truth ${run.truth}), ${run.faces} faces, ${run.wall_s} s${
            run.error ? `: ${run.error}` : ""
          }`,
        ),
    });
    console.log(formatVerdictBench(summary));
    const json = stringOption(values, "json");
    if (json !== undefined) await Deno.writeTextFile(json, JSON.stringify(summary, null, 2) + "\n");
    return 0;
  },
};
