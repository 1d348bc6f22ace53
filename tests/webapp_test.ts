/**
 * The web app as a new user found it (issue 22 §3, issue 20 §2): the verdict first on the
 * Overview and the Report, a confusion cell that opens exactly the faces it counts, removal
 * that says why others go too and what stops working, images never cached, Try it under the
 * crawler's address rules, plain dates and page numbers, and no empty filters in the address.
 * All on a data dir built here (tests/_webapp_fixture.ts); no training, no Chromium.
 */
import assert from "node:assert/strict";
import { DOMParser } from "linkedom";
import { Manifest } from "../store/manifest.ts";
import { blobPath, dataPaths } from "../store/paths.ts";
import { HttpClient } from "../net/http.ts";
import { createApp, type WebApp, withBackLink } from "../web/app.ts";
import { pageNumbers } from "../web/faces_page.ts";
import { plainFetchError } from "../web/try_page.ts";
import { retrainFor } from "../web/retrain.ts";
import { verdictView } from "../web/verdict_view.ts";
import { stubNet } from "./testdata/crawl/stub_net.ts";
import { sampleVerdict, webappDataDir } from "./_webapp_fixture.ts";

interface Running extends WebApp {
  base: string;
  close(): Promise<void>;
}

async function serve(options: Parameters<typeof createApp>[0]): Promise<Running> {
  const web = await createApp({ pollMs: 50, ...options });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, web.app.fetch);
  return {
    ...web,
    base: `http://127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  };
}

async function getPage(app: Running, path: string) {
  const response = await fetch(app.base + path);
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, document: parse(text) };
}

// deno-lint-ignore no-explicit-any
const parse = (text: string): any => new DOMParser().parseFromString(text, "text/html");

/** The first element of <main> that is not the page's <h1>. */
// deno-lint-ignore no-explicit-any
function firstAfterHeading(document: any) {
  const main = document.querySelector("main");
  const live = main.querySelector("#live");
  const children = [...(live ?? main).children].filter((e: { tagName: string }) =>
    e.tagName !== "H1"
  );
  return children[0] as { className: string; getAttribute(name: string): string | null };
}

Deno.test("verdictView() leads with the headline and why, or says the run predates it", async () => {
  const verdict = sampleVerdict();
  const shown = String(await verdictView({ hasReport: true, verdict, hasChart: true }));
  assert.match(shown, /class="verdict-headline">The photo, not the face/);
  assert.match(shown, /class="verdict-why">.*within 2 points/s);
  assert.match(shown, /<img src="\/report\/verdict\.png"/);
  const noChart = String(await verdictView({ hasReport: true, verdict, hasChart: false }));
  assert.match(noChart, /table class="ladder"/, "the ladder as a table without the PNG");
  assert.match(noChart, /data-rung="face".*64\.0 %/s);
  for (const old of [undefined, ["verdict:", "cnn 70.5 % beats chance"], { headline: 3 }]) {
    const text = String(await verdictView({ hasReport: true, verdict: old, hasChart: false }));
    assert.match(text, /this run predates the verdict: rerun the pipeline/i);
    assert.doesNotMatch(text, /%/, "no bare accuracy");
  }
  const unchecked = String(await verdictView({ hasReport: true, verdict: null, hasChart: false }));
  assert.match(unchecked, /no verdict: its validity checks did not run/);
  assert.doesNotMatch(unchecked, /%/, "no bare accuracy");
  const none = String(await verdictView({ hasReport: false, verdict: undefined, hasChart: false }));
  assert.match(none, /No verdict yet/);
});

Deno.test({
  name: "serve: Overview and Report both lead with the verdict and its chart, served no-store",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await webappDataDir({ verdict: sampleVerdict() });
    const app = await serve({ dataDir: root });
    try {
      for (const path of ["/", "/report"]) {
        const { document } = await getPage(app, path);
        const first = firstAfterHeading(document);
        assert.equal(first.className, "verdict", `${path}: the verdict comes first`);
        assert.equal(first.getAttribute("data-verdict"), "photo");
        assert.match(
          document.querySelector(".verdict-headline").textContent,
          /The photo, not the face/,
        );
        assert.ok(document.querySelector('.verdict img[src="/report/verdict.png"]'), path);
      }
      const chart = await fetch(`${app.base}/report/verdict.png`);
      assert.equal(chart.status, 200);
      assert.equal(chart.headers.get("content-type"), "image/png");
      assert.equal(chart.headers.get("cache-control"), "no-store");
      await chart.body?.cancel();
      // The data set in plain words, and dates people read.
      const overview = await getPage(app, "/");
      const dataset = overview.document.querySelector(".dataset").textContent.replace(/\s+/g, " ");
      assert.match(dataset, /Data set uni-sources: 42 people/);
      assert.match(dataset, /biology, chemistry, history and law/);
      const report = await getPage(app, "/report");
      assert.match(report.text, /Evaluated <time datetime="[^"]+">7 Dec 2026, 16:51 UTC<\/time>/);
      assert.match(
        report.text,
        /no black-and-white photos among the test faces; 100\.0 % right|no black-and-white photos among the test faces; [\d.]+ % right on the \d+ colour photos/,
      );
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name: "serve: a run without a verdict says so on both pages instead of a bare accuracy",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await webappDataDir({ verdict: ["verdict:", "cnn 70.5 %"], chart: false });
    const app = await serve({ dataDir: root });
    try {
      for (const path of ["/", "/report"]) {
        const { document } = await getPage(app, path);
        const first = firstAfterHeading(document);
        assert.equal(first.getAttribute("data-verdict"), "predates", path);
        assert.match(
          document.querySelector(".verdict").textContent,
          /predates the verdict: rerun the pipeline/,
        );
      }
      assert.equal(
        await fetch(`${app.base}/report/verdict.png`).then(async (r) => {
          await r.body?.cancel();
          return r.status;
        }),
        404,
      );
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name: "serve: each confusion cell opens exactly the faces it counts (the fold models' answers)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await webappDataDir({ verdict: sampleVerdict() });
    const report = JSON.parse(await Deno.readTextFile(`${root}/report/metrics.json`));
    const { labels, counts, ids } = report.models[0].metrics.confusion;
    const app = await serve({ dataDir: root });
    try {
      const { document } = await getPage(app, "/report");
      let cells = 0;
      for (const [i, actual] of labels.entries()) {
        for (const [j, predicted] of labels.entries()) {
          const cell = document.querySelector(`td[data-cell="${actual}|${predicted}"]`);
          const link = cell.querySelector("a");
          if (counts[i][j] === 0) {
            assert.equal(link, null, "an empty cell links nowhere");
            continue;
          }
          cells++;
          assert.equal(Number(link.textContent), counts[i][j]);
          const grid = await getPage(app, link.getAttribute("href"));
          const shown = [...grid.document.querySelectorAll("li.card")].map((
            card: { getAttribute(name: string): string },
          ) => card.getAttribute("data-id"));
          assert.deepEqual(shown.sort(), [...ids[i][j]].sort(), `${actual} → ${predicted}`);
        }
      }
      assert.ok(cells >= 5, `cells with faces: ${cells}`);
    } finally {
      await app.close();
    }
    // A report from before the cells' ids: numbers, no links that would open other faces.
    const old = await webappDataDir({ verdict: sampleVerdict(), ids: false });
    const oldApp = await serve({ dataDir: old.root });
    try {
      const { document } = await getPage(oldApp, "/report");
      assert.equal(document.querySelectorAll("td[data-cell] a").length, 0);
      const grid = await getPage(oldApp, "/faces?category=law&model=cnn&predicted=law");
      assert.ok(grid.document.querySelector("[data-cell-missing]"), "says why it is empty");
    } finally {
      await oldApp.close();
    }
  },
});

Deno.test({
  name:
    "serve: removal says the same face was found under other names, what breaks, how to retrain",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root, faces } = await webappDataDir({ verdict: sampleVerdict() });
    const paths = dataPaths(root);
    // The same image under another department's page: the same person.
    const manifest = await Manifest.open(paths.manifest);
    const first = manifest.get(faces[0]!)!;
    const twin = { ...manifest.get(faces[1]!)!, sha256: first.sha256, name: "P. Twin" };
    manifest.set(twin);
    manifest.flushSync();
    await Deno.mkdir(`${paths.models}/cnn`, { recursive: true });
    const launched: string[][] = [];
    const app = await serve({ dataDir: root, launchRun: (args) => launched.push(args) });
    try {
      const plan = await getPage(app, `/faces/${first.id}/remove`);
      const sameFace = plan.document.querySelector('[data-plan="same-face"]').textContent;
      assert.match(sameFace, /The same face was found under these names/);
      assert.match(plan.document.querySelector("ul.same-face").textContent, /P\. Twin/);
      const afterwards = plan.document.querySelector('[data-plan="afterwards"]').textContent;
      assert.match(afterwards, /Until you retrain, the Report page has no evaluation/);
      assert.match(afterwards, /Try it cannot answer/);
      assert.match(
        afterwards,
        /deno task pipeline --data \S+ --sources \/somewhere\/uni-sources\.csv --folds 4/,
      );

      const image = await fetch(`${app.base}/image/${first.sha256}`);
      assert.equal(image.headers.get("cache-control"), "no-store");
      await image.body?.cancel();
      const thumb = await fetch(`${app.base}/thumb/face/${first.sha256}`);
      assert.equal(thumb.headers.get("cache-control"), "no-store");
      await thumb.body?.cancel();

      const removed = await fetch(`${app.base}/faces/${first.id}/remove`, {
        method: "POST",
        headers: { origin: app.base },
        body: new URLSearchParams({ csrf: app.csrfToken }),
        redirect: "manual",
      });
      assert.equal(removed.status, 303);
      const after = await getPage(app, removed.headers.get("location")!);
      const notice = after.document.querySelector(".notice").textContent;
      assert.match(notice, /Removed 2 record\(s\)/);
      assert.match(
        notice,
        /the Report page and Try it stop working until a retrain: run deno task pipeline --data \S+ --sources/,
      );
      // Retrain now: the run that made the data dir, read before the report went.
      const button = after.document.querySelector('form[action="/retrain"] button');
      assert.match(button.textContent, /Retrain now/);
      const retrain = (headers: Record<string, string>) =>
        fetch(`${app.base}/retrain`, {
          method: "POST",
          headers: { origin: app.base, ...headers },
          body: new URLSearchParams({ csrf: app.csrfToken }),
          redirect: "manual",
        });
      const forged = await fetch(`${app.base}/retrain`, {
        method: "POST",
        headers: { origin: "http://evil.example" },
        body: new URLSearchParams({ csrf: app.csrfToken }),
      });
      assert.equal(forged.status, 403);
      await forged.body?.cancel();
      assert.deepEqual(launched, [], "no run from another origin");
      const started = await retrain({});
      assert.equal(started.status, 303);
      assert.equal(started.headers.get("location"), "/", "the Overview follows the run");
      await started.body?.cancel();
      assert.deepEqual(launched, [[
        "pipeline",
        "--data",
        paths.root,
        "--sources",
        "/somewhere/uni-sources.csv",
        "--folds",
        "4",
      ]]);
      const again = await retrain({});
      assert.equal(again.status, 409, "a second click while the run starts");
      await again.body?.cancel();
      assert.equal(launched.length, 1);
    } finally {
      await app.close();
    }
  },
});

Deno.test("plainFetchError() says what failed in plain words, without the server's details", () => {
  assert.equal(
    plainFetchError("network: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:9"),
    "could not fetch: connection refused",
  );
  assert.equal(
    plainFetchError("http_404: Not Found"),
    "could not fetch: the server answered HTTP 404",
  );
  assert.match(
    plainFetchError("blocked_address: private 10.0.0.1 from a public page"),
    /--allow-private/,
  );
  assert.doesNotMatch(plainFetchError("network: ECONNRESET read 10.1.2.3:8080"), /10\.1|8080/);
});

Deno.test({
  name: "serve: Try it refuses a URL on a private or loopback address with no connection made",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await webappDataDir();
    const png = await Deno.readFile(
      blobPath(
        dataPaths(root).imageCache,
        (await Manifest.open(dataPaths(root).manifest)).rows()[0]!.sha256,
      ),
    );
    let siteRequests = 0;
    const site = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      siteRequests++;
      return new Response(png, { headers: { "content-type": "image/png" } });
    });
    const sitePort = site.addr.port;
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const closedPort = (closed.addr as Deno.NetAddr).port;
    closed.close();
    // A pretend internet: photos.test is public, intranet.test private, both served on loopback.
    const net = stubNet(
      { "photos.test": ["203.0.113.10"], "intranet.test": ["10.0.0.7"] },
      {
        "203.0.113.10:80": sitePort,
        "10.0.0.7:80": sitePort,
        [`127.0.0.1:${closedPort}`]: closedPort,
      },
    );
    const http = (allowPrivate: boolean) =>
      new HttpClient({ maxRetries: 0, resolve: net.resolve, dial: net.dial, allowPrivate });
    const strict = await serve({ dataDir: root, http: http(false) });
    const post = async (app: Running, url: string) => {
      const response = await fetch(`${app.base}/api/predict`, {
        method: "POST",
        headers: { origin: app.base, "x-csrf-token": app.csrfToken },
        body: new URLSearchParams({ url }),
      });
      return { status: response.status, body: await response.json() };
    };
    try {
      for (
        const url of [
          "http://intranet.test/photo.png",
          "http://10.0.0.7/photo.png",
          `http://127.0.0.1:${sitePort}/photo.png`,
          "http://localhost/photo.png",
          "http://169.254.169.254/latest/meta-data/",
        ]
      ) {
        const refused = await post(strict, url);
        assert.equal(refused.status, 422, url);
        assert.match(
          refused.body.error,
          /^could not fetch: the address is (private|loopback|link-local)/,
          url,
        );
      }
      assert.deepEqual(net.attempts, [], "no connection attempted");
      assert.equal(siteRequests, 0);
      // A public address is fetched, with no robots.txt asked for (one image a person named).
      const fetched = await post(strict, "http://photos.test/photo.png");
      assert.equal(fetched.status, 409, JSON.stringify(fetched.body));
      assert.match(fetched.body.error, /^no_model/, "fetched and checked; no model here");
      assert.equal(siteRequests, 1, "the image only, no robots.txt");
    } finally {
      await strict.close();
    }
    // --allow-private: the intranet is reachable; a closed port says so plainly.
    const open = await serve({ dataDir: root, http: http(true) });
    try {
      const intranet = await post(open, "http://intranet.test/photo.png");
      assert.equal(intranet.status, 409, JSON.stringify(intranet.body));
      const refused = await post(open, `http://127.0.0.1:${closedPort}/photo.png`);
      assert.equal(refused.body.error, "could not fetch: connection refused");
    } finally {
      await open.close();
      await site.shutdown();
    }
  },
});

