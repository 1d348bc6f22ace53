import assert from "node:assert/strict";
import { from, lastValueFrom, mergeMap, of, toArray } from "rxjs";
import { HttpClient, userAgentFor } from "../net/http.ts";
import { noAiDirective } from "../net/robots.ts";
import { HostGate } from "../net/throttle.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import type { SourceRow } from "../core/types.ts";
import { startLoopback } from "./testdata/crawl/loopback.ts";

const html = (body: string, headers: Record<string, string> = {}) =>
  new Response(`<!doctype html><html><body>${body}</body></html>`, {
    headers: { "content-type": "text/html; charset=utf-8", ...headers },
  });

const quick = (options: ConstructorParameters<typeof HttpClient>[0] = {}) =>
  new HttpClient({ politenessDelayMs: 0, backoffBaseMs: 1, timeoutMs: 2000, ...options });

Deno.test("robots.txt is read once per origin per run, shared by all sources", async () => {
  const server = startLoopback((_request, url) =>
    url.pathname === "/robots.txt"
      ? new Response("User-agent: facefield\nDisallow: /private/\n")
      : html(`<p>${url.pathname}</p>`)
  );
  try {
    const http = quick();
    const sources: SourceRow[] = Array.from({ length: 10 }, (_, i) => ({
      line: i + 2,
      url: `${server.origin}/${i === 9 ? "private" : "dept"}/${i}`,
      category: `c${i}`,
    }));
    // As the pipeline does: one fetchPages per source, one client for the run.
    const outcomes = await lastValueFrom(
      from(sources).pipe(mergeMap((source) => of(source).pipe(fetchPages({ http })), 4), toArray()),
    );
    assert.equal(server.requests.filter((path) => path === "/robots.txt").length, 1);
    assert.equal(outcomes.filter((outcome) => outcome.status === "ok").length, 9);
    const refused = outcomes.find((outcome) => outcome.status === "failed");
    assert.equal(
      refused?.status === "failed" && refused.reason,
      "robots_disallowed: robots.txt disallows this URL for facefield",
    );
  } finally {
    await server.close();
  }
});

Deno.test("a redirect to another origin is checked against that origin's robots.txt", async () => {
  const other = startLoopback((_request, url) =>
    url.pathname === "/robots.txt"
      ? new Response("User-agent: *\nDisallow: /\n")
      : html("<p>should not be fetched</p>")
  );
  const first = startLoopback((_request, url) =>
    url.pathname === "/robots.txt"
      ? new Response("", { status: 404 })
      : new Response(null, { status: 302, headers: { location: `${other.origin}/people` } })
  );
  try {
    const result = await quick().get(`${first.origin}/team`, { maxBytes: 10_000 });
    assert.equal(
      result.ok ? "ok" : result.reason,
      "robots_disallowed: robots.txt disallows this URL for facefield",
    );
    assert.deepEqual(other.requests, ["/robots.txt"], "the target page itself was never asked for");
  } finally {
    await first.close();
    await other.close();
  }
});

Deno.test("a robots.txt the server cannot give forbids the origin for the run (RFC 9309)", async () => {
  const server = startLoopback((_request, url) =>
    url.pathname === "/robots.txt" ? new Response("down", { status: 500 }) : html("<p>x</p>")
  );
  try {
    const result = await quick({ maxRetries: 1 }).get(`${server.origin}/a`, { maxBytes: 1000 });
    assert.equal(
      result.ok ? "ok" : result.reason,
      "robots_unreachable: robots.txt could not be read (http_500)",
    );
    assert.deepEqual(server.requests, ["/robots.txt", "/robots.txt"]);
  } finally {
    await server.close();
  }
});

Deno.test("noAiDirective() reads X-Robots-Tag as img2dataset does, per user agent", () => {
  assert.equal(noAiDirective("noai"), "noai");
  assert.equal(noAiDirective("noindex, NoImageAI"), "noimageai");
  assert.equal(noAiDirective("none"), "none");
  assert.equal(noAiDirective("facefield: noai"), "noai");
  assert.equal(noAiDirective("otherbot: noai, none"), undefined, "another agent's rules");
  assert.equal(noAiDirective("otherbot: noindex, facefield: none"), "none");
  assert.equal(noAiDirective("unavailable_after: 25 Jun 2010 15:00:00 PST, noai"), "noai");
  assert.equal(noAiDirective("noindex, nofollow"), undefined);
  assert.equal(noAiDirective(null), undefined);
});

