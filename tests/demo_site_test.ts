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

const DEPARTMENTS = ["computer-science", "german-studies"];
/** Two sources per department: its staff page and a research group's page. */
const SOURCE_CATEGORIES = [
  "computer-science",
  "computer-science",
  "german-studies",
  "german-studies",
];

Deno.test("startDemoSite() serves department pages, portraits and a sources CSV", async () => {
  const site = await startDemoSite();
  try {
    assert.match(site.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal(site.people, 48, "each of the 24 people is listed in both departments");
    const items = await lastValueFrom(of(site.sourcesCsv).pipe(readSources(), toArray()));
    const sources = items.map((item) => {
      assert.equal(item.status, "ok");
      return item.status === "ok" ? item.record : undefined;
    });
    assert.deepEqual(sources.map((source) => source?.category), SOURCE_CATEGORIES);

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
    assert.equal(layouts.size, 4, "each source page has its own layout");

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

Deno.test("the demo site crawls to at least 20 portraits per department", async () => {
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
        (perDepartment.get(department) ?? 0) >= 20,
        `${department}: ${perDepartment.get(department)}`,
      );
    }
  } finally {
    await site.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("each demo source has its own photo style, and every person appears under both departments", async () => {
  const site = await startDemoSite();
  try {
    const items = await lastValueFrom(of(site.sourcesCsv).pipe(readSources(), toArray()));
    const styles: { category: string; people: Set<string>; brightness: number; bytes: number }[] =
      [];
    for (const item of items) {
      if (item.status !== "ok") continue;
      let html = "";
      for (let page: string | undefined = item.record.url; page;) {
        const text: string = await (await fetch(page)).text();
        html += text;
        const next: string | undefined = /href="([^"]+)" rel="next"/.exec(text)?.[1];
        page = next ? new URL(next, page).href : undefined;
      }
      const images = [
        ...html.matchAll(
          /(?:data-src|src)="(\/(?:people|photos)\/[^"]+\.jpg)"|url\('([^']+\.jpg)'\)/g,
        ),
      ]
        .map((m) => m[1] ?? m[2]!);
      assert.ok(images.length >= 5, item.record.url);
      let brightness = 0;
      let bytes = 0;
      for (const image of images) {
        const body = new Uint8Array(await (await fetch(new URL(image, site.url))).arrayBuffer());
        bytes += body.length;
        brightness += (await sharp(body).stats()).channels[0]!.mean / images.length;
      }
      styles.push({
        category: item.record.category,
        people: new Set(images.map((image) => image.split("/").at(-1)!)),
        brightness,
        bytes: bytes / images.length,
      });
    }
    assert.equal(styles.length, 4);
    // The faces carry no signal: each department lists the same people, across its two pages.
    const union = (category: string) =>
      new Set(styles.filter((s) => s.category === category).flatMap((s) => [...s.people]));
    assert.deepEqual([...union("computer-science")].sort(), [...union("german-studies")].sort());
    // The styles differ from source to source: mean red or size per portrait sets each apart.
    for (let a = 0; a < styles.length; a++) {
      for (let b = a + 1; b < styles.length; b++) {
        const differ = Math.abs(styles[a]!.brightness - styles[b]!.brightness) > 15 ||
          Math.abs(styles[a]!.bytes - styles[b]!.bytes) / styles[b]!.bytes > 0.3;
        assert.ok(differ, `sources ${a} and ${b} look alike: ${JSON.stringify(styles)}`);
      }
    }
  } finally {
    await site.close();
  }
});