Deno.test({
  name: "serve: page numbers, no empty filters in the address, a way back from the static report",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    assert.deepEqual(pageNumbers(1, 3), [1, 2, 3]);
    assert.deepEqual(pageNumbers(6, 12), [1, "…", 4, 5, 6, 7, 8, "…", 12]);
    const { root } = await webappDataDir({ verdict: sampleVerdict() });
    const app = await serve({ dataDir: root });
    try {
      const empty = await fetch(`${app.base}/faces?category=law&split=&fold=&source=`, {
        redirect: "manual",
      });
      assert.equal(empty.status, 302);
      assert.equal(empty.headers.get("location"), "/faces?category=law");
      await empty.body?.cancel();
      const paged = await getPage(app, "/faces?per=10&page=2");
      const pages = [...paged.document.querySelectorAll(".pager .page")].map((
        e: { textContent: string },
      ) => e.textContent);
      assert.deepEqual(pages, ["1", "2", "3", "4", "5"], "42 records, 10 a page");
      assert.equal(paged.document.querySelector('.pager [aria-current="page"]').textContent, "2");
      const staticReport = await getPage(app, "/report/static");
      assert.ok(staticReport.document.querySelector('a[href="/report"][data-back-to-app]'));
      assert.match(
        withBackLink("<html><body class=x><h1>r</h1>"),
        /<body class=x><p[^>]*><a href="\/report"/,
      );
    } finally {
      await app.close();
    }
  },
});