Deno.test("X-Robots-Tag noai, noimageai or none drops a page or an image with its reason", async () => {
  const server = startLoopback((_request, url) => {
    const tag = url.searchParams.get("tag");
    return tag
      ? new Response("bytes", { headers: { "x-robots-tag": tag, "content-type": "image/jpeg" } })
      : new Response("", { status: 404 });
  });
  try {
    const http = quick();
    for (const tag of ["noai", "noimageai", "none", "facefield: noai"]) {
      const result = await http.get(`${server.origin}/img?tag=${encodeURIComponent(tag)}`, {
        maxBytes: 1000,
      });
      assert.match(result.ok ? "ok" : result.reason, /^robots_tag: X-Robots-Tag \w+ forbids/, tag);
    }
    const fine = await http.get(`${server.origin}/img?tag=noindex`, { maxBytes: 1000 });
    assert.equal(fine.ok, true);
  } finally {
    await server.close();
  }
});

Deno.test("the User-Agent names facefield and the user's contact", async () => {
  const server = startLoopback(() => html("hi"));
  try {
    const agent = userAgentFor("lab@uni.example");
    assert.match(agent, /^facefield\/[\d.]+ \(.*contact: lab@uni\.example\)$/);
    await quick({ userAgent: agent }).get(`${server.origin}/`, { maxBytes: 1000 });
    assert.deepEqual(server.userAgents, [agent, agent], "robots.txt and the page");
    assert.match(userAgentFor(), /no contact given/);
  } finally {
    await server.close();
  }
});

/** A raw TCP server that counts connections and resets each one at once. */
function resettingServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  (async () => {
    for await (const connection of listener) {
      connections++;
      connection.close();
    }
  })().catch(() => {});
  return {
    origin: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => connections,
    close: () => listener.close(),
  };
}

Deno.test("a reset connection is tried at most 4 times in all, counted at the socket", async () => {
  const server = resettingServer();
  try {
    const http = quick();
    const result = await http.get(`${server.origin}/photo.jpg`, { maxBytes: 1000, robots: false });
    assert.match(result.ok ? "ok" : result.reason, /^network: /);
    assert.equal(server.connections(), 4, "one attempt and three retries, no hidden resends");
    assert.equal(http.stats.connections, 4);
  } finally {
    server.close();
  }
  let requests = 0;
  const busy = startLoopback(() => (requests++, new Response("busy", { status: 503 })));
  try {
    const result = await quick().get(`${busy.origin}/`, { maxBytes: 1000, robots: false });
    assert.equal(result.ok ? "ok" : result.reason, "http_503: Service Unavailable");
    assert.equal(requests, 4);
  } finally {
    await busy.close();
  }
});

Deno.test("HostGate backs off on 429 and 503, follows latency, and never drops below its floor", () => {
  const gate = new HostGate({ concurrency: 2, minDelayMs: 100, maxDelayMs: 5000 });
  assert.equal(gate.delayMs, 100);
  gate.observe(1000, 200);
  assert.equal(gate.delayMs, 300, "(100 + 1000 / 2) / 2: latency over the target concurrency");
  gate.observe(10, 429);
  assert.equal(gate.delayMs, 600, "doubled on 429");
  gate.observe(10, 503);
  assert.equal(gate.delayMs, 1200, "doubled on 503");
  gate.observe(10, 500);
  assert.equal(gate.delayMs, 1200, "an error never lowers the delay");
  for (let i = 0; i < 10; i++) gate.observe(10, 429);
  assert.equal(gate.delayMs, 5000, "capped");
  for (let i = 0; i < 30; i++) gate.observe(0, 200);
  assert.equal(gate.delayMs, 100, "fast answers bring it back to the floor, not below");
});

Deno.test("Retry-After on one URL holds the whole host back", async () => {
  const starts = new Map<string, number>();
  let first = true;
  const server = startLoopback((_request, url) => {
    starts.set(url.pathname + (starts.has(url.pathname) ? "+" : ""), performance.now());
    if (url.pathname === "/a" && first) {
      first = false;
      return new Response("slow down", { status: 429, headers: { "retry-after": "1" } });
    }
    return html("ok");
  });
  try {
    const http = quick({ perHostConcurrency: 1 });
    const a = http.get(`${server.origin}/a`, { maxBytes: 1000, robots: false });
    // /b is queued behind /a's first attempt; it must wait out the Retry-After too.
    const b = http.get(`${server.origin}/b`, { maxBytes: 1000, robots: false });
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.ok && rb.ok, true);
    const waited = starts.get("/b")! - starts.get("/a")!;
    assert.ok(waited >= 950, `/b started ${waited.toFixed(0)} ms after the 429, not after 1 s`);
  } finally {
    await server.close();
  }
});
