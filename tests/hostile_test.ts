/**
 * The hostile-server suite: a public-looking site (www.uni.test, 203.0.113.10, served on
 * loopback through a stub resolver and dialer) that misbehaves in every way we know of. Each
 * kind must end in its own specific reason, no record may be lost on the way to the manifest,
 * and no connection may go anywhere but 127.0.0.1 (the dialer refuses anything it was not told
 * to route there, and the suite checks every address it was asked for).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import zlib from "node:zlib";
import { from, lastValueFrom, of, toArray } from "rxjs";
import sharp from "sharp";
import { HttpClient } from "../net/http.ts";
import { downloadImages } from "../stages/download_images.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import { parsePeople } from "../stages/parse_people.ts";
import { readSources } from "../stages/read_sources.ts";
import { Manifest } from "../store/manifest.ts";
import { DataDirLock } from "../store/lock.ts";
import { type ImageRecord, ok, type Outcome, type PersonRecord } from "../core/types.ts";
import { delay, startLoopback } from "./testdata/crawl/loopback.ts";
import { stubNet } from "./testdata/crawl/stub_net.ts";

const SITE = "http://www.uni.test";
const PUBLIC = "203.0.113.10";
const OTHER = "http://other.test"; // a second public origin, whose robots.txt forbids all
const OTHER_IP = "203.0.113.20";
const RAW = "http://raw.uni.test"; // a raw TCP server that breaks HTTP on purpose
const RAW_IP = "203.0.113.30";

/** A table for CRC-32, for the hand-made PNG header of the decompression bomb. */
function crc32(bytes: Uint8Array): number {
  let crc = -1;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  return (crc ^ -1) >>> 0;
}

