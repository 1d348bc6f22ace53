/**
 * Pagination: the link from one fetched staff page to the next, which stages/fetch_pages.ts
 * follows.
 */
import type { FetchedPage } from "../../core/types.ts";
import { baseUrlOf, type DomElement, normalizeText, pageDocument, resolveHttpUrl } from "./dom.ts";

const NEXT_TEXT =
  /^(next|next page|nächste|nächste seite|weiter|vor|»|›|>|>>|→|(next|nächste|weiter)\s*(page|seite)?\s*[»›>→])$/i;

/**
 * Pagination: the next page URL on the same host, or undefined. Recognises `rel=next` (link
 * and a), link text "Next"/"next ›"/"»"/"Weiter"/"Nächste", and `page.source.nextSelector`.
 */
export function findNextPageUrl(page: FetchedPage): string | undefined {
  const document = pageDocument(page);
  const baseUrl = baseUrlOf(document, page.url);
  const here = new URL(page.url);
  here.hash = "";
  const accept = (href: string | null | undefined): string | undefined => {
    if (!href) return undefined;
    const resolved = resolveHttpUrl(href, baseUrl);
    if (!resolved) return undefined;
    const url = new URL(resolved);
    url.hash = "";
    if (url.host !== here.host || url.href === here.href) return undefined;
    return url.href;
  };

  const { nextSelector } = page.source;
  if (nextSelector) {
    let matches: DomElement[];
    try {
      matches = [...document.querySelectorAll(nextSelector)];
    } catch (error) {
      throw new TypeError(
        `Cannot find the next page as the nextSelector '${nextSelector}' of sources line ${page.source.line} is not valid CSS: ${
          (error as Error).message
        }`,
      );
    }
    for (const match of matches) {
      const link = match.getAttribute("href") !== null ? match : match.querySelector("a[href]");
      const url = accept(link?.getAttribute("href"));
      if (url) return url;
    }
    return undefined;
  }

  for (const link of document.querySelectorAll("link[rel][href], a[rel][href]")) {
    const rel = (link.getAttribute("rel") ?? "").toLowerCase().split(/\s+/);
    if (!rel.includes("next")) continue;
    const url = accept(link.getAttribute("href"));
    if (url) return url;
  }
  for (const link of document.querySelectorAll("a[href]")) {
    const labels = [
      normalizeText(link.textContent ?? ""),
      normalizeText(link.getAttribute("aria-label") ?? ""),
      normalizeText(link.getAttribute("title") ?? ""),
    ];
    if (!labels.some((label) => NEXT_TEXT.test(label))) continue;
    const url = accept(link.getAttribute("href"));
    if (url) return url;
  }
  return undefined;
}
