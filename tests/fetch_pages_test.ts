import assert from "node:assert/strict";
import { from, lastValueFrom, toArray } from "rxjs";
import {
  DEFAULT_USER_AGENT,
  HttpClient,
  type HttpClientOptions,
  parseRetryAfter,
} from "../net/http.ts";
import type { SourceRow } from "../core/types.ts";
import { fetchPages, type FetchPagesOptions, type PageOutcome } from "../stages/fetch_pages.ts";
import { delay, type Handler, type Loopback, startLoopback } from "./testdata/crawl/loopback.ts";

function client(options: HttpClientOptions = {}): HttpClient {
  return new HttpClient({ politenessDelayMs: 0, backoffBaseMs: 5, maxRetries: 2, ...options });
}

const html = (body: string) =>
  new Response(`<!doctype html><html><body>${body}</body></html>`, {
    headers: { "content-type": "text/html; charset=utf-8" },
  });

function source(url: string, line = 2): SourceRow {
  return { line, url, category: "cs" };
}

function crawl(
  sources: SourceRow[],
  options: FetchPagesOptions = {},
): Promise<PageOutcome[]> {
  return lastValueFrom(
    from(sources).pipe(fetchPages({ http: client(), respectRobots: false, ...options }), toArray()),
  );
}

async function withServer(handler: Handler, test: (server: Loopback) => Promise<void>) {
  const server = startLoopback(handler);
  try {
    await test(server);
  } finally {
    await server.close();
  }
}

function failure(outcome: PageOutcome | undefined): string {
  assert.ok(outcome);
  return outcome.status === "ok" ? "ok" : outcome.reason;
}

Deno.test("HttpClient retries a 503 and then succeeds", async () => {
  let calls = 0;
  await withServer(
    () => ++calls < 3 ? new Response("busy", { status: 503 }) : html("<p>hello</p>"),
    async (server) => {
      const result = await client().get(server.origin + "/", { maxBytes: 10_000, robots: false });
      assert.equal(result.ok, true);
      assert.equal(calls, 3);
    },
  );
  let always = 0;
  await withServer(() => (always++, new Response("down", { status: 500 })), async (server) => {
    const result = await client({ maxRetries: 2 }).get(server.origin + "/", {
      maxBytes: 10,
      robots: false,
    });
    assert.deepEqual(result.ok ? "ok" : result.reason, "http_500: Internal Server Error");
    assert.equal(always, 3, "one attempt and two retries");
  });
});

Deno.test("HttpClient honours Retry-After and does not retry a 404", async () => {
  const times: number[] = [];
  await withServer((_request, url) => {
    times.push(performance.now());
    if (url.pathname === "/missing") return new Response("no", { status: 404 });
    return times.length === 1
      ? new Response("slow down", { status: 429, headers: { "retry-after": "1" } })
      : html("ok");
  }, async (server) => {
    const result = await client().get(server.origin + "/", { maxBytes: 10_000, robots: false });
    assert.equal(result.ok, true);
    assert.ok(
      times[1]! - times[0]! >= 950,
      `waited ${times[1]! - times[0]!} ms, not Retry-After's 1 s`,
    );
    const missing = await client().get(server.origin + "/missing", {
      maxBytes: 10_000,
      robots: false,
    });
    assert.equal(missing.ok ? "ok" : missing.reason, "http_404: Not Found");
    assert.deepEqual(server.requests, ["/", "/", "/missing"]);
  });
  assert.equal(parseRetryAfter("7"), 7000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6000);
  assert.equal(parseRetryAfter("soon"), undefined);
});

Deno.test("HttpClient follows a redirect chain, and stops at the limit and at loops", async () => {
  await withServer((_request, url) => {
    const hop = /^\/hop(\d+)$/.exec(url.pathname);
    if (hop) {
      const n = Number(hop[1]);
      return n === 0 ? html("arrived") : Response.redirect(`${url.origin}/hop${n - 1}`, 302);
    }
    if (url.pathname === "/loop-a") {
      return new Response(null, { status: 301, headers: { location: "/loop-b" } });
    }
    if (url.pathname === "/loop-b") {
      return new Response(null, { status: 308, headers: { location: "/loop-a" } });
    }
    if (url.pathname === "/to-ftp") {
      return new Response(null, { status: 302, headers: { location: "ftp://x/" } });
    }
    return new Response("?", { status: 404 });
  }, async (server) => {
    const http = client({ maxRedirects: 3 });
    const ok = await http.get(server.origin + "/hop3", { maxBytes: 10_000 });
    assert.ok(ok.ok);
    assert.equal(ok.url, server.origin + "/hop0");
    const tooMany = await http.get(server.origin + "/hop4", { maxBytes: 10_000 });
    assert.equal(tooMany.ok ? "ok" : tooMany.reason, "too_many_redirects: more than 3");
    const loop = await http.get(server.origin + "/loop-a", { maxBytes: 10_000 });
    assert.match(loop.ok ? "ok" : loop.reason, /^redirect_loop: /);
    const ftp = await http.get(server.origin + "/to-ftp", { maxBytes: 10_000 });
    assert.match(ftp.ok ? "ok" : ftp.reason, /^unsupported_scheme: ftp:/);
  });
});

