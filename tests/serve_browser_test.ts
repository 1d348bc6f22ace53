/**
 * `deno task serve` in a real browser: Debian's Chromium driven by playwright-core over a data
 * dir made once by running the pipeline on the embedded demo (2 epochs), plus one rejected
 * record added through the store API. Opens each page, filters the grid and opens a face, follows
 * a confusion cell, drops an image on Try it and reads the label, watches the overview update
 * live, removes a person and checks they are gone from the grid, the manifest and the caches,
 * and fails on any console error. Screenshots go to the test's temp dir, and to
 * FACEFIELD_SCREENSHOTS=DIR when set. Without Chromium the test is skipped, saying so.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { chromium as playwright, type Page } from "playwright-core";
import { sha256Hex } from "../core/ids.ts";
import { Manifest, outcomeToRow } from "../store/manifest.ts";
import { rowsOfPerson } from "../store/forget.ts";
import { DataDirLock } from "../store/lock.ts";
import { PageLog } from "../store/page_log.ts";
import { blobPath, dataPaths } from "../store/paths.ts";
import { readRunEvents, RunEventLog } from "../store/run_events.ts";
import { createApp } from "../web/app.ts";
import { CHROMIUM_ARGS } from "../commands/bench/serve.ts";
import { trainDemoDataDir } from "../commands/bench/serve_data.ts";

function findChromium(): string | undefined {
  for (const path of [Deno.env.get("FACEFIELD_CHROMIUM"), "/usr/bin/chromium"]) {
    if (path && Deno.statSync(path).isFile) return path;
  }
  return undefined;
}

const chromiumPath = (() => {
  try {
    return findChromium();
  } catch {
    return undefined;
  }
})();
if (!chromiumPath) {
  console.warn("serve_browser_test: skipped, no Chromium found (apt-get install chromium)");
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The demo's data dir, trained for 2 epochs, and one rejected record with its image. */
async function demoDataDir(): Promise<{ root: string; rejectedId: string }> {
  const root = await Deno.makeTempDir({ prefix: "facefield-serve-browser-" });
  await trainDemoDataDir(root);
  const paths = dataPaths(root);
  // The run left its progress for the live view: both models' epochs, then its end.
  const events = await readRunEvents(paths.runEvents);
  assert.equal(events[0]?.type, "run_started");
  assert.equal(events.at(-1)?.type, "run_finished");
  for (const model of ["cnn", "embedding"]) {
    const epochs = events.filter((e) => e.type === "epoch" && e.model === model);
    assert.deepEqual(epochs.map((e) => e.type === "epoch" && e.epoch), [1, 2], model);
  }
  const png = new Uint8Array(
    await sharp({ create: { width: 80, height: 60, channels: 3, background: "#789" } }).png()
      .toBuffer(),
  );
  const sha256 = sha256Hex(png);
  await Deno.mkdir(join(paths.imageCache, sha256.slice(0, 2)), { recursive: true });
  await Deno.writeFile(blobPath(paths.imageCache, sha256), png);
  const manifest = await Manifest.open(paths.manifest);
  const germanStudiesPage =
    manifest.rows().find((row) => row.category === "german-studies")!.page_url;
  const rejectedId = "0badface";
  manifest.set(outcomeToRow({
    status: "rejected",
    stage: "faces",
    reason: "no_face",
    record: {
      id: rejectedId,
      category: "german-studies",
      imageUrl: "http://127.0.0.1:1/grey.png",
      name: "Grey Square",
      pageUrl: germanStudiesPage,
      sha256,
      format: "png",
      width: 80,
      height: 60,
      bytes: png.length,
      faceCount: 0,
    },
  }, "faces"));
  manifest.flushSync();
  return { root, rejectedId };
}

