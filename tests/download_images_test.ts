import assert from "node:assert/strict";
import { from, lastValueFrom, toArray } from "rxjs";
import sharp from "sharp";
import { HttpClient } from "../net/http.ts";
import { sha256Hex } from "../core/ids.ts";
import { blobPath } from "../store/paths.ts";
import type { Dropped, ImageRecord, Outcome, PersonRecord } from "../core/types.ts";
import {
  downloadImages,
  type DownloadImagesOptions,
  sniffImageType,
} from "../stages/download_images.ts";
import { delay, type Loopback, startLoopback } from "./testdata/crawl/loopback.ts";

/** A fast client for loopback tests: no politeness delay, short backoff. */
function testClient(perHostConcurrency = 4): HttpClient {
  return new HttpClient({
    politenessDelayMs: 0,
    backoffBaseMs: 5,
    maxRetries: 1,
    perHostConcurrency,
  });
}

function person(imageUrl: string, n = 0): PersonRecord {
  return {
    id: `0000000${n}`.slice(-8),
    category: "cs",
    imageUrl,
    name: `Person ${n}`,
    pageUrl: "http://127.0.0.1/staff",
  };
}

type Bytes = Uint8Array<ArrayBuffer>;

async function photo(
  width: number,
  height: number,
  format: "jpeg" | "png" = "jpeg",
): Promise<Bytes> {
  const image = sharp({
    create: { width, height, channels: 3, background: { r: 200, g: 120, b: 80 } },
  });
  return Uint8Array.from(await (format === "png" ? image.png() : image.jpeg()).toBuffer());
}

async function run(
  server: Loopback,
  paths: string[],
  options: Partial<DownloadImagesOptions> & { cacheDir: string },
): Promise<Outcome<ImageRecord>[]> {
  const records = paths.map((path, n) => person(server.origin + path, n));
  const outcomes = await lastValueFrom(
    from(records).pipe(downloadImages({ http: testClient(), ...options }), toArray()),
  );
  // Outcomes may arrive out of order; tests read them in input order.
  return records.map((record) => outcomes.find((outcome) => outcome.record.id === record.id)!);
}

function reasonCode(outcome: Outcome<ImageRecord> | undefined): string {
  assert.ok(outcome);
  return outcome.status === "ok" ? "ok" : (outcome as Dropped).reason.split(":")[0]!;
}

/** A JPEG of random pixels: it does not compress, so its size is predictable. */
async function noise(width: number, height: number): Promise<Bytes> {
  const image = sharp({
    create: {
      width,
      height,
      channels: 3,
      background: "black",
      noise: { type: "gaussian", mean: 128, sigma: 60 },
    },
  });
  return Uint8Array.from(await image.jpeg().toBuffer());
}

/** A PNG whose header claims `width`×`height` while its data stays tiny. */
async function pngBomb(width: number, height: number): Promise<Bytes> {
  const png = await photo(8, 8, "png");
  const view = new DataView(png.buffer);
  // IHDR data starts at byte 16: width, height; its CRC covers the type and data (bytes 12–28).
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(png.subarray(12, 29)));
  return png;
}

function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

Deno.test("sniffImageType() reads magic bytes, not names", async () => {
  assert.deepEqual(sniffImageType(await photo(4, 4)), { kind: "sharp", format: "jpeg" });
  assert.deepEqual(sniffImageType(await photo(4, 4, "png")), { kind: "sharp", format: "png" });
  const webp = new Uint8Array(await sharp(await photo(4, 4)).webp().toBuffer());
  assert.deepEqual(sniffImageType(webp), { kind: "sharp", format: "webp" });
  assert.deepEqual(sniffImageType(new TextEncoder().encode("BM\0\0\0\0")), {
    kind: "unsupported",
    format: "bmp",
  });
  assert.deepEqual(
    sniffImageType(new TextEncoder().encode('<?xml version="1.0"?>\n<svg xmlns="x"/>')),
    { kind: "svg" },
  );
  assert.deepEqual(sniffImageType(new TextEncoder().encode("<!doctype html><p>")), {
    kind: "unknown",
  });
});

