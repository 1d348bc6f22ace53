/**
 * `bench:crawl`: the crawl half of the pipeline (sources → pages → people → images) against a
 * loopback site of generated staff pages, timed end to end. Prints one JSON line.
 */
import { filter, lastValueFrom, map, of, tap } from "rxjs";
import sharp from "sharp";
import { type Command, intOption, log } from "../cli.ts";
import { machineLoad } from "./peer.ts";
import { HttpClient } from "../../net/http.ts";
import { sha256Hex } from "../../core/ids.ts";
import { HttpCacheStore } from "../../store/http_cache.ts";
import { join } from "node:path";
import { isOk } from "../../core/types.ts";
import { downloadImages } from "../../stages/download_images.ts";
import { fetchPages } from "../../stages/fetch_pages.ts";
import { parsePeople } from "../../stages/parse_people.ts";
import { readSources } from "../../stages/read_sources.ts";

const FIRST = [
  "Ada",
  "Bruno",
  "Carla",
  "Dario",
  "Edith",
  "Felix",
  "Gina",
  "Hugo",
  "Irma",
  "Jonas",
  "Karla",
  "Lukas",
  "Mona",
  "Nils",
  "Olga",
  "Paul",
  "Rita",
  "Sven",
  "Tina",
  "Uwe",
];
const LAST = [
  "Abel",
  "Brandt",
  "Conrad",
  "Dietz",
  "Eckert",
  "Frank",
  "Graf",
  "Hahn",
  "Imhof",
  "Jansen",
  "Keller",
  "Lorenz",
  "Mayer",
  "Nagel",
  "Ostermann",
];

/** An invented, unique name for person `n`, with a title on some as real pages have. */
export function benchName(n: number): string {
  const first = FIRST[n % FIRST.length]!;
  const last = LAST[Math.floor(n / FIRST.length) % LAST.length]!;
  const title = n % 5 === 0 ? "Prof. Dr. " : n % 3 === 0 ? "Dr. " : "";
  return `${title}${first} ${last}${n >= FIRST.length * LAST.length ? ` ${n}` : ""}`;
}

/** A distinct 225×275 JPEG per person: a colour of its own plus mild noise, like a photo's size. */
export async function benchPortrait(n: number): Promise<Uint8Array<ArrayBuffer>> {
  const tone = sharp({
    create: {
      width: 225,
      height: 275,
      channels: 3,
      background: "black",
      noise: { type: "gaussian", mean: 100 + (n % 50), sigma: 25 },
    },
  });
  const buffer = await tone.tint({ r: (n * 37) % 256, g: (n * 91) % 256, b: (n * 53) % 256 })
    .jpeg({ quality: 80 })
    .toBuffer();
  return Uint8Array.from(buffer);
}

/** Distinct base portraits a lazy site makes; each image is one of them with its own comment. */
const LAZY_BASES = 64;

/**
 * `base` (a JPEG) with a comment segment naming `n` after its start marker: the same picture,
 * distinct bytes (so a distinct sha256), for the cost of a copy instead of an encode. A site of
 * 100,000 portraits encoded each on request spent more CPU than the crawl it served.
 */
export function numberedJpeg(base: Uint8Array, n: number): Uint8Array<ArrayBuffer> {
  const text = new TextEncoder().encode(`facefield bench portrait ${n}`);
  const segment = 2 + text.length;
  const out = new Uint8Array(base.length + 2 + segment);
  out.set(base.subarray(0, 2)); // SOI
  out.set([0xff, 0xfe, segment >> 8, segment & 0xff], 2);
  out.set(text, 6);
  out.set(base.subarray(2), 6 + text.length);
  return out;
}

export interface BenchSite {
  origin: string;
  sourcesCsv: string;
  close(): Promise<void>;
}

export interface BenchSiteOptions {
  /**
   * Make each image when it is first asked for (its ETag from its number), not all up front:
   * for sites too large to hold in memory (bench:scale's 100,000 portraits).
   * @default false
   */
  lazyImages?: boolean;
}

