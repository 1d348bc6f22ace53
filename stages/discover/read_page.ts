/**
 * How much one fetched page looks like a people page, read by the extractor itself (how many
 * (name, portrait) pairs `extractPeople` finds) and by its words (headings, title, the links
 * that led to it, its address), less what makes it news, an event, a publication list or a
 * gallery; and the unit it belongs to, as the site names it.
 */
import type { FetchedPage } from "../../core/types.ts";
import { type DomDocument, normalizeText, pageDocument } from "../people/dom.ts";
import { extractPeople, findNextPageUrl } from "../parse_people.ts";
import { carriesScripts } from "../fetch_pages.ts";
import { AVOID_PATH, AVOID_WORDS, PEOPLE_PATH, PEOPLE_WORDS, UNIT_WORDS } from "./words.ts";

/** What discovery makes of one page. */
export interface PageReading {
  /** (name, portrait) pairs the extractor finds. */
  people: number;
  /** Their portraits' addresses, to tell a language mirror or a copy of a list. */
  imageUrls: string[];
  /** 0 (not a people page) to 1 (surely one). */
  score: number;
  /** Why, in a few words each, for the sources file's comment. */
  why: string[];
  /** Words that make it news, an event, a publication list or a gallery, when it has them. */
  avoid?: string;
  /** The unit the page belongs to, as the site names it. */
  unit: string;
  /** The next page of its list, which the pipeline follows by itself. */
  nextPage?: string;
  /**
   * True when it shows no people as served but its heading names people and it runs scripts:
   * a list the page builds itself, which the pipeline's `render auto` renders.
   */
  scripted: boolean;
}

/** Texts of the page's main headings and its title's parts. */
function headings(document: DomDocument, selector = "h1, h2"): string[] {
  const texts = [...document.querySelectorAll(selector)].slice(0, 4)
    .map((element) => normalizeText(element.textContent ?? ""));
  return texts.filter(Boolean);
}

function titleParts(document: DomDocument): string[] {
  const title = normalizeText(document.querySelector("title")?.textContent ?? "");
  return title.replace(/\s+[|–—·:»-]\s*$/, "").split(/\s+[|–—·:»-]\s+/)
    .map((part) => part.trim()).filter(Boolean);
}

/** Texts of the breadcrumb trail, nearest last. */
function breadcrumb(document: DomDocument): string[] {
  const trail = document.querySelector(
    "[aria-label*=readcrumb], .breadcrumb, .breadcrumbs, [class*=breadcrumb], #breadcrumb",
  );
  if (!trail) return [];
  const items = [...trail.querySelectorAll("a, li, span")]
    .map((element) => normalizeText(element.textContent ?? ""));
  return [...new Set(items.filter(Boolean))];
}

/** The site's own name where it shows it: og:site_name, a brand or site title element. */
function siteNames(document: DomDocument): string[] {
  const names: string[] = [];
  const og = document.querySelector("meta[property='og:site_name']")?.getAttribute("content");
  if (og) names.push(normalizeText(og));
  for (const element of document.querySelectorAll(".site-title, .site-name, .brand, .logo")) {
    const text = normalizeText(element.textContent ?? "");
    if (text) names.push(text);
  }
  return names;
}

const LEADING_PEOPLE = new RegExp(
  `^(${PEOPLE_WORDS.source.slice(2, -2)})(\\s+(of|at|in|des|der|am|im|the|of the|am|vom))*\\s*`,
  "i",
);

/** A unit name cut out of a heading: "Team – Department of X" gives "Department of X". */
function unitIn(text: string): string | undefined {
  const parts = text.split(/\s+[|–—·:»-]\s+/);
  for (const part of parts) {
    const name = part.replace(LEADING_PEOPLE, "").trim();
    if (name.split(/\s+/).length < 2 || name.length > 90 || /[?!]$/.test(name)) continue;
    // "Current Lab Members" names people, not a unit.
    if (PEOPLE_WORDS.test(name.toLowerCase())) continue;
    if (UNIT_WORDS.test(name.toLowerCase())) return name;
  }
  return undefined;
}

/**
 * The unit the page belongs to: a heading, breadcrumb item, site name, title part or link on
 * the way that names a unit (nearest first), else the site's name, else the host.
 */
