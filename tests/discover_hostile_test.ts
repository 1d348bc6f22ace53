/**
 * Hostile sites cannot hold discovery: a link maze of endless depth, endless query strings, a
 * sitemap of 50,000 addresses, gzip bombs, redirect loops, calendars that link every day, and
 * pages that differ only by a session id. Each runs against a loopback server the test starts,
 * ends within the page budget, and leaves its reason in the site's log.
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { lastValueFrom, of, toArray } from "rxjs";
import { HttpClient } from "../net/http.ts";
import { discoverSites, type SiteDiscovery } from "../stages/discover_sites.ts";
import { type Handler, startLoopback } from "./testdata/crawl/loopback.ts";

const BUDGET = 40;

function html(body: string, headers: Record<string, string> = {}): Response {
  return new Response(
    `<!doctype html><html><head><title>t</title></head><body>${body}</body></html>`,
    {
      headers: { "content-type": "text/html; charset=utf-8", ...headers },
    },
  );
}

/** Five people with portraits, so a page reads as a people page. */
function people(tag: string): string {
  return `<div class="team">${
    ["Anna Schmidt", "Jonas Weber", "Lea Fischer", "Paul Wagner", "Marie Becker"].map((name, i) =>
      `<div class="card"><img src="/img/${tag}-${i}.jpg" width="100" height="120"><h3>${name}</h3></div>`
    ).join("")
  }</div>`;
}

async function discoverOn(
  handler: Handler,
  options: { maxPages?: number; maxPageBytes?: number } = {},
): Promise<{ site: SiteDiscovery; requests: string[] }> {
  const server = startLoopback(handler);
  try {
    const http = new HttpClient({
      allowPrivate: true,
      politenessDelayMs: 0,
      perHostConcurrency: 4,
      maxRetries: 0,
    });
    const [site] = await lastValueFrom(
      of(`${server.origin}/`).pipe(
        discoverSites({ http, maxPages: BUDGET, ...options }),
        toArray(),
      ),
    );
    return { site: site!, requests: server.requests };
  } finally {
    await server.close();
  }
}

function assertWithinBudget({ site, requests }: { site: SiteDiscovery; requests: string[] }) {
  assert.ok(site.pagesFetched <= BUDGET, `${site.pagesFetched} pages`);
  const pages = requests.filter((path) => path !== "/robots.txt");
  // A redirect loop's hops are requests within one page's fetch (at most 6 each).
  assert.ok(pages.length <= BUDGET * 6, `${pages.length} requests`);
}

function assertLog(site: SiteDiscovery, pattern: RegExp) {
  assert.ok(
    site.log.some((line) => pattern.test(line)),
    `no ${pattern} in:\n${site.log.join("\n")}`,
  );
}

Deno.test("a link maze of endless depth ends at the depth limit", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt" || url.pathname === "/sitemap.xml") {
      return new Response("", { status: 404 });
    }
    return html(
      `<a href="${url.pathname}team-a/">Team A</a> <a href="${url.pathname}team-b/">Team B</a>`,
    );
  });
  assertWithinBudget(result);
  assertLog(result.site, /^depth_limit/);
  // 15 pages and the sitemap.xml it asked for.
  assertLog(result.site, /^done: 16 pages fetched/);
});

Deno.test("a maze deeper than the budget ends at the budget", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt" || url.pathname === "/sitemap.xml") {
      return new Response("", { status: 404 });
    }
    const links = Array.from(
      { length: 6 },
      (_, i) => `<a href="${url.pathname}people-${"abcdef"[i]}/">People ${"abcdef"[i]}</a>`,
    );
    return html(`<h1>${url.pathname}</h1>${links.join(" ")}`);
  });
  assertWithinBudget(result);
  assertLog(result.site, /^budget: 40 pages fetched/);
});

Deno.test("endless query strings are cut off by the shape of their addresses", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt" || url.pathname === "/sitemap.xml") {
      return new Response("", { status: 404 });
    }
    const n = Number(url.searchParams.get("page") ?? 0);
    // Every page offers forty new orderings of the list, and the next page of it.
    const sorts = Array.from({ length: 40 }, () => Math.random().toString(36).slice(2))
      .map((noise) => `<a href="/team?sort=${noise}">Team sorted</a>`);
    return html(`${people("q")}<a href="/team?page=${n + 1}">Team</a> ${sorts.join(" ")}`);
  });
  assertWithinBudget(result);
  assertLog(result.site, /^trap: more than \d+ addresses like .*\/team\?sort/);
  // The next pages show the same list: read as copies, they lead nowhere new.
  assertLog(result.site, /^duplicate: the same page under another address/);
  assert.equal(result.site.candidates.length, 1, "one copy of the list is kept");
});

