/**
 * Pages that need a browser: a list built from a JSON fetch, one behind "load more", one on
 * infinite scroll with lazy photos. Each is served on 127.0.0.1, rendered in headless Chromium
 * and read by the same extractor. Skips visibly without Chromium.
 */
import assert from "node:assert/strict";
import { from, lastValueFrom, toArray } from "rxjs";
import type { FetchedPage, PersonRecord, SourceRow } from "../core/types.ts";
import { HttpClient } from "../net/http.ts";
import { BrowserRenderer, findChromium, hostAllowed } from "../net/browser.ts";
import { fetchPages, type PageOutcome } from "../stages/fetch_pages.ts";
import { extractPeople } from "../stages/parse_people.ts";
import { runPipeline } from "../pipeline/run.ts";
import { Manifest } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { join } from "node:path";
import { of } from "rxjs";

const JS_DIR = new URL("./testdata/js/", import.meta.url);
const chromiumPath = findChromium();
if (!chromiumPath) {
  console.warn(
    "browser tests skipped: no Chromium (install chromium or set FACEFIELD_CHROMIUM)",
  );
}

/** The people the "load more" directory shows, four per press. */
const FACULTY = [
  "Prof. Helga Sørensen",
  "Dr. Mateus Albuquerque",
  "Prof. Yuki Tanabe",
  "Dr. Ngozi Eze",
  "Dr. Ruairí Ó Briain",
  "Prof. Beatriz Lozano",
  "Dr. Anders Lindholm",
  "Dr. Priya Raghunathan",
  "Prof. Kofi Boateng",
  "Dr. Colette Marchand",
  "Dr. Emre Yıldız",
  "Prof. Ingrid Halvorsen",
];

/** The people the infinite-scroll page shows, three per batch. */
const COLLECTIVE = [
  "Marisol Fuentes",
  "Oskar Nyström",
  "Adaeze Nwosu",
  "Henrik Dahl",
  "Leilani Kahale",
  "Bartosz Zieliński",
  "Chen Jiayi",
  "Siobhán Kearney",
  "Tariq Haddad",
  "Elif Demir",
  "Jonah Whitcombe",
  "Ananya Iyer",
];

const slug = (name: string) =>
  name.toLowerCase().replace(/^(prof|dr)\. /, "").normalize("NFD").replace(/[^a-z]+/g, "-");

function json(value: unknown): Response {
  return new Response(JSON.stringify(value), { headers: { "content-type": "application/json" } });
}

