/**
 * Private helpers for `parse_people.ts`: a typed view of linkedom's DOM, image URL extraction
 * (lazy-loading attributes, srcset, `<picture>`, CSS backgrounds) and the text heuristics that
 * tell a person's name from a job title, and a portrait from a logo.
 */
import { DOMParser } from "linkedom";
import WORDS from "./words.json" with { type: "json" };

/** The words of a list in `words.json`: strings of space-separated words. */
export function wordList(lines: string[]): string[] {
  return lines.flatMap((line) => line.split(" ")).filter(Boolean);
}

/*
 * linkedom types its result with the DOM lib, which Deno does not load by default, and adding
 * the lib for the whole program would leak browser globals into every module. These structural
 * types cover exactly what the extractor uses.
 */

/** The part of a DOM node the extractor reads. */
export interface DomNode {
  nodeType: number;
  nodeName: string;
  parentNode: DomNode | null;
  parentElement: DomElement | null;
  childNodes: ArrayLike<DomNode> & Iterable<DomNode>;
  textContent: string | null;
}

/** The part of a DOM element the extractor reads. */
export interface DomElement extends DomNode {
  tagName: string;
  children: ArrayLike<DomElement> & Iterable<DomElement>;
  previousElementSibling: DomElement | null;
  nextElementSibling: DomElement | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement>;
  matches(selector: string): boolean;
}

/** The part of a DOM document the extractor reads. */
export interface DomDocument {
  documentElement: DomElement;
  body: DomElement | null;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement>;
}

export const ELEMENT_NODE = 1;
export const TEXT_NODE = 3;

/**
 * Parses an HTML page with linkedom. Through its DOMParser, not `parseHTML`: that one also makes
 * the document a window, kept in a module-wide WeakMap whose entry (a Proxy over the document)
 * lives until a major collection. Thousands of such entries from dead pages made the collector's
 * ephemeron pass the longest part of its pause at 100,000 records.
 */
export function parseDocument(html: string): DomDocument {
  return new DOMParser().parseFromString(html, "text/html") as unknown as DomDocument;
}

/** Each page's document, so the crawl (next-page link) and the extractor share one parse. */
const pageDocuments = new WeakMap<{ html: string }, DomDocument>();

/**
 * The page's parsed document, parsed on first use and kept as long as the page record lives:
 * `fetchPages` reads the next-page link and `parsePeople` the people from the same parse.
 */
export function pageDocument(page: { html: string }): DomDocument {
  let document = pageDocuments.get(page);
  if (!document) {
    document = parseDocument(page.html);
    pageDocuments.set(page, document);
  }
  return document;
}

/**
 * Lets the page's parse go now, not at the collector's next major pass: a WeakMap entry whose key
 * has died still costs that pass (as an ephemeron) until then. `fetchPages` calls it once the
 * page is parsed and its next page found; a later `pageDocument` of it parses it again.
 */
export function releaseDocument(page: { html: string }): void {
  const document = pageDocuments.get(page);
  if (document === undefined) return;
  mainContentCache.delete(document);
  pageDocuments.delete(page);
}

/** Lower-case tag name (`img`, `td`, …). */
export function tagOf(element: DomElement): string {
  return element.tagName.toLowerCase();
}

/** Collapses whitespace (NBSP and friends included) and drops soft hyphens and zero-width chars. */
export function normalizeText(text: string): string {
  return text.replace(/[\u00ad\u200b-\u200d\u2060\ufeff]/g, "").replace(/\s+/gu, " ").trim();
}

/** Tags that flow inside a line of text; every other element starts a line of its own. */
const INLINE_TAGS = new Set(
  "a abbr b bdi bdo cite code data dfn em font i kbd mark q s samp small span strong sub sup time u var wbr"
    .split(" "),
);

