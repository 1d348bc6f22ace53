/**
 * One site's discovery crawl: best-first from the home page and the sitemaps, within a page
 * budget and a depth limit, refusing the addresses that make a crawl endless (calendars, mazes,
 * query-string and session-id variants) with a reason in the site's log.
 */
import type { FetchedPage, SourceRow } from "../../core/types.ts";
import type { HttpClient, ResponseHead } from "../../net/http.ts";
import { normalizeText, pageDocument } from "../people/dom.ts";
import { decodeHtml } from "../fetch_pages.ts";
import { normalizeUrl, type PageLink, pageLinks, urlTemplate } from "./links.ts";
import { type PageReading, readPage } from "./read_page.ts";
import { gunzipCapped, isGzip, readSitemap } from "./sitemap.ts";
import {
  AVOID_PATH,
  AVOID_WORDS,
  DATE_PIECE,
  HUB_WORDS,
  PEOPLE_PATH,
  PEOPLE_WORDS,
  UNIT_WORDS,
} from "./words.ts";
import { sha256Hex } from "../../core/ids.ts";

/** The limits of one site's crawl (see `DiscoverSitesOptions` for each). */
export interface SiteLimits {
  maxPages: number;
  maxDepth: number;
  maxPageBytes: number;
  maxPerTemplate: number;
  maxSitemaps: number;
  maxSitemapUrls: number;
  concurrency: number;
}

/** A page found to list people, with how sure discovery is and why. */
export interface Candidate {
  url: string;
  score: number;
  /** Written as a row; otherwise commented out for a person to confirm. */
  sure: boolean;
  people: number;
  /** The text of each link from the home page to it ("sitemap" for a sitemap entry). */
  via: string[];
  why: string[];
  /** The unit the page belongs to, as the site names it. */
  unit: string;
  /** Its portraits, to tell mirrors and copies (not written anywhere). */
  imageUrls: string[];
  nextPage?: string;
}

/**
 * Least priority of a visit that is fetched: below it lie only the other links of a unit whose
 * people page was found (a research page, a gallery), which a unit's second list of people
 * (its "Professors" beside its "Team") stays above.
 */
const LEAST_PRIORITY = -2;

/** A queued address and how it was reached. */
export interface Visit {
  url: string;
  /** True when the link's words name people, units or a way to them. */
  worded?: boolean;
  /** The page whose link it is. */
  parent?: string;
  depth: number;
  via: string[];
  priority: number;
}

/** A site's crawl state: what was seen, queued and found, and what the log says. */
export class SiteCrawl {
  readonly home: URL;
  readonly scopeHost: string;
  readonly log: string[] = [];
  readonly candidates: Candidate[] = [];
  pagesFetched = 0;
  readonly #seen = new Set<string>();
  readonly #contents = new Map<string, string>();
  readonly #templates = new Map<string, number>();
  readonly #queue: Visit[] = [];
  readonly #counts = new Map<string, number>();
  readonly #trapped = new Set<string>();
  readonly #counted = new Set<string>();
  readonly #satisfied = new Set<string>();
  #settled = 0;

  constructor(home: string, readonly limits: SiteLimits, readonly http: HttpClient) {
    this.home = new URL(home);
    this.scopeHost = this.home.hostname.replace(/^www\./, "");
  }

