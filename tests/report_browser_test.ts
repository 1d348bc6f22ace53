/**
 * The report in a real browser: headless Chromium opens report.html from disk over the DevTools
 * protocol, and the test checks that it loads nothing from the network, logs no console error
 * or exception, shows every image, and renders to a screenshot that is not blank.
 *
 * Skips, saying so, on a machine without Chromium (Debian's `chromium` package; or set
 * FACEFIELD_CHROMIUM). Set FACEFIELD_SCREENSHOT=path.png to keep the screenshot.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import sharp from "sharp";
import { writeReport } from "../report/report.ts";
import { SAMPLE_DATASET, sampleCrops, sampleModels } from "./testdata/eval/sample_run.ts";
import { CHROMIUM_FLAGS } from "../net/browser.ts";

function findChromium(): string | undefined {
  const candidates = [
    Deno.env.get("FACEFIELD_CHROMIUM"),
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
  ];
  for (const path of candidates) {
    if (!path) continue;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not installed there.
    }
  }
  return undefined;
}

const chromium = findChromium();
if (!chromium) {
  console.warn("report_browser_test: skipped, no Chromium found (apt-get install chromium)");
}

/** A DevTools protocol session over one WebSocket: commands by id, events to listeners. */
class Cdp {
  #nextId = 1;
  #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #listeners: ((method: string, params: Record<string, unknown>) => void)[] = [];
  private constructor(readonly socket: WebSocket) {
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data as string);
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) waiter?.reject(new Error(JSON.stringify(message.error)));
        else waiter?.resolve(message.result);
      } else {
        for (const listener of this.#listeners) listener(message.method, message.params);
      }
    };
  }

  static connect(url: string): Promise<Cdp> {
    const socket = new WebSocket(url);
    return new Promise((resolve, reject) => {
      socket.onopen = () => resolve(new Cdp(socket));
      socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
  }

  send<T = Record<string, unknown>>(method: string, params: object = {}): Promise<T> {
    const id = this.#nextId++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) =>
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    );
  }

  on(listener: (method: string, params: Record<string, unknown>) => void): void {
    this.#listeners.push(listener);
  }

  waitFor(method: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${method} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.on((name) => {
        if (name === method) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.onclose = () => resolve();
      this.socket.close();
    });
  }
}

/** Reads Chromium's stderr until it says where its DevTools endpoint listens. */
async function devToolsPort(stderr: ReadableStream<Uint8Array>): Promise<number> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
    const match = text.match(/DevTools listening on ws:\/\/[^:]+:(\d+)\//);
    if (match) {
      // Keep draining stderr so Chromium never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* drain */ }
      })().catch(() => {});
      return Number(match[1]);
    }
  }
  reader.cancel().catch(() => {});
  throw new Error(`Chromium did not open DevTools:\n${text.slice(-2000)}`);
}

Deno.test({
  name: "report.html renders in headless Chromium with no console errors and no network",
  ignore: !chromium,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const work = await Deno.makeTempDir({ prefix: "facefield-browser-" });
    const models = sampleModels();
    const files = await writeReport(join(work, "report"), {
      models,
      faces: await sampleCrops(models),
      dataset: SAMPLE_DATASET,
    });
    const child = new Deno.Command(chromium!, {
      args: [
        ...CHROMIUM_FLAGS,
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        `--user-data-dir=${join(work, "profile")}`,
        "--remote-debugging-port=0",
        "--window-size=1440,1000",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let cdp: Cdp | undefined;
    try {
      const port = await devToolsPort(child.stderr);
      const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
        type: string;
        webSocketDebuggerUrl: string;
      }[];
      const page = targets.find((t) => t.type === "page");
      assert.ok(page, "Chromium has no page target");
      cdp = await Cdp.connect(page.webSocketDebuggerUrl);

      const problems: string[] = [];
      const requests: string[] = [];
      cdp.on((method, params) => {
        if (method === "Runtime.consoleAPICalled") {
          const type = params.type as string;
          if (type === "error" || type === "assert" || type === "warning") {
            problems.push(`console.${type}: ${JSON.stringify(params.args)}`);
          }
        } else if (method === "Runtime.exceptionThrown") {
          problems.push(`exception: ${JSON.stringify(params.exceptionDetails)}`);
        } else if (method === "Log.entryAdded") {
          const entry = params.entry as { level: string; text: string; url?: string };
          if (entry.level === "error" || entry.level === "warning") {
            problems.push(`log ${entry.level}: ${entry.text} ${entry.url ?? ""}`);
          }
        } else if (method === "Network.requestWillBeSent") {
          requests.push((params.request as { url: string }).url);
        }
      });
      await Promise.all(
        ["Page.enable", "Runtime.enable", "Log.enable", "Network.enable"].map((m) => cdp!.send(m)),
      );
      const loaded = cdp.waitFor("Page.loadEventFired", 30000);
      await cdp.send("Page.navigate", { url: pathToFileURL(files.html).href });
      await loaded;

      const { result } = await cdp.send<{ result: { value: string } }>("Runtime.evaluate", {
        expression: `JSON.stringify({
          images: document.images.length,
          broken: [...document.images].filter((i) => !i.complete || i.naturalWidth === 0).length,
          height: document.documentElement.scrollHeight,
          title: document.title,
          first: document.querySelector("h2")?.textContent,
          second: document.querySelectorAll("h2")[1]?.textContent,
        })`,
        returnByValue: true,
      });
      const facts = JSON.parse(result.value);
      assert.deepEqual(problems, [], "no console errors, exceptions or failed loads");
      const remote = requests.filter((url) => !/^(file|data):/.test(url));
      assert.deepEqual(remote, [], "the page loads nothing over the network");
      assert.equal(facts.images, files.pngs.length);
      assert.equal(facts.broken, 0, "every image decodes");
      assert.equal(facts.first, "Verdict", "the verdict is what a reader meets first");
      assert.equal(facts.second, "How good is it?");
      assert.ok(facts.height > 2000, `the page is ${facts.height}px tall`);

      await cdp.send("Emulation.setDeviceMetricsOverride", {
        width: 1440,
        height: facts.height,
        deviceScaleFactor: 1,
        mobile: false,
      });
      const shot = await cdp.send<{ data: string }>("Page.captureScreenshot", {
        format: "png",
        captureBeyondViewport: true,
      });
      const png = Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
      const keep = Deno.env.get("FACEFIELD_SCREENSHOT");
      const shotPath = keep ?? join(work, "report.png");
      await Deno.writeFile(shotPath, png);
      if (keep) console.log(`report_browser_test: screenshot at ${keep}`);
      const { width = 0, height = 0 } = await sharp(png).metadata();
      assert.equal(width, 1440);
      assert.ok(height > 2000);
      const stats = await sharp(png).stats();
      assert.ok(stats.channels[0]!.stdev > 20, "the screenshot is not blank");
    } finally {
      await cdp?.close();
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
