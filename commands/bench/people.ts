/**
 * `deno task bench --people FILE.csv`: the whole stream on any CSV of labelled images, with one
 * JSON summary (per stage time and items/s, per model accuracy with CI and every baseline and
 * check, peak RSS, the report's path). `bench:congress` is this on the congress portraits.
 */
import { basename, dirname, resolve } from "node:path";
import { type Command, intOption, type ParsedValues, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { pipelineOptionsFrom } from "../pipeline.ts";
import type { PeopleBenchOptions } from "../../pipeline/people_bench.ts";
import { runRepeatedBench } from "../../pipeline/repeated_bench.ts";
import { ImageListFormatError } from "../../stages/read_image_list.ts";

/** Pipeline flags a benchmark passes on; the crawl's own (sources, images, data) it sets itself. */
export const BENCH_PIPELINE_FLAGS = [
  "until",
  "models",
  "epochs",
  "patience",
  "folds",
  "ratios",
  "detector",
  "seed",
  "size",
  "face-percent",
  "batch-size",
] as const;

/** parseArgs specs for the passed-on pipeline flags, and the benchmark's own --repeats. */
export function benchPipelineFlagSpec() {
  return Object.fromEntries(
    [...BENCH_PIPELINE_FLAGS, "repeats"].map((flag) => [flag, { type: "string" }]),
  ) as Record<
    typeof BENCH_PIPELINE_FLAGS[number] | "repeats",
    { type: "string" }
  >;
}

/** What --repeats does, for both benchmarks' usage. */
export const REPEATS_HELP = `
--repeats R runs the whole stream R times, on the partitions of seeds --seed … --seed+R−1 (the
first in DIR, the others in DIR/repeats/seed-N, which start from DIR's caches), and adds
"repeats" to the summary: each model's and baseline's accuracy per partition with its mean, sd
and range, and in how many partitions each model beat each baseline. 'forget' reaches them too.`;

/**
 * Runs the benchmark and prints its summary: the run's own lines on stderr, the JSON on
 * stdout. Shared by `bench --people` and `bench:congress`.
 */
export async function printPeopleBench(
  values: ParsedValues,
  bench: Omit<PeopleBenchOptions, "pipeline" | "perPage">,
  dataDir: string,
): Promise<number> {
  const passed = Object.fromEntries(BENCH_PIPELINE_FLAGS.map((flag) => [flag, values[flag]]));
  const pipeline = pipelineOptionsFrom({ ...passed, data: dataDir, sources: "-" });
  try {
    const summary = await runRepeatedBench({
      ...bench,
      perPage: intOption(values, "per-page", 60, { min: 1 }),
      pipeline: { ...pipeline, sources: undefined },
    }, intOption(values, "repeats", 1, { min: 1, max: 100 }));
    console.log(JSON.stringify(summary, null, 2));
    return 0;
  } catch (error) {
    if (error instanceof ImageListFormatError) fail(error.message, 2);
    if (error instanceof Deno.errors.Busy) fail(error.message);
    throw error;
  }
}

export const benchPeopleCommand: Command = {
  name: "bench",
  summary: "the whole stream on any CSV of labelled images, as one JSON summary",
  usage: `
usage: deno task bench --people FILE.csv [--image-col COL] [--label-col COL]
         [--group-col source] [--name-col name] [--serve] [--data DIR] [--repeats R]
         [pipeline options]

Takes any CSV of labelled images (paths relative to the CSV's folder, or URLs) and runs the
whole stream on it: as an image list (the default), or with --serve as a loopback people site
with one paginated listing per label (and group). Prints one JSON summary: per stage its time
and items/s, per model its accuracy with a 95 % CI and every baseline and check that
metrics.json holds, the process's peak RSS, and the report's path.
Columns not named are found by their usual names (image_url, image, path; category, label;
name; source; id), so the seed study's index.csv needs no flags.
Data dir: DIR (default facefield-bench-<file name>). Pipeline options passed on:
${BENCH_PIPELINE_FLAGS.map((flag) => `--${flag}`).join(", ")}.${REPEATS_HELP}
`,
  options: {
    people: { type: "string" },
    "image-col": { type: "string" },
    "label-col": { type: "string" },
    "group-col": { type: "string" },
    "name-col": { type: "string" },
    "id-col": { type: "string" },
    serve: { type: "boolean" },
    data: { type: "string" },
    "per-page": { type: "string" },
    ...benchPipelineFlagSpec(),
  },
  async run(values) {
    const path = stringOption(values, "people");
    if (path === undefined) fail("bench needs --people FILE.csv (a CSV of labelled images)", 2);
    const info = await Deno.stat(path).catch(() => undefined);
    if (!info?.isFile) {
      fail(`cannot read --people '${path}': ${info ? "not a file" : "no such file"}`, 2);
    }
    const column = (flag: string) => stringOption(values, flag);
    const stem = basename(path).replace(/\.[^.]+$/, "");
    return await printPeopleBench(values, {
      csv: await Deno.readTextFile(path),
      baseDir: dirname(resolve(path)),
      columns: {
        image: column("image-col"),
        category: column("label-col"),
        source: column("group-col"),
        name: column("name-col"),
        id: column("id-col"),
      },
      serve: values.serve === true,
    }, stringOption(values, "data", `facefield-bench-${stem}`));
  },
};
