/**
 * sitemap.xml as discovery reads it: the page addresses of a `<urlset>` and the child sitemaps
 * of a `<sitemapindex>`, gzipped or not, read within a byte cap (a gzip bomb stops at the cap)
 * and a count cap (a sitemap of 50,000 addresses gives its first `maxUrls`).
 */

/** What one sitemap file held. */
export interface SitemapContents {
  /** Page addresses (`<url><loc>`), at most `maxUrls`. */
  urls: string[];
  /** Child sitemaps (`<sitemap><loc>`), at most `maxUrls`. */
  sitemaps: string[];
  /** How many `<loc>` the file had in all, kept or not. */
  total: number;
}

/** The decompressed bytes of a gzip body, or a reason when they pass `maxBytes`. */
export async function gunzipCapped(
  body: Uint8Array,
  maxBytes: number,
): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; reason: string }> {
  const stream = new Blob([body as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip"));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        return { ok: false, reason: `too_large: sitemap inflates past ${maxBytes} bytes` };
      }
      chunks.push(value);
    }
  } catch {
    return { ok: false, reason: "bad_encoding: the gzipped sitemap is corrupt" };
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return { ok: true, bytes };
}

/** True when the bytes start with gzip's magic number (a `.xml.gz` served as a file). */
export function isGzip(body: Uint8Array): boolean {
  return body.length >= 2 && body[0] === 0x1f && body[1] === 0x8b;
}

const ENTITIES: Record<string, string> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&apos;": "'",
};

/**
 * The addresses of a sitemap's text. Read with a regular expression rather than an XML parser:
 * a sitemap is flat, and the expression never builds a tree of 50,000 nodes.
 */
export function readSitemap(text: string, maxUrls: number): SitemapContents {
  const contents: SitemapContents = { urls: [], sitemaps: [], total: 0 };
  const index = /<sitemapindex[\s>]/i.test(text);
  const loc = /<loc>\s*([^<\s]+)\s*<\/loc>/gi;
  for (let match = loc.exec(text); match; match = loc.exec(text)) {
    contents.total++;
    const list = index ? contents.sitemaps : contents.urls;
    if (list.length >= maxUrls) continue;
    list.push(match[1]!.replace(/&(amp|lt|gt|quot|apos);/g, (entity) => ENTITIES[entity]!));
  }
  return contents;
}
