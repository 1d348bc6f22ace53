/**
 * `deno task bench:congress`: the whole pipeline on the shared congress portraits, served as a
 * loopback "people" site (one paginated listing per party), so the figure is what a user would
 * get from crawling such pages. It reads ../shared/data/congress; a clone without it is told so.
 */
// @ts-types="@types/escape-html"
import escapeHtml from "escape-html";
import { parse } from "csv-parse/sync";
import { join } from "node:path";
import { of } from "rxjs";
import { type Command, intOption, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { pipelineOptionsFrom } from "../pipeline.ts";
import { runPipeline } from "../../pipeline/run.ts";
import { formatSummary } from "../../report/summary.ts";
import { missingShared, sharedPath } from "../../core/shared_data.ts";

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

/** Serves one card-grid listing per party, `perPage` members a page, linked by rel=next. */
export function serveCongress(members: Member[], perPage = 60, port = 0) {
  const parties = [...new Set(members.map((m) => m.party))].sort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const image = url.pathname.match(/^\/img\/([A-Z0-9]+\.jpg)$/);
    if (image) {
      const bytes = await Deno.readFile(join(CONGRESS_DIR, "images", image[1]!)).catch(() => null);
      return bytes
        ? new Response(bytes, { headers: { "content-type": "image/jpeg" } })
        : new Response("not found", { status: 404 });
    }
    const party = url.pathname.slice(1);
    if (!parties.includes(party)) return new Response("not found", { status: 404 });
    const page = Number(url.searchParams.get("page") ?? "1");
    const all = members.filter((m) => m.party === party);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    const next = page * perPage < all.length
      ? `<a rel="next" href="/${party}?page=${page + 1}">Next ›</a>`
      : "";
    const cards = slice.map((m) =>
      `<div class="member"><img src="/img/${
        m.image.split("/").pop()
      }" alt="" width="225" height="275">` +
      `<h3>${escapeHtml(m.name)}</h3><p>${
        m.chamber === "sen" ? "Senator" : "Representative"
      }, ${m.state}</p></div>`
    ).join("\n");
    const html = `<!doctype html><html><head><title>${party} members</title></head><body>
<header><img src="/logo.png" alt="logo" class="logo" width="120" height="40"></header>
<main><h1>Members: ${party}</h1><div class="grid">${cards}</div><nav>${next}</nav></main></body></html>`;
    return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const sourcesCsv = "url,category\n" + parties.map((p) => `${origin}/${p},${p}`).join("\n") + "\n";
  return { origin, sourcesCsv, close: () => server.shutdown() };
}

export const benchCongressCommand: Command = {
  name: "bench:congress",
  summary: "the whole pipeline on ../shared/data/congress (party from official portraits)",
  usage: `
usage: deno task bench:congress [--set dev|holdout|all] [--data DIR] [pipeline options]

Serves the congress portraits as a loopback people site, one listing per party, and runs the
pipeline on it into DIR (default facefield-congress-<set>). The set 'dev' (200) is for
development; 'holdout' (673) and 'all' are the final benchmark: tune nothing on them.
Any pipeline option works (--folds 5, --models embedding, --epochs, ...).
Baselines (all 873): always republican 52.1 %, gender alone 59.0 %.
`,
  options: {
    set: { type: "string" },
    data: { type: "string" },
    "per-page": { type: "string" },
    until: { type: "string" },
    models: { type: "string" },
    epochs: { type: "string" },
    patience: { type: "string" },
    folds: { type: "string" },
    ratios: { type: "string" },
    detector: { type: "string" },
    seed: { type: "string" },
  },
  async run(values) {
    const set = stringOption(values, "set", "dev");
    if (!(SETS as readonly string[]).includes(set)) fail(`--set must be dev, holdout or all`, 2);
    const missing = missingShared("data/congress/people.csv");
    if (missing) fail(`bench:congress needs the congress portraits: ${missing}`);
    const members = await loadCongress(set as typeof SETS[number]);
    // A stable port keeps image URLs, and so record ids, the same across reruns.
    const site = serveCongress(members, intOption(values, "per-page", 60, { min: 1 }), 47322);
    const options = pipelineOptionsFrom({
      ...values,
      sources: "-",
      data: stringOption(values, "data", `facefield-congress-${set}`),
      "delay-ms": "0",
      "per-host": "8",
    });
    const started = performance.now();
    try {
      const summary = await runPipeline(options, of(site.sourcesCsv));
      console.log(formatSummary(summary));
      console.log(JSON.stringify({
        bench: "congress",
        set,
        members: members.length,
        wall_s: Math.round((performance.now() - started) / 100) / 10,
        report: summary.report,
      }));
    } finally {
      await site.close();
    }
    return 0;
  },
};