Deno.test("downloadImages() validates by content and reports each failure with its code", async () => {
  const jpeg = await photo(120, 160);
  const png = await photo(100, 100, "png");
  const files: Record<string, [Bytes | string, string]> = {
    "/png-as-html": [png, "text/html"],
    "/html-as-jpeg": ["<!doctype html><title>hi</title>", "image/jpeg"],
    "/truncated.jpg": [jpeg.slice(0, Math.floor(jpeg.length / 2)), "image/jpeg"],
    "/bomb.png": [await pngBomb(50000, 50000), "image/png"],
    "/icon.png": [await photo(16, 16, "png"), "image/png"],
    "/face.svg": [
      '<svg xmlns="http://www.w3.org/2000/svg" width="99" height="99"/>',
      "image/svg+xml",
    ],
    "/bitmap.bmp": ["BM" + "\0".repeat(60), "image/bmp"],
    "/big.jpg": [await noise(600, 600), "image/jpeg"],
  };
  const server = startLoopback((_request, url) => {
    const file = files[url.pathname];
    if (!file) return new Response("not here", { status: 404 });
    return new Response(file[0], { headers: { "content-type": file[1] } });
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const paths = [...Object.keys(files), "/missing.jpg"];
    const outcomes = await run(server, paths, { cacheDir, maxBytes: 100_000 });
    assert.deepEqual(outcomes.map(reasonCode), [
      "ok",
      "not_an_image",
      "decode_failed",
      "too_many_pixels",
      "too_small",
      "unsupported_format",
      "unsupported_format",
      "too_large",
      "http_404",
    ]);
    for (const outcome of outcomes) {
      if (outcome.status !== "ok") assert.equal(outcome.stage, "images");
    }
    const first = outcomes[0]!;
    assert.equal(first.status, "ok");
    if (first.status === "ok") {
      assert.equal(first.record.format, "png");
      assert.equal(first.record.width, 100);
      assert.equal(first.record.sha256, sha256Hex(png));
      assert.deepEqual(await Deno.readFile(first.record.imagePath), png);
      assert.equal(first.record.imagePath, blobPath(cacheDir, sha256Hex(png)));
    }
    // A real image over the pixel limit is refused before decoding, too.
    const strict = await run(server, ["/png-as-html"], { cacheDir, maxPixels: 5000 });
    assert.equal(reasonCode(strict[0]), "too_many_pixels");
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("downloadImages() records width and height after EXIF orientation", async () => {
  const rotated = Uint8Array.from(
    await sharp(await photo(300, 200)).withMetadata({ orientation: 6 }).jpeg().toBuffer(),
  );
  assert.equal((await sharp(rotated).metadata()).width, 300, "stored landscape");
  const server = startLoopback(() =>
    new Response(rotated, { headers: { "content-type": "image/jpeg" } })
  );
  const cacheDir = await Deno.makeTempDir();
  try {
    const [outcome] = await run(server, ["/rotated.jpg"], { cacheDir });
    assert.equal(outcome?.status, "ok");
    if (outcome?.status === "ok") {
      assert.deepEqual([outcome.record.format, outcome.record.width, outcome.record.height], [
        "jpeg",
        200,
        300,
      ]);
    }
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("downloadImages() stores an image once and skips known records with lookup", async () => {
  const jpeg = await photo(64, 80);
  const server = startLoopback(async (_request, url) => {
    await delay(30); // keeps the first request in flight while its twin arrives
    return url.pathname === "/404"
      ? new Response("", { status: 404 })
      : new Response(jpeg, { headers: { "content-type": "image/jpeg" } });
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const paths = ["/a.jpg", "/b.jpg", "/a.jpg", "/a.jpg"];
    const first = await run(server, paths, { cacheDir });
    assert.deepEqual(first.map(reasonCode), ["ok", "ok", "ok", "ok"]);
    assert.deepEqual(
      server.requests.filter((path) => path !== "/robots.txt").sort(),
      ["/a.jpg", "/b.jpg"],
      "one request per URL",
    );
    const shas = new Set(first.map((outcome) => outcome.status === "ok" && outcome.record.sha256));
    assert.equal(shas.size, 1);
    const cached = [];
    for await (const dir of Deno.readDir(cacheDir)) {
      for await (const file of Deno.readDir(`${cacheDir}/${dir.name}`)) cached.push(file.name);
    }
    assert.deepEqual(cached, [sha256Hex(jpeg)], "two URLs, one blob, no temp files left");

    const known = new Map(
      first.flatMap((outcome) =>
        outcome.status === "ok" ? [[outcome.record.id, outcome.record]] : []
      ),
    );
    const imageRequests = () => server.requests.filter((path) => path !== "/robots.txt").length;
    const requestsBefore = imageRequests();
    const second = await run(server, paths, { cacheDir, lookup: (record) => known.get(record.id) });
    assert.deepEqual(second.map(reasonCode), ["ok", "ok", "ok", "ok"]);
    assert.equal(imageRequests(), requestsBefore, "no image request on the second run");

    // A known record whose bytes left the cache is downloaded again.
    await Deno.remove(blobPath(cacheDir, sha256Hex(jpeg)));
    const third = await run(server, ["/a.jpg"], {
      cacheDir,
      lookup: (record) => known.get(record.id),
    });
    assert.deepEqual(third.map(reasonCode), ["ok"]);
    assert.equal(imageRequests(), requestsBefore + 1);
    assert.ok(await Deno.stat(blobPath(cacheDir, sha256Hex(jpeg))));
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("downloadImages() never exceeds the per-host limit", async () => {
  const jpeg = await photo(40, 40);
  const server = startLoopback(async () => {
    await delay(20);
    return new Response(jpeg, { headers: { "content-type": "image/jpeg" } });
  });
  const cacheDir = await Deno.makeTempDir();
  try {
    const records = Array.from({ length: 12 }, (_, n) => person(`${server.origin}/${n}.jpg`, n));
    const outcomes = await lastValueFrom(
      from(records).pipe(
        downloadImages({ cacheDir, concurrency: 8, http: testClient(3) }),
        toArray(),
      ),
    );
    assert.equal(outcomes.filter((outcome) => outcome.status === "ok").length, 12);
    assert.equal(server.peakConcurrency(), 3, "parallel, but never more than 3 at once");
    assert.ok(server.userAgents.every((agent) => agent.startsWith("facefield/")));
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("downloadImages() rejects bad options early", () => {
  assert.throws(() => downloadImages({ cacheDir: "" }), TypeError);
  assert.throws(() => downloadImages({ cacheDir: "/tmp/x", concurrency: 0 }), {
    name: "RangeError",
    message: /concurrency/,
  });
});
