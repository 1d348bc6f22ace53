/**
 * The links of a page as discovery reads them: each address normalised (no fragment, no session
 * id, sorted query), with the words around it (its text, whether it sits in a menu, whether it
 * leads to another language version), and the template two addresses share when they differ
 * only by numbers (a calendar's days, a maze's levels).
 */
import {
  baseUrlOf,
  type DomDocument,
  type DomElement,
  isPageChrome,
  normalizeText,
  resolveHttpUrl,
} from "../people/dom.ts";
import { LANGUAGE_LABELS, SESSION_PARAMS } from "./words.ts";

/** One link of a page. */
export interface PageLink {
  /** Normalised absolute URL. */
  url: string;
  /** The link's text (or its aria-label, title, or image alt), whitespace collapsed. */
  text: string;
  /** True when it sits in navigation: a nav, header, menu or dropdown. */
  inMenu: boolean;
  /** True when it leads to another language version of the page (hreflang, "English", "DE"). */
  language: boolean;
  /** True when normalising removed a session id from it. */
  hadSession: boolean;
}

/** Files that are never HTML pages. */
const NOT_PAGES =
  /\.(pdf|jpe?g|png|gif|webp|svg|ico|zip|gz|tgz|rar|7z|docx?|xlsx?|pptx?|odt|ods|mp[34]|mov|avi|webm|ics|vcf|bib|ris|css|js|json|txt|csv|woff2?|ttf|eot)$/i;

/** A value that looks like a token (long hex or base64), not a page number or a name. */
const TOKEN_VALUE = /^[0-9a-f]{16,}$|^[A-Za-z0-9_-]{24,}$/i;

/**
 * The address without its fragment, session ids (`;jsessionid=…`, `?sid=…`, token-valued
 * `session`-like parameters) and tracking parameters, with its query sorted, so two links to
 * one page read as one.
 */
export function normalizeUrl(
  raw: string,
  base: string,
): { url: string; hadSession: boolean } | undefined {
  const resolved = resolveHttpUrl(raw, base);
  if (resolved === undefined) return undefined;
  const url = new URL(resolved);
  url.hash = "";
  let hadSession = false;
  const path = url.pathname.replace(/;(jsessionid|sid|phpsessid)=[^/?]*/gi, () => {
    hadSession = true;
    return "";
  });
  url.pathname = path;
  const kept: [string, string][] = [];
  for (const [key, value] of url.searchParams) {
    const sessionLike = SESSION_PARAMS.test(key) ||
      (/sess|sid|token|auth/i.test(key) && TOKEN_VALUE.test(value));
    if (sessionLike) hadSession = true;
    else kept.push([key, value]);
  }
  kept.sort(([a], [b]) => a.localeCompare(b));
  url.search = kept.length ? new URLSearchParams(kept).toString() : "";
  return { url: url.href, hadSession };
}

/** Query keys whose value names a page of a CMS (TYPO3's `id`, WordPress's `page_id`). */
const PAGE_ID_KEYS = /^(id|page_id|pageid|p|pid|nid|node|article|cat)$/i;

/**
 * The shape an address shares with its siblings that differ only by numbers or query values:
 * `/events/2024/05/17?view=day` and `/events/2024/05/18?view=week` are both
 * `/events/#/#/#?view`. A template with many addresses is a calendar, a pager or a maze. Short
 * codes stay (`/fb08/`, `/f1/`: sixteen faculties are not a trap), and so do the values of
 * the keys a CMS names its pages by (`index.php?id=1234`).
 */
export function urlTemplate(url: string): string {
  const parsed = new URL(url);
  const path = parsed.pathname.split("/").map((segment) =>
    /^\d+$/.test(segment) ? "#" : segment.replace(/\d{3,}/g, "#")
  ).join("/");
  const keys = [...new Set([...parsed.searchParams.keys()])].sort()
    .map((key) => PAGE_ID_KEYS.test(key) ? `${key}=${parsed.searchParams.get(key)}` : key)
    .join("&");
  return `${parsed.host}${path}${keys ? `?${keys}` : ""}`;
}

/** True when the element or one of its ancestors is navigation (menus and their dropdowns). */
function inMenu(element: DomElement): boolean {
  for (let node: DomElement | null = element; node; node = node.parentElement) {
    if (isPageChrome(node)) return true;
    const classes = `${node.getAttribute("class") ?? ""} ${node.getAttribute("id") ?? ""}`;
    if (/\b(menu|dropdown|submenu|navbar|nav|navigation|mega-?menu)\b/i.test(classes)) return true;
  }
  return false;
}

/** The words a link says: its text, else its aria-label, title or image's alt. */
function linkText(element: DomElement): string {
  const text = normalizeText(element.textContent ?? "");
  if (text) return text;
  const label = element.getAttribute("aria-label") ?? element.getAttribute("title") ??
    element.querySelector("img[alt]")?.getAttribute("alt") ?? "";
  return normalizeText(label);
}

/**
 * Every link of the page that may lead to another page: anchors and image-map areas, and the
 * `<link rel=alternate hreflang>` language versions, each once (the first with words wins).
 */
export function pageLinks(document: DomDocument, pageUrl: string): PageLink[] {
  const base = baseUrlOf(document, pageUrl);
  const links = new Map<string, PageLink>();
  const add = (raw: string | null, link: Omit<PageLink, "url" | "hadSession">) => {
    if (!raw) return;
    const normal = normalizeUrl(raw, base);
    if (!normal || NOT_PAGES.test(new URL(normal.url).pathname)) return;
    const known = links.get(normal.url);
    if (known) {
      known.text ||= link.text;
      known.inMenu ||= link.inMenu;
      known.language ||= link.language;
      return;
    }
    links.set(normal.url, { url: normal.url, ...link, hadSession: normal.hadSession });
  };
  for (const element of document.querySelectorAll("link[rel~=alternate][hreflang][href]")) {
    add(element.getAttribute("href"), { text: "", inMenu: true, language: true });
  }
  for (const element of document.querySelectorAll("a[href], area[href]")) {
    if ((element.getAttribute("rel") ?? "").toLowerCase().includes("nofollow")) continue;
    const text = linkText(element);
    const language = element.getAttribute("hreflang") !== null || LANGUAGE_LABELS.test(text);
    add(element.getAttribute("href"), { text, inMenu: inMenu(element), language });
  }
  return [...links.values()];
}