/**
 * An element's text with a space where a block element starts or ends, and how many separate
 * blocks of text it holds: minified pages write `<p>Ada Byron</p><p>Professor</p>` without a
 * space, and textContent would read "Ada ByronProfessor".
 */
export function blockText(element: DomElement): { text: string; parts: number } {
  const segments: string[] = [""];
  const walk = (node: DomNode) => {
    if (node.nodeType === TEXT_NODE) {
      segments[segments.length - 1] += node.textContent ?? "";
      return;
    }
    if (node.nodeType !== ELEMENT_NODE) return;
    const tag = tagOf(node as DomElement);
    const block = !INLINE_TAGS.has(tag);
    if (block) segments.push("");
    for (const child of node.childNodes) walk(child);
    if (block) segments.push("");
  };
  for (const child of element.childNodes) walk(child);
  const parts = segments.map(normalizeText).filter(Boolean);
  return { text: parts.join(" "), parts: parts.length };
}

/** The page's base URL: its `<base href>` resolved against the page URL, else the page URL. */
export function baseUrlOf(document: DomDocument, pageUrl: string): string {
  const href = document.querySelector("base[href]")?.getAttribute("href")?.trim();
  if (!href) return pageUrl;
  try {
    return new URL(href, pageUrl).href;
  } catch {
    return pageUrl;
  }
}

/** An absolute http(s) URL for `raw` against `base`, or undefined (data:, javascript:, junk). */
export function resolveHttpUrl(raw: string, base: string): string | undefined {
  const trimmed = raw.trim();
  if (!trimmed || /^(data|javascript|blob|about):/i.test(trimmed)) return undefined;
  try {
    const url = new URL(trimmed, base);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** One candidate of a `srcset`: the URL and its width (`w`) or density (`x`) descriptor. */
export interface SrcsetCandidate {
  url: string;
  width?: number;
  density?: number;
}

/**
 * Parses a `srcset` the way browsers do: a URL runs to the next whitespace, so URLs with commas
 * (image CDNs' `w_200,h_200`) survive.
 */
export function parseSrcset(srcset: string): SrcsetCandidate[] {
  const candidates: SrcsetCandidate[] = [];
  let position = 0;
  while (position < srcset.length) {
    while (position < srcset.length && /[\s,]/.test(srcset[position]!)) position++;
    if (position >= srcset.length) break;
    let end = position;
    while (end < srcset.length && !/\s/.test(srcset[end]!)) end++;
    let url = srcset.slice(position, end);
    position = end;
    let descriptor = "";
    if (url.endsWith(",")) {
      url = url.replace(/,+$/, "");
    } else {
      let depth = 0;
      while (position < srcset.length) {
        const char = srcset[position]!;
        if (char === "(") depth++;
        if (char === ")") depth--;
        if (char === "," && depth <= 0) break;
        descriptor += char;
        position++;
      }
    }
    const candidate: SrcsetCandidate = { url };
    const widthMatch = descriptor.match(/(\d+)w\b/);
    const densityMatch = descriptor.match(/([\d.]+)x\b/);
    if (widthMatch) candidate.width = Number(widthMatch[1]);
    else if (densityMatch) candidate.density = Number(densityMatch[1]);
    if (url) candidates.push(candidate);
  }
  return candidates;
}

/** The largest candidate: by width descriptor when any has one, else by density (bare = 1x). */
export function largestCandidate(candidates: SrcsetCandidate[]): SrcsetCandidate | undefined {
  const withWidth = candidates.filter((candidate) => candidate.width !== undefined);
  const pool = withWidth.length > 0 ? withWidth : candidates;
  let best: SrcsetCandidate | undefined;
  for (const candidate of pool) {
    const size = candidate.width ?? candidate.density ?? 1;
    if (!best || size > (best.width ?? best.density ?? 1)) best = candidate;
  }
  return best;
}

const LAZY_SRC_ATTRIBUTES = wordList(WORDS.lazySrcAttributes);
const SRCSET_ATTRIBUTES = ["data-srcset", "data-lazy-srcset", "srcset"];
const BACKGROUND_ATTRIBUTES = wordList(WORDS.backgroundAttributes);
/** A `src` lazy loaders put in until the real image scrolls into view. */
const STAND_IN_SRC =
  /^data:|(^|[/_.-])(blank|spacer|pixel|transparent|lazy|loading|loader|1x1)[^/]*$/i;

/**
 * The raw (unresolved) image URL an element shows, or undefined: `<img>` with lazy-loading
 * attributes, srcset and `<picture>` sources (largest wins), or a CSS `background-image`.
 */
export function rawImageUrlOf(element: DomElement): string | undefined {
  const tag = tagOf(element);
  if (tag === "img") return imgUrl(element);
  for (const name of BACKGROUND_ATTRIBUTES) {
    const value = element.getAttribute(name)?.trim();
    if (value) return cssUrl(value) ?? value;
  }
  const style = element.getAttribute("style");
  if (style && /background/i.test(style)) {
    const match = style.match(
      /background(?:-image)?\s*:[^;]*?url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*))\s*\)/i,
    );
    const url = match?.[1] ?? match?.[2] ?? match?.[3];
    if (url?.trim()) return url.trim();
  }
  return undefined;
}

