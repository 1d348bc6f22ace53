/**
 * `bench:serve`: the web app's speed in a real browser (Debian's Chromium via playwright-core).
 * The faces grid over a synthetic data dir of 2,000 faces (built through the store API), cold
 * (thumbnails not yet made) and warm, one page of the default size and all 2,000 on one page;
 * and the predict round trip from the Try-it page on a trained data dir. Prints JSON lines.
 */
import { type Browser, chromium, type Page } from "playwright-core";
import { type Command, intOption, log, type ParsedValues, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { demoImagePaths } from "../../models/faces/package_files.ts";
import { createApp } from "../../web/app.ts";
import { blobPath, dataPaths } from "../../store/paths.ts";
import { Manifest } from "../../store/manifest.ts";
import { buildSyntheticDataDir, trainDemoDataDir } from "./serve_data.ts";
import { CHROMIUM_FLAGS } from "../../net/browser.ts";

/** The renderer's flags: a quiet, isolated headless Chromium that reaches nothing of its own. */
export const CHROMIUM_ARGS = CHROMIUM_FLAGS;

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function startServer(dataDir: string) {
  const { app } = await createApp({ dataDir });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return { base: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** One visit in a fresh browser context (empty HTTP cache): navigation timing of the page. */
async function visit(browser: Browser, url: string) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const started = performance.now();
  await page.goto(url, { waitUntil: "load" });
  // Lazy thumbnails do not hold up the load event: the grid is there for the user when every
  // thumbnail in the first screenful has arrived. Measured in the page, from navigation start.
  const visibleMs = await page.evaluate(`new Promise((resolve) => {
    const check = () => {
      const inView = [...document.images].filter((i) => i.getBoundingClientRect().top < innerHeight);
      if (inView.every((i) => i.complete && i.naturalWidth > 0)) resolve(performance.now());
      else requestAnimationFrame(check);
    };
    check();
  })`) as number;
  const wallMs = performance.now() - started;
  // Runs in the page; a string, since Deno's types have no DOM.
  const timing = await page.evaluate(`(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const images = [...document.images];
    return {
      htmlMs: nav.responseEnd - nav.startTime,
      domContentLoadedMs: nav.domContentLoadedEventEnd - nav.startTime,
      loadMs: nav.loadEventEnd - nav.startTime,
      cards: document.querySelectorAll("li.card").length,
      imagesLoaded: images.filter((i) => i.complete && i.naturalWidth > 0).length,
    };
  })()`) as {
    htmlMs: number;
    domContentLoadedMs: number;
    loadMs: number;
    cards: number;
    imagesLoaded: number;
  };
  await context.close();
  return { ...timing, visibleMs, wallMs };
}

async function gridBench(browser: Browser, faces: number, runs: number): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "facefield-bench-serve-" });
  const built = performance.now();
  await buildSyntheticDataDir(root, { faces, rejected: 0 });
  log(`synthetic data dir: ${faces} faces in ${((performance.now() - built) / 1000).toFixed(1)} s`);
  const server = await startServer(root);
  try {
    for (
      const [what, path] of [["default page", "/faces"], ["all on one page", `/faces?per=${faces}`]]
    ) {
      // Cold: no thumbnail made yet, so the first visit makes those it shows; later visits
      // read them from the cache.
      await Deno.remove(dataPaths(root).thumbnails, { recursive: true }).catch(() => {});
      const cold = await visit(browser, server.base + path);
      const warm = [];
      for (let i = 0; i < runs; i++) warm.push(await visit(browser, server.base + path));
      const round = (v: number) => Math.round(v);
      console.log(JSON.stringify({
        bench: "serve:grid",
        faces,
        page: what,
        cards: cold.cards,
        images_loaded_at_load: warm[0]!.imagesLoaded,
        cold_first_screen_ms: round(cold.visibleMs),
        warm_first_screen_ms_median: round(median(warm.map((w) => w.visibleMs))),
        cold_load_ms: round(cold.loadMs),
        warm_load_ms_median: round(median(warm.map((w) => w.loadMs))),
        warm_html_ms_median: round(median(warm.map((w) => w.htmlMs))),
        warm_dom_content_loaded_ms_median: round(median(warm.map((w) => w.domContentLoadedMs))),
        runs,
      }));
    }
  } finally {
    await server.close();
    await Deno.remove(root, { recursive: true });
  }
}

/** A data dir with trained models: the one given, or the demo trained for 2 epochs. */
async function trainedDataDir(given: string | undefined): Promise<string> {
  if (given) return given;
  const root = await Deno.makeTempDir({ prefix: "facefield-bench-serve-demo-" });
  log("training the demo (2 epochs) for the predict round trip…");
  await trainDemoDataDir(root);
  return root;
}

