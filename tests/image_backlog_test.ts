import assert from "node:assert/strict";
import { join } from "node:path";
import { of } from "rxjs";
import { Backlog } from "../pipeline/backlog.ts";
import { runPipeline } from "../pipeline/run.ts";
import type { RunState } from "../pipeline/run_state.ts";
import { benchName, benchPortrait, numberedJpeg } from "../commands/bench/crawl.ts";
import { delay, startLoopback } from "./testdata/crawl/loopback.ts";

Deno.test("Backlog: ready() waits while full, wakes when a record leaves, and on abort", async () => {
  const backlog = new Backlog(2);
  await backlog.ready();
  backlog.add();
  backlog.add();
  assert.equal(backlog.full, true);
  let woke = false;
  const waiting = backlog.ready().then(() => woke = true);
  await delay(5);
  assert.equal(woke, false, "a full backlog holds the crawl");
  backlog.done();
  await waiting;
  assert.equal(woke, true);
  backlog.add();
  const controller = new AbortController();
  const aborted = backlog.ready(controller.signal);
  controller.abort();
  await aborted;
  assert.equal(backlog.most, 2);
  assert.throws(() => new Backlog(0), RangeError);
});

const SOURCES = 6, PAGES = 4, PER_PAGE = 10, LIMIT = 15;

/**
 * A loopback site whose pages answer at once and whose images each take 15 ms: the people
 * stage would run far ahead of the images stage, as it does at 100,000 records.
 */
async function slowImageSite() {
  const base = await benchPortrait(1);
  return startLoopback(async (_request, url) => {
    const image = /^\/img\/(\d+)\.jpg$/.exec(url.pathname);
    if (image) {
      await delay(15);
      const body = numberedJpeg(base, Number(image[1]));
      return new Response(body, { headers: { "content-type": "image/jpeg" } });
    }
    const page = /^\/dept-(\d+)\/page-(\d+)\.html$/.exec(url.pathname);
    if (!page) return new Response("", { status: 404 });
    const [source, index] = [Number(page[1]), Number(page[2]) - 1];
    const first = (source * PAGES + index) * PER_PAGE;
    const people = Array.from({ length: PER_PAGE }, (_, i) => first + i).map((n) =>
      `<div class="person"><img src="/img/${n}.jpg" alt="${benchName(n)}" width="225" ` +
      `height="275"><h3>${benchName(n)}</h3></div>`
    ).join("\n");
    const next = index + 1 < PAGES
      ? `<a rel="next" href="/dept-${source}/page-${index + 2}.html">Next</a>`
      : "";
    const html = `<!doctype html><html><body><h1>People</h1><div class="staff">${people}</div>` +
      `${next}</body></html>`;
    return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
}

Deno.test({
  name: "the crawl waits while the images stage is behind: a run and a rerun keep the bound",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const site = await slowImageSite();
    const dataDir = await Deno.makeTempDir();
    try {
      const rows = Array.from(
        { length: SOURCES },
        (_, s) => `${site.origin}/dept-${s}/page-1.html,dept-${s}`,
      );
      const csv = `url,category\n${rows.join("\n")}\n`;
      const options = {
        dataDir,
        until: "images" as const,
        delayMs: 0,
        perHost: 4,
        concurrency: 2,
        allowPrivate: true,
      };
      let state: RunState | undefined;
      const hooks = { imageBacklog: LIMIT, onState: (s: RunState) => state = s };
      const first = await runPipeline(options, of(csv), hooks);
      const total = SOURCES * PAGES * PER_PAGE;
      assert.equal(first.byStatus["ok (images)"], total, "every person's image was stored");
      // At most one page per source crawled at once beyond the bound (4 at once here).
      const bound = LIMIT + 4 * PER_PAGE;
      assert.ok(state!.backlog.most >= LIMIT, `the backlog filled: ${state!.backlog.most}`);
      assert.ok(
        state!.backlog.most <= bound,
        `at most ${bound} records waited for images, not ${state!.backlog.most} of ${total}`,
      );
      assert.equal(state!.backlog.size, 0, "every record left the images stage");

      // A rerun whose images are gone: the earlier run's records wait for the downloads too.
      await Deno.remove(join(dataDir, "cache", "images"), { recursive: true });
      const again = await runPipeline(options, of(csv), hooks);
      assert.equal(again.byStatus["ok (images)"], total);
      assert.ok(state!.backlog.most <= LIMIT + 1, `a rerun's backlog: ${state!.backlog.most}`);
    } finally {
      await site.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