  /**
   * Counts one refusal of a kind, once per address where one is given; the log gets one line
   * per kind at the end.
   */
  count(kind: string, url?: string): void {
    if (url !== undefined) {
      const key = `${kind}\n${url}`;
      if (this.#counted.has(key)) return;
      this.#counted.add(key);
    }
    this.#counts.set(kind, (this.#counts.get(kind) ?? 0) + 1);
  }

  /** The counted refusals as log lines. */
  countLines(): string[] {
    return [...this.#counts].map(([kind, n]) => `${kind}: ${n} addresses`);
  }

  /** True when the address is on the site: its host, or a subdomain of the site's domain. */
  onSite(url: URL): boolean {
    const host = url.hostname;
    return url.port === this.home.port &&
      (host === this.home.hostname || host === this.scopeHost ||
        host.endsWith(`.${this.scopeHost}`));
  }

  /** Queues an address unless it was seen, is off the site, too deep, or a trap's. */
  enqueue(visit: Visit): void {
    if (this.#seen.has(visit.url)) return;
    const url = new URL(visit.url);
    if (!this.onSite(url)) return this.count("off_site", visit.url);
    if (visit.depth > this.limits.maxDepth) {
      return this.count(`depth_limit (beyond ${this.limits.maxDepth} clicks)`);
    }
    if (url.pathname.split("/").filter(Boolean).length > 8) {
      this.#trap("maze", `addresses over 8 levels deep (${url.pathname.slice(0, 60)}…)`);
      return;
    }
    const template = urlTemplate(visit.url);
    const inTemplate = (this.#templates.get(template) ?? 0) + 1;
    // Links whose words name people or units earn a shape more room than bare ones.
    const cap = visit.worded ? this.limits.maxPerTemplate * 3 : this.limits.maxPerTemplate;
    if (inTemplate > cap) {
      this.#trap(
        template,
        `more than ${cap} addresses like ${template} (a calendar, pager, maze or query variants); the rest not followed`,
      );
      return;
    }
    this.#templates.set(template, inTemplate);
    this.#seen.add(visit.url);
    this.#queue.push(visit);
  }

  #trap(key: string, line: string): void {
    this.count("trap");
    if (this.#trapped.has(key)) return;
    this.#trapped.add(key);
    this.log.push(`trap: ${line}`);
  }

  /**
   * Notes that a page linked from `parent` lists people: a unit seldom has two people pages,
   * so its other links wait until every other unit's have been tried.
   */
  satisfied(parent: string | undefined): void {
    if (parent !== undefined) this.#satisfied.add(parent);
  }

  /** A visit's priority now: lower once a sibling of it turned out to be the people page. */
  #priorityOf(visit: Visit): number {
    return visit.parent !== undefined && this.#satisfied.has(visit.parent)
      ? visit.priority - 6
      : visit.priority;
  }

  /** The best queued visit, or undefined when the queue is empty. */
  next(): Visit | undefined {
    let best = -1, bestPriority = -Infinity;
    for (let i = 0; i < this.#queue.length; i++) {
      const priority = this.#priorityOf(this.#queue[i]!);
      if (best < 0 || priority > bestPriority) [best, bestPriority] = [i, priority];
    }
    // What is left are the other links of units whose people page was found: not worth a fetch.
    if (best >= 0 && bestPriority < LEAST_PRIORITY) {
      this.#settled += this.#queue.length;
      this.#queue.length = 0;
      return undefined;
    }
    return best < 0 ? undefined : this.#queue.splice(best, 1)[0];
  }

  /** Queued addresses left unvisited because only a found unit's other links remained. */
  get settled(): number {
    return this.#settled;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Marks where a redirect led as seen, so a link to it is not fetched again. */
  markSeen(url: string): void {
    this.#seen.add(url);
  }

  /**
   * True the first time a page's text and images are seen; the same page under another
   * address (a session id in its path, links that carry one) is not. Pages of under 20
   * characters of text are all taken as new.
   */
  firstContent(url: string, page: FetchedPage): boolean {
    const document = pageDocument(page);
    const text = normalizeText(document.body?.textContent ?? "");
    if (text.length < 20) return true;
    const images = [...document.querySelectorAll("img")].map((img) => img.getAttribute("src"));
    const hash = sha256Hex(`${text}\n${images.join("\n")}`);
    const earlier = this.#contents.get(hash);
    if (earlier !== undefined && earlier !== url) return false;
    this.#contents.set(hash, url);
    return true;
  }
}

/** How much a link is worth following, or undefined when it must not be followed and why. */
export function linkPriority(
  link: PageLink,
  depth: number,
): { priority: number; worded: boolean } | { avoid: string } {
  const text = link.text.toLowerCase();
  const url = new URL(link.url);
  const path = decodeURIComponent(url.pathname + url.search).toLowerCase();
  if (DATE_PIECE.test(path)) return { avoid: "avoided: dated address (calendar, news)" };
  if (AVOID_WORDS.test(text) || AVOID_PATH.test(path)) {
    return { avoid: "avoided: news, events, publications and the like" };
  }
  let priority = 0;
  if (PEOPLE_WORDS.test(text)) priority += 6;
  if (PEOPLE_PATH.test(path)) priority += 4;
  if (UNIT_WORDS.test(text)) priority += 3;
  if (HUB_WORDS.test(text)) priority += 2;
  if (link.language) priority += 2;
  // A year or a headline's length in the words: a post or an event, not a standing page.
  if (/\b(19|20)\d\d\b/.test(text)) priority -= 5;
  if (text.split(/\s+/).length > 5) priority -= 2;
  // A page of units often names them bare ("Physics"): links without words are followed from
  // the home page and from the pages one click away, after every link with words.
  if (priority === 0 && depth > 1) return { avoid: "not followed: no words of people or units" };
  if (priority < 0) return { avoid: "not followed: a dated or headline link" };
  const worded = priority > 0;
  if (link.inMenu) priority += 1;
  return { priority: priority - depth, worded };
}

/** A 2xx response discovery may read: HTML (pages), or XML and gzip (sitemaps). */
function readable(types: RegExp) {
  return (response: ResponseHead) => {
    const type = response.headers.get("content-type");
    return type === null || types.test(type) ? undefined : `not_html: ${type}`;
  };
}

const HTML = /^\s*(text\/html|application\/xhtml\+xml)\s*(;|$)/i;
const SITEMAP_TYPES = /xml|gzip|text\/plain|octet-stream/i;

/** A stand-in source row, for the extractor's reading of a page that is not a source yet. */
function probeSource(url: string): SourceRow {
  return { line: 0, url, category: "" };
}

/**
 * Fetches one page within the budget: the page, or undefined (the log says why). The budget
 * counts the request before it goes out.
 */
export async function fetchPage(
  crawl: SiteCrawl,
  url: string,
  signal: AbortSignal,
): Promise<FetchedPage | undefined> {
  crawl.pagesFetched++;
  const result = await crawl.http.get(url, {
    maxBytes: crawl.limits.maxPageBytes,
    accept: "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
    checkResponse: readable(HTML),
    signal,
  });
  if (!result.ok) {
    const kind = result.reason.split(":")[0]!;
    // Refused before a request went out: it costs the site nothing, nor the budget.
    if (/^(robots_disallowed|blocked_address|unsupported_scheme)/.test(result.reason)) {
      crawl.pagesFetched--;
    }
    crawl.count(`failed ${kind}`);
    if (!/^(not_html|http_404)/.test(result.reason)) {
      crawl.log.push(`page failed: ${url}: ${result.reason}`);
    }
    return undefined;
  }
  const final = new URL(result.url);
  crawl.markSeen(normalizeUrl(result.url, result.url)?.url ?? result.url);
  if (!crawl.onSite(final)) {
    crawl.count("redirected off the site");
    return undefined;
  }
  const html = decodeHtml(result.body, result.contentType);
  // Whether it is a copy of a page read before is decided by the caller, in visiting order.
  return { source: probeSource(result.url), url: result.url, html, pageIndex: 0 };
}

/** One sitemap's page addresses and child sitemaps, within the byte and count caps. */
async function fetchSitemap(
  crawl: SiteCrawl,
  url: string,
  signal: AbortSignal,
): Promise<{ urls: string[]; sitemaps: string[] }> {
  const none = { urls: [], sitemaps: [] };
  crawl.pagesFetched++;
  const result = await crawl.http.get(url, {
    maxBytes: crawl.limits.maxPageBytes,
    accept: "application/xml,text/xml;q=0.9,*/*;q=0.1",
    checkResponse: readable(SITEMAP_TYPES),
    signal,
  });
  if (!result.ok) {
    if (!result.reason.startsWith("http_404")) {
      crawl.log.push(`sitemap failed: ${url}: ${result.reason}`);
    }
    return none;
  }
  let bytes = result.body;
  if (isGzip(bytes)) {
    const inflated = await gunzipCapped(bytes, crawl.limits.maxPageBytes);
    if (!inflated.ok) {
      crawl.log.push(`sitemap failed: ${url}: ${inflated.reason}`);
      return none;
    }
    bytes = inflated.bytes;
  }
  const contents = readSitemap(new TextDecoder().decode(bytes), crawl.limits.maxSitemapUrls);
  if (contents.total > crawl.limits.maxSitemapUrls) {
    crawl.log.push(
      `sitemap capped: ${url} lists ${contents.total} addresses; the first ${crawl.limits.maxSitemapUrls} read`,
    );
  }
  return contents;
}

/**
 * Reads robots.txt's Sitemap lines and /sitemap.xml (child sitemaps up to `maxSitemaps`
 * files) and queues the entries whose address names a people page.
 */
export async function queueSitemaps(crawl: SiteCrawl, signal: AbortSignal): Promise<void> {
  const declared = await crawl.http.sitemaps(crawl.home.href, signal);
  const pending = [...declared, new URL("/sitemap.xml", crawl.home).href];
  const done = new Set<string>();
  let listed = 0, queued = 0;
  while (pending.length && done.size < crawl.limits.maxSitemaps) {
    const url = pending.shift()!;
    if (done.has(url) || crawl.pagesFetched >= crawl.limits.maxPages) continue;
    done.add(url);
    const contents = await fetchSitemap(crawl, url, signal);
    pending.push(...contents.sitemaps);
    for (const raw of contents.urls) {
      listed++;
      const normal = normalizeUrl(raw, url);
      if (!normal) continue;
      const path = decodeURIComponent(new URL(normal.url).pathname).toLowerCase();
      if (!PEOPLE_PATH.test(path) || AVOID_PATH.test(path) || DATE_PIECE.test(path)) continue;
      queued++;
      crawl.enqueue({ url: normal.url, depth: 1, via: ["sitemap"], priority: 5 });
    }
  }
  if (pending.length) {
    crawl.log.push(
      `sitemaps capped: ${crawl.limits.maxSitemaps} files read, ${pending.length} more not`,
    );
  }
  if (listed) crawl.log.push(`sitemap: ${listed} addresses, ${queued} name people pages`);
}

/** Reads a fetched page: a candidate when it shows people, and its links queued. */
export function visitPage(crawl: SiteCrawl, page: FetchedPage, visit: Visit): PageReading {
  const reading = readPage(page, visit.via);
  if (reading.people >= 3 && reading.score >= 0.6) crawl.satisfied(visit.parent);
  if (reading.people > 0 || reading.scripted) {
    if (reading.scripted) {
      reading.why.push("no people as served, but it runs scripts: render auto will render it");
    }
    crawl.candidates.push({
      url: page.url,
      score: reading.scripted ? Math.max(reading.score, 0.3) : reading.score,
      sure: false,
      people: reading.people,
      via: visit.via,
      why: reading.why,
      unit: reading.unit,
      imageUrls: reading.imageUrls,
      nextPage: reading.nextPage,
    });
  }
  // Below a page that lists people lie its people's profiles, not more lists.
  const below = reading.people >= 3 && new URL(page.url).pathname !== "/"
    ? page.url.replace(/[?#].*$/, "").replace(/\/?$/, "/")
    : undefined;
  for (const link of pageLinks(pageDocument(page), page.url)) {
    if (link.hadSession) crawl.count("session id removed", link.url);
    if (below !== undefined && link.url.startsWith(below)) {
      crawl.count("not followed: profiles below a people page", link.url);
      continue;
    }
    const depth = link.language ? visit.depth : visit.depth + 1;
    const worth = linkPriority(link, visit.depth);
    if ("avoid" in worth) {
      if (crawl.onSite(new URL(link.url))) crawl.count(worth.avoid, link.url);
      continue;
    }
    const via = [...visit.via, link.text || new URL(link.url).pathname];
    crawl.enqueue({
      url: link.url,
      depth,
      via,
      priority: worth.priority,
      worded: worth.worded,
      parent: page.url,
    });
  }
  return reading;
}
