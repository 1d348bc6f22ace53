/**
 * Discovery end to end on a generated loopback university (24 units, German and English,
 * menus with dropdowns, a sitemap, an English mirror, decoys): every people page found, none
 * of the decoys written as sure, each unit named, robots.txt kept, and the sources file read
 * as it is by the pipeline's reader. Also the `--category` rules, the HTTP cache on a rerun,
 * and the command line.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { lastValueFrom, of, toArray } from "rxjs";
import { HttpClient } from "../net/http.ts";
import { discoveredSources, homesInText, runDiscovery } from "../pipeline/discover.ts";
import { startUniversity } from "../pipeline/discover_university.ts";
import type { SiteDiscovery } from "../stages/discover_sites.ts";
import { categoryFor, parseCategoryRules } from "../stages/discover/sources_csv.ts";
import { normalizeUrl, urlTemplate } from "../stages/discover/links.ts";
import { readSources } from "../stages/read_sources.ts";
import { PageLog } from "../store/page_log.ts";
import { startLoopback } from "./testdata/crawl/loopback.ts";

function loopbackClient() {
  return new HttpClient({ allowPrivate: true, politenessDelayMs: 0, perHostConcurrency: 4 });
}

async function discover(homes: string[], http = loopbackClient()) {
  const sites: SiteDiscovery[] = [];
  const chunks = await lastValueFrom(
    discoveredSources(homes, http, { onSite: (site) => sites.push(site) }).pipe(toArray()),
  );
  return { text: chunks.join(""), sites };
}

Deno.test("discover finds every unit's people page of a loopback university, and no decoy as sure", async () => {
  const uni = startUniversity({ units: 24 });
  try {
    const { text, sites } = await discover([uni.url]);
    const site = sites[0]!;
    const sure = site.candidates.filter((c) => c.sure);
    for (const unit of uni.units) {
      const found = sure.find((c) => c.url === unit.peopleUrl || c.url === unit.mirrorUrl);
      assert.ok(found, `people page of ${unit.name} not found as sure: ${unit.peopleUrl}`);
      assert.equal(found.unit, unit.name, `category hint of ${unit.peopleUrl}`);
      assert.equal(found.people, unit.people);
    }
    // A mirror is written once, under one of its languages.
    assert.equal(sure.length, uni.units.length, sure.map((c) => c.url).join("\n"));
    for (const decoy of uni.decoys) assert.ok(!sure.some((c) => c.url === decoy), decoy);
    assert.ok(site.pagesFetched <= 200, `${site.pagesFetched} pages`);
    assert.ok(
      !uni.requests.some((path) => path.startsWith("/intern/")),
      "robots.txt disallows /intern/",
    );
    assert.ok(site.log.some((line) => line.startsWith("sitemap:")), site.log.join("\n"));

    // The file is a sources file as it is: one row per sure page, unsure ones commented out.
    const items = await lastValueFrom(of(text).pipe(readSources(), toArray()));
    assert.ok(
      items.every((item) => item.status === "ok"),
      JSON.stringify(items.filter((i) => i.status !== "ok")),
    );
    assert.deepEqual(
      items.map((item) => item.status === "ok" ? item.record.url : "").sort(),
      sure.map((c) => c.url).sort(),
    );
    assert.match(text, /# score \d\.\d\d \| via .+ \| \d+ people with portraits/);
  } finally {
    await uni.close();
  }
});

Deno.test("discover keeps to the page budget and the depth limit, and says so in the log", async () => {
  const uni = startUniversity({ units: 24 });
  try {
    const http = loopbackClient();
    const sites: SiteDiscovery[] = [];
    await lastValueFrom(
      discoveredSources([uni.url], http, { maxPages: 15, onSite: (s) => sites.push(s) }).pipe(
        toArray(),
      ),
    );
    const site = sites[0]!;
    assert.ok(site.pagesFetched <= 15, `${site.pagesFetched}`);
    const pageRequests = uni.requests.filter((path) => path !== "/robots.txt");
    assert.ok(
      pageRequests.length <= 16,
      `${pageRequests.length} requests (the home's redirect counts)`,
    );
    assert.ok(
      site.log.some((line) => line.startsWith("budget: 15 pages fetched")),
      site.log.join("\n"),
    );

    const shallow: SiteDiscovery[] = [];
    await lastValueFrom(
      discoveredSources([uni.url], loopbackClient(), {
        maxDepth: 1,
        onSite: (s) => shallow.push(s),
      })
        .pipe(toArray()),
    );
    assert.ok(
      shallow[0]!.log.some((line) => line.startsWith("depth_limit")),
      shallow[0]!.log.join("\n"),
    );
    assert.ok(shallow[0]!.candidates.filter((c) => c.sure).length < uni.units.length);
  } finally {
    await uni.close();
  }
});

Deno.test("--category maps the units a site names to the user's categories; unmatched pages go unsure", async () => {
  const rules = parseCategoryRules(["econ=Wirtschaft,Economics", "phys=Physik,Physics"]);
  assert.deepEqual(rules[0], { name: "econ", words: ["wirtschaft", "economics"] });
  assert.throws(() => parseCategoryRules(["econ"]), RangeError);
  assert.throws(() => parseCategoryRules(["econ="]), RangeError);
  const page = { url: "http://x/", via: ["Fakultät"], unit: "Lehrstuhl für Wirtschaftsinformatik" };
  assert.deepEqual(categoryFor(page, rules), { category: "econ", matched: true });
  assert.deepEqual(categoryFor({ ...page, unit: "Institut für Chemie" }, rules), {
    category: "Institut für Chemie",
    matched: false,
  });
  assert.deepEqual(categoryFor({ ...page, unit: "Institute of Physics" }, []), {
    category: "Institute of Physics",
    matched: true,
  });

  const uni = startUniversity({ units: 8 });
  try {
    const chunks = await lastValueFrom(
      discoveredSources([uni.url], loopbackClient(), { categories: rules }).pipe(toArray()),
    );
    const items = await lastValueFrom(of(chunks.join("")).pipe(readSources(), toArray()));
    const categories = items.map((item) => item.status === "ok" ? item.record.category : "?");
    // Of 8 units, Physik (unit 1, English) is the only one a rule names.
    assert.deepEqual(categories, ["phys"]);
  } finally {
    await uni.close();
  }
});

Deno.test("addresses that differ by a session id, a fragment or the order of the query are one page", () => {
  const base = "http://uni.test/a/";
  assert.equal(normalizeUrl("team?b=2&a=1#x", base)?.url, "http://uni.test/a/team?a=1&b=2");
  assert.deepEqual(normalizeUrl("team;jsessionid=ABC123?sid=99", base), {
    url: "http://uni.test/a/team",
    hadSession: true,
  });
  assert.equal(normalizeUrl("team?token=0123456789abcdef0123", base)?.hadSession, true);
  assert.equal(normalizeUrl("team?page=2", base)?.hadSession, false);
  assert.equal(normalizeUrl("javascript:void(0)", base), undefined);
  assert.equal(
    urlTemplate("http://uni.test/cal/2024/05/17?view=day"),
    urlTemplate("http://uni.test/cal/2023/11/02?view=week"),
  );
  // Sixteen faculties and a CMS's page ids are pages, not a trap's variants.
  assert.notEqual(urlTemplate("http://uni.test/fb08/"), urlTemplate("http://uni.test/fb09/"));
  assert.notEqual(
    urlTemplate("http://uni.test/index.php?id=1234"),
    urlTemplate("http://uni.test/index.php?id=1235"),
  );
  assert.equal(
    urlTemplate("http://uni.test/list?page=2&sort=a"),
    urlTemplate("http://uni.test/list?page=3&sort=b"),
  );
});

Deno.test("homes files: a CSV with a url column, or one address a line", () => {
  assert.deepEqual(homesInText("name,url\nA,http://a.test/\nB,http://b.test/\n"), [
    "http://a.test/",
    "http://b.test/",
  ]);
  assert.deepEqual(homesInText("# homes\nhttp://a.test/\n\nhttp://b.test/x\n"), [
    "http://a.test/",
    "http://b.test/x",
  ]);
});

Deno.test("a rerun through the data dir's HTTP cache costs conditional GETs only", async () => {
  const uni = startUniversity({ units: 4 });
  const dataDir = await Deno.makeTempDir({ prefix: "discover-cache-" });
  try {
    const client = { dataDir, allowPrivate: true, delayMs: 0, perHost: 4 };
    const texts: string[] = [];
    const first = await runDiscovery(
      [uni.url],
      client,
      {},
      (t) => Promise.resolve(void texts.push(t)),
    );
    const firstText = texts.splice(0).join("");
    const second = await runDiscovery(
      [uni.url],
      client,
      {},
      (t) => Promise.resolve(void texts.push(t)),
    );
    assert.equal(texts.join(""), firstText);
    assert.equal(first.http.stats.notModified, 0);
    // Every page of the second run was a 304; the redirect, robots.txt, its refusal and the
    // two 404s carry no ETag.
    assert.ok(second.http.stats.notModified >= second.sites[0]!.pagesFetched - 4);
    assert.ok(second.http.stats.notModified >= 8, `${second.http.stats.notModified} 304s`);
    assert.ok(second.http.stats.bytesReceived * 5 < first.http.stats.bytesReceived);
  } finally {
    await uni.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("deno task discover writes the sources file and reports each site on stderr", async () => {
  const uni = startUniversity({ units: 4 });
  const dir = await Deno.makeTempDir({ prefix: "discover-cli-" });
  try {
    const homes = join(dir, "homes.csv");
    await Deno.writeTextFile(homes, `name,url\nBeispielstadt,${uni.url}\n`);
    const out = join(dir, "sources.csv");
    const command = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "main.ts",
        "discover",
        homes,
        "--out",
        out,
        "--data",
        join(dir, "data"),
        "--allow-private",
        "--delay-ms",
        "0",
        "--category",
        "phys=Physics",
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const { code, stderr } = await command.output();
    const log = new TextDecoder().decode(stderr);
    assert.equal(code, 0, log);
    assert.match(log, /discover http:\/\/127\.0\.0\.1:\d+\/: 1 sure, 3 unsure people pages/);
    const text = await Deno.readTextFile(out);
    assert.match(text, /^http:\/\/127\.0\.0\.1:\d+\/de\/f1\/physics\/mitarbeiter\/,phys$/m);
    assert.equal(text.split("\n").filter((line) => line.startsWith("# http")).length, 3);

    const bad = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "discover", uni.url, "--category", "nothing"],
      stderr: "piped",
    }).output();
    assert.equal(bad.code, 2);
    assert.match(new TextDecoder().decode(bad.stderr), /--category must be NAME=WORDS/);
  } finally {
    await uni.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pipeline --discover: discovery's sure rows are crawled in the same run", async () => {
  const uni = startUniversity({ units: 4 });
  const dataDir = await Deno.makeTempDir({ prefix: "discover-run-" });
  try {
    const { runPipeline } = await import("../pipeline/run.ts");
    const summary = await runPipeline(
      { dataDir, until: "images", allowPrivate: true, delayMs: 0 },
      undefined,
      { sources: (http) => discoveredSources([uni.url], http) },
    );
    const pages = (await PageLog.open(join(dataDir, "pages.csv"))).rows()
      .map((row) => `${row.page_url},${row.source_url}`).join("\n");
    for (const unit of uni.units) {
      const url = unit.mirrorUrl && pages.includes(unit.mirrorUrl)
        ? unit.mirrorUrl
        : unit.peopleUrl;
      assert.ok(pages.includes(`${url},`), `${url} not crawled:\n${pages}`);
    }
    const index = await Deno.readTextFile(join(dataDir, "index.csv"));
    const people = uni.units.reduce((n, unit) => n + unit.people, 0);
    // Every person reached the manifest under their unit (the portraits themselves are 404s).
    assert.equal(index.trim().split("\n").length - 1, people, index);
    assert.match(index, /Lehrstuhl für Maschinenbau/);
    assert.ok(summary);
  } finally {
    await uni.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a people page that builds its list with a script is written unsure, for render auto", async () => {
  const server = startLoopback((_request, url) => {
    const html = (body: string) =>
      new Response(`<!doctype html><html><body>${body}</body></html>`, {
        headers: { "content-type": "text/html" },
      });
    if (url.pathname === "/team/") {
      return html(`<h1>Our Team</h1><div id="people"></div><script src="/people.js"></script>`);
    }
    if (url.pathname === "/") return html(`<nav><a href="/team/">Team</a></nav><h1>Lab</h1>`);
    return new Response("", { status: 404 });
  });
  try {
    const { text, sites } = await discover([`${server.origin}/`]);
    const candidate = sites[0]!.candidates.find((c) => c.url === `${server.origin}/team/`);
    assert.ok(candidate && !candidate.sure, JSON.stringify(sites[0]));
    assert.match(text, /render auto will render it\n# http:\/\/127\.0\.0\.1:\d+\/team\/,/);
  } finally {
    await server.close();
  }
});

/** A small US-style site: Schools → departments → "Faculty" and "Faculty & Staff" pages. */
function usSite() {
  const card = (name: string, i: number, dept: string) =>
    `<div class="views-row"><img src="/sites/default/files/${dept}-${i}.jpg" width="200" height="250"><div class="field-name"><a href="/people/${dept}-${i}">${name}</a></div><div class="field-title">Associate Professor</div></div>`;
  const names = ["Maria Lopez", "James Carter", "Aisha Khan", "Robert Chen", "Emily Nguyen"];
  const departments: Record<string, [string, string]> = {
    history: ["Department of History", "Faculty"],
    chemistry: ["Department of Chemistry", "Faculty & Staff"],
    law: ["School of Law", "Our People"],
  };
  const layout = (title: string, body: string) =>
    `<!doctype html><html><head><title>${title} | State University</title></head><body>
      <header><div class="site-name">State University</div><ul class="menu"><li><a href="/academics">Academics</a></li><li><a href="/news">News</a></li><li><a href="/events">Events</a></li></ul></header>
      <main>${body}</main></body></html>`;
  return (url: URL): Response => {
    const html = (body: string) => new Response(body, { headers: { "content-type": "text/html" } });
    const path = url.pathname.replace(/\/$/, "");
    if (path === "") {
      return html(
        layout("Home", `<h1>Welcome</h1><a href="/academics">Schools and Departments</a>`),
      );
    }
    if (path === "/academics") {
      return html(
        layout(
          "Academics",
          Object.entries(departments).map(([slug, [name]]) =>
            `<p><a href="/${slug}">${name}</a></p>`
          ).join(""),
        ),
      );
    }
    const [, slug, sub] = path.split("/");
    const dept = departments[slug!];
    if (!dept) return new Response("", { status: 404 });
    const [name, peopleLink] = dept;
    if (!sub) {
      return html(
        layout(
          name,
          `<h1>${name}</h1><a href="/${slug}/faculty">${peopleLink}</a> <a href="/${slug}/spotlight">Student Spotlight: Maria Lopez wins 2024 award</a>`,
        ),
      );
    }
    if (sub === "faculty") {
      return html(
        layout(
          `${peopleLink} | ${name}`,
          `<h1>${peopleLink}</h1><div class="view">${
            names.map((n, i) => card(n, i, slug!)).join("")
          }</div>`,
        ),
      );
    }
    if (sub === "spotlight") {
      return html(
        layout(
          "Spotlight",
          `<article><h1>Student Spotlight</h1><time datetime="2024-04-01">April 1, 2024</time>${
            names.slice(0, 3).map((n, i) => card(n, i + 10, slug!)).join("")
          }</article>`,
        ),
      );
    }
    return new Response("", { status: 404 });
  };
}

Deno.test("discover on a differently built site: US departments with 'Faculty', 'Faculty & Staff' and 'Our People'", async () => {
  const site = usSite();
  const server = startLoopback((_request, url) => site(url));
  const origin = server.origin;
  try {
    const { sites } = await discover([`${origin}/`]);
    const sure = sites[0]!.candidates.filter((c) => c.sure);
    assert.deepEqual(
      sure.map((c) => [new URL(c.url).pathname, c.unit]).sort(),
      [
        ["/chemistry/faculty", "Department of Chemistry"],
        ["/history/faculty", "Department of History"],
        ["/law/faculty", "School of Law"],
      ],
    );
  } finally {
    await server.close();
  }
});
