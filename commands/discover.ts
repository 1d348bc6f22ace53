/** `deno task discover`: home pages → the people pages of their sites → a sources file. */
import { type Command, intOption, log, type ParsedValues, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { clusterDiscovery, readHomes, runDiscovery } from "../pipeline/discover.ts";
import { connectCoordinator, jobSettingsFor } from "../pipeline/cluster/coordinator.ts";
import { parseClusterUrl } from "../pipeline/cluster/connection.ts";
import {
  categoryFor,
  type CategoryRule,
  parseCategoryRules,
} from "../stages/discover/sources_csv.ts";
import type { SiteDiscovery } from "../stages/discover_sites.ts";

/** `--category` values as a list, checked. */
export function categoryRules(values: ParsedValues) {
  const raw = values.category;
  const specs = raw === undefined ? [] : (Array.isArray(raw) ? raw : [raw]).map(String);
  try {
    return parseCategoryRules(specs);
  } catch (error) {
    if (error instanceof RangeError) fail(error.message, 2);
    throw error;
  }
}

/** One site's lines for stderr: its summary, then its log. */
function siteLines(site: SiteDiscovery, rules: CategoryRule[]): string[] {
  const sure = site.candidates.filter((c) => c.sure && categoryFor(c, rules).matched).length;
  return [
    `discover ${site.home}: ${sure} sure, ${site.candidates.length - sure} unsure people ` +
    `pages; ${site.pagesFetched} pages fetched in ${(site.ms / 1000).toFixed(1)} s`,
    ...site.log.map((line) => `  ${line}`),
  ];
}

/**
 * A one-line progress display on a terminal (sites done, pages visited, candidates found),
 * redrawn at most five times a second; nothing when stderr is not a terminal.
 */
function progressLine(sites: number) {
  if (!Deno.stderr.isTerminal()) return { onPage: undefined, siteDone: () => {} };
  const pages = new Map<string, [number, number]>();
  let done = 0, drawn = 0;
  const draw = (force = false) => {
    if (!force && Date.now() - drawn < 200) return;
    drawn = Date.now();
    let visited = 0, found = 0;
    for (const [p, c] of pages.values()) {
      visited += p;
      found += c;
    }
    const line = `discover: sites ${done}/${sites} · pages ${visited} · candidates ${found}`;
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[2K${line}`));
  };
  return {
    onPage: (home: string, visited: number, found: number) => {
      pages.set(home, [visited, found]);
      draw();
    },
    siteDone: () => {
      done++;
      Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[2K"));
    },
  };
}

export const discoverCommand: Command = {
  name: "discover",
  summary: "home pages → their sites' people pages → a sources CSV for the pipeline",
  usage: `
usage: deno task discover HOME… [--out sources.csv] [options]

HOME is a home page (https://www.uni-example.de/) or a file of them (a CSV with a url column,
or one address a line). Each site is crawled from its home page, robots.txt's Sitemap lines
and /sitemap.xml, following menus, language versions and links up to --depth clicks, and
ranked by how many (name, portrait) pairs the extractor finds on a page and by its headings
and the links that led there. News, events, publications and galleries are stepped around.
Sure rows are written as rows; unsure ones commented out. Each row's comment gives its score,
the links that led there and why. Feed the file to 'deno task pipeline --sources FILE'.

  --out FILE           where the sources CSV goes (default: stdout)
  --max-pages N        pages fetched per site at most (default 200)
  --depth N            clicks from the home page at most (default 3)
  --category NAME=WORDS  map units to your categories: a unit whose name has one of WORDS
                       gets NAME (repeatable), e.g. --category econ=Wirtschaft,Economics;
                       with rules given, a page no rule matches is written unsure
  --data DIR           data dir whose HTTP cache a rerun revalidates (default facefield-data)
  --delay-ms MS        least time between two requests to one host (default 100)
  --per-host N         requests in flight per host (default 2)
  --contact ADDRESS    your e-mail or URL, sent in the User-Agent
  --allow-private      let sites on private and loopback addresses be crawled
  --cluster URL        discover on 'deno task worker' processes: one job per site
                       (nats://…, tls://…, or env:NAME), as the pipeline's --cluster
  --tls-ca FILE        CA certificate that signed the NATS server's
`,
  options: {
    out: { type: "string" },
    "max-pages": { type: "string" },
    depth: { type: "string" },
    category: { type: "string", multiple: true },
    data: { type: "string" },
    "delay-ms": { type: "string" },
    "per-host": { type: "string" },
    contact: { type: "string" },
    "allow-private": { type: "boolean" },
    cluster: { type: "string" },
    "tls-ca": { type: "string" },
  },
  allowPositionals: true,
  async run(values, positionals) {
    if (positionals.length === 0) fail("discover needs at least one home page or file of them", 2);
    const homes = await readHomes(positionals).catch((error) => {
      if (error instanceof RangeError) fail(error.message, 2);
      throw error;
    });
    if (homes.length === 0) fail("the homes file names no home page", 2);
    const categories = categoryRules(values);
    const progress = progressLine(homes.length);
    const out = stringOption(values, "out", "-");
    const file = out === "-" ? undefined : await Deno.open(out, {
      write: true,
      create: true,
      truncate: true,
    }).catch((error) => fail(`cannot write --out '${out}': ${(error as Error).message}`, 2));
    const encoder = new TextEncoder();
    const target = file ?? Deno.stdout;
    const maxPages = intOption(values, "max-pages", 200, { min: 1, max: 100000 });
    const maxDepth = intOption(values, "depth", 3, { min: 1, max: 10 });
    const delayMs = intOption(values, "delay-ms", 100, { min: 0, max: 60000 });
    const perHost = intOption(values, "per-host", 2, { min: 1, max: 64 });
    const clusterUrl = stringOption(values, "cluster");
    const coordinator = clusterUrl === undefined ? undefined : await connectCoordinator({
      address: parseClusterUrl(clusterUrl, stringOption(values, "tls-ca")),
      settings: jobSettingsFor({ delayMs, perHost }),
    });
    try {
      const { sites, http } = await runDiscovery(homes, {
        dataDir: stringOption(values, "data", "facefield-data"),
        contact: stringOption(values, "contact"),
        allowPrivate: values["allow-private"] === true,
        delayMs,
        perHost,
      }, {
        maxPages,
        maxDepth,
        categories,
        sites: coordinator && clusterDiscovery(coordinator, { maxPages, maxDepth }),
        onPage: progress.onPage,
        onSite: (site) => {
          progress.siteDone();
          siteLines(site, categories).forEach(log);
        },
      }, async (text) => void await target.write(encoder.encode(text)));
      const found = sites.reduce(
        (n, site) =>
          n + site.candidates.filter((c) => c.sure && categoryFor(c, categories).matched).length,
        0,
      );
      log(
        `discover: ${found} sure people pages on ${sites.length} sites, ${http.stats.requests} ` +
          `requests (${http.stats.notModified} not modified)${out === "-" ? "" : ` → ${out}`}`,
      );
      return 0;
    } catch (error) {
      if (error instanceof Deno.errors.Busy) fail((error as Error).message);
      throw error;
    } finally {
      file?.close();
      await coordinator?.close();
    }
  },
};
