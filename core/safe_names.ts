/**
 * Values from pages (categories, ids) become file names in an export. `safeName` maps each to a
 * name that stays inside its folder and that every reader and file system takes, and keeps
 * distinct values distinct: a value it must change gets `~` and a hash of the original.
 */
import { sha256Hex } from "./ids.ts";

/** Longest name `safeName` gives, in UTF-8 bytes: room for an extension under 255. */
export const MAX_NAME_BYTES = 96;

/** Windows' reserved device names, with or without an extension (`con`, `COM1.txt`). */
const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(\..*)?$/i;

/**
 * Characters no name keeps: path separators, what Windows forbids, `~` (our marker), and every
 * control, format, private-use or unassigned code point (NUL, newline, bidi overrides).
 */
const UNSAFE = /[\p{C}"*/:<>?\\|~]/gu;

export interface SafeNameOptions {
  /**
   * Whether a dot may stay inside the name (WebDataset keys end at their first dot).
   * @default true
   */
  dots?: boolean;
}

function truncateUtf8(text: string, maxBytes: number): string {
  const encoder = new TextEncoder();
  let out = "";
  let bytes = 0;
  for (const char of text) {
    const size = encoder.encode(char).length;
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}

/**
 * A file name for `value`: the value itself when it is already safe, else its safe characters
 * (at most `MAX_NAME_BYTES`), `~` and the first 8 hex digits of its sha256.
 *
 * @example
 * ```ts
 * safeName("physics"); // "physics"
 * safeName("../x"); // "x~…" (8 hex digits)
 * ```
 */
export function safeName(value: string, options: SafeNameOptions = {}): string {
  const { dots = true } = options;
  let name = value.normalize("NFC").replace(UNSAFE, "_");
  if (!dots) name = name.replace(/\./g, "_");
  // No leading dot (hidden, `.`, `..`), no leading or trailing space or dot (Windows drops them).
  name = name.replace(/^[\s.]+|[\s.]+$/gu, "");
  if (RESERVED.test(name)) name = `_${name}`;
  if (name === value && new TextEncoder().encode(name).length <= MAX_NAME_BYTES) return name;
  const kept = truncateUtf8(name, MAX_NAME_BYTES - 9).replace(/[\s.]+$/u, "");
  return `${kept || "_"}~${sha256Hex(value).slice(0, 8)}`;
}