async function predictBench(browser: Browser, dataDir: string, runs: number): Promise<void> {
  const server = await startServer(dataDir);
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(server.base + "/try");
    // A 1920-px group photo that ships with face-api, and one portrait of the data dir.
    const portrait = (await Manifest.open(dataPaths(dataDir).manifest)).rows()
      .find((row) => row.status === "ok" && row.sha256);
    const images = [
      { name: "face-api demo sample1.jpg (1920×1280)", path: demoImagePaths()[0]! },
      ...(portrait
        ? [{
          name: `a portrait of the data dir (${portrait.width}×${portrait.height})`,
          path: blobPath(dataPaths(dataDir).imageCache, portrait.sha256),
        }]
        : []),
    ];
    for (const { name, path } of images) await timeImage(page, name, path, runs);
  } finally {
    await context.close();
    await server.close();
  }
}

/** The round trip the Try-it page measures for one image: first, then `runs` more. */
async function timeImage(page: Page, name: string, image: string, runs: number): Promise<void> {
  const once = async () => {
    await page.evaluate(
      `document.querySelector("form#try").removeAttribute("data-roundtrip-ms")`,
    );
    // Cleared first: picking the same file again would fire no change event.
    await page.setInputFiles("#image", []);
    await page.setInputFiles("#image", image);
    await page.locator("form#try[data-roundtrip-ms]").waitFor({
      state: "attached",
      timeout: 20_000,
    })
      .catch(async (error) => {
        const status = await page.locator("#try-status").textContent();
        throw new Error(`no answer on the Try-it page (status: '${status}'): ${error.message}`);
      });
    const roundTrip = Number(await page.locator("form#try").getAttribute("data-roundtrip-ms"));
    const status = (await page.locator("#try-status").textContent()) ?? "";
    const server = Number(status.match(/(\d+) ms on the server/)?.[1] ?? NaN);
    const faces = Number(status.match(/^(\d+) face/)?.[1] ?? NaN);
    return { roundTrip, server, faces, ok: status.includes("face(s)") };
  };
  const first = await once();
  const warm = [];
  for (let i = 0; i < runs; i++) warm.push(await once());
  console.log(JSON.stringify({
    bench: "serve:predict",
    image: name,
    faces: first.faces,
    first_round_trip_ms: first.roundTrip,
    first_server_ms: first.server,
    warm_round_trip_ms_median: median(warm.map((w) => w.roundTrip)),
    warm_server_ms_median: median(warm.map((w) => w.server)),
    all_answered: [first, ...warm].every((w) => w.ok),
    runs,
  }));
}

async function runBench(values: ParsedValues): Promise<number> {
  const faces = intOption(values, "faces", 2000, { min: 1, max: 100_000 });
  const runs = intOption(values, "runs", 5, { min: 1, max: 100 });
  const executablePath = stringOption(values, "chromium", "/usr/bin/chromium");
  if (!(await Deno.stat(executablePath).then((s) => s.isFile, () => false))) {
    fail(`no Chromium at ${executablePath}: apt-get install chromium, or pass --chromium PATH`, 2);
  }
  // launch() starts Chromium on a fresh temporary profile and removes it at close.
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  try {
    await gridBench(browser, faces, runs);
    const given = stringOption(values, "data");
    const dataDir = await trainedDataDir(given);
    try {
      await predictBench(browser, dataDir, runs * 2);
    } finally {
      if (!given) await Deno.remove(dataDir, { recursive: true });
    }
  } finally {
    await browser.close();
  }
  return 0;
}

export const benchServeCommand: Command = {
  name: "bench:serve",
  summary: "time the web app in Chromium: the faces grid of 2,000 faces, the predict round trip",
  usage: `
usage: deno task bench:serve [--faces 2000] [--runs 5] [--data DIR] [--chromium PATH]

Builds a synthetic data dir of --faces faces (through the store API), serves it on 127.0.0.1
and opens the faces grid in headless Chromium, each time in a fresh browser context: once cold
(thumbnails made on the way) and --runs times warm, for the default page size and for all faces
on one page. Then, on --data (default: the demo trained for 2 epochs into a temporary dir), it
picks a demo image on the Try-it page 1 + 2×--runs times and reads the round trip the page
measured (upload to drawn answer, both models). Prints one JSON line per measurement.

  --faces N       faces in the synthetic data dir (default 2000)
  --runs N        warm repetitions (default 5)
  --data DIR      a trained data dir for the predict round trip
  --chromium P    Chromium binary (default /usr/bin/chromium)
`,
  options: {
    faces: { type: "string" },
    runs: { type: "string" },
    data: { type: "string" },
    chromium: { type: "string" },
  },
  run: runBench,
};