Deno.test({
  name:
    "serve in Chromium: every page, grid filter, face detail, report links, Try it, live run, removal",
  ignore: !chromiumPath,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { root, rejectedId } = await demoDataDir();
    const paths = dataPaths(root);
    // The Try-it URL step fetches from a loopback site: --allow-private.
    const web = await createApp({ dataDir: root, pollMs: 200, allowPrivate: true });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, web.app.fetch);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const shots = await Deno.makeTempDir({ prefix: "facefield-serve-shots-" });
    const keep = Deno.env.get("FACEFIELD_SCREENSHOTS");
    if (keep) await Deno.mkdir(keep, { recursive: true });
    const profile = await Deno.makeTempDir({ prefix: "facefield-chromium-" });
    const context = await playwright.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
    });
    const errors: string[] = [];
    const page: Page = context.pages()[0] ?? await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on("pageerror", (error) => errors.push(`${page.url()}: ${error.message}`));
    const screenshot = async (name: string) => {
      // Lazy thumbnails do not hold up the load event, and those far below the first screen
      // never load in a screenshot: ask for every one now, then wait until each is in.
      await page.evaluate(`document.querySelectorAll('img[loading="lazy"]')
        .forEach((i) => { i.loading = "eager"; })`);
      await page.evaluate(`new Promise((resolve) => {
        const check = () => [...document.images].every((i) => i.complete)
          ? resolve(true)
          : setTimeout(check, 20);
        check();
      })`);
      const png = await page.screenshot({ fullPage: true });
      await Deno.writeFile(join(shots, name), png);
      if (keep) await Deno.writeFile(join(keep, name), png);
      assert.ok(png.length > 10_000, `${name} is not blank`);
    };
    const rows = (await Manifest.open(paths.manifest)).rows();
    /** The models the demo run trained: one folder per kind. */
    const modelCount = async () =>
      (await Array.fromAsync(Deno.readDir(paths.models))).filter((e) => e.isDirectory).length;

    try {
      await t.step(
        "overview: one funnel row per demo source, and the split per category",
        async () => {
          await page.goto(base + "/");
          const pageLog = await PageLog.open(paths.pages);
          const sources = new Set(pageLog.rows().map((row) => row.source_url));
          const categories = new Set(rows.map((row) => row.category));
          assert.equal(await page.locator("table.funnel tbody tr").count(), sources.size);
          assert.equal(await page.locator("table.categories tbody tr").count(), categories.size);
          assert.equal(
            await page.locator('[data-total="records"]').textContent(),
            String(rows.length),
          );
          await screenshot("overview.png");
        },
      );

      await t.step("faces: filter the grid by category, then open a face", async () => {
        await page.goto(base + "/faces");
        assert.equal(await page.locator("li.card").count(), rows.length);
        await screenshot("faces.png");
        await Promise.all([
          page.waitForURL(/category=german-studies/),
          page.selectOption('select[name="category"]', "german-studies"),
        ]);
        const germanStudies = rows.filter((r) => r.category === "german-studies").length;
        assert.equal(await page.locator("li.card").count(), germanStudies);
        await page.locator("li.card.ok a").first().click();
        await page.waitForURL(/\/faces\/[0-9a-f]{16}$/);
        assert.equal(await page.locator("svg rect.facebox").count(), 1);
        const label = await page.locator('td[data-model="cnn"]').textContent();
        const classes = [...new Set(rows.map((r) => r.category))];
        assert.ok(classes.some((c) => label?.includes(c)), `a class in '${label}'`);
        await screenshot("face.png");
      });

      await t.step("a rejected record shows its reason and its original image", async () => {
        await page.goto(base + "/faces?status=rejected");
        const rejected = rows.filter((row) => row.status === "rejected").length;
        assert.equal(await page.locator("li.card").count(), rejected);
        const card = page.locator(`li.card[data-id="${rejectedId}"]`);
        assert.match((await card.locator(".reason").textContent()) ?? "", /no_face/);
        await card.locator("a").click();
        await page.waitForURL(new RegExp(`/faces/${rejectedId}$`));
        assert.match((await page.locator("p.meta").textContent()) ?? "", /no_face/);
        assert.equal(await page.locator("svg image").count(), 1);
      });

      await t.step("report: tables sort, and a confusion cell opens its faces", async () => {
        await page.goto(base + "/report");
        assert.equal(await page.locator("section.model").count(), await modelCount());
        await screenshot("report.png");
        const header = page.locator("table.per-class").first().locator("th").nth(4);
        await header.click();
        assert.equal(await header.getAttribute("data-sort"), "asc");
        const supports = await page.locator("table.per-class").first()
          .locator("tbody tr td:nth-child(5)").allTextContents();
        assert.deepEqual(supports.map(Number), supports.map(Number).sort((a, b) => a - b));
        const cell = page.locator('section[data-kind="cnn"] td[data-cell] a').first();
        const count = Number(await cell.textContent());
        await Promise.all([page.waitForURL(/predicted=/), cell.click()]);
        assert.equal(await page.locator(".chip").count(), 1);
        assert.equal(await page.locator("li.card").count(), count, "the cell's faces");
        await page.goto(base + "/report/static");
        assert.match((await page.locator("h1").first().textContent()) ?? "", /facefield/);
      });

      const image = rows.find((r) => r.status === "ok" && r.split === "test")!;
      await t.step("Try it: drop an image and read each model's label", async () => {
        await page.goto(base + "/try");
        const bytes = Array.from(await Deno.readFile(blobPath(paths.imageCache, image.sha256)));
        const dataTransfer = await page.evaluateHandle((data) => {
          // Runs in the page, where DataTransfer exists; Deno's types do not know it.
          // deno-lint-ignore no-explicit-any
          const transfer = new (globalThis as any).DataTransfer();
          transfer.items.add(
            new File([new Uint8Array(data)], "portrait.jpg", { type: "image/jpeg" }),
          );
          return transfer;
        }, bytes);
        await page.dispatchEvent("#dropzone", "drop", { dataTransfer });
        await page.locator("table.predictions").waitFor({ timeout: 60_000 });
        const labels = await page.locator("table.predictions td.label").allTextContents();
        assert.equal(labels.length, await modelCount(), "one answer per model");
        const classes = new Set(rows.map((r) => r.category));
        for (const label of labels) assert.ok(classes.has(label.split(" (")[0]!), label);
        assert.equal(await page.locator("#try-result svg rect.facebox").count(), 1);
        const roundTrip = Number(await page.locator("form#try").getAttribute("data-roundtrip-ms"));
        console.log(`serve_browser_test: predict round trip from the page ${roundTrip} ms`);
        await screenshot("try.png");
      });

      await t.step("Try it: an image URL is fetched and answered the same way", async () => {
        const bytes = await Deno.readFile(blobPath(paths.imageCache, image.sha256));
        const site = Deno.serve(
          { hostname: "127.0.0.1", port: 0, onListen() {} },
          () => new Response(bytes, { headers: { "content-type": "image/jpeg" } }),
        );
        try {
          await page.goto(base + "/try");
          await page.fill("#url", `http://127.0.0.1:${site.addr.port}/portrait.jpg`);
          await page.click('form#try button[type="submit"]');
          await page.locator("table.predictions").waitFor({ timeout: 60_000 });
          assert.equal(
            await page.locator("table.predictions td.label").count(),
            await modelCount(),
          );
          assert.match((await page.locator("#try-status").textContent()) ?? "", /1 face/);
        } finally {
          await site.shutdown();
        }
      });

      await t.step("live: the overview follows the run's records and epochs", async () => {
        await page.goto(base + "/");
        await page.locator('[data-live][data-updates="1"]').waitFor();
        // A run holds the data dir's lock and writes its events, as runPipeline does.
        const lock = await DataDirLock.acquire(paths.lock);
        const events = RunEventLog.start(paths.runEvents, "evaluate");
        events.append({ type: "training", model: "cnn", faces: 24, classes: 4, epochs: 3 });
        for (let epoch = 1; epoch <= 3; epoch++) {
          events.append({
            type: "epoch",
            model: "cnn",
            epoch,
            loss: 1.4 - 0.1 * epoch,
            accuracy: 0.2 + 0.1 * epoch,
            valLoss: 1.4,
            valAccuracy: 0.25,
          });
        }
        await page.getByText("cnn: epoch 3, loss 1.100").waitFor();
        assert.equal(await page.locator("#live svg polyline").count(), 3);
        assert.equal(await page.locator('[data-run="running"]').count(), 1);
        await screenshot("live.png");
        events.append({ type: "run_finished" });
        lock.releaseSync();
        await page.locator('[data-run="idle"]').waitFor();
      });

      await t.step("remove a person: gone from the grid, the manifest and the caches", async () => {
        await page.goto(`${base}/faces/${image.id}`);
        const thumbnailsBefore = await Array.fromAsync(
          Deno.readDir(join(paths.thumbnails, image.sha256.slice(0, 2))),
        );
        assert.ok(thumbnailsBefore.some((e) => e.name.startsWith(image.sha256)), "thumbnail made");
        await page.goto(`${base}/faces/${image.id}`);
        await page.getByText("Remove this person…").click();
        await page.waitForURL(/\/remove$/);
        assert.match((await page.locator('[data-plan="models"]').textContent()) ?? "", /cnn/);
        await screenshot("remove.png");
        await Promise.all([
          page.waitForURL(/\/faces\?notice=/),
          page.locator('form button[type="submit"]').click(),
        ]);
        // The same face under another category is the same person, and goes too.
        const person = rowsOfPerson(rows, { dataDir: root, ids: [image.id] });
        assert.match(
          (await page.locator(".notice").textContent()) ?? "",
          new RegExp(`Removed ${person.length} record`),
        );
        await page.goto(`${base}/faces`);
        assert.equal(await page.locator("li.card").count(), rows.length - person.length);
        const manifest = await Manifest.open(paths.manifest);
        for (const row of person) {
          assert.equal(await page.locator(`li.card[data-id="${row.id}"]`).count(), 0, "grid");
          assert.equal(manifest.get(row.id), undefined, "not in the manifest");
        }
        assert.equal(await exists(blobPath(paths.imageCache, image.sha256)), false, "image");
        for await (const settings of Deno.readDir(paths.faceCache)) {
          const crop = blobPath(join(paths.faceCache, settings.name), image.sha256, ".png");
          assert.equal(await exists(crop), false, "face crop");
        }
        const thumbnailsAfter = await Array.fromAsync(
          Deno.readDir(join(paths.thumbnails, image.sha256.slice(0, 2))),
        );
        assert.ok(!thumbnailsAfter.some((e) => e.name.startsWith(image.sha256)), "thumbnails");
        assert.equal(await exists(join(paths.models, "cnn")), false, "the model trained on them");
        await page.goto(base + "/report");
        assert.match((await page.locator("main").textContent()) ?? "", /No evaluation report/);
      });

      assert.deepEqual(errors, [], "no console errors");
    } finally {
      await context.close();
      await server.shutdown();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