Deno.test("a sitemap of 50,000 addresses is read up to its cap", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt") return new Response(`Sitemap: ${url.origin}/huge.xml\n`);
    if (url.pathname === "/huge.xml") {
      const locs = Array.from(
        { length: 50_000 },
        (_, i) => `<url><loc>${url.origin}/people/${i}</loc></url>`,
      );
      return new Response(`<urlset>${locs.join("")}</urlset>`, {
        headers: { "content-type": "application/xml" },
      });
    }
    return html(url.pathname === "/" ? "<h1>Home</h1>" : people(url.pathname.slice(8)));
  });
  assertWithinBudget(result);
  assertLog(result.site, /^sitemap capped: .*huge\.xml lists 50000 addresses; the first 5000 read/);
  assertLog(result.site, /^trap: more than \d+ addresses like .*\/people\/#/);
});

Deno.test("gzip bombs, as a Content-Encoding and as a .xml.gz file, stop at the byte cap", async () => {
  const zeros = new Uint8Array(64 * 1024 * 1024);
  const bomb = new Uint8Array(zlib.gzipSync(zeros, { level: 9 }));
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt") return new Response(`Sitemap: ${url.origin}/bomb.xml.gz\n`);
    if (url.pathname === "/bomb.xml.gz") {
      return new Response(bomb, { headers: { "content-type": "application/gzip" } });
    }
    if (url.pathname === "/sitemap.xml") {
      return new Response(bomb, {
        headers: { "content-type": "application/xml", "content-encoding": "gzip" },
      });
    }
    return html("<h1>Home</h1>");
  }, { maxPageBytes: 1024 * 1024 });
  assertWithinBudget(result);
  assertLog(
    result.site,
    /^sitemap failed: .*bomb\.xml\.gz: too_large: sitemap inflates past 1048576 bytes/,
  );
  assertLog(result.site, /^sitemap failed: .*sitemap\.xml: too_large: body over 1048576 bytes/);
});

Deno.test("redirect loops end with their reason", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt" || url.pathname === "/sitemap.xml") {
      return new Response("", { status: 404 });
    }
    if (url.pathname === "/team") return Response.redirect(`${url.origin}/team2`, 302);
    if (url.pathname === "/team2") return Response.redirect(`${url.origin}/team`, 302);
    if (url.pathname.startsWith("/staff")) {
      return Response.redirect(`${url.origin}${url.pathname}x`, 302); // an endless chain
    }
    return html(`<a href="/team">Team</a> <a href="/staff">Staff</a>`);
  });
  assertWithinBudget(result);
  assertLog(result.site, /^page failed: .*\/team: redirect_loop/);
  assertLog(result.site, /^page failed: .*\/staff\w*: too_many_redirects/);
});

Deno.test("a calendar that links every day is stepped around or cut off", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt" || url.pathname === "/sitemap.xml") {
      return new Response("", { status: 404 });
    }
    // Every page links every day of the year: by date (stepped around), and by day number.
    const days = Array.from({ length: 365 }, (_, day) => day);
    const dated = days.map((day) =>
      `<a href="/kalender/?date=${
        new Date(Date.UTC(2024, 0, day + 1)).toISOString().slice(0, 10)
      }">${day}</a>`
    );
    const numbered = days.map((day) => `<a href="/team/day/${day}">Team day ${day}</a>`);
    return html(dated.join(" ") + numbered.join(" "));
  });
  assertWithinBudget(result);
  assertLog(result.site, /^avoided: dated address/);
  assertLog(result.site, /^trap: more than \d+ addresses like .*\/team\/day\/#/);
  assert.ok(!result.requests.some((path) => path.startsWith("/kalender")));
});

Deno.test("pages that differ only by a session id are read once", async () => {
  const result = await discoverOn((_request, url) => {
    if (url.pathname === "/robots.txt" || url.pathname === "/sitemap.xml") {
      return new Response("", { status: 404 });
    }
    const sid = crypto.randomUUID().replaceAll("-", "");
    // In the query (stripped), and in the path (the same page under a new address each time).
    const body = `<a href="/team?sid=${sid}">Team</a> <a href="/s/${sid}/people">People</a>`;
    return html(
      url.pathname.endsWith("/people") || url.pathname === "/team" ? body + people("s") : body,
    );
  });
  assertWithinBudget(result);
  assertLog(result.site, /^session id removed/);
  assertLog(result.site, /^duplicate: the same page under another address/);
  assert.equal(result.requests.filter((path) => path.startsWith("/team")).length, 1);
  assert.equal(result.site.candidates.length, 1);
});
