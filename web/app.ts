/**
 * The web app over one data dir (`deno task serve`): Hono routes, server-rendered pages, one
 * small script and one stylesheet served by the app itself. Every file is addressed by record
 * id or sha256 and resolved inside the data dir; anything else is 404.
 */
import { basename, join } from "node:path";
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { bodyLimit } from "hono/body-limit";
import { HttpClient } from "../net/http.ts";
import { DEFAULT_MAX_IMAGE_BYTES, sniffImageType } from "../stages/download_images.ts";
import { DEFAULT_PER_PAGE, facePage, facesPage, readFilter } from "./faces_page.ts";
import { type Html, NAV, page, query } from "./layout.ts";
import { liveEvents } from "./live.ts";
import { ModelSet } from "./models.ts";
import { overviewPage } from "./overview_page.ts";
import { removedNotice, removePage, removePerson } from "./remove_page.ts";
import { launchRun, type Retrain, retrainOf, type RunLauncher } from "./retrain.ts";
import { reportPage } from "./report_page.ts";
import {
  csrfCheck,
  generateToken,
  hostCheck,
  securityHeaders,
  STATIC_REPORT_CSP,
  tokenCheck,
} from "./security.ts";
import { StoreView } from "./store_view.ts";
import { VERDICT_CHART_PATH } from "./verdict_view.ts";
import { isThumbnailKind, Thumbnails } from "./thumbnails.ts";
import { predictBytes, tryPage, uploadBytes } from "./try_page.ts";

export interface AppOptions {
  dataDir: string;
  /** Every request must carry this token; required on a non-loopback bind. */
  token?: string;
  /**
   * Host names (without port) requests may name, against DNS rebinding; `"any"` only with a
   * token (the token then guards every request, whatever name reached the server).
   * @default ["127.0.0.1", "localhost", "[::1]"]
   */
  allowedHosts?: string[] | "any";
  /**
   * The CSRF token the pages embed and POSTs must return.
   * @default a random one per start
   */
  csrfToken?: string;
  /**
   * Let an image URL on the Try-it page reach private and loopback addresses
   * (`--allow-private`); without it the URL is treated as named on a public page.
   * @default false
   */
  allowPrivate?: boolean;
  /**
   * The client that fetches an image URL given on the Try-it page.
   * @default new HttpClient({ maxRetries: 1, timeoutMs: 15000, allowPrivate })
   */
  http?: HttpClient;
  /**
   * Starts a pipeline run (Retrain now, after a removal).
   * @default launchRun: `deno run … main.ts pipeline …` in a process of its own
   */
  launchRun?: RunLauncher;
  /**
   * Milliseconds between two looks at the data dir's files for the live view.
   * @default 500
   */
  pollMs?: number;
}

export interface WebApp {
  app: Hono;
  csrfToken: string;
  view: StoreView;
  models: ModelSet;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  "app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "app.css": { file: "app.css", type: "text/css; charset=utf-8" },
};

/** Multipart framing around an upload of the largest allowed image. */
const MULTIPART_SLACK = 64 * 1024;

async function loadAssets(): Promise<Map<string, Uint8Array>> {
  const assets = new Map<string, Uint8Array>();
  for (const [name, { file }] of Object.entries(ASSETS)) {
    assets.set(name, await Deno.readFile(new URL(`./assets/${file}`, import.meta.url)));
  }
  return assets;
}

/** The MIME type of stored image bytes, from their magic number; SVG is served as a download. */
function imageType(bytes: Uint8Array): string {
  const sniffed = sniffImageType(bytes);
  return sniffed.kind === "sharp" ? `image/${sniffed.format}` : "application/octet-stream";
}

/** What the route groups share. */
interface RouteContext {
  view: StoreView;
  models: ModelSet;
  csrfToken: string;
  render(current: string, title: string, body: Html | Promise<Html>): Promise<string>;
  /** One-shot messages shown after a redirect, by a random key (never in the URL itself). */
  notices: Map<string, Html>;
  http: HttpClient;
  pollMs: number;
  thumbnails: Thumbnails;
  assets: Map<string, Uint8Array>;
  launch: RunLauncher;
  /** The run to repeat, kept from before a removal deleted the report it was read from. */
  retrain: { pending?: Retrain; startedAt?: number };
}