Deno.test({
  name: "deno task serve --token prints the address to open, with the token in it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { root } = await webappDataDir();
    const token = "a-token-of-twenty-four-c";
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../main.ts", import.meta.url).pathname,
        "serve",
        "--data",
        root,
        "--port",
        "0",
        "--token",
        token,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    try {
      let text = "";
      while (!/open http:\/\/127\.0\.0\.1:\d+\/\?token=\S+/.test(text)) {
        const { value, done } = await lines.read();
        if (done) throw new Error(`serve ended: ${text}`);
        text += value;
      }
      const url = text.match(/open (http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)/)![1]!;
      assert.ok(url.endsWith(`?token=${token}`), url);
      // The printed address works as it is: it sets the cookie and lands on the Overview.
      const first = await fetch(url, { redirect: "manual" });
      assert.equal(first.status, 303);
      const cookie = first.headers.get("set-cookie")!.split(";")[0]!;
      await first.body?.cancel();
      const overview = await fetch(new URL("/", url), { headers: { cookie } });
      assert.equal(overview.status, 200);
      assert.match(await overview.text(), /<h1>Overview<\/h1>/);
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await lines.cancel().catch(() => {});
    }
  },
});

Deno.test("retrainFor() repeats the run's sources and folds; the demo only where pages were crawled", () => {
  const report = (sources: string) => ({
    generatedAt: "",
    models: [],
    dataset: { provenance: { sources, folds: 4 } },
  });
  const crawled = retrainFor(report("data/uni.csv"), "/d", 3);
  assert.deepEqual(crawled.args, [
    "pipeline",
    "--data",
    "/d",
    "--sources",
    "data/uni.csv",
    "--folds",
    "4",
  ]);
  assert.equal(crawled.command, "deno task pipeline --data /d --sources data/uni.csv --folds 4");
  assert.equal(crawled.startable, true);
  const demo = retrainFor(report("embedded demo"), "/d", 5);
  assert.deepEqual(demo.args, ["pipeline", "--data", "/d", "--folds", "4"]);
  assert.equal(demo.startable, true);
  // No pages and no sources file: an image list made it, which the report cannot name.
  const list = retrainFor(report("embedded demo"), "/d", 0);
  assert.equal(list.startable, false);
  assert.match(list.hint, /--images LIST/);
  assert.equal(retrainFor(undefined, "/d", 5).startable, false, "no report, nothing to repeat");
});
