/**
 * The browser renderer: a page that builds its people list with JavaScript, rendered in headless
 * Chromium (playwright-core driving Debian's `chromium`), scrolled for lazy images and pressed
 * for "load more" up to a cap, and handed back as HTML for the same extractor.
 *
 * The browser itself connects to nothing. Every request it makes is caught by a route handler:
 * the page's own document is answered with the bytes already fetched, other requests to the
 * page's host (or a host the source allows) are fetched through the crawler's `HttpClient`, so
 * its per-host limits, retries and checks hold, and everything else is refused. Chromium is
 * also pointed at a proxy that does not exist, so a request the handler does not see (a
 * WebSocket, a prefetch) fails instead of leaving the machine.
 */
import { existsSync } from "node:fs";
import { Buffer } from "node:buffer";
import {
  type Browser,
  type BrowserContext,
  chromium,
  type Page,
  type Route,
} from "playwright-core";
import type { HttpClient } from "./http.ts";

/** Where Debian installs Chromium; `FACEFIELD_CHROMIUM` points elsewhere. */
export const DEFAULT_CHROMIUM = "/usr/bin/chromium";

/** Flags for a quiet, disposable headless Chromium (Playwright adds a fresh profile dir). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-domain-reliability",
  "--no-pings",
  "--dns-prefetch-disable",
];

/**
 * A proxy address nothing listens on: a request that slips past the route handler fails here.
 * Port 9 is the discard port; on loopback it is refused at once.
 */
const DEAD_PROXY = "http://127.0.0.1:9";

export interface BrowserRendererOptions {
  /**
   * The Chromium binary.
   * @default the FACEFIELD_CHROMIUM environment variable, else /usr/bin/chromium
   */
  executablePath?: string;
  /**
   * Scroll and "load more" rounds per page before the render stops, whatever is left.
   * @default 20
   */
  maxRounds?: number;
  /**
   * Milliseconds without a request in flight after which the page counts as settled.
   * @default 300
   */
  quietMs?: number;
  /**
   * Milliseconds one page may take to render, all rounds included.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Largest response body the browser may receive per request, in bytes.
   * @default 5242880
   */
  maxResponseBytes?: number;
}

export interface RenderRequest {
  /** The page's URL (after redirects). */
  url: string;
  /** The page's HTML as fetched: the browser gets it from here instead of fetching again. */
  html: string;
  /** Hosts besides the page's own that the page may load from; `*` allows any. */
  allowHosts?: string[];
  /**
   * Asked before each request the page makes (robots.txt, say): a reason refuses it.
   * @default allow every request the host rule allows
   */
  checkRequest?: (url: string) => Promise<string | undefined>;
  signal?: AbortSignal;
}

export type RenderResult =
  | {
    ok: true;
    url: string;
    html: string;
    /** Requests fetched for the page, and requests refused (another host, not a GET). */
    requests: number;
    refused: number;
    /** "load more" presses and scroll rounds that changed the page. */
    rounds: number;
  }
  | { ok: false; url: string; reason: string };

/** Texts of a control that loads the next part of a list. */
const LOAD_MORE =
  /^\s*((load|show|see|view)\s+more(\s+\w+)?|more|mehr(\s+(laden|anzeigen))?|weitere(\s+(laden|anzeigen))?|alle\s+anzeigen|show\s+all)\s*[.…›»]*\s*$/i;

/** Resource types the extractor never needs: their URLs are read from the DOM, not loaded. */
const SKIPPED_RESOURCES = new Set(["image", "media", "font"]);

function checkPositiveInteger(name: string, value: number) {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create BrowserRenderer as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
}

/** The Chromium binary to use, or undefined when none is installed. */
export function findChromium(
  path = Deno.env.get("FACEFIELD_CHROMIUM") || DEFAULT_CHROMIUM,
): string | undefined {
  return existsSync(path) ? path : undefined;
}

/**
 * Renders pages in one shared headless Chromium, launched on first use.
 *
 * @example
 * ```ts
 * const renderer = new BrowserRenderer(http);
 * const result = await renderer.render({ url, html });
 * await renderer.close();
 * ```
 */
export class BrowserRenderer {
  readonly executablePath: string | undefined;
  readonly #http: HttpClient;
  readonly #maxRounds: number;
  readonly #quietMs: number;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  #browser: Promise<Browser> | undefined;

  constructor(http: HttpClient, options: BrowserRendererOptions = {}) {
    const {
      executablePath = findChromium(),
      maxRounds = 20,
      quietMs = 300,
      timeoutMs = 30_000,
      maxResponseBytes = 5 * 1024 * 1024,
    } = options;
    checkPositiveInteger("maxRounds", maxRounds);
    checkPositiveInteger("quietMs", quietMs);
    checkPositiveInteger("timeoutMs", timeoutMs);
    checkPositiveInteger("maxResponseBytes", maxResponseBytes);
    this.executablePath = executablePath && existsSync(executablePath) ? executablePath : undefined;
    this.#http = http;
    this.#maxRounds = maxRounds;
    this.#quietMs = quietMs;
    this.#timeoutMs = timeoutMs;
    this.#maxResponseBytes = maxResponseBytes;
  }

