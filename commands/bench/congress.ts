/**
 * `deno task bench:congress`: `bench --people` on the shared congress portraits, served as a
 * loopback "people" site (one paginated listing per party), so the figure is what a user would
 * get from crawling such pages. It reads ../shared/data/congress; a clone without it is told so.
 */
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { join } from "node:path";
import { type Command, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { missingShared, sharedPath } from "../../core/shared_data.ts";
import { benchPipelineFlagSpec, printPeopleBench, REPEATS_HELP } from "./people.ts";

export const CONGRESS_DIR = sharedPath("data/congress/");

interface Member {
  id: string;
  name: string;
  party: string;
  chamber: string;
  state: string;
  image: string;
  set: string;
}

const SETS = ["dev", "holdout", "all"] as const;

export async function loadCongress(set: typeof SETS[number]): Promise<Member[]> {
  const members: Member[] = parse(await Deno.readTextFile(join(CONGRESS_DIR, "people.csv")), {
    columns: true,
  });
  return members.filter((member) => set === "all" || member.set === set);
}

export const benchCongressCommand: Command = {
  name: "bench:congress",
  summary: "the whole pipeline on ../shared/data/congress (party from official portraits)",
  usage: `
usage: deno task bench:congress [--set dev|holdout|all] [--data DIR] [--repeats R]
         [pipeline options]

Serves the congress portraits as a loopback people site, one listing per party, and runs the
pipeline on it into DIR (default facefield-congress-<set>): 'deno task bench --people' on
../shared/data/congress/people.csv with --serve. The set 'dev' (200) is for development;
'holdout' (673) and 'all' are the final benchmark: tune nothing on them.
Any pipeline option works (--folds 5, --models embedding, --epochs, ...).
Baselines (all 873): always republican 52.1 %, gender alone 59.0 %.${REPEATS_HELP}
`,
  options: {
    set: { type: "string" },
    data: { type: "string" },
    "per-page": { type: "string" },
    ...benchPipelineFlagSpec(),
  },
  async run(values) {
    const set = stringOption(values, "set", "dev");
    if (!(SETS as readonly string[]).includes(set)) fail(`--set must be dev, holdout or all`, 2);
    const missing = missingShared("data/congress/people.csv");
    if (missing) fail(`bench:congress needs the congress portraits: ${missing}`);
    const members = await loadCongress(set as typeof SETS[number]);
    return await printPeopleBench(values, {
      csv: stringify(members, { header: true, columns: ["id", "name", "party", "image"] }),
      baseDir: CONGRESS_DIR,
      columns: { image: "image", category: "party", name: "name", id: "id" },
      serve: true,
      // A stable port keeps image URLs, and so record ids, the same across reruns.
      port: 47322,
    }, stringOption(values, "data", `facefield-congress-${set}`));
  },
};