export async function createApp(options: AppOptions): Promise<WebApp> {
  const {
    dataDir,
    token,
    allowedHosts = ["127.0.0.1", "localhost", "[::1]"],
    csrfToken = generateToken(),
    allowPrivate = false,
    http = new HttpClient({ maxRetries: 1, timeoutMs: 15000, allowPrivate }),
    pollMs = 500,
    launchRun: launch = launchRun,
  } = options;
  if (token !== undefined && token.length < 16) {
    throw new RangeError(
      `'token' must be at least 16 characters to resist guessing: got ${token.length}`,
    );
  }
  if (allowedHosts === "any" && token === undefined) {
    throw new RangeError(
      "'allowedHosts' may be \"any\" only with a 'token': else any site could reach it",
    );
  }
  const view = new StoreView(dataDir);
  const models = new ModelSet(view);
  const thumbnails = new Thumbnails(view);
  const assets = await loadAssets();
  /** One-shot messages shown after a redirect, by a random key (never in the URL itself). */
  const notices = new Map<string, Html>();

  const app = new Hono();
  app.use(securityHeaders());
  if (allowedHosts !== "any") app.use(hostCheck(new Set(allowedHosts.map((h) => h.toLowerCase()))));
  if (token !== undefined) app.use(tokenCheck(token));
  app.use(csrfCheck(csrfToken));

  // The nav names the data dir by its folder only: a full path says more about the machine.
  const dataDirName = basename(view.paths.root);
  const render = async (current: string, title: string, body: Html | Promise<Html>) =>
    String(await page({ title, current, csrfToken, dataDir: dataDirName, body: await body }));

  const context: RouteContext = {
    view,
    models,
    csrfToken,
    render,
    notices,
    http,
    pollMs,
    thumbnails,
    assets,
    launch,
    retrain: {},
  };
  pageRoutes(app, context);
  actionRoutes(app, context);
  fileRoutes(app, context);

  app.notFound(async (c) => c.html(await render("", "Not found", htmlNotFound()), 404));
  app.onError((error, c) => {
    // The message may name a file of the data dir, never a person: record ids and paths only.
    console.error(
      `facefield serve: ${c.req.method} ${new URL(c.req.url).pathname}: ${error.message}`,
    );
    return c.text("internal error; the server's log says more", 500);
  });
  return { app, csrfToken, view, models };
}

/** The run's report.html with a link back to the app at its top (the file itself unchanged). */
export function withBackLink(reportHtml: string): string {
  const link = '<p style="margin:0;padding:6px 12px;background:#263238;font:14px system-ui">' +
    '<a href="/report" style="color:#eceff1" data-back-to-app>← back to the app</a></p>';
  const body = reportHtml.match(/<body[^>]*>/i);
  if (!body) return link + reportHtml;
  const at = body.index! + body[0].length;
  return reportHtml.slice(0, at) + link + reportHtml.slice(at);
}

function htmlNotFound(): Html {
  return html`
    <h1>Not found</h1>
    <p>Nothing here. Try ${NAV.map((n, i) =>
      html`${i ? ", " : ""}<a href="${n.path}">${n.label}</a>`
    )}.</p>
  `;
}

/** Pages, and the live view's event stream. */
function pageRoutes(app: Hono, context: RouteContext): void {
  const { view, models, render, notices, pollMs, csrfToken } = context;
  app.get("/", async (c) => c.html(await render("/", "Overview", overviewPage(view))));
  app.get("/events", (c) => liveEvents(c, view, { pollMs }));

  app.get("/faces", async (c) => {
    // Empty filter fields (a form sent without its script) stay out of the address.
    const url = new URL(c.req.url);
    const given = [...url.searchParams];
    if (given.some(([, value]) => value.trim() === "")) {
      return c.redirect(`/faces${query(Object.fromEntries(given))}`, 302);
    }
    const noticeKey = c.req.query("notice");
    const notice = noticeKey ? notices.get(noticeKey) : undefined;
    if (noticeKey) notices.delete(noticeKey);
    const pageNumber = Number(c.req.query("page") ?? 1);
    const perPage = Number(c.req.query("per") ?? DEFAULT_PER_PAGE);
    const body = facesPage(view, {
      filter: readFilter(c.req.query()),
      page: Number.isInteger(pageNumber) ? pageNumber : 1,
      perPage: Number.isInteger(perPage) ? perPage : DEFAULT_PER_PAGE,
      notice,
    });
    return c.html(await render("/faces", "Faces", body));
  });
  app.get("/faces/:id", async (c) => {
    const row = await view.row(c.req.param("id"));
    if (!row) return c.notFound();
    return c.html(await render("/faces", `Record ${row.id}`, facePage(view, models, row)));
  });
  app.get("/faces/:id/remove", async (c) => {
    const row = await view.row(c.req.param("id"));
    if (!row) return c.notFound();
    return c.html(await render("/faces", `Remove ${row.id}`, removePage(view, row, csrfToken)));
  });
  app.get("/report", async (c) => c.html(await render("/report", "Report", reportPage(view))));
  app.get("/try", async (c) => c.html(await render("/try", "Try it", tryPage())));
}