function cssUrl(value: string): string | undefined {
  const match = value.match(/url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*))\s*\)/i);
  return match?.[1] ?? match?.[2] ?? match?.[3];
}

function imgUrl(img: DomElement): string | undefined {
  const candidates: SrcsetCandidate[] = [];
  const picture = img.parentElement;
  if (picture && tagOf(picture) === "picture") {
    for (const source of picture.children) {
      if (tagOf(source) !== "source") continue;
      for (const name of SRCSET_ATTRIBUTES) {
        const value = source.getAttribute(name);
        if (value) candidates.push(...parseSrcset(value));
      }
    }
  }
  for (const name of SRCSET_ATTRIBUTES) {
    const value = img.getAttribute(name);
    if (value) candidates.push(...parseSrcset(value));
  }
  const src = img.getAttribute("src")?.trim() ?? "";
  const lazy = LAZY_SRC_ATTRIBUTES.map((name) => img.getAttribute(name)?.trim()).find(Boolean);
  const plain = lazy ?? (src && !STAND_IN_SRC.test(src) ? src : undefined);
  const usable = candidates.filter((candidate) => !candidate.url.startsWith("data:"));
  if (usable.length > 0) {
    if (plain && !usable.some((candidate) => candidate.width !== undefined)) {
      usable.push({ url: plain, density: 1 });
    }
    return largestCandidate(usable)?.url;
  }
  return plain ?? (src || undefined);
}

/** Declared width and height (attributes or inline CSS pixels); undefined where not declared. */
export function declaredSize(element: DomElement): { width?: number; height?: number } {
  const style = element.getAttribute("style") ?? "";
  const read = (name: "width" | "height"): number | undefined => {
    const attribute = element.getAttribute(name)?.trim();
    if (attribute && /^\d+(\.\d+)?(px)?$/.test(attribute)) return parseFloat(attribute);
    const css = style.match(new RegExp(`(?:^|[;\\s])${name}\\s*:\\s*(\\d+(?:\\.\\d+)?)px`, "i"));
    return css ? parseFloat(css[1]!) : undefined;
  };
  return { width: read("width"), height: read("height") };
}

/** Words, separated by anything but letters and digits, of a string or a camelCased name. */
function words(text: string): string {
  return `-${
    text.replace(/([a-z])([A-Z])/g, "$1-$2").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "-")
  }-`;
}

