/**
 * `deno task bench:seedlike`: a study of the seed's own shape. The congress portraits served as
 * 57 loopback sources in 4 categories, with labels drawn at random, run through the whole
 * stream with the default models and every check. It measures cost, not accuracy: with random
 * labels the right verdict is that nothing tells the groups apart.
 */
import { stringify } from "csv-stringify/sync";
import { type Command, intOption, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { missingShared } from "../../core/shared_data.ts";
import { seededUniform } from "../../core/statistics.ts";
import { CONGRESS_DIR, loadCongress } from "./congress.ts";
import { benchPipelineFlagSpec, printPeopleBench } from "./people.ts";

/** One portrait of the study: a random category and a source within it. */
export interface SeedlikeRow {
  id: string;
  name: string;
  image: string;
  category: string;
  source: string;
}

/**
 * Deals `people` into `categories` categories at random and, within each, into sources taking
 * people in turn; `sources` sources in all, as evenly over the categories as they divide.
 */
export function seedlikeRows<T extends { id: string; name: string; image: string }>(
  people: readonly T[],
  options: { sources: number; categories: number; seed: number },
): SeedlikeRow[] {
  const { sources, categories, seed } = options;
  if (categories < 2 || sources < 2 * categories) {
    throw new RangeError(
      `a seed-like study needs 2 or more categories and 2 sources for each: got ${categories} and ${sources}`,
    );
  }
  const random = seededUniform(seed);
  const order = people.map((person) => ({ person, key: random() }))
    .sort((a, b) => a.key - b.key).map(({ person }) => person);
  const sourcesOf = (k: number) =>
    Math.floor(sources / categories) + (k < sources % categories ? 1 : 0);
  return order.map((person, i) => {
    const k = i % categories;
    const category = `category-${String.fromCharCode(97 + k)}`;
    const s = Math.floor(i / categories) % sourcesOf(k);
    return {
      id: person.id,
      name: person.name,
      image: person.image,
      category,
      source: `${category}-site-${s + 1}`,
    };
  });
}

export const benchSeedlikeCommand: Command = {
  name: "bench:seedlike",
  summary: "the seed study's shape: 873 congress portraits as 57 sources in 4 random categories",
  usage: `
usage: deno task bench:seedlike [--sources 57] [--categories 4] [--data DIR] [--port 47324]
         [pipeline options]

Deals the congress portraits of ../shared/data/congress (all 873) at random into --categories
categories and --sources loopback sources (the seed study had 57 sites in 4 majors), serves
them as people pages, and runs the whole stream with the default models and every check on
5 folds (--folds changes it). Prints the run's JSON summary: wall time per stage, peak RSS and
the verdict. The labels are random, so the right verdict is 'no-signal', and nothing is tuned
on these faces: this is a measure of time and memory. Data: DIR (default facefield-seedlike).
The summary gives each phase's wall and CPU seconds (stages[].cpuSeconds for train and
evaluate, cpu_s for the whole run, checks.cpuSeconds per check). The site is served on
127.0.0.1:--port; keep it across reruns of one DIR (the images' URLs, and so the records' ids,
name it), and give a second run beside it another port and another DIR.
`,
  options: {
    sources: { type: "string" },
    categories: { type: "string" },
    data: { type: "string" },
    "per-page": { type: "string" },
    port: { type: "string" },
    ...benchPipelineFlagSpec(),
  },
  async run(values) {
    const missing = missingShared("data/congress/people.csv");
    if (missing) fail(`bench:seedlike needs the congress portraits: ${missing}`);
    const rows = seedlikeRows(await loadCongress("all"), {
      sources: intOption(values, "sources", 57, { min: 4, max: 1000 }),
      categories: intOption(values, "categories", 4, { min: 2, max: 26 }),
      seed: intOption(values, "seed", 1, { min: 0 }),
    });
    return await printPeopleBench(
      { ...values, folds: stringOption(values, "folds", "5") },
      {
        csv: stringify(rows, {
          header: true,
          columns: ["id", "name", "category", "source", "image"],
        }),
        baseDir: CONGRESS_DIR,
        columns: {
          image: "image",
          category: "category",
          source: "source",
          name: "name",
          id: "id",
        },
        serve: true,
        // A stable port keeps image URLs, and so record ids, the same across reruns.
        port: intOption(values, "port", 47324, { min: 1024, max: 65535 }),
      },
      stringOption(values, "data", "facefield-seedlike"),
    );
  },
};