/** The two POSTs: removing a person and predicting on an upload (the CSRF check runs before). */
function actionRoutes(app: Hono, context: RouteContext): void {
  const { view, models, notices, http, csrfToken } = context;
  app.post("/faces/:id/remove", async (c) => {
    const row = await view.row(c.req.param("id"));
    if (!row) return c.notFound();
    try {
      // The report goes with the removal: the retrain command is read from it first.
      const retrain = await retrainOf(view);
      const result = await removePerson(view, row.id);
      models.reset();
      context.retrain.pending = retrain;
      const key = generateToken().slice(0, 12);
      notices.set(key, removedNotice(result, retrain, csrfToken));
      return c.redirect(`/faces?notice=${key}`, 303);
    } catch (error) {
      if (!(error instanceof Deno.errors.Busy)) throw error;
      return c.text(`not removed: ${error.message}`, 409);
    }
  });

  app.post("/retrain", async (c) => await startRetrain(c, context));

  app.post(
    "/api/predict",
    bodyLimit({
      maxSize: DEFAULT_MAX_IMAGE_BYTES + MULTIPART_SLACK,
      onError: (c) => c.json({ error: `too_large: over ${DEFAULT_MAX_IMAGE_BYTES} bytes` }, 413),
    }),
    async (c) => {
      const type = c.req.header("content-type") ?? "";
      if (
        !type.startsWith("multipart/form-data") &&
        !type.startsWith("application/x-www-form-urlencoded")
      ) {
        return c.json({ error: "bad_request: send a form (multipart/form-data)" }, 400);
      }
      const bytes = await uploadBytes(await c.req.parseBody(), http);
      const response = bytes instanceof Uint8Array ? await predictBytes(models, bytes) : bytes;
      return c.json(response.body, response.status);
    },
  );
}

/** A run started this recently is taken to be starting still (it takes the lock in seconds). */
const RETRAIN_GRACE_MS = 15_000;

/** Retrain now: repeats the data dir's run in a process of its own; the Overview follows it. */
async function startRetrain(c: Context, context: RouteContext): Promise<Response> {
  const { view, retrain } = context;
  const recently = retrain.startedAt !== undefined &&
    Date.now() - retrain.startedAt < RETRAIN_GRACE_MS;
  if (recently || await view.running()) {
    return c.text("not started: a run is working on this data dir; the Overview follows it", 409);
  }
  const run = retrain.pending ?? await retrainOf(view);
  if (!run.startable) {
    return c.text(
      `not started: the app cannot tell how this data dir was made; run ${run.command}${run.hint}`,
      409,
    );
  }
  context.launch(run.args);
  retrain.startedAt = Date.now();
  retrain.pending = undefined;
  return c.redirect("/", 303);
}

/** Files by sha256 (thumbnails, original bytes) and the app's own assets; anything else 404. */
function fileRoutes(app: Hono, context: RouteContext): void {
  const { view, thumbnails, assets } = context;
  app.get("/thumb/:kind/:sha", async (c) => {
    const kind = c.req.param("kind");
    if (!isThumbnailKind(kind)) return c.notFound();
    const bytes = await thumbnails.get(c.req.param("sha"), kind);
    if (!bytes) return c.notFound();
    return c.body(bytes.slice().buffer, 200, {
      "content-type": "image/webp",
      // A removed person's face must not linger in a browser's cache.
      "cache-control": "no-store",
    });
  });
  app.get("/image/:sha", async (c) => {
    const path = await view.imagePath(c.req.param("sha"));
    if (!path) return c.notFound();
    const bytes = await Deno.readFile(path);
    return c.body(bytes.slice().buffer, 200, {
      "content-type": imageType(bytes),
      "content-disposition": "inline",
      "cache-control": "no-store",
    });
  });
  app.get(VERDICT_CHART_PATH, async (c) => {
    const path = await view.verdictChartPath();
    if (!path) return c.notFound();
    const bytes = await Deno.readFile(path);
    return c.body(bytes.slice().buffer, 200, {
      "content-type": "image/png",
      "cache-control": "no-store",
    });
  });
  app.get("/report/static", async (c) => {
    const path = await view.inside(join(view.paths.reports, "report.html"));
    if (!path) return c.notFound();
    c.header("content-security-policy", STATIC_REPORT_CSP);
    return c.html(withBackLink(await Deno.readTextFile(path)));
  });
  app.get("/assets/:name", (c) => {
    const name = c.req.param("name");
    const asset = assets.get(name);
    if (!asset) return c.notFound();
    return c.body(asset.slice().buffer, 200, { "content-type": ASSETS[name]!.type });
  });
}