Deno.test("fetchPages() reports timeouts, oversized, non-HTML and missing pages", async () => {
  await withServer(async (_request, url) => {
    switch (url.pathname) {
      case "/slow":
        await delay(800);
        return html("too late");
      case "/huge": {
        // Streamed without Content-Length, so only the running count can stop it.
        const chunk = new TextEncoder().encode("<p>" + "x".repeat(1000) + "</p>");
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (sent++ >= 100) controller.close();
            else controller.enqueue(chunk);
          },
        });
        return new Response(body, { headers: { "content-type": "text/html" } });
      }
      case "/data.json":
        return new Response("{}", { headers: { "content-type": "application/json" } });
      default:
        return new Response("gone", { status: 404 });
    }
  }, async (server) => {
    const outcomes = await crawl(
      ["/slow", "/huge", "/data.json", "/gone"].map((path, n) =>
        source(server.origin + path, n + 2)
      ),
      { http: client({ timeoutMs: 200, maxRetries: 0 }), maxPageBytes: 20_000 },
    );
    const byLine = new Map(
      outcomes.map((o) => [o.record.source.line, o]),
    );
    assert.match(failure(byLine.get(2)), /^timeout: /);
    assert.match(failure(byLine.get(3)), /^too_large: body over 20000 bytes/);
    assert.equal(failure(byLine.get(4)), "not_html: application/json");
    assert.equal(failure(byLine.get(5)), "http_404: Not Found");
    const failed = outcomes[0];
    assert.ok(failed?.status === "failed" && failed.record.url.startsWith(server.origin));
  });
});

Deno.test("fetchPages() follows pagination on the same host only, never a URL twice", async () => {
  await withServer((_request, url) => {
    const next = (href: string) => html(`<p>page</p><a rel="next" href="${href}">Next</a>`);
    const port = new URL(url).port;
    switch (url.pathname) {
      case "/p1":
        return next("/p2");
      case "/p2":
        return next("/p3#top");
      case "/p3":
        return next("/p1"); // back to the start
      case "/away":
        return next(`http://localhost:${port}/p1`); // same server, another host name
      case "/many":
        return next(`/many?n=${Number(url.searchParams.get("n") ?? 0) + 1}`);
    }
    return new Response("?", { status: 404 });
  }, async (server) => {
    // The stage's own checks, whatever the link finder proposes.
    const rawNext = (page: { html: string }) => /rel="next" href="([^"]+)"/.exec(page.html)?.[1];
    const pages = (outcomes: PageOutcome[]) =>
      outcomes.map((o) =>
        o.status === "ok"
          ? `${o.record.pageIndex}${new URL(o.record.url).pathname}${new URL(o.record.url).search}`
          : o.reason
      );
    const loop = await crawl([source(`${server.origin}/p1`)], { nextPageUrl: rawNext });
    assert.deepEqual(pages(loop), ["0/p1", "1/p2", "2/p3"]);
    assert.deepEqual(server.requests, ["/p1", "/p2", "/p3"]);
    const away = await crawl([source(`${server.origin}/away`)], { nextPageUrl: rawNext });
    assert.deepEqual(pages(away), ["0/away"]);
    const capped = await crawl([source(`${server.origin}/many`)], {
      nextPageUrl: rawNext,
      maxPages: 4,
    });
    assert.deepEqual(pages(capped), ["0/many", "1/many?n=1", "2/many?n=2", "3/many?n=3"]);
    // The default link finder (parse_people's findNextPageUrl) gives the same walk.
    const byDefault = await crawl([source(`${server.origin}/p1`)]);
    assert.deepEqual(pages(byDefault), ["0/p1", "1/p2", "2/p3"]);
  });
});

Deno.test("fetchPages() skips pages robots.txt disallows and names itself", async () => {
  await withServer((_request, url) => {
    if (url.pathname === "/robots.txt") {
      return new Response("User-agent: facefield\nDisallow: /private/\n", {
        headers: { "content-type": "text/plain" },
      });
    }
    return html("<p>people</p>");
  }, async (server) => {
    const outcomes = await crawl(
      [source(`${server.origin}/private/staff`, 2), source(`${server.origin}/public/staff`, 3)],
      { respectRobots: true, concurrency: 1 },
    );
    assert.deepEqual(outcomes.map(failure), [
      "robots_disallowed: robots.txt disallows this URL for facefield",
      "ok",
    ]);
    assert.deepEqual(server.requests, ["/robots.txt", "/public/staff"], "robots.txt read once");
    assert.ok(server.userAgents.every((agent) => agent === DEFAULT_USER_AGENT));
  });
});

Deno.test("fetchPages() decodes the declared charset", async () => {
  await withServer(
    () =>
      new Response(
        Uint8Array.from([
          ...new TextEncoder().encode("<p>M"),
          0xfc,
          ...new TextEncoder().encode("ller</p>"),
        ]),
        {
          headers: { "content-type": "text/html; charset=iso-8859-1" },
        },
      ),
    async (server) => {
      const [outcome] = await crawl([source(server.origin + "/")]);
      assert.ok(outcome?.status === "ok");
      assert.match(outcome.record.html, /Müller/);
    },
  );
});

Deno.test("fetchPages() and HttpClient reject bad options early", () => {
  assert.throws(() => fetchPages({ maxPages: 0 }), { name: "RangeError", message: /maxPages/ });
  assert.throws(() => new HttpClient({ perHostConcurrency: 0 }), {
    name: "RangeError",
    message: /perHostConcurrency/,
  });
});