/** Words in an image's file name, alt, title, class or id that mark it as not a portrait. */
const NOISE_WORDS = new RegExp(
  "-(" + [
    "\\w*logo\\w*",
    "(fav)?icons?",
    "\\w+icons?",
    "icon\\w{0,3}",
    "banners?\\w*",
    "sprites?",
    "placeholders?\\w*",
    "platzhalter\\w*",
    "no-?photos?",
    "no-?images?",
    "no-?pic(ture)?s?",
    "no-?avatar",
    "kein-?(bild|foto|photo)",
    "avatar-?default",
    "default-?(avatar|user|profile|image|photo|person)",
    "blank",
    "dummy\\w*",
    "spacer",
    "pixel",
    "transparent",
    "1x1",
    "spinner",
    "loader",
    "silhouette",
    "arrows?",
    "bullets?",
    "badge",
    "flags?",
    "social",
    "facebook",
    "twitter",
    "linkedin",
    "instagram",
    "youtube",
    "xing",
    "mastodon",
    "bluesky",
    "rss",
    "qr-?code",
    "captcha",
    "emoji",
    // profile and contact services a badge or an icon links to
    "google-scholar",
    "orcid",
    "github",
    "gitlab",
    "researchgate",
    "dblp",
    "scopus",
    "publons",
    "pronouns",
  ].join("|") + ")-",
  "u",
);

/** Classes or ids of an ancestor that holds branding, sharing or a page-wide header. */
const NOISE_ANCESTOR_WORDS =
  /-(\w*logo\w*|brand|social\w*|share\w*|sponsors?|partners?|projects?|projekte?|hero|jumbotron|masthead|cookie\w*|advert\w*|ads?)-/u;

/** Whole class names or ids of page chrome (not `card-header`: only the page's own). */
const CHROME_CLASS =
  /^(site|page|main|global|top|primary)?-?(header|footer|nav|navbar|navigation|menu|masthead|breadcrumbs?)$/i;

/** Hosts that serve status and profile badges ("Google Scholar", "pronouns: she/her"). */
const BADGE_HOSTS = new Set(wordList(WORDS.badgeHosts));

/**
 * True when the URL is a badge, whatever its alt text says: a badge service's host, or the
 * query a badge renderer takes (`?label=…&message=…`, `style=flat-square`).
 */
export function isBadgeUrl(imageUrl: string): boolean {
  let url: URL;
  try {
    url = new URL(imageUrl);
  } catch {
    return false;
  }
  const host = url.hostname.toLowerCase();
  if (BADGE_HOSTS.has(host) || BADGE_HOSTS.has(host.replace(/^[^.]+\./, ""))) return true;
  const query = url.searchParams;
  return (query.has("label") && query.has("message")) ||
    /^(flat|flat-square|plastic|for-the-badge|social)$/.test(query.get("style") ?? "");
}

/** True when the image's own file name, alt, title, class or id says it is not a portrait. */
export function hasNoiseWords(element: DomElement, imageUrl: string): boolean {
  if (isBadgeUrl(imageUrl)) return true;
  let path: string;
  try {
    path = decodeURIComponent(new URL(imageUrl).pathname);
  } catch {
    path = imageUrl;
  }
  const segments = path.split("/").filter(Boolean);
  const fileName = (segments.at(-1) ?? "").replace(/\.[a-z0-9]{2,5}$/i, "");
  const directories = segments.slice(0, -1).join("/");
  if (NOISE_WORDS.test(words(fileName))) return true;
  if (
    /-(logos?|icons?|sprites?|banners?|placeholders?|social|flags?|emoji|badges?|events?|news|slides?|sliders?)-/
      .test(words(directories))
  ) {
    return true;
  }
  for (const name of ["alt", "title", "class", "id"]) {
    const value = element.getAttribute(name);
    if (value && NOISE_WORDS.test(words(value))) return true;
  }
  return false;
}

/** Sectioning elements whose own `<header>`/`<footer>` belongs to their content, not the site. */
const CONTENT_SECTION = new Set(wordList(WORDS.contentSections));

