import assert from "node:assert/strict";
import { join } from "node:path";
import { of } from "rxjs";
import sharp from "sharp";
import { runPipeline } from "../pipeline/run.ts";
import { sha256Hex } from "../core/ids.ts";
import { HttpCacheStore } from "../store/http_cache.ts";
import { dataPaths } from "../store/paths.ts";
import { startLoopback } from "./testdata/crawl/loopback.ts";

Deno.test("a --refresh run revalidates pages and images by conditional GET and names the contact", async () => {
  const portraits = await Promise.all([0, 1, 2].map(async (n) =>
    new Uint8Array(
      await sharp({
        create: { width: 90, height: 110, channels: 3, background: { r: 40 * n, g: 90, b: 160 } },
      }).jpeg().toBuffer(),
    )
  ));
  const names = ["Ada Lovelace", "Alan Turing", "Grace Hopper"];
  const page = `<!doctype html><html><body><h1>People</h1>${
    names.map((name, n) =>
      `<div class="person"><img src="/img/${n}.jpg" alt="${name}" width="90" height="110"><h3>${name}</h3></div>`
    ).join("")
  }</body></html>`;
  const conditional: string[] = [];
  const server = startLoopback((request, url) => {
    const body = url.pathname === "/people"
      ? new TextEncoder().encode(page)
      : portraits[Number(/^\/img\/(\d)\.jpg$/.exec(url.pathname)?.[1] ?? NaN)];
    if (!body) return new Response("", { status: 404 });
    const etag = `"${sha256Hex(body).slice(0, 12)}"`;
    if (request.headers.get("if-none-match") === etag) {
      conditional.push(url.pathname);
      return new Response(null, { status: 304, headers: { etag } });
    }
    const type = url.pathname === "/people" ? "text/html" : "image/jpeg";
    return new Response(body.slice(), { headers: { etag, "content-type": type } });
  });
  const dataDir = await Deno.makeTempDir();
  try {
    const csv = `url,category\n${server.origin}/people,cs\n`;
    const options = {
      dataDir,
      until: "images" as const,
      delayMs: 0,
      contact: "crawl-admin@uni.example",
    };
    const first = await runPipeline(options, of(csv));
    assert.ok(first);
    assert.deepEqual(conditional, []);
    const cache = await HttpCacheStore.open(dataPaths(dataDir));
    assert.equal(cache.size, 1 + names.length, "page + images");
    cache.close();

    await runPipeline({ ...options, refresh: true }, of(csv));
    assert.deepEqual(conditional.sort(), ["/img/0.jpg", "/img/1.jpg", "/img/2.jpg", "/people"]);
    assert.ok(server.userAgents.every((agent) => agent.includes("crawl-admin@uni.example")));
    const manifest = await Deno.readTextFile(join(dataDir, "index.csv"));
    assert.equal(manifest.split("\n").filter((line) => line.includes(",ok,")).length, 3);
  } finally {
    await server.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
