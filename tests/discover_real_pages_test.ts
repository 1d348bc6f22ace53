/**
 * Discovery's reading of six real people pages written by others (`../shared/data/real-pages`,
 * not part of the project): each site's folder served on loopback as its web root, discovered
 * from its people page's address, must give that page as a sure row under the unit the site
 * names. Skips visibly where the shared folder is absent.
 */
import assert from "node:assert/strict";
import { extname, join } from "node:path";
import { lastValueFrom, of, toArray } from "rxjs";
import { missingShared, sharedPath } from "../core/shared_data.ts";
import { HttpClient } from "../net/http.ts";
import { discoverSites } from "../stages/discover_sites.ts";
import { startLoopback } from "./testdata/crawl/loopback.ts";

const REAL_PAGES = "data/real-pages";
const missing = missingShared(`${REAL_PAGES}/expected.csv`);
if (missing) console.warn(`discover real pages test skipped: ${missing}`);

/** Each site's people page and the unit its pages name, checked by hand against the HTML. */
const SITES: [site: string, page: string, unit: string][] = [
  ["anderson-cornell", "members/", "Anderson Research Group @ Cornell University"],
  ["bruna-uf", "people/", "The Bruna Lab"],
  ["creevey-qub", "people/", "Creevey Lab"],
  ["erp-wordpress", "our-team/", "Exceptional Horseback Riders"],
  ["grc-iit", "members/", "Gnosis Research Center"],
  ["threesigma-ou", "", "3Sigma Lab"],
];

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
};

for (const [site, page, unit] of SITES) {
  Deno.test({
    name: `discover reads the real people page of ${site} as sure, under '${unit}'`,
    ignore: missing !== undefined,
    async fn() {
      const root = sharedPath(`${REAL_PAGES}/${site}`);
      const server = startLoopback(async (_request, url) => {
        let path = join(root, decodeURIComponent(url.pathname));
        if (path.endsWith("/")) path += "index.html";
        if (!path.startsWith(root)) return new Response("no", { status: 403 });
        try {
          const body = await Deno.readFile(path);
          const type = TYPES[extname(path)] ?? "application/octet-stream";
          return new Response(body, { headers: { "content-type": type } });
        } catch {
          return new Response("not found", { status: 404 });
        }
      });
      try {
        const http = new HttpClient({ allowPrivate: true, politenessDelayMs: 0, maxRetries: 0 });
        const home = `${server.origin}/${page}`;
        const [found] = await lastValueFrom(
          of(home).pipe(discoverSites({ http, maxPages: 30 }), toArray()),
        );
        const candidate = found!.candidates.find((c) => c.url === home);
        assert.ok(candidate, `${site}: no candidate at ${home}:\n${found!.log.join("\n")}`);
        assert.ok(candidate.sure, `${site}: unsure, score ${candidate.score}: ${candidate.why}`);
        assert.equal(candidate.unit, unit);
        assert.ok(found!.pagesFetched <= 30);
      } finally {
        await server.close();
      }
    },
  });
}