function html(file: string): Response {
  return new Response(Deno.readTextFileSync(new URL(file, JS_DIR)), {
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}

/** The fixture site; `hits` counts requests per path, to see what the browser fetched. */
async function withSite(
  fn: (origin: string, hits: Map<string, number>) => Promise<void>,
  robots = "User-agent: *\nAllow: /\n",
): Promise<void> {
  const hits = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const { pathname, searchParams } = new URL(request.url);
    hits.set(pathname, (hits.get(pathname) ?? 0) + 1);
    if (pathname === "/robots.txt") return new Response(robots);
    if (pathname === "/team/") return html("json-list.html");
    if (pathname === "/api/team.json") {
      return new Response(Deno.readTextFileSync(new URL("team.json", JS_DIR)), {
        headers: { "content-type": "application/json" },
      });
    }
    if (pathname === "/faculty/") return html("load-more.html");
    if (pathname === "/api/faculty") {
      const page = Number(searchParams.get("page") ?? "1");
      const people = FACULTY.slice((page - 1) * 4, page * 4).map((name) => ({
        name,
        photo: `/img/faculty/${slug(name)}.jpg`,
      }));
      return json({ people, last: page * 4 >= FACULTY.length });
    }
    if (pathname === "/people/") return html("infinite.html");
    const batch = pathname.match(/^\/api\/people\/batch-(\d+)\.json$/);
    if (batch) {
      const n = Number(batch[1]);
      const people = COLLECTIVE.slice((n - 1) * 3, n * 3);
      if (people.length === 0) return new Response("no more", { status: 404 });
      return json(people.map((name) => ({ name, photo: `/img/collective/${slug(name)}.jpg` })));
    }
    if (pathname === "/static/plain.html") {
      return new Response(
        "<html><body><h1>Staff</h1><script>console.log('menu')</script></body></html>",
        { headers: { "content-type": "text/html" } },
      );
    }
    return new Response("not found", { status: 404 });
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`, hits);
  } finally {
    await server.shutdown();
  }
}

function source(url: string, extra: Partial<SourceRow> = {}): SourceRow {
  return { line: 2, url, category: "test", ...extra };
}

async function crawl(
  sources: SourceRow[],
  browser: BrowserRenderer,
  hostRendering = new Map<string, "http" | "browser">(),
): Promise<PageOutcome[]> {
  const http = new HttpClient({ politenessDelayMs: 0, maxRetries: 0 });
  return await lastValueFrom(
    from(sources).pipe(fetchPages({ http, browser, hostRendering, concurrency: 1 }), toArray()),
  );
}

function pageOf(outcome: PageOutcome | undefined): FetchedPage {
  assert.ok(outcome?.status === "ok", outcome?.status === "ok" ? "" : outcome?.reason ?? "none");
  return outcome.record;
}

function printResults(rows: [string, PersonRecord[], string[]][]): void {
  console.log(
    [
      "\nJS-rendered fixtures, rendered in headless Chromium",
      "fixture      expected found correct",
      ...rows.map(([fixture, found, expected]) => {
        const correct = found.filter((person) => expected.includes(person.name)).length;
        return `${fixture.padEnd(12)} ${String(expected.length).padStart(8)} ${
          String(found.length).padStart(5)
        } ${String(correct).padStart(7)}`;
      }),
    ].join("\n"),
  );
}

Deno.test({
  name:
    "fetchPages() renders JS-built people lists in Chromium: JSON fetch, load more, infinite scroll",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const browser = new BrowserRenderer(new HttpClient({ politenessDelayMs: 0, maxRetries: 0 }), {
      executablePath: chromiumPath,
    });
    try {
      await withSite(async (origin, hits) => {
        const hostRendering = new Map<string, "http" | "browser">();
        const outcomes = await crawl(
          [source(`${origin}/team/`), source(`${origin}/faculty/`), source(`${origin}/people/`)],
          browser,
          hostRendering,
        );
        const [team, faculty, people] = outcomes.map(pageOf);
        for (const page of [team!, faculty!, people!]) assert.equal(page.renderedBy, "browser");
        assert.equal(hostRendering.get(new URL(origin).host), "browser", "the host is remembered");

        const teamPeople = extractPeople(team!);
        const facultyPeople = extractPeople(faculty!);
        const collectivePeople = extractPeople(people!);
        const teamNames = JSON.parse(
          Deno.readTextFileSync(new URL("team.json", JS_DIR)),
        ) as { name: string; role: string; photo: string }[];
        printResults([
          ["json-list", teamPeople, teamNames.map((member) => member.name)],
          ["load-more", facultyPeople, FACULTY],
          ["infinite", collectivePeople, COLLECTIVE],
        ]);

        assert.deepEqual(
          teamPeople.map((person) => [person.name, person.role, new URL(person.imageUrl).pathname]),
          teamNames.map((member) => [member.name, member.role, member.photo]),
        );
        assert.deepEqual(facultyPeople.map((person) => person.name), FACULTY);
        assert.deepEqual(
          facultyPeople.map((person) => new URL(person.imageUrl).pathname),
          FACULTY.map((name) => `/img/faculty/${slug(name)}.jpg`),
        );
        // Every photo's real URL: only scrolling each into view puts it in src.
        assert.deepEqual(
          collectivePeople.map((person) => [person.name, new URL(person.imageUrl).pathname]),
          COLLECTIVE.map((name) => [name, `/img/collective/${slug(name)}.jpg`]),
        );
        // The page itself was fetched once, by the HTTP client; the browser got those bytes.
        assert.equal(hits.get("/team/"), 1);
        assert.equal(hits.get("/api/faculty"), 3, "three presses' worth of pages, then no button");
        // The browser loads no images: the extractor reads their URLs from the DOM.
        assert.equal([...hits.keys()].filter((path) => path.startsWith("/img/")).length, 0);
      });
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: "BrowserRenderer refuses requests to other hosts unless the source allows them",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const browser = new BrowserRenderer(new HttpClient({ politenessDelayMs: 0, maxRetries: 0 }), {
      executablePath: chromiumPath,
    });
    try {
      await withSite(async (origin) => {
        // The same server under another host name: a third party to the page's host.
        const other = origin.replace("127.0.0.1", "localhost");
        const page = `<html><body><div id="out"></div><script>
          fetch("${other}/api/team.json").then((r) => r.json())
            .then((team) => { document.getElementById("out").textContent = "loaded " + team.length; })
            .catch(() => { document.getElementById("out").textContent = "refused"; });
        </script></body></html>`;
        const refused = await browser.render({ url: `${origin}/x/`, html: page });
        assert.ok(refused.ok);
        assert.match(refused.html, /refused/);
        assert.ok(refused.refused >= 1);
        const allowed = await browser.render({
          url: `${origin}/x/`,
          html: page,
          allowHosts: [new URL(other).host],
        });
        assert.ok(allowed.ok);
        assert.match(allowed.html, /loaded 5/);
      });
    } finally {
      await browser.close();
    }
  },
});

Deno.test("hostAllowed() allows the page's own origin and the hosts a source lists", () => {
  const page = "http://127.0.0.1:8080/team/";
  assert.ok(hostAllowed("http://127.0.0.1:8080/api/x.json", page));
  assert.ok(!hostAllowed("http://127.0.0.1:9090/api/x.json", page), "another port is another host");
  assert.ok(!hostAllowed("http://192.0.2.44/collect", page));
  assert.ok(!hostAllowed("file:///etc/passwd", page));
  assert.ok(hostAllowed("https://cdn.example/app.js", page, ["cdn.example"]));
  assert.ok(hostAllowed("https://cdn.example/app.js", page, ["*"]));
});

Deno.test({
  name:
    "fetchPages() without Chromium: a page that needs the browser gets needs_browser, the run goes on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const browser = new BrowserRenderer(new HttpClient(), {
      executablePath: "/nonexistent/chromium",
    });
    assert.equal(browser.available, false);
    await withSite(async (origin) => {
      const outcomes = await crawl(
        [
          source(`${origin}/team/`),
          source(`${origin}/static/plain.html`, { render: "http" }),
          source(`${origin}/faculty/`, { render: "browser" }),
        ],
        browser,
      );
      const byUrl = new Map(outcomes.map((outcome) => [outcome.record.url, outcome]));
      const team = byUrl.get(`${origin}/team/`)!;
      assert.ok(team.status !== "ok" && /^needs_browser: /.test(team.reason), team.status);
      const faculty = byUrl.get(`${origin}/faculty/`)!;
      assert.ok(faculty.status !== "ok" && /^needs_browser: /.test(faculty.reason));
      // render=http reads the page as served, scripts or not.
      const plain = byUrl.get(`${origin}/static/plain.html`)!;
      assert.equal(plain.status, "ok");
      assert.equal(pageOf(plain).renderedBy, "http");
    });
  },
});

Deno.test({
  name: "fetchPages() in the browser keeps to robots.txt for the page's own requests",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const browser = new BrowserRenderer(new HttpClient({ politenessDelayMs: 0, maxRetries: 0 }), {
      executablePath: chromiumPath,
    });
    try {
      await withSite(async (origin, hits) => {
        const [team] = await crawl([source(`${origin}/team/`, { render: "browser" })], browser);
        assert.equal(extractPeople(pageOf(team)).length, 0);
        assert.equal(hits.get("/api/team.json"), undefined, "a disallowed API is not fetched");
      }, "User-agent: *\nDisallow: /api/\n");
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: "fetchPages() with render=auto remembers per host what the browser gave",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const http = new HttpClient({ politenessDelayMs: 0, maxRetries: 0 });
    const browser = new BrowserRenderer(http, { executablePath: chromiumPath });
    try {
      await withSite(async (origin, hits) => {
        // The same server under two host names: one whose pages need the browser, one whose
        // scripts add no people.
        const other = origin.replace("127.0.0.1", "localhost");
        const hostRendering = new Map<string, "http" | "browser">();
        const asked: string[] = [];
        const hasPeople = (page: FetchedPage) => {
          asked.push(new URL(page.url).pathname);
          return extractPeople(page).length > 0;
        };
        const run = (urls: string[]) =>
          lastValueFrom(
            from(urls.map((url) => source(url))).pipe(
              fetchPages({ http, browser, hostRendering, hasPeople, concurrency: 1 }),
              toArray(),
            ),
          );
        await run([`${origin}/team/`, `${other}/static/plain.html`]);
        assert.equal(hostRendering.get(new URL(origin).host), "browser");
        assert.equal(hostRendering.get(new URL(other).host), "http");
        const apiCalls = hits.get("/api/faculty") ?? 0;
        asked.length = 0;
        const [faculty, plain] = await run([`${origin}/faculty/`, `${other}/static/plain.html`]);
        // A browser host's page goes to the browser without a static look first...
        assert.equal(pageOf(faculty).renderedBy, "browser");
        assert.equal(extractPeople(pageOf(faculty)).length, FACULTY.length);
        assert.ok(!asked.includes("/faculty/"), `asked about ${asked}`);
        assert.ok((hits.get("/api/faculty") ?? 0) > apiCalls);
        // ...and an http host's page is not rendered again.
        assert.equal(pageOf(plain).renderedBy, "http");
      });
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: "runPipeline() reads a JS-built page through the browser and closes it at the end",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withSite(async (origin) => {
      const data = await Deno.makeTempDir({ prefix: "facefield-browser-run-" });
      try {
        await runPipeline(
          { sources: "-", dataDir: data, until: "images", delayMs: 0 },
          of(`url,category\n${origin}/team/,soil\n`),
        );
        const rows = (await Manifest.open(join(data, "index.csv"))).rows();
        const team = JSON.parse(Deno.readTextFileSync(new URL("team.json", JS_DIR))) as {
          name: string;
          role: string;
        }[];
        assert.deepEqual(
          rows.map((row) => [row.name, row.role]).sort(),
          team.map((member) => [member.name, member.role]).sort(),
        );
        const log = await PageLog.open(join(data, "pages.csv"));
        assert.ok(log.sourceDone(`${origin}/team/`));
      } finally {
        await Deno.remove(data, { recursive: true });
      }
    });
  },
});

Deno.test({
  name: "BrowserRenderer gives render_failed for a page whose script never yields, and goes on",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const browser = new BrowserRenderer(new HttpClient({ politenessDelayMs: 0, maxRetries: 0 }), {
      executablePath: chromiumPath,
      // Short, so the stuck page ends soon; not so short that a busy machine fails the next one.
      timeoutMs: 6000,
    });
    try {
      await withSite(async (origin) => {
        const stuck = await browser.render({
          url: `${origin}/stuck/`,
          html: "<html><body><h1>Team</h1><script>for (;;) {}</script></body></html>",
        });
        assert.ok(!stuck.ok);
        assert.match(stuck.reason, /^render_failed: /);
        // The next page renders as usual.
        const next = await browser.render({
          url: `${origin}/team/`,
          html: Deno.readTextFileSync(new URL("json-list.html", JS_DIR)),
        });
        assert.ok(next.ok, next.ok ? "" : next.reason);
        assert.match(next.html, /Ilse Vandermeulen/);
      });
    } finally {
      await browser.close();
    }
  },
});