/** A loopback site of `sources` departments, each `pages` pages of `perPage` people. */
export async function startBenchSite(
  sources: number,
  pages: number,
  perPage: number,
  options: BenchSiteOptions = {},
): Promise<BenchSite> {
  const total = sources * pages * perPage;
  const images: Uint8Array<ArrayBuffer>[] = [];
  for (let start = 0; start < total && !options.lazyImages; start += 16) {
    const batch = Array.from({ length: Math.min(16, total - start) }, (_, i) => start + i);
    images.push(...await Promise.all(batch.map(benchPortrait)));
  }
  const page = (source: number, index: number) => {
    const first = (source * pages + index) * perPage;
    const people = Array.from({ length: perPage }, (_, i) => first + i).map((n) =>
      `<div class="person"><img src="/img/${n}.jpg" alt="${
        benchName(n)
      }" width="225" height="275"><h3>${benchName(n)}</h3><p>Research Associate</p></div>`
    ).join("\n");
    const next = index + 1 < pages
      ? `<a rel="next" href="/dept-${source}/page-${index + 2}.html">Next</a>`
      : "";
    return `<!doctype html><html><head><meta charset="utf-8"><title>Department ${source}</title></head><body><h1>Department ${source}: People</h1><div class="staff">${people}</div>${next}</body></html>`;
  };
  // Pages and images carry an ETag (their sha256) and answer If-None-Match with a 304, as
  // most servers and CDNs do for static files.
  const respond = (request: Request, body: string | Uint8Array<ArrayBuffer>, type: string) => {
    const etag = `"${sha256Hex(body).slice(0, 16)}"`;
    if (request.headers.get("if-none-match") === etag) {
      return new Response(null, { status: 304, headers: { etag } });
    }
    return new Response(body, { headers: { "content-type": type, etag } });
  };
  const bases = new Map<number, Promise<Uint8Array<ArrayBuffer>>>();
  const lazyImage = async (request: Request, n: number) => {
    const etag = `"img-${n}"`;
    if (request.headers.get("if-none-match") === etag) {
      return new Response(null, { status: 304, headers: { etag } });
    }
    const key = n % LAZY_BASES;
    if (!bases.has(key)) bases.set(key, benchPortrait(key));
    return new Response(numberedJpeg(await bases.get(key)!, n), {
      headers: { "content-type": "image/jpeg", etag },
    });
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const { pathname } = new URL(request.url);
    const pageMatch = /^\/dept-(\d+)\/page-(\d+)\.html$/.exec(pathname);
    if (pageMatch) {
      const source = Number(pageMatch[1]), index = Number(pageMatch[2]) - 1;
      if (source < sources && index >= 0 && index < pages) {
        return respond(request, page(source, index), "text/html; charset=utf-8");
      }
    }
    const n = Number(/^\/img\/(\d+)\.jpg$/.exec(pathname)?.[1] ?? NaN);
    if (options.lazyImages && n >= 0 && n < total) return lazyImage(request, n);
    const image = images[n];
    if (image) return respond(request, image, "image/jpeg");
    return new Response("not found", { status: 404 });
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const rows = Array.from(
    { length: sources },
    (_, s) => `${origin}/dept-${s}/page-1.html,department-${s}`,
  );
  return {
    origin,
    sourcesCsv: ["url,category", ...rows].join("\n") + "\n",
    close: () => server.shutdown(),
  };
}

interface CrawlSettings {
  pages: number;
  concurrency: number;
  perHost: number;
  delayMs: number;
  revalidate: boolean;
}

/** One crawl (sources → pages → people → images) with its own client; what it counted. */
async function crawlOnce(
  sourcesCsv: string,
  cacheDir: string,
  cache: HttpCacheStore,
  settings: CrawlSettings,
) {
  const { pages, concurrency, perHost, delayMs, revalidate } = settings;
  const http = new HttpClient({ perHostConcurrency: perHost, politenessDelayMs: delayMs, cache });
  let pageCount = 0, failedPages = 0, people = 0, images = 0, droppedImages = 0;
  const start = performance.now();
  await lastValueFrom(
    of(sourcesCsv).pipe(
      readSources(),
      filter(isOk),
      map((item) => item.record),
      fetchPages({ http, maxPages: pages, respectRobots: false }),
      tap((outcome) => outcome.status === "ok" ? pageCount++ : failedPages++),
      filter(isOk),
      map((outcome) => outcome.record),
      parsePeople(),
      tap(() => people++),
      downloadImages({ cacheDir: join(cacheDir, "images"), http, concurrency, revalidate }),
      tap((outcome) => outcome.status === "ok" ? images++ : droppedImages++),
    ),
    { defaultValue: undefined },
  );
  return {
    pages: pageCount,
    failedPages,
    people,
    images,
    droppedImages,
    wall: (performance.now() - start) / 1000,
    bytes: http.stats.bytesReceived,
    requests: http.stats.requests,
    notModified: http.stats.notModified,
  };
}

export const benchCrawlCommand: Command = {
  name: "bench:crawl",
  summary: "time the crawl (sources → pages → people → images) against a loopback site",
  usage: `
usage: deno task bench:crawl [--sources 6] [--pages 5] [--per-page 10] [--concurrency 8]
                             [--per-host 4] [--delay-ms 0]

Serves generated staff pages (225×275 JPEG portraits) on 127.0.0.1, crawls them into a
temporary cache with the real stages, then crawls it again as a --refresh run does (conditional
GETs against the cache) and prints one JSON line: pages, people, images, pages_per_s,
images_per_s, wall_s, and bytes_first, bytes_refresh and refresh_bytes_pct, the bytes received
(headers and bodies, at the socket) by the refresh against the first crawl. Image generation
happens before the clock starts.

  --sources      departments (sources CSV rows)               default 6
  --pages        pages per department, linked by rel="next"   default 5
  --per-page     people per page                              default 10
  --concurrency  image downloads in flight                    default 8
  --per-host     requests in flight per host                  default 4
  --delay-ms     politeness delay per host, ms                default 0 (loopback)`,
  options: {
    sources: { type: "string" },
    pages: { type: "string" },
    "per-page": { type: "string" },
    concurrency: { type: "string" },
    "per-host": { type: "string" },
    "delay-ms": { type: "string" },
  },
  async run(values) {
    const sources = intOption(values, "sources", 6, { min: 1, max: 100 });
    const pages = intOption(values, "pages", 5, { min: 1, max: 20 });
    const perPage = intOption(values, "per-page", 10, { min: 1, max: 100 });
    const concurrency = intOption(values, "concurrency", 8, { min: 1, max: 256 });
    const perHost = intOption(values, "per-host", 4, { min: 1, max: 256 });
    const delayMs = intOption(values, "delay-ms", 0, { min: 0, max: 10_000 });
    log(`bench:crawl: generating ${sources * pages * perPage} portraits…`);
    const site = await startBenchSite(sources, pages, perPage);
    const cacheDir = await Deno.makeTempDir({ prefix: "facefield-bench-crawl-" });
    try {
      const cache = await HttpCacheStore.open({
        httpCache: join(cacheDir, "http.csv"),
        imageCache: join(cacheDir, "images"),
        pageCache: join(cacheDir, "pages"),
      });
      // The first crawl fills the cache; the refresh is a second run over the unchanged site
      // (a new client, as a new run has), revalidating every page and image.
      const first = await crawlOnce(site.sourcesCsv, cacheDir, cache, {
        pages,
        concurrency,
        perHost,
        delayMs,
        revalidate: false,
      });
      cache.flushSync();
      const refresh = await crawlOnce(site.sourcesCsv, cacheDir, cache, {
        pages,
        concurrency,
        perHost,
        delayMs,
        revalidate: true,
      });
      const round = (value: number) => Math.round(value * 100) / 100;
      console.log(JSON.stringify({
        bench: "crawl",
        ...machineLoad(),
        pages: first.pages,
        failed_pages: first.failedPages,
        people: first.people,
        images: first.images,
        dropped_images: first.droppedImages,
        wall_s: round(first.wall),
        pages_per_s: round(first.pages / first.wall),
        images_per_s: round(first.images / first.wall),
        bytes_first: first.bytes,
        requests_first: first.requests,
        refresh_wall_s: round(refresh.wall),
        refresh_not_modified: refresh.notModified,
        bytes_refresh: refresh.bytes,
        requests_refresh: refresh.requests,
        refresh_bytes_pct: round(100 * refresh.bytes / first.bytes),
        settings: {
          sources,
          pages,
          per_page: perPage,
          concurrency,
          per_host: perHost,
          delay_ms: delayMs,
        },
      }));
      const clean = first.failedPages + first.droppedImages + refresh.failedPages +
        refresh.droppedImages;
      return clean === 0 ? 0 : 1;
    } finally {
      await site.close();
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
};
