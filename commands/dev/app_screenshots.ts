/**
 * Screenshots of the web app's Overview at a desktop width (1280×800) and a phone width
 * (390×844), for docs/web-app.md, and each page's width at 390 px. Serves the data dir on a
 * loopback port, opens it in Debian's Chromium and writes small PNGs. Use the demo's data dir
 * (invented names), never congress or real pages:
 *
 *   deno task pipeline --data /tmp/demo-data
 *   deno run -A commands/dev/app_screenshots.ts /tmp/demo-data docs/img
 */
import { join } from "node:path";
import { chromium } from "playwright-core";
import sharp from "sharp";
import { createApp } from "../../web/app.ts";
import { CHROMIUM_ARGS } from "../bench/serve.ts";

const [dataDir, outDir = "docs/img"] = Deno.args;
if (!dataDir) {
  console.error("usage: deno run -A commands/dev/app_screenshots.ts DATA_DIR [OUT_DIR]");
  Deno.exit(2);
}
await Deno.mkdir(outDir, { recursive: true });
const { app } = await createApp({ dataDir });
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;
const browser = await chromium.launch({
  executablePath: Deno.env.get("FACEFIELD_CHROMIUM") ?? "/usr/bin/chromium",
  headless: true,
  args: CHROMIUM_ARGS,
});
const shots = [
  { name: "app-overview-desktop.png", width: 1280, height: 800 },
  { name: "app-overview-phone.png", width: 390, height: 844 },
];
try {
  for (const shot of shots) {
    const context = await browser.newContext({ viewport: shot });
    const page = await context.newPage();
    await page.goto(base + "/");
    await page.waitForLoadState("load");
    // The first screen and a little more: where the verdict and the data set are.
    const png = await page.screenshot({
      clip: { x: 0, y: 0, width: shot.width, height: Math.round(shot.height * 1.5) },
      fullPage: true,
    });
    // Palette PNG: a few hundred kB become tens.
    const small = await sharp(png).png({ palette: true, quality: 80, compressionLevel: 9 })
      .toBuffer();
    await Deno.writeFile(join(outDir, shot.name), small);
    console.log(`${shot.name}: ${shot.width}×${shot.height}, ${small.length} bytes`);
    if (shot.width === 390) {
      for (const path of ["/", "/faces", "/report", "/try"]) {
        await page.goto(base + path);
        const width = await page.evaluate("document.documentElement.scrollWidth");
        console.log(`  ${path} at 390 px: page ${width} px wide`);
      }
    }
    await context.close();
  }
} finally {
  await browser.close();
  await server.shutdown();
}