/** A PNG of a few hundred bytes that claims 100000 × 100000 pixels (10 gigapixels): a decompression bomb. */
function pngBomb(): Uint8Array<ArrayBuffer> {
  const ihdr = new Uint8Array(17);
  const view = new DataView(ihdr.buffer);
  ihdr.set([0x49, 0x48, 0x44, 0x52]); // "IHDR"
  view.setUint32(4, 100_000);
  view.setUint32(8, 100_000);
  ihdr.set([8, 2, 0, 0, 0], 12); // 8-bit RGB
  const chunk = new Uint8Array(4 + 17 + 4);
  new DataView(chunk.buffer).setUint32(0, 13);
  chunk.set(ihdr, 4);
  new DataView(chunk.buffer).setUint32(21, crc32(ihdr));
  // Rows of zeros compress to almost nothing: the bytes are tiny, the pixels are not.
  const data = new Uint8Array(zlib.deflateSync(new Uint8Array(1 << 16)));
  const idat = new Uint8Array(4 + 4 + data.length + 4);
  const idatView = new DataView(idat.buffer);
  idatView.setUint32(0, data.length);
  idat.set([0x49, 0x44, 0x41, 0x54], 4); // "IDAT"
  idat.set(data, 8);
  idatView.setUint32(8 + data.length, crc32(idat.subarray(4, 8 + data.length)));
  const iend = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
  return new Uint8Array([
    ...[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    ...chunk,
    ...idat,
    ...iend,
  ]);
}

async function fixtures() {
  const photo = new Uint8Array(
    await sharp({
      create: {
        width: 96,
        height: 120,
        channels: 3,
        background: "#888",
        noise: { type: "gaussian", mean: 120, sigma: 30 },
      },
    }).jpeg().toBuffer(),
  );
  const frame = (colour: string) =>
    sharp({ create: { width: 64, height: 64, channels: 3, background: colour } }).png().toBuffer();
  const animated = new Uint8Array(
    await sharp([await frame("#f00"), await frame("#00f")], { join: { animated: true } }).gif()
      .toBuffer(),
  );
  const spacer = new Uint8Array(
    await sharp({ create: { width: 1, height: 1, channels: 4, background: "#0000" } }).png()
      .toBuffer(),
  );
  const corrupt = photo.slice();
  for (let i = 200; i < corrupt.length - 2; i++) corrupt[i] = (i * 7919) & 0xff;
  const bmp = new Uint8Array(64);
  bmp.set([0x42, 0x4d]);
  return {
    photo,
    truncated: photo.slice(0, Math.floor(photo.length / 3)),
    corrupt,
    animated,
    spacer,
    bmp,
    svg: new TextEncoder().encode(
      '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"/>',
    ),
    // 16 MiB of zeros, about 16 KiB on the wire: over the 10 MiB cap once inflated.
    gzipBomb: new Uint8Array(zlib.gzipSync(new Uint8Array(16 * 1024 * 1024), { level: 9 })),
    hugePage: "<p>filler</p>".repeat(600_000),
  };
}

type Fixtures = Awaited<ReturnType<typeof fixtures>>;

const jpeg = { "content-type": "image/jpeg" };
const htmlType = { "content-type": "text/html; charset=utf-8" };

/** The hostile site's routes. */
function hostileHandler(f: Fixtures, counts: Map<string, number>) {
  return async (request: Request, url: URL): Promise<Response> => {
    const path = url.pathname;
    const seen = (counts.get(path) ?? 0) + 1;
    counts.set(path, seen);
    if (url.host === "other.test") {
      return path === "/robots.txt"
        ? new Response("User-agent: *\nDisallow: /\n")
        : new Response(f.photo, { headers: jpeg });
    }
    switch (path) {
      case "/robots.txt":
        return new Response("User-agent: facefield\nDisallow: /private/\n");
      case "/img/ok.jpg":
        return new Response(f.photo, { headers: jpeg });
      case "/img/truncated.jpg":
        return new Response(f.truncated, { headers: jpeg });
      case "/img/corrupt.jpg":
        return new Response(f.corrupt, { headers: jpeg });
      case "/img/empty.jpg":
        return new Response(new Uint8Array(0), { headers: jpeg });
      case "/img/html-as-jpeg.jpg":
        return new Response("<!doctype html><p>Sign in</p>", { headers: jpeg });
      case "/img/bomb.png":
        return new Response(pngBomb(), { headers: { "content-type": "image/png" } });
      case "/img/gzip-bomb.jpg":
        return new Response(f.gzipBomb, { headers: { ...jpeg, "content-encoding": "gzip" } });
      case "/img/corrupt-gzip.jpg":
        return new Response(f.photo, { headers: { ...jpeg, "content-encoding": "gzip" } });
      case "/img/zstd.jpg":
        return new Response(f.photo, { headers: { ...jpeg, "content-encoding": "zstd" } });
      case "/img/animated.gif":
        return new Response(f.animated, { headers: { "content-type": "image/gif" } });
      case "/img/drawing.svg":
        return new Response(f.svg, { headers: { "content-type": "image/svg+xml" } });
      case "/img/old.bmp":
        return new Response(f.bmp, { headers: { "content-type": "image/bmp" } });
      case "/img/spacer.png":
        return new Response(f.spacer, { headers: { "content-type": "image/png" } });
      case "/img/huge.jpg":
        return new Response(new Uint8Array(11 * 1024 * 1024), { headers: jpeg });
      case "/img/noimageai.jpg":
        return new Response(f.photo, { headers: { ...jpeg, "x-robots-tag": "noimageai" } });
      case "/img/stall.jpg":
        await delay(5000, request.signal);
        return new Response(f.photo, { headers: jpeg });
      case "/img/trickle.jpg": {
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            await delay(100, request.signal);
            controller.enqueue(new Uint8Array([0xff]));
          },
        });
        return new Response(body, { headers: jpeg });
      }
      case "/img/loop-a.jpg":
        return new Response(null, { status: 302, headers: { location: "/img/loop-b.jpg" } });
      case "/img/loop-b.jpg":
        return new Response(null, { status: 301, headers: { location: "/img/loop-a.jpg" } });
      case "/img/to-other.jpg":
        return new Response(null, { status: 302, headers: { location: `${OTHER}/a.jpg` } });
      case "/img/to-metadata.jpg":
        return new Response(null, {
          status: 307,
          headers: { location: "http://169.254.169.254/latest/meta-data/" },
        });
      case "/img/to-intranet.jpg":
        return new Response(null, { status: 302, headers: { location: "http://10.0.0.1/a.jpg" } });
      case "/img/to-ftp.jpg":
        return new Response(null, { status: 302, headers: { location: "ftp://www.uni.test/a" } });
      case "/img/no-location.jpg":
        return new Response(null, { status: 302 });
      case "/img/busy-then-ok.jpg":
        return seen <= 2
          ? new Response("busy", { status: 503, headers: { "retry-after": "0" } })
          : new Response(f.photo, { headers: jpeg });
      case "/img/always-503.jpg":
        return new Response("down", { status: 503, headers: { "retry-after": "0" } });
      case "/img/rate-limited.jpg":
        return new Response("slow down", { status: 429, headers: { "retry-after": "3600" } });
      case "/img/gone.jpg":
        return new Response("", { status: 410 });
      case "/private/a.jpg":
        return new Response(f.photo, { headers: jpeg });
      case "/pages/huge":
        return new Response(f.hugePage, { headers: htmlType });
      case "/pages/pdf":
        return new Response("%PDF-1.4", { headers: { "content-type": "application/pdf" } });
      case "/pages/noai":
        return new Response("<p>x</p>", { headers: { ...htmlType, "x-robots-tag": "noai" } });
      case "/pages/stall":
        await delay(5000, request.signal);
        return new Response("<p>late</p>", { headers: htmlType });
      case "/pages/malformed":
        return new Response(
          '<html><body><table><tr><td><div class="person"><img src="/img/ok.jpg" alt="Ada ' +
            'Lovelace"><h3>Ada Lovelace</td></tr><p><b><i>unclosed <div><<>>&&&#xZZ;</span>',
          { headers: htmlType },
        );
    }
    if (/^\/img\/chain-\d+\.jpg$/.test(path)) {
      const n = Number(/\d+/.exec(path)![0]);
      return new Response(null, { status: 302, headers: { location: `/img/chain-${n + 1}.jpg` } });
    }
    return new Response("not found", { status: 404 });
  };
}