/**
 * True when the element itself is page chrome: site header, navigation, footer, menus. A class
 * name or role only says so for an element that does not hold the page's main content: Quarto's
 * content wrapper carries `page-navbar` (the page has a navbar), and it holds every person.
 */
export function isPageChrome(element: DomElement): boolean {
  const tag = tagOf(element);
  if (tag === "nav") return true;
  if (tag === "header" || tag === "footer") {
    for (let node = element.parentElement; node; node = node.parentElement) {
      if (CONTENT_SECTION.has(tagOf(node))) return false;
    }
    return !holdsMainContent(element);
  }
  const role = element.getAttribute("role");
  const chrome = role === "banner" || role === "navigation" || role === "contentinfo" ||
    classesAndId(element).some((name) => CHROME_CLASS.test(name));
  return chrome && !holdsMainContent(element);
}

/**
 * Answers of `holdsMainContent`, which looks at a whole subtree: per document, so a page's
 * answers are one WeakMap entry (dropped by `releaseDocument`), not one per element.
 */
const mainContentCache = new WeakMap<object, Map<DomElement, boolean>>();

/** The document an element belongs to (linkedom's `ownerDocument`), or the element itself. */
function ownerOf(element: DomElement): object {
  return (element as unknown as { ownerDocument?: object | null }).ownerDocument ?? element;
}

/**
 * True when the element wraps the page's content rather than framing it: it holds the `<main>`
 * (or `role=main`) or an `<article>`, or at least half of the body's text.
 */
function holdsMainContent(element: DomElement): boolean {
  const owner = ownerOf(element);
  let answers = mainContentCache.get(owner);
  if (answers === undefined) mainContentCache.set(owner, answers = new Map());
  let holds = answers.get(element);
  if (holds === undefined) {
    holds = element.querySelector("main, [role=main], article") !== null;
    if (!holds) {
      let body: DomElement | null = element;
      while (body && tagOf(body) !== "body") body = body.parentElement;
      const bodyText = normalizeText(body?.textContent ?? "").length;
      holds = bodyText > 0 && normalizeText(element.textContent ?? "").length * 2 >= bodyText;
    }
    answers.set(element, holds);
  }
  return holds;
}

function classesAndId(element: DomElement): string[] {
  return [...(element.getAttribute("class")?.split(/\s+/) ?? []), element.getAttribute("id") ?? ""]
    .filter(Boolean);
}

/** True when the image is or sits in page chrome, or in branding, sharing, sliders or ads. */
export function inPageChrome(element: DomElement): boolean {
  let depth = 0;
  for (let node: DomElement | null = element; node; node = node.parentElement, depth++) {
    if (isPageChrome(node)) return true;
    if (depth < 4 && classesAndId(node).some((name) => NOISE_ANCESTOR_WORDS.test(words(name)))) {
      return true;
    }
  }
  return false;
}

/** Academic and courtesy titles, as pieces between dots and hyphens, lower case. */
const TITLE_PIECES = new Set(wordList(WORDS.titlePieces));

/** Titles written without dots, case as shown. */
const BARE_TITLES = new Set(wordList(WORDS.bareTitles));

/** True when a token (trailing comma stripped) is an academic or courtesy title. */
export function isTitleToken(token: string): boolean {
  if (BARE_TITLES.has(token)) return true;
  if (!token.includes(".")) return false;
  const pieces = token.toLowerCase().split(/[.\-–]/).filter(Boolean);
  // A lone letter with a dot is an initial ("M. Smith"), not the start of "M.Sc.".
  if (pieces.length === 1 && pieces[0]!.length < 2) return false;
  return pieces.length > 0 && pieces.every((piece) => TITLE_PIECES.has(piece));
}

/** Lower-case name particles (von, van der, de la, …). */
const PARTICLES = new Set(wordList(WORDS.particles));

/**
 * Capitalised words that headings, job titles and page furniture use but names almost never
 * do. Lower-case words already fail the name test, so only capitalised ones need listing.
 */