export function unitOf(document: DomDocument, url: string, via: string[]): string {
  const ordered = [
    ...headings(document, "h1"),
    ...breadcrumb(document).reverse(),
    ...siteNames(document),
    ...titleParts(document),
    ...headings(document, "h2"),
    ...[...via].reverse(),
  ];
  for (const text of ordered) {
    const unit = unitIn(text);
    if (unit) return unit;
  }
  const title = titleParts(document);
  return siteNames(document)[0] ?? title[title.length - 1] ?? new URL(url).host;
}

/** Dates written in the page's text: many of them make a page of news or events. */
function datesIn(document: DomDocument): number {
  const times = document.querySelectorAll("time").length;
  const text = normalizeText(document.body?.textContent ?? "");
  const written = text.match(
    /\b\d{1,2}\.\s?\d{1,2}\.\s?(19|20)\d\d\b|\b(19|20)\d\d-\d\d-\d\d\b|\b\d{1,2}\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|januar|februar|märz|mai|juni|juli|august|september|oktober|november|dezember)\w*\.?\s+(19|20)\d\d\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\w*\.?\s+\d{1,2},\s+(19|20)\d\d\b/gi,
  );
  return Math.max(times, written?.length ?? 0);
}

/**
 * What makes the page one dated post rather than a standing list: a year in its heading ("Our
 * team at the summer party 2024"), and an article with a publication time. Each counts.
 */
function postSignals(document: DomDocument, heads: string[]): string[] {
  const signals: string[] = [];
  if (heads.slice(0, 2).some((text) => /\b(19|20)\d\d\b/.test(text))) {
    signals.push("a year in its heading");
  }
  const published = document.querySelector(
    "article time, article [datetime], meta[property='article:published_time']",
  );
  if (published) signals.push("a dated article");
  return signals;
}

/** The first of `texts` that has words matching `pattern`, lower-cased, or undefined. */
function firstMatch(texts: string[], pattern: RegExp): string | undefined {
  for (const text of texts) {
    const match = pattern.exec(text.toLowerCase());
    if (match) return match[0];
  }
  return undefined;
}

/**
 * Reads one fetched page. `via` is the text of each link that led there from the home page.
 *
 * @example
 * ```ts
 * const reading = readPage(page, ["About us", "Team"]);
 * if (reading.score >= 0.6) console.log(reading.unit, reading.people);
 * ```
 */
export function readPage(page: FetchedPage, via: string[]): PageReading {
  const document = pageDocument(page);
  const people = extractPeople(page);
  const why: string[] = [];
  const path = decodeURIComponent(new URL(page.url).pathname).toLowerCase();
  const heads = [...headings(document), ...titleParts(document)];
  let score = Math.min(1, people.length / 6) * 0.6;
  if (people.length) why.push(`${people.length} people with portraits`);
  // A heading that is only "Faculty" names the department's professors.
  const headingWord = firstMatch(heads, PEOPLE_WORDS) ??
    heads.find((text) => /^(our |core |affiliated )?faculty$/i.test(text))?.toLowerCase();
  if (headingWord) {
    score += 0.25;
    why.push(`heading "${headingWord}"`);
  }
  const linkWord = firstMatch(via.slice(-1), PEOPLE_WORDS);
  if (linkWord) {
    score += 0.15;
    why.push(`link "${linkWord}"`);
  }
  if (PEOPLE_PATH.test(path)) {
    score += 0.1;
    why.push("address names people");
  }
  // The page's own name says news or publications; a section of it ("Alumni") does not.
  const names = [...headings(document, "h1"), ...titleParts(document)];
  const avoid = firstMatch(names, AVOID_WORDS) ?? AVOID_PATH.exec(path)?.[2];
  if (avoid) {
    score -= 0.5;
    why.push(`looks like ${avoid}`);
  }
  for (const signal of postSignals(document, heads)) {
    score -= 0.3;
    why.push(signal);
  }
  const dates = datesIn(document);
  if (dates >= 3 && dates * 2 >= people.length) {
    score -= 0.3;
    why.push(`${dates} dates`);
  }
  const imageUrls = people.map((person) => person.imageUrl);
  return {
    people: people.length,
    imageUrls,
    score: Math.max(0, Math.min(1, Math.round(score * 100) / 100)),
    why,
    avoid: avoid ?? (dates >= 3 && dates * 2 >= people.length ? "dated entries" : undefined),
    unit: unitOf(document, page.url, via),
    nextPage: people.length ? findNextPageUrl(page) : undefined,
    scripted: people.length === 0 && headingWord !== undefined && avoid === undefined &&
      carriesScripts(page),
  };
}
