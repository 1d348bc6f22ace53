/**
 * `bench:discover`: discovery on a loopback university generated at run time (units in four
 * faculties, German and English, six page layouts, decoys), scored against its ground truth.
 * Prints a table and one JSON line.
 */
import { lastValueFrom, toArray } from "rxjs";
import { type Command, intOption, log } from "../cli.ts";
import { machineLoad } from "./peer.ts";
import { HttpClient } from "../../net/http.ts";
import { discoveredSources } from "../../pipeline/discover.ts";
import { scoreDiscovery, startUniversity } from "../../pipeline/discover_university.ts";
import type { SiteDiscovery } from "../../stages/discover_sites.ts";

export const benchDiscoverCommand: Command = {
  name: "bench:discover",
  summary: "discovery on a generated loopback university: recall, false sure rows, hints, pages",
  usage: `
usage: deno task bench:discover [--units 24] [--max-pages 200] [--depth 3] [--delay-ms 0]
                                [--per-host 4]

Serves a university of --units units (four faculties, German and English pages, six people
page layouts, menus with dropdowns, a sitemap, English mirrors, a robots.txt rule, and decoys:
news and talks with photos and dates, publications with author photos, group photos, a
"team" party post, a calendar linking every day) on 127.0.0.1, discovers its people pages from
the home page, and scores them against the ground truth: people pages found (recall), sure
rows that are not people pages, category hints right, pages fetched per people page found,
and the wall time.

  --units      units of the university (20 or more for the issue's figure)  default 24
  --max-pages  page budget of the site                                      default 200
  --depth      clicks from the home page                                    default 3
  --delay-ms   politeness delay per host, ms                                default 0 (loopback)
  --per-host   requests in flight per host                                  default 4`,
  options: {
    units: { type: "string" },
    "max-pages": { type: "string" },
    depth: { type: "string" },
    "delay-ms": { type: "string" },
    "per-host": { type: "string" },
  },
  async run(values) {
    const units = intOption(values, "units", 24, { min: 1, max: 100 });
    const maxPages = intOption(values, "max-pages", 200, { min: 1, max: 100_000 });
    const maxDepth = intOption(values, "depth", 3, { min: 1, max: 10 });
    const delayMs = intOption(values, "delay-ms", 0, { min: 0, max: 10_000 });
    const perHost = intOption(values, "per-host", 4, { min: 1, max: 64 });
    const university = startUniversity({ units });
    try {
      const http = new HttpClient({
        allowPrivate: true,
        politenessDelayMs: delayMs,
        perHostConcurrency: perHost,
      });
      const sites: SiteDiscovery[] = [];
      const started = performance.now();
      await lastValueFrom(
        discoveredSources([university.url], http, {
          maxPages,
          maxDepth,
          onSite: (site) => sites.push(site),
        }).pipe(toArray()),
      );
      const wallS = (performance.now() - started) / 1000;
      const site = sites[0]!;
      const score = scoreDiscovery(university, site.candidates, site.pagesFetched);
      const forbidden = university.requests.filter((path) => path.startsWith("/intern/")).length;
      log(`bench:discover on a loopback university of ${units} units (${university.url})`);
      log(`  people pages found          ${score.found}/${score.units} (recall ${score.recall})`);
      log(
        `  sure rows not people pages  ${score.falseSure}/${score.sure} (${score.falseSureShare})`,
      );
      log(
        `  category hints right        ${score.hintsRight}/${
          score.sure - score.falseSure
        } (${score.hintAccuracy})`,
      );
      log(
        `  pages fetched               ${score.pagesFetched} (${score.pagesPerPeoplePage} per people page found)`,
      );
      log(`  pages robots.txt forbids    ${forbidden} fetched`);
      log(`  wall time                   ${wallS.toFixed(2)} s`);
      for (const line of site.log) log(`  log: ${line}`);
      console.log(JSON.stringify({
        bench: "discover",
        ...score,
        robots_forbidden_fetched: forbidden,
        requests: http.stats.requests,
        wall_s: Math.round(wallS * 100) / 100,
        machine: machineLoad(),
      }));
      return 0;
    } finally {
      await university.close();
    }
  },
};