const NOT_NAME_WORDS = new Set(
  Object.entries(WORDS.notNameWords).filter(([group]) => !group.startsWith("articles"))
    .flatMap(([, lines]) => wordList(lines)),
);

/**
 * Articles and prepositions: a caption that starts with one ("Das Team", "Im Labor") is not a
 * name, but inside a name they are surnames and initials ("Sajal Das Shovon", "Jane A Smith").
 */
const CAPTION_START_WORDS = new Set(
  wordList(WORDS.notNameWords["articles and prepositions, capitalised at the start of a caption"]),
);

/** True when `text` (normalised) reads as a person's name, academic titles allowed. */
export function looksLikeName(text: string): boolean {
  if (text.length < 4 || text.length > 80) return false;
  // A name in its own script with its Latin spelling in brackets: "김지현 (Jihyun Kim)".
  const latin = text.match(/^[\p{Lo}\p{M}·・ ]{2,12}\s*\((.+)\)$/u);
  if (latin) return looksLikeName(latin[1]!);
  // A nickname or the name in another script, in brackets, is part of the name:
  // "Mengwei (Vivienne) Liu", "Wei Zhang (张伟)".
  text = text.replace(
    / \(([\p{Lu}\p{Lo}][\p{L}\p{M}'’-]*)\)(?= |$)/gu,
    (_, inner: string) => /^\p{Lo}/u.test(inner) ? "" : ` ${inner}`,
  );
  // So is a nickname in quotes, one word between spaces: 'Robert C. "Bobby" Scott'.
  text = text.replace(
    / (?:"|“|„|«|‘)(\p{Lu}[\p{L}\p{M}'’.-]*)(?:"|”|“|»|’)(?= |,|$)/gu,
    " $1",
  );
  if (/[\d@|:;!?()[\]{}<>=+*#/\\"“”„«»©®]|https?|www\./i.test(text)) return false;
  const tokens = text.split(" ").map((token) => token.replace(/,$/, "")).filter(Boolean);
  if (tokens.length > 10) return false;
  let capitalised = 0;
  let core = 0;
  // In mixed-case text an all-capitals word is an acronym ("UC San Diego", "IBM Research"),
  // not a name; a name written all in capitals ("BARBARA LANE") is another matter.
  const mixedCase = text !== text.toUpperCase();
  for (const token of tokens) {
    if (isTitleToken(token)) continue;
    core++;
    if (PARTICLES.has(token)) continue;
    if (NOT_NAME_WORDS.has(token.toLowerCase())) return false;
    if (core === 1 && CAPTION_START_WORDS.has(token.toLowerCase())) return false;
    if (mixedCase && /^\p{Lu}{2,}$/u.test(token) && !/^[IVX]+$/.test(token)) return false;
    // A name word: capitalised letters with hyphens, apostrophes or a dot (initial), or d'Alembert.
    if (!/^(\p{Lu}[\p{L}'’.-]*|\p{Ll}['’]\p{Lu}[\p{L}'’-]*)$/u.test(token)) return false;
    capitalised++;
  }
  return capitalised >= 2 && core <= 6;
}

/** Word endings of subjects and bodies ("Optics", "Gesellschaft"), rare in a name. */
const SUBJECT_ENDING =
  /(tions?|ics|ments|ologie|ology|ships?|schaft|keit|heit|ismus|wesen|technik|ities)$/;

/**
 * How much a name-like text reads like a name rather than a subject: up for academic titles,
 * down for subject-like word endings. Breaks ties between two name-like texts in one container.
 */
export function nameQuality(text: string): number {
  const tokens = text.split(" ").map((token) => token.replace(/,$/, ""));
  let quality = 0;
  if (tokens.some(isTitleToken)) quality += 0.5;
  if (tokens.some((token) => token.length >= 6 && SUBJECT_ENDING.test(token.toLowerCase()))) {
    quality -= 1;
  }
  return quality;
}
