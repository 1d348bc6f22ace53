import assert from "node:assert/strict";
import { join } from "node:path";
import { from, lastValueFrom, toArray } from "rxjs";
import sharp from "sharp";
import { HttpClient } from "../net/http.ts";
import { HttpCacheStore } from "../store/http_cache.ts";
import { blobPath, dataPaths } from "../store/paths.ts";
import { forget } from "../store/forget.ts";
import { Manifest } from "../store/manifest.ts";
import { sha256Hex } from "../core/ids.ts";
import { downloadImages } from "../stages/download_images.ts";
import { type ImageRecord, ok, type Outcome, type PersonRecord } from "../core/types.ts";
import { startLoopback } from "./testdata/crawl/loopback.ts";

async function cacheIn(dir: string) {
  return await HttpCacheStore.open({
    httpCache: join(dir, "http.csv"),
    imageCache: join(dir, "images"),
    pageCache: join(dir, "pages"),
  }, { flushIntervalMs: 0 });
}

/** A server whose resources carry validators and answer conditional GETs as real ones do. */
function validatingServer(
  resources: Map<string, { body: Uint8Array<ArrayBuffer>; type: string; tag: string }>,
) {
  const conditional: string[] = [];
  const server = startLoopback((request, url) => {
    const resource = resources.get(url.pathname);
    if (!resource) return new Response("", { status: 404 });
    const etag = `"${resource.tag}"`;
    const lastModified = new Date(Date.UTC(2024, 0, 1)).toUTCString();
    const ifNoneMatch = request.headers.get("if-none-match");
    const ifModifiedSince = request.headers.get("if-modified-since");
    if (ifNoneMatch !== null || ifModifiedSince !== null) conditional.push(url.pathname);
    const fresh = ifNoneMatch !== null
      ? ifNoneMatch === etag
      : ifModifiedSince !== null && url.pathname.startsWith("/lm/");
    const headers = url.pathname.startsWith("/lm/")
      ? { "last-modified": lastModified }
      : { etag } as Record<string, string>;
    if (fresh) return new Response(null, { status: 304, headers });
    return new Response(resource.body, { headers: { ...headers, "content-type": resource.type } });
  });
  return { server, conditional };
}

Deno.test("a conditional GET reuses the stored body on 304 and takes a changed one", async () => {
  const dir = await Deno.makeTempDir();
  const page = new TextEncoder().encode("<p>people</p>".repeat(500));
  const resources = new Map([
    ["/people", { body: page, type: "text/html", tag: "v1" }],
    ["/lm/people", { body: page, type: "text/html", tag: "-" }],
  ]);
  const { server, conditional } = validatingServer(resources);
  try {
    const cache = await cacheIn(dir);
    const http = new HttpClient({ politenessDelayMs: 0, cache });
    const get = (path: string) => http.get(server.origin + path, { maxBytes: 1e6, robots: false });
    const first = await get("/people");
    assert.equal(first.ok && first.notModified, false);
    const bytesFirst = http.stats.bytesReceived;
    const again = await get("/people");
    assert.ok(again.ok && again.notModified, "304 reused");
    assert.deepEqual(again.ok && again.body, page);
    assert.ok(http.stats.bytesReceived - bytesFirst < 400, "a 304 moves headers only");
    const byDate = [await get("/lm/people"), await get("/lm/people")];
    assert.deepEqual(byDate.map((r) => r.ok && r.notModified), [false, true], "Last-Modified");
    assert.deepEqual(conditional, ["/people", "/lm/people"]);

    // The page changed: the new body comes, and is what the next 304 reuses.
    const changed = new TextEncoder().encode("<p>new people</p>");
    resources.set("/people", { body: changed, type: "text/html", tag: "v2" });
    const fresh = await get("/people");
    assert.deepEqual(fresh.ok && [fresh.notModified, fresh.body], [false, changed]);

    // A second run reads the validators back from disk.
    cache.flushSync();
    const reopenedCache = await cacheIn(dir);
    const reopened = new HttpClient({ politenessDelayMs: 0, cache: reopenedCache });
    const later = await reopened.get(server.origin + "/people", { maxBytes: 1e6, robots: false });
    assert.deepEqual(later.ok && [later.notModified, later.body], [true, changed]);

    // A stored body that went missing is fetched in full, not lost.
    await Deno.remove(blobPath(join(dir, "pages"), sha256Hex(changed)));
    const lost = await reopened.get(server.origin + "/people", { maxBytes: 1e6, robots: false });
    assert.deepEqual(lost.ok && [lost.notModified, lost.body], [false, changed]);
    // Both stores flush now, so no timer writes into the folder while it is removed.
    cache.flushSync();
    reopenedCache.flushSync();
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("downloadImages({ revalidate }) asks again with validators and keeps the same bytes on 304", async () => {
  const dir = await Deno.makeTempDir();
  const jpeg = new Uint8Array(
    await sharp({ create: { width: 64, height: 80, channels: 3, background: "#a66" } }).jpeg()
      .toBuffer(),
  );
  const resources = new Map([["/a.jpg", { body: jpeg, type: "image/jpeg", tag: "a1" }]]);
  const { server, conditional } = validatingServer(resources);
  try {
    const cache = await cacheIn(dir);
    const person: PersonRecord = {
      id: "00000001",
      category: "cs",
      imageUrl: `${server.origin}/a.jpg`,
      name: "Ada Lovelace",
      pageUrl: `${server.origin}/people`,
    };
    const run = async (revalidate: boolean) => {
      const http = new HttpClient({ politenessDelayMs: 0, cache });
      const outcomes: Outcome<ImageRecord>[] = await lastValueFrom(
        from([person]).pipe(
          downloadImages({ cacheDir: join(dir, "images"), http, revalidate }),
          toArray(),
        ),
      );
      return { outcome: outcomes[0]!, http };
    };
    const first = await run(false);
    assert.equal(first.outcome.status, "ok");
    const second = await run(true);
    assert.equal(second.outcome.status, "ok");
    assert.equal(second.http.stats.notModified, 1);
    assert.deepEqual(conditional, ["/a.jpg"]);
    assert.equal(
      second.outcome.status === "ok" && second.outcome.record.sha256,
      sha256Hex(jpeg),
    );
    const blobs = [...Deno.readDirSync(join(dir, "images"))];
    assert.equal(blobs.length, 1, "the image cache holds the image once");
    cache.flushSync();
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("forget removes the cached page bodies that held the person's name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const paths = dataPaths(dir);
    const cache = await HttpCacheStore.open(paths, { flushIntervalMs: 0 });
    await cache.put("http://uni.example/people", {
      etag: '"1"',
      contentType: "text/html",
      body: new TextEncoder().encode("<p>Ada Lovelace</p>"),
    });
    cache.flushSync();
    const manifest = await Manifest.open(paths.manifest);
    manifest.record(
      ok({
        id: "00000001",
        category: "cs",
        imageUrl: "http://uni.example/a.jpg",
        name: "Ada Lovelace",
        pageUrl: "http://uni.example/people",
      }),
      "people",
    );
    manifest.flushSync();
    await forget({ dataDir: dir, names: ["Ada Lovelace"] });
    assert.equal(await Deno.stat(paths.pageCache).catch(() => undefined), undefined);
    assert.equal((await HttpCacheStore.open(paths)).size, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
