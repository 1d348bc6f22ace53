import assert from "node:assert/strict";
import { filter, lastValueFrom, map, of, toArray } from "rxjs";
import sharp from "sharp";
import { startDemoSite } from "../pipeline/demo_site.ts";
import { HttpClient } from "../net/http.ts";
import type { SourceRow } from "../core/types.ts";
import { downloadImages } from "../stages/download_images.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import { parsePeople } from "../stages/parse_people.ts";
import { readSources } from "../stages/read_sources.ts";

const DEPARTMENTS = ["computer-science", "economics", "german-studies", "mechanical-engineering"];

Deno.test("startDemoSite() serves department pages, portraits and a sources CSV", async () => {
  const site = await startDemoSite();
  try {
    assert.match(site.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(site.people, 24);
    const items = await lastValueFrom(of(site.sourcesCsv).pipe(readSources(), toArray()));
    const sources = items.map((item) => {
      assert.equal(item.status, "ok");
      return item.status === "ok" ? item.record : undefined;
    });
    assert.deepEqual(sources.map((source) => source?.category), DEPARTMENTS);

    const layouts = new Set<string>();
    for (const source of sources) {
      const response = await fetch(source!.url);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
      const html = await response.text();
      layouts.add(
        /<(table|div class="grid"|ul class="figures"|section class="team")/.exec(html)?.[1] ?? "",
      );
      assert.match(html, /\/static\/logo\.png/);
    }
    assert.equal(layouts.size, 4, "each department has its own layout");

    const paged = await (await fetch(new URL("/computer-science/", site.url))).text();
    const next = /href="([^"]+)" rel="next"/.exec(paged)?.[1];
    assert.ok(next, "computer science is paginated");
    assert.equal((await fetch(new URL(next, site.url))).status, 200);

    const portraitPath = /src="(\/people\/[a-z0-9-]+\.jpg)"/.exec(paged)?.[1];
    assert.ok(portraitPath);
    const bytes = new Uint8Array(
      await (await fetch(new URL(portraitPath, site.url))).arrayBuffer(),
    );
    const metadata = await sharp(bytes).metadata();
    assert.deepEqual([metadata.format, metadata.width, metadata.height], ["jpeg", 225, 281]);
    const missing = await fetch(new URL("/people/nobody.jpg", site.url));
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    await site.close();
  }
});

Deno.test("the demo site crawls to at least five portraits per department", async () => {
  const site = await startDemoSite();
  const cacheDir = await Deno.makeTempDir();
  try {
    const http = new HttpClient({ politenessDelayMs: 0 });
    const outcomes = await lastValueFrom(
      of(site.sourcesCsv).pipe(
        readSources(),
        filter((item) => item.status === "ok"),
        map((item) => (item as { record: SourceRow }).record),
        fetchPages({ http }),
        filter((outcome) => outcome.status === "ok"),
        map((outcome) => outcome.status === "ok" ? outcome.record : undefined!),
        parsePeople(),
        downloadImages({ cacheDir, http }),
        toArray(),
      ),
    );
    const perDepartment = new Map<string, number>();
    for (const outcome of outcomes) {
      if (outcome.status !== "ok") continue;
      assert.equal(outcome.record.format, "jpeg");
      perDepartment.set(
        outcome.record.category,
        (perDepartment.get(outcome.record.category) ?? 0) + 1,
      );
    }
    for (const department of DEPARTMENTS) {
      assert.ok(
        (perDepartment.get(department) ?? 0) >= 5,
        `${department}: ${perDepartment.get(department)}`,
      );
    }
  } finally {
    await site.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