  /** Whether a Chromium binary is there to render with. */
  get available(): boolean {
    return this.executablePath !== undefined;
  }

  #launch(): Promise<Browser> {
    this.#browser ??= chromium.launch({
      executablePath: this.executablePath,
      args: CHROMIUM_FLAGS,
      proxy: { server: DEAD_PROXY, bypass: "<-loopback>" },
    });
    return this.#browser;
  }

  /** The page rendered by Chromium, or a reason (`needs_browser`, `render_failed`). */
  async render(request: RenderRequest): Promise<RenderResult> {
    const { url } = request;
    if (!this.executablePath) {
      return {
        ok: false,
        url,
        reason: "needs_browser: the page builds its content with scripts and no Chromium is " +
          "installed (install chromium or set FACEFIELD_CHROMIUM)",
      };
    }
    let browser: Browser;
    try {
      browser = await this.#launch();
    } catch (error) {
      this.#browser = undefined;
      return {
        ok: false,
        url,
        reason: `needs_browser: Chromium did not start: ${firstLine(error)}`,
      };
    }
    let context: BrowserContext;
    try {
      context = await browser.newContext({
        serviceWorkers: "block",
        javaScriptEnabled: true,
        viewport: { width: 1280, height: 900 },
      });
    } catch (error) {
      // The browser died since it started: the next page starts a new one.
      this.#browser = undefined;
      await browser.close().catch(() => {});
      return { ok: false, url, reason: `render_failed: ${firstLine(error)}` };
    }
    const deadline = Date.now() + this.#timeoutMs;
    const traffic = { inFlight: 0, lastChange: Date.now(), requests: 0, refused: 0 };
    context.setDefaultTimeout(this.#timeoutMs);
    // A page whose scripts never yield would hold an evaluate forever: the deadline closes it.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const overtime = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`timeout: the page took over ${this.#timeoutMs} ms to render`)),
        this.#timeoutMs + this.#quietMs,
      );
    });
    const work = (async () => {
      const page = await context.newPage();
      await context.routeWebSocket(/.*/, (socket) => socket.close());
      await context.addInitScript(WATCH_MUTATIONS);
      await context.route("**/*", (route) => this.#handle(route, request, traffic));
      await page.goto(url, { waitUntil: "load", timeout: this.#timeoutMs });
      await settle(page, traffic, this.#quietMs, deadline);
      const rounds = await this.#expand(page, traffic, deadline);
      return { html: await page.content(), rounds };
    })();
    try {
      const { html, rounds } = await Promise.race([work, overtime]);
      return { ok: true, url, html, requests: traffic.requests, refused: traffic.refused, rounds };
    } catch (error) {
      return { ok: false, url, reason: `render_failed: ${firstLine(error)}` };
    } finally {
      clearTimeout(timer);
      await context.close().catch(() => {});
      work.catch(() => {});
    }
  }

  /** Answers one request of the page: from the fetched HTML, through the HTTP client, or no. */
  async #handle(
    route: Route,
    request: RenderRequest,
    traffic: { inFlight: number; lastChange: number; requests: number; refused: number },
  ): Promise<void> {
    const browserRequest = route.request();
    const target = browserRequest.url();
    if (browserRequest.isNavigationRequest() && sameDocument(target, request.url)) {
      return await route.fulfill({
        status: 200,
        contentType: "text/html; charset=utf-8",
        body: request.html,
      });
    }
    if (
      browserRequest.method() !== "GET" || !hostAllowed(target, request.url, request.allowHosts) ||
      SKIPPED_RESOURCES.has(browserRequest.resourceType())
    ) {
      if (!SKIPPED_RESOURCES.has(browserRequest.resourceType())) traffic.refused++;
      return await route.abort("blockedbyclient");
    }
    traffic.inFlight++;
    traffic.lastChange = Date.now();
    try {
      if (await request.checkRequest?.(target)) {
        traffic.refused++;
        return await route.abort("blockedbyclient");
      }
      traffic.requests++;
      const result = await this.#http.get(target, {
        maxBytes: this.#maxResponseBytes,
        accept: browserRequest.headers()["accept"],
        signal: request.signal,
        // A page's requests may reach only addresses of the page's own class.
        scope: request.url,
      });
      if (!result.ok) return await route.abort("failed");
      await route.fulfill({
        status: result.status,
        contentType: result.contentType,
        body: Buffer.from(result.body),
      });
    } catch {
      // The page or its context closed while the request was out: nothing to answer.
    } finally {
      traffic.inFlight--;
      traffic.lastChange = Date.now();
    }
  }

  /**
   * Scrolls the page a screen at a time (lazy images and infinite scroll load as they come into
   * view) and presses "load more", round after round, until a round changes nothing or the cap.
   */
  async #expand(
    page: Page,
    traffic: { inFlight: number; lastChange: number },
    deadline: number,
  ): Promise<number> {
    let rounds = 0;
    // Two rounds in a row that change nothing end it: on a busy machine a request can start
    // after the page looked settled.
    let unchanged = 0;
    for (let round = 0; round < this.#maxRounds && Date.now() < deadline; round++) {
      const before = await pageSize(page);
      await page.evaluate(SCROLL_THROUGH);
      await settle(page, traffic, this.#quietMs, deadline);
      const pressed = await pressLoadMore(page);
      if (pressed) await settle(page, traffic, this.#quietMs, deadline);
      const after = await pageSize(page);
      if (!pressed && after.height === before.height && after.elements === before.elements) {
        if (++unchanged >= 2) break;
        continue;
      }
      unchanged = 0;
      rounds++;
    }
    return rounds;
  }

  /** Closes the browser, if it was started. */
  async close(): Promise<void> {
    const browser = this.#browser;
    this.#browser = undefined;
    if (browser) await (await browser.catch(() => undefined))?.close().catch(() => {});
  }
}

/*
 * Scripts run in the page. They are strings because this program is type-checked without the
 * DOM library (Deno does not load it), and they touch nothing but the page.
 */

/** Scrolls a screen at a time to the bottom, pausing so that observers see each screen. */
const SCROLL_THROUGH = `(async () => {
  const step = Math.max(200, innerHeight - 100);
  for (let y = 0; y < document.documentElement.scrollHeight; y += step) {
    scrollTo(0, y);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  scrollTo(0, document.documentElement.scrollHeight);
})()`;

/** Records when the DOM last changed, from the first script on: "settled" needs it quiet. */
const WATCH_MUTATIONS = `(() => {
  globalThis.__facefieldLastMutation = performance.now();
  new MutationObserver(() => { globalThis.__facefieldLastMutation = performance.now(); })
    .observe(document, { subtree: true, childList: true, attributes: true, characterData: true });
})()`;

/** Milliseconds since the DOM last changed. */
const SINCE_LAST_MUTATION = `performance.now() - (globalThis.__facefieldLastMutation ?? 0)`;

/** The page's height and element count. */
const PAGE_SIZE = `({
  height: document.documentElement.scrollHeight,
  elements: document.getElementsByTagName("*").length,
})`;

/** The page's height and element count: a round that changes neither loaded nothing. */
function pageSize(page: Page): Promise<{ height: number; elements: number }> {
  return page.evaluate(PAGE_SIZE) as Promise<{ height: number; elements: number }>;
}

/** Presses the first visible control that reads "load more"; true when one was pressed. */
async function pressLoadMore(page: Page): Promise<boolean> {
  const controls = page.locator("button, a, [role=button], input[type=button], input[type=submit]");
  const count = Math.min(await controls.count(), 500);
  for (let i = 0; i < count; i++) {
    const control = controls.nth(i);
    const label = (await control.innerText().catch(() => "")) ||
      (await control.getAttribute("value").catch(() => null)) || "";
    if (!LOAD_MORE.test(label)) continue;
    if (!(await control.isVisible().catch(() => false))) continue;
    if (await control.isDisabled().catch(() => true)) continue;
    // A link that leaves the page is pagination, which the crawl follows itself.
    const href = await control.getAttribute("href").catch(() => null);
    if (href && !href.startsWith("#") && !href.startsWith("javascript:")) continue;
    await control.click({ timeout: 2000 }).catch(() => {});
    return true;
  }
  return false;
}

/** Waits until no request has been in flight for `quietMs`, or the deadline. */
async function settle(
  page: Page,
  traffic: { inFlight: number; lastChange: number },
  quietMs: number,
  deadline: number,
): Promise<void> {
  for (;;) {
    const now = Date.now();
    if (now >= deadline) return;
    if (traffic.inFlight === 0 && now - traffic.lastChange >= quietMs) {
      // The network is quiet; the page must be too (a response still being turned into cards).
      const sinceMutation = await page.evaluate(SINCE_LAST_MUTATION).catch(() => quietMs);
      if ((sinceMutation as number) >= quietMs) return;
    }
    await page.waitForTimeout(Math.min(50, quietMs));
  }
}

/** The same document: equal but for the fragment. */
function sameDocument(a: string, b: string): boolean {
  try {
    const x = new URL(a), y = new URL(b);
    x.hash = y.hash = "";
    return x.href === y.href;
  } catch {
    return false;
  }
}

/** True when `target` is on the page's own host (scheme and port included) or an allowed one. */
export function hostAllowed(target: string, pageUrl: string, allowHosts: string[] = []): boolean {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  if (url.origin === new URL(pageUrl).origin) return true;
  return allowHosts.includes("*") || allowHosts.includes(url.host) ||
    allowHosts.includes(url.hostname);
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split("\n")[0]!.slice(0, 200);
}
