/**
 * Loopback people sites for the cluster tests and benchmark: several hosts (one port each),
 * every request held for a latency, and the peak of requests in flight counted per host.
 */
import sharp from "sharp";
import { delay, type Loopback, startLoopback } from "../crawl/loopback.ts";

const FIRST = [
  "Ada",
  "Alan",
  "Grace",
  "Edsger",
  "Barbara",
  "Donald",
  "Frances",
  "John",
  "Karen",
  "Niklaus",
];
const LAST = [
  "Lovelace",
  "Turing",
  "Hopper",
  "Dijkstra",
  "Liskov",
  "Knuth",
  "Allen",
  "Backus",
  "Jones",
  "Wirth",
];

/** A distinct, person-like name for index `i` (no digits: the extractor wants names). */
export function personName(host: number, i: number): string {
  const middle = String.fromCharCode(65 + host) +
    String.fromCharCode(65 + Math.floor(i / 100) % 26);
  return `${FIRST[i % 10]} ${middle}. ${LAST[Math.floor(i / 10) % 10]}`;
}

export interface PeopleSite {
  hosts: Loopback[];
  /** A sources CSV (header included): one page per host, category `dept-<host>`. */
  sourcesCsv: string;
  people: number;
  /** Requests for images, by path with the host's port: each should come once. */
  imageRequests(): Map<string, number>;
  /** When each request to a host arrived (performance.now() ms), by host index. */
  arrivals: number[][];
  /** The path of each of those requests, in the same order. */
  paths: string[][];
  /** When the one 429 was sent (with `slowDownOnce`), by host index. */
  slowDowns: number[];
  close(): Promise<void>;
}

/** Serves `hosts` staff pages of `peoplePerHost` people with solid-colour portraits. */
export function startPeopleSite(
  { hosts = 3, peoplePerHost = 20, latencyMs = 50, pagesPerHost = 1, slowDownOnce = false } = {},
): PeopleSite {
  const servers: Loopback[] = [];
  const counts = new Map<string, number>();
  const arrivals: number[][] = [];
  const paths: string[][] = [];
  const slowDowns: number[] = [];
  for (let host = 0; host < hosts; host++) {
    const images = new Map<number, Uint8Array<ArrayBuffer>>();
    const imageFor = async (i: number) => {
      let image = images.get(i);
      if (!image) {
        const background = {
          r: (i * 37 + host * 91) % 256,
          g: (i * 11) % 256,
          b: (host * 53 + i) % 256,
        };
        image = new Uint8Array(
          await sharp({ create: { width: 48 + (i % 7), height: 64, channels: 3, background } })
            .png().toBuffer(),
        );
        images.set(i, image);
      }
      return image;
    };
    const perPage = Math.ceil(peoplePerHost / pagesPerHost);
    const times: number[] = [];
    const hostPaths: string[] = [];
    arrivals.push(times);
    paths.push(hostPaths);
    const server = startLoopback(async (_request, url) => {
      times.push(performance.now());
      hostPaths.push(url.pathname);
      await delay(latencyMs);
      const image = /^\/img\/(\d+)\.png$/.exec(url.pathname);
      if (image && slowDownOnce && slowDowns[host] === undefined) {
        slowDowns[host] = performance.now();
        return new Response("slow down", { status: 429, headers: { "retry-after": "2" } });
      }
      if (image) {
        const key = `${url.port}${url.pathname}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        return new Response(await imageFor(Number(image[1])), {
          headers: { "content-type": "image/png" },
        });
      }
      const page = /^\/people(?:\/(\d+))?$/.exec(url.pathname);
      if (!page) return new Response("not found", { status: 404 });
      const index = Number(page[1] ?? 0);
      const cards: string[] = [];
      for (let i = index * perPage; i < Math.min(peoplePerHost, (index + 1) * perPage); i++) {
        cards.push(
          `<div class="person"><img src="/img/${i}.png" width="120" height="160" alt=""><h3>${
            personName(host, i)
          }</h3><p>Professor</p></div>`,
        );
      }
      const next = index + 1 < pagesPerHost
        ? `<a rel="next" href="/people/${index + 1}">Next</a>`
        : "";
      return new Response(
        `<!doctype html><html><head><title>People</title></head><body><main>${
          cards.join("")
        }</main>${next}</body></html>`,
        { headers: { "content-type": "text/html; charset=utf-8" } },
      );
    });
    servers.push(server);
  }
  return {
    hosts: servers,
    sourcesCsv: "url,category\n" +
      servers.map((server, host) => `${server.origin}/people,dept-${host}\n`).join(""),
    people: hosts * peoplePerHost,
    imageRequests: () => counts,
    arrivals,
    paths,
    slowDowns,
    close: async () => {
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}

/** Serves `target` with every request held `latencyMs` first, counting its peak in flight. */
export function startLatencyProxy(target: string, latencyMs: number): Loopback {
  return startLoopback(async (_request, url) => {
    await delay(latencyMs);
    const response = await fetch(new URL(url.pathname + url.search, target));
    return new Response(await response.arrayBuffer(), {
      status: response.status,
      headers: response.headers,
    });
  });
}
