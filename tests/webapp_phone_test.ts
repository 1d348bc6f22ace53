/**
 * The web app on a phone: Debian's Chromium (playwright-core) at 390×844 opens every page of
 * the app over the test data dir (tests/_webapp_fixture.ts: a long source URL, a verdict with
 * its chart, a report) and fails when a page is wider than the screen, i.e. scrolls sideways.
 * The same pages at 1280×800 too. Without Chromium the test is skipped, saying so.
 */
import assert from "node:assert/strict";
import { chromium as playwright } from "playwright-core";
import { createApp } from "../web/app.ts";
import { CHROMIUM_ARGS } from "../commands/bench/serve.ts";
import { chromiumPath } from "./_chromium.ts";
import { sampleVerdict, webappDataDir } from "./_webapp_fixture.ts";

if (!chromiumPath) {
  console.warn("webapp_phone_test: skipped, no Chromium found (apt-get install chromium)");
}

Deno.test({
  name: "serve in Chromium at 390 px: no page of the app scrolls sideways (and none at 1280 px)",
  ignore: !chromiumPath,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root, faces, rejected } = await webappDataDir({ verdict: sampleVerdict() });
    const web = await createApp({ dataDir: root });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, web.app.fetch);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await playwright.launch({
      executablePath: chromiumPath,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    const pages = [
      "/",
      "/faces",
      "/faces?per=5&page=3",
      "/faces?category=law&model=cnn&predicted=biology",
      `/faces/${faces[0]}`,
      `/faces/${rejected[0]}`,
      `/faces/${faces[0]}/remove`,
      "/report",
      "/try",
      "/no-such-page",
    ];
    try {
      for (const [width, height] of [[390, 844], [1280, 800]] as const) {
        const context = await browser.newContext({ viewport: { width, height } });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(`${page.url()}: ${error.message}`));
        const overflowing: string[] = [];
        for (const path of pages) {
          await page.goto(base + path);
          await page.waitForLoadState("load");
          const scrollWidth = await page.evaluate("document.documentElement.scrollWidth");
          if (Number(scrollWidth) > width) overflowing.push(`${path}: ${scrollWidth} px`);
        }
        assert.deepEqual(overflowing, [], `pages wider than ${width} px`);
        assert.deepEqual(errors, [], "no script errors");
        // The verdict's headline is on the first screen.
        await page.goto(base + "/");
        await page.locator(".verdict-headline").waitFor();
        const box = await page.locator(".verdict-headline").boundingBox();
        assert.ok(
          box && box.y + box.height <= height,
          `headline on screen: ${JSON.stringify(box)}`,
        );
        await context.close();
      }
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});