/**
 * A raw TCP server: `/reset` closes after a partial body, `/garbage` answers no HTTP at all,
 * `/header-bomb` sends a 100 kB header.
 */
function rawServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  (async () => {
    for await (const connection of listener) {
      connections++;
      (async () => {
        const buffer = new Uint8Array(4096);
        const read = await connection.read(buffer).catch(() => null);
        const request = new TextDecoder().decode(buffer.subarray(0, read ?? 0));
        const reply = request.startsWith("GET /header-bomb")
          ? `HTTP/1.1 200 OK\r\nx-junk: ${"a".repeat(100_000)}\r\n\r\n`
          : request.startsWith("GET /robots.txt")
          ? "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
          : request.startsWith("GET /reset")
          ? "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ncontent-length: 5000\r\n\r\n\xff\xd8\xff"
          : "SSH-2.0-OpenSSH_9.6\r\n\0\0\0garbage";
        await connection.write(new TextEncoder().encode(reply)).catch(() => {});
        connection.close();
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => connections,
    close: () => listener.close(),
  };
}

interface Kind {
  kind: string;
  /** The image URL a person record points at (image kinds). */
  image?: string;
  expect: RegExp;
}

/** Image kinds: each person on the hostile page points at one of these. */
const IMAGE_KINDS: Kind[] = [
  { kind: "a good photo (control)", image: "/img/ok.jpg", expect: /^ok$/ },
  { kind: "truncated JPEG", image: "/img/truncated.jpg", expect: /^decode_failed: / },
  { kind: "corrupt JPEG", image: "/img/corrupt.jpg", expect: /^decode_failed: / },
  { kind: "zero bytes", image: "/img/empty.jpg", expect: /^not_an_image: / },
  { kind: "wrong content type", image: "/img/html-as-jpeg.jpg", expect: /^not_an_image: / },
  { kind: "decompression bomb", image: "/img/bomb.png", expect: /^too_many_pixels: / },
  { kind: "gzip bomb", image: "/img/gzip-bomb.jpg", expect: /^too_large: body over / },
  { kind: "corrupt gzip", image: "/img/corrupt-gzip.jpg", expect: /^bad_encoding: the gzip body/ },
  { kind: "unknown encoding", image: "/img/zstd.jpg", expect: /^unsupported_encoding: zstd$/ },
  { kind: "animated GIF", image: "/img/animated.gif", expect: /^animated: gif with 2 frames/ },
  { kind: "SVG", image: "/img/drawing.svg", expect: /^unsupported_format: svg/ },
  { kind: "BMP", image: "/img/old.bmp", expect: /^unsupported_format: bmp/ },
  { kind: "1×1 spacer", image: "/img/spacer.png", expect: /^too_small: 1x1/ },
  { kind: "oversized body", image: "/img/huge.jpg", expect: /^too_large: Content-Length / },
  { kind: "X-Robots-Tag noimageai", image: "/img/noimageai.jpg", expect: /^robots_tag: / },
  { kind: "stall", image: "/img/stall.jpg", expect: /^timeout: / },
  { kind: "trickle", image: "/img/trickle.jpg", expect: /^timeout: / },
  { kind: "reset mid-body", image: `${RAW}/reset`, expect: /^network: / },
  { kind: "not HTTP at all", image: `${RAW}/garbage`, expect: /^network: / },
  { kind: "100 kB header", image: `${RAW}/header-bomb`, expect: /^network: / },
  { kind: "redirect loop", image: "/img/loop-a.jpg", expect: /^redirect_loop: / },
  { kind: "long redirect chain", image: "/img/chain-0.jpg", expect: /^too_many_redirects: / },
  { kind: "redirect without Location", image: "/img/no-location.jpg", expect: /^bad_redirect: / },
  { kind: "redirect to ftp", image: "/img/to-ftp.jpg", expect: /^unsupported_scheme: ftp:/ },
  { kind: "503 with Retry-After, then ok", image: "/img/busy-then-ok.jpg", expect: /^ok$/ },
  { kind: "503 for ever", image: "/img/always-503.jpg", expect: /^http_503: / },
  {
    kind: "429 with a long Retry-After",
    image: "/img/rate-limited.jpg",
    expect: /^http_429: .*\(Retry-After 3600 s; next run\)$/,
  },
  { kind: "410 gone", image: "/img/gone.jpg", expect: /^http_410: / },
  { kind: "robots.txt disallows", image: "/private/a.jpg", expect: /^robots_disallowed: / },
  { kind: "robots on a redirect", image: "/img/to-other.jpg", expect: /^robots_disallowed: / },
  {
    kind: "SSRF: metadata address",
    image: "http://169.254.169.254/latest/meta-data/",
    expect: /^blocked_address: link-local 169\.254\.169\.254 from a public page$/,
  },
  {
    kind: "SSRF: decimal address",
    image: "http://2852039166/latest/",
    expect: /^blocked_address: link-local 169\.254\.169\.254 /,
  },
  {
    kind: "SSRF: octal and hex address",
    image: "http://0251.0xfe.0251.0376/",
    expect: /^blocked_address: link-local /,
  },
  {
    kind: "SSRF: IPv4-mapped IPv6",
    image: "http://[::ffff:169.254.169.254]/",
    expect: /^blocked_address: link-local ::ffff:a9fe:a9fe /,
  },
  {
    kind: "SSRF: private address",
    image: "http://10.0.0.1/a.jpg",
    expect: /^blocked_address: private /,
  },
  {
    kind: "SSRF: unique local IPv6",
    image: "http://[fd00::1]/",
    expect: /^blocked_address: private /,
  },
  {
    kind: "SSRF: loopback",
    image: "http://127.0.0.1:1/a.jpg",
    expect: /^blocked_address: loopback /,
  },
  { kind: "SSRF: 0.0.0.0", image: "http://0.0.0.0/a.jpg", expect: /^blocked_address: reserved / },
  {
    kind: "SSRF: a name for an intranet address",
    image: "http://evil.test/a.jpg",
    expect: /^blocked_address: private 10\.0\.0\.1 /,
  },
  {
    kind: "SSRF: redirect to metadata",
    image: "/img/to-metadata.jpg",
    expect: /^blocked_address: link-local /,
  },
  {
    kind: "SSRF: redirect to intranet",
    image: "/img/to-intranet.jpg",
    expect: /^blocked_address: private /,
  },
  {
    kind: "SSRF: DNS rebinding",
    image: "http://rebind.test/b.jpg",
    expect: /^blocked_address: private 10\.0\.0\.1 /,
  },
  { kind: "unresolvable host", image: "http://nowhere.test/a.jpg", expect: /^network: / },
  {
    kind: "credentials in the URL",
    image: "http://user:pw@www.uni.test/a.jpg",
    expect: /^bad_url: /,
  },
  { kind: "javascript: URL", image: "javascript:alert(1)", expect: /^unsupported_scheme: / },
  { kind: "not a URL", image: "http://[oops/", expect: /^bad_url: / },
];

Deno.test("hostile server: every kind ends in its own reason, no record lost, loopback only", async () => {
  const f = await fixtures();
  const counts = new Map<string, number>();
  const server = startLoopback(hostileHandler(f, counts));
  const raw = rawServer();
  const sitePort = Number(new URL(server.origin).port);
  let rebinds = 0;
  const net = stubNet(
    {
      "www.uni.test": [PUBLIC],
      "other.test": [OTHER_IP],
      "raw.uni.test": [RAW_IP],
      "evil.test": ["10.0.0.1"],
      // Public for the robots.txt check, private for the image itself.
      "rebind.test": () => rebinds++ === 0 ? [PUBLIC] : ["10.0.0.1"],
    },
    { [`${PUBLIC}:80`]: sitePort, [`${OTHER_IP}:80`]: sitePort, [`${RAW_IP}:80`]: raw.port },
  );
  const dir = await Deno.makeTempDir();
  try {
    const http = new HttpClient({
      politenessDelayMs: 0,
      timeoutMs: 400,
      maxRetries: 3,
      backoffBaseMs: 1,
      maxBackoffMs: 50,
      // The 429's hour-long Retry-After holds the host back this long (a real run: a minute).
      maxDelayMs: 100,
      resolve: net.resolve,
      dial: net.dial,
    });
    const people: PersonRecord[] = IMAGE_KINDS.map((kind, i) => ({
      id: i.toString(16).padStart(8, "0"),
      category: "hostile",
      imageUrl: kind.image!.startsWith("/") ? SITE + kind.image : kind.image!,
      // CSV-injection names ride along on every record and must come back exactly.
      name: ['=HYPERLINK("http://x","y")', "'=1+1", "+49 30 1234", "@SUM(A1)", "-Ada"][i % 5]! +
        ` ${i}`,
      pageUrl: `${SITE}/people`,
    }));
    const outcomes: Outcome<ImageRecord>[] = await lastValueFrom(
      from(people).pipe(
        downloadImages({ cacheDir: join(dir, "images"), http, concurrency: 16 }),
        toArray(),
      ),
    );

    // No record lost: one outcome per person, and all of them back from the manifest.
    assert.equal(outcomes.length, people.length);
    const manifest = await Manifest.open(join(dir, "index.csv"), { flushIntervalMs: 10 });
    for (const outcome of outcomes) manifest.record(outcome, "images");
    manifest.flushSync();
    const reopened = await Manifest.open(join(dir, "index.csv"));
    assert.equal(reopened.size, people.length);

    const failures: string[] = [];
    IMAGE_KINDS.forEach((kind, i) => {
      const row = reopened.get(people[i]!.id)!;
      const got = row.status === "ok" ? "ok" : row.reason;
      if (!kind.expect.test(got)) failures.push(`${kind.kind}: got '${got}'`);
      if (row.name !== people[i]!.name) failures.push(`${kind.kind}: name came back '${row.name}'`);
      if (row.status !== "ok" && row.reason.includes("uni.test/")) {
        failures.push(`${kind.kind}: the reason quotes the URL`);
      }
    });
    assert.deepEqual(failures, []);

    // Retried ones within 4 attempts; refused ones never asked for.
    assert.equal(counts.get("/img/busy-then-ok.jpg"), 3);
    assert.equal(counts.get("/img/always-503.jpg"), 4);
    assert.equal(counts.get("/img/rate-limited.jpg"), 1, "no retry inside a long Retry-After");
    assert.equal(counts.get("/private/a.jpg"), undefined);
    assert.equal(counts.get("/a.jpg"), undefined, "the disallowed redirect target was not asked");
    assert.equal(raw.connections(), 13, "robots.txt, then 4 attempts for each raw URL");

    // Loopback only: every dial was for a routed, public test address; nothing else was tried.
    const routed = new Set([`${PUBLIC}:80`, `${OTHER_IP}:80`, `${RAW_IP}:80`]);
    assert.deepEqual(net.attempts.filter((attempt) => !routed.has(attempt)), []);
  } finally {
    await server.close();
    raw.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostile server: pages that are huge, not HTML, tagged noai, stalled or malformed", async () => {
  const f = await fixtures();
  const server = startLoopback(hostileHandler(f, new Map()));
  const net = stubNet({ "www.uni.test": [PUBLIC] }, {
    [`${PUBLIC}:80`]: Number(new URL(server.origin).port),
  });
  try {
    const http = new HttpClient({
      politenessDelayMs: 0,
      timeoutMs: 400,
      maxRetries: 1,
      backoffBaseMs: 1,
      resolve: net.resolve,
      dial: net.dial,
    });
    const kinds: [string, RegExp][] = [
      ["/pages/huge", /^too_large: Content-Length 7800000 > 5242880 bytes$/],
      ["/pages/pdf", /^not_html: application\/pdf$/],
      ["/pages/noai", /^robots_tag: X-Robots-Tag noai/],
      ["/pages/stall", /^timeout: /],
      ["/private/staff", /^robots_disallowed: /],
      ["/pages/missing", /^http_404: /],
      ["/pages/malformed", /^ok$/],
    ];
    const sources = kinds.map(([path], i) => ({ line: i + 2, url: SITE + path, category: "c" }));
    const outcomes = await lastValueFrom(from(sources).pipe(fetchPages({ http }), toArray()));
    assert.equal(outcomes.length, kinds.length, "one outcome per source");
    for (const [path, expect] of kinds) {
      const outcome = outcomes.find((o) => o.record.source.url === SITE + path);
      assert.match(outcome?.status === "ok" ? "ok" : outcome?.reason ?? "missing", expect, path);
    }
    const malformed = outcomes.find((o) => o.status === "ok");
    assert.ok(malformed?.status === "ok");
    const found = await lastValueFrom(of(malformed.record).pipe(parsePeople(), toArray()));
    assert.deepEqual(found.map((person) => person.name), ["Ada Lovelace"]);
  } finally {
    await server.close();
  }
});

Deno.test("hostile sources rows each get a reason and the good rows go on", async () => {
  const csv = [
    "url,category",
    "http://www.uni.test/a,physics",
    ",physics",
    "http://www.uni.test/b,",
    "not a url,physics",
    "javascript:alert(1),physics",
    "ftp://www.uni.test/c,physics",
    "http://www.uni.test/d,physics,extra",
    '"http://www.uni.test/e,physics',
    "http://www.uni.test/f,=cmd|' /C calc'!A0",
  ].join("\n") + "\n";
  const items = await lastValueFrom(of(csv).pipe(readSources(), toArray()));
  const reasons = items.map((item) =>
    item.status === "ok" ? `ok ${item.record.category}` : item.reason.split(":")[0]
  );
  assert.deepEqual(reasons.slice(0, 7), [
    "ok physics",
    "missing_url",
    "missing_category",
    "bad_url",
    "bad_url",
    "bad_url",
    "column_count",
  ]);
  assert.ok(reasons.length >= 8, "the rows after a broken quote are not lost silently");
  assert.ok(reasons.slice(7).every((reason) => reason !== undefined));
});

Deno.test("CSV-injection and apostrophe names round-trip through the manifest", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const names = ["=1+1", "'=1+1", "''=x", "+1", "-1", "@x", "\tx", "\rx", "'t Hooft", "O'Brien"];
    const manifest = await Manifest.open(join(dir, "index.csv"));
    names.forEach((name, i) =>
      manifest.record(
        ok({
          id: `0000000${i}`,
          category: "=c",
          imageUrl: "http://x/a.jpg",
          name,
          pageUrl: "http://x/",
        }),
        "people",
      )
    );
    manifest.flushSync();
    const text = await Deno.readTextFile(join(dir, "index.csv"));
    for (const line of text.split("\n").slice(1).filter(Boolean)) {
      for (const cell of line.split(",")) {
        assert.ok(!/^"?[=+\-@\t\r]/.test(cell), `a cell a spreadsheet would run: ${cell}`);
      }
    }
    const back = await Manifest.open(join(dir, "index.csv"));
    assert.deepEqual(names.map((_, i) => back.get(`0000000${i}`)?.name), names);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a lock left by a zombie run does not refuse the rerun",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    const parent = new Deno.Command("sh", {
      args: ["-c", "sleep 0.05 & echo $!; exec sleep 3"],
      stdout: "piped",
    }).spawn();
    try {
      const reader = parent.stdout.getReader();
      const zombie = Number(new TextDecoder().decode((await reader.read()).value).trim());
      reader.releaseLock();
      for (let i = 0; i < 100; i++) {
        const stat = await Deno.readTextFile(`/proc/${zombie}/stat`);
        if (/\) Z /.test(stat)) break;
        await delay(20);
      }
      await Deno.writeTextFile(join(dir, ".lock"), String(zombie));
      (await DataDirLock.acquire(join(dir, ".lock"))).releaseSync();
    } finally {
      parent.kill();
      await parent.status;
      await parent.stdout.cancel().catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
