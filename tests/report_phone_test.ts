/**
 * report.html on a phone: Debian's Chromium (playwright-core) at 390×844 opens a report
 * written by writeReport with a verdict, and fails when the page scrolls sideways or the
 * verdict's answer is not on the first screen. Skipped, saying so, without Chromium.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium as playwright } from "playwright-core";
import { writeReport } from "../report/report.ts";
import { CHROMIUM_ARGS } from "../commands/bench/serve.ts";
import { chromiumPath } from "./_chromium.ts";
import { SAMPLE_DATASET, sampleCrops, sampleModels } from "./testdata/eval/sample_run.ts";
import { sampleVerdict } from "./_webapp_fixture.ts";

if (!chromiumPath) {
  console.warn("report_phone_test: skipped, no Chromium found (apt-get install chromium)");
}

Deno.test({
  name:
    "report.html in Chromium at 390 px: the answer on the first screen, nothing scrolls sideways",
  ignore: !chromiumPath,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_report_phone_" });
    const browser = await playwright.launch({
      executablePath: chromiumPath,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const models = sampleModels();
      const verdict = { ...sampleVerdict(), model: models[0]!.kind };
      const files = await writeReport(join(dir, "report"), {
        models,
        faces: await sampleCrops(models),
        dataset: SAMPLE_DATASET,
        checks: { groupedBy: "page host", sources: [], loso: [], baselines: [], verdict },
      });
      for (const [width, height] of [[390, 844], [1280, 800]] as const) {
        const context = await browser.newContext({ viewport: { width, height } });
        const page = await context.newPage();
        await page.goto(pathToFileURL(files.html).href);
        await page.waitForLoadState("load");
        const scrollWidth = Number(await page.evaluate("document.documentElement.scrollWidth"));
        assert.ok(scrollWidth <= width, `report.html is ${scrollWidth} px wide at ${width} px`);
        const box = await page.locator(".verdict .answer").boundingBox();
        assert.ok(box && box.y + box.height <= height, `answer on screen: ${JSON.stringify(box)}`);
        assert.equal(await page.locator(".verdict .answer").textContent(), verdict.headline);
        await context.close();
      }
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
