/**
 * Discovery as a run: home pages (arguments, or a file of them) → `discoverSites` → a sources
 * file, streamed site by site, for `deno task discover` to write and for `deno task pipeline
 * --discover` to crawl in the same stream. The HTTP client is the run's, with the data dir's
 * cache, so a rerun costs conditional GETs only.
 */
import { concat, from, map, mergeMap, type Observable, of, type OperatorFunction, tap } from "rxjs";
import type { Coordinator } from "./cluster/coordinator.ts";
import { HttpClient, userAgentFor } from "../net/http.ts";
import { HttpCacheStore } from "../store/http_cache.ts";
import { DataDirLock } from "../store/lock.ts";
import { dataPaths } from "../store/paths.ts";
import { parse } from "csv-parse/sync";
import {
  discoverSites,
  type DiscoverSitesOptions,
  type SiteDiscovery,
} from "../stages/discover_sites.ts";
import { type CategoryRule, sourceRow, sourcesHeader } from "../stages/discover/sources_csv.ts";

/** What a discovery run writes and how it talks to servers. */
export interface DiscoveryOptions extends Omit<DiscoverSitesOptions, "http"> {
  /** `--category` rules. */
  categories?: CategoryRule[];
  /**
   * Who discovers each site, e.g. the cluster's workers (`clusterDiscovery`).
   * @default discoverSites in this process, with the given client
   */
  sites?: OperatorFunction<string, SiteDiscovery>;
  /** Called with each site's log lines and its summary, when the site is done. */
  onSite?: (site: SiteDiscovery) => void;
}

/**
 * The home pages named by the arguments: each an http(s) address, or a file of them (a CSV
 * whose header names a `url`, `home` or `homepage` column, or one address a line; `#` lines
 * skipped). Throws a RangeError naming what could not be read.
 */
export async function readHomes(args: string[]): Promise<string[]> {
  const homes: string[] = [];
  for (const arg of args) {
    if (/^https?:\/\//i.test(arg)) {
      homes.push(arg);
      continue;
    }
    let text: string;
    try {
      text = await Deno.readTextFile(arg);
    } catch {
      throw new RangeError(`'${arg}' is neither an http(s) address nor a file that can be read`);
    }
    homes.push(...homesInText(text));
  }
  const bad = homes.find((home) => !URL.canParse(home) || !/^https?:/i.test(home));
  if (bad !== undefined) throw new RangeError(`'${bad}' is not an http(s) address`);
  return [...new Set(homes)];
}

/** The addresses of a homes file: its url-like column, or its first field per line. */
export function homesInText(text: string): string[] {
  const lines = text.split(/\r?\n/).filter((line) => line.trim() && !line.trim().startsWith("#"));
  if (lines.length === 0) return [];
  const rows = parse(lines.join("\n"), { relax_column_count: true, trim: true }) as string[][];
  const header = rows[0]!.map((name) => name.toLowerCase());
  const column = header.findIndex((name) =>
    ["url", "home", "homepage", "home_page"].includes(name)
  );
  const body = column >= 0 ? rows.slice(1) : rows;
  return body.map((row) => row[column >= 0 ? column : 0] ?? "").filter(Boolean);
}

/**
 * The sources file's text, header first, then each site's rows as its crawl ends. A page two
 * home pages both reach is written once.
 */
export function discoveredSources(
  homes: string[],
  http: HttpClient,
  options: DiscoveryOptions = {},
): Observable<string> {
  const written = new Set<string>();
  const { categories = [], onSite, sites, ...siteOptions } = options;
  const rows$ = from(homes).pipe(
    sites ?? discoverSites({ ...siteOptions, http }),
    tap((site) => onSite?.(site)),
    map((site) => {
      const fresh = site.candidates.filter((candidate) => !written.has(candidate.url));
      for (const candidate of fresh) written.add(candidate.url);
      const head = `# site ${site.home}: ${fresh.filter((c) => c.sure).length} sure, ${
        fresh.filter((c) => !c.sure).length
      } unsure, ${site.pagesFetched} pages fetched\n`;
      return head + fresh.map((candidate) => sourceRow(candidate, categories)).join("");
    }),
  );
  return concat(of(sourcesHeader()), rows$);
}

/** How `runDiscovery` talks to servers. */
export interface DiscoveryClientOptions {
  /** The data dir whose HTTP cache discovery reads and fills. */
  dataDir: string;
  contact?: string;
  allowPrivate?: boolean;
  delayMs?: number;
  perHost?: number;
}

/**
 * Runs discovery with a client over the data dir's HTTP cache (the data dir locked meanwhile),
 * handing each chunk of the sources file to `write` as it is ready.
 */
export async function runDiscovery(
  homes: string[],
  client: DiscoveryClientOptions,
  options: DiscoveryOptions,
  write: (text: string) => Promise<void>,
): Promise<{ sites: SiteDiscovery[]; http: HttpClient }> {
  const paths = dataPaths(client.dataDir);
  await Deno.mkdir(paths.cache, { recursive: true });
  const lock = await DataDirLock.acquire(paths.lock);
  const cache = await HttpCacheStore.open(paths);
  const http = new HttpClient({
    userAgent: userAgentFor(client.contact),
    allowPrivate: client.allowPrivate,
    politenessDelayMs: client.delayMs,
    perHostConcurrency: client.perHost,
    cache,
  });
  const sites: SiteDiscovery[] = [];
  try {
    const chunks = discoveredSources(homes, http, {
      ...options,
      onSite: (site) => {
        sites.push(site);
        options.onSite?.(site);
      },
    });
    await new Promise<void>((resolve, reject) => {
      let chain = Promise.resolve();
      chunks.subscribe({
        next: (text) => void (chain = chain.then(() => write(text))),
        error: reject,
        complete: () => chain.then(resolve, reject),
      });
    });
    return { sites, http };
  } finally {
    cache.flushSync();
    lock.releaseSync();
  }
}

/**
 * Sites discovered by the cluster's workers, `sitesAtOnce` at a time: each home page is one
 * job, and a result the cluster already holds is reused (as crawl jobs are).
 */
export function clusterDiscovery(
  coordinator: Pick<Coordinator, "discoverSite">,
  { maxPages = 200, maxDepth = 3, sitesAtOnce = 16 } = {},
): OperatorFunction<string, SiteDiscovery> {
  return mergeMap(
    (home: string) => coordinator.discoverSite(home, { maxPages, maxDepth }),
    sitesAtOnce,
  );
}
