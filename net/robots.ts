/**
 * robots.txt and X-Robots-Tag: what a site says a crawler may fetch, and what it may use.
 */
import robotsParserModule from "robots-parser";

/** The product token robots.txt groups and X-Robots-Tag prefixes are matched against. */
export const ROBOTS_AGENT = "facefield";

export interface Robot {
  isAllowed(url: string, ua?: string): boolean | undefined;
  /** The file's `Sitemap:` lines, as written. */
  getSitemaps(): string[];
}

// robots-parser's index.d.ts wraps its types in `declare module`, which hides the call
// signature from Deno; the runtime default export is the parser function.
const robotsParser = robotsParserModule as unknown as (url: string, contents: string) => Robot;

/** Parses a robots.txt body fetched from `robotsUrl`. */
export function parseRobots(robotsUrl: string, body: Uint8Array): Robot {
  return robotsParser(robotsUrl, new TextDecoder().decode(body));
}

/** X-Robots-Tag directives that forbid using a page or an image for AI, as img2dataset reads them. */
export const NO_AI_DIRECTIVES = ["noai", "noimageai", "none"] as const;

/** Directives that carry a value after a colon, so `name:` before them is not a user agent. */
const VALUED = new Set([
  "unavailable_after",
  "max-snippet",
  "max-image-preview",
  "max-video-preview",
]);

/**
 * The first directive of NO_AI_DIRECTIVES that applies to facefield in X-Robots-Tag values
 * (`noai`, `otherbot: noindex`, `facefield: none`), or undefined. A directive after another
 * agent's prefix is that agent's, until the next prefix.
 */
export function noAiDirective(header: string | null): string | undefined {
  if (!header) return undefined;
  let agent: string | undefined;
  for (const raw of header.split(",")) {
    let token = raw.trim().toLowerCase();
    const prefix = /^([\w.-]+)\s*:\s*(.*)$/.exec(token);
    if (prefix && !VALUED.has(prefix[1]!)) {
      agent = prefix[1];
      token = prefix[2]!.trim();
    }
    if (agent !== undefined && agent !== ROBOTS_AGENT && agent !== "*") continue;
    for (const word of token.split(/\s+/)) {
      if ((NO_AI_DIRECTIVES as readonly string[]).includes(word)) return word;
    }
  }
  return undefined;
}
