/**
 * A labelled image list, as bytes arrive, to person records: for users who already have their
 * portraits and labels and skip the crawl. Each row names an image (an http(s) URL, a
 * `file:` URL or a path, relative to the list's folder), a category, and optionally a name, a
 * source (the group a leave-one-source-out check holds out) and an id. The seed study's own
 * `index.csv` (`id,category,image_url,name`) reads as it is, and so does facefield's manifest.
 *
 * Lines are parsed one at a time, as `read_sources.ts` does and for its reason: a quoting error
 * stays on its line instead of swallowing the rows after it.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Observable, type OperatorFunction } from "rxjs";
import { legacyPersonId, personId } from "../core/ids.ts";
import type { PersonRecord } from "../core/types.ts";
import { parseCsvLine } from "./csv_line.ts";
import { subscribeLines } from "./_lines.ts";

/** The list as a whole cannot be read (no header, no image or category column). */
export class ImageListFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ImageListFormatError";
  }
}

/** The fields a list row fills, each found under one of several header names. */
export type ImageListField = "image" | "category" | "name" | "source" | "id";

/** Header names each field is looked for under, first match wins. */
export const IMAGE_LIST_ALIASES: Record<ImageListField, readonly string[]> = {
  image: ["image_url", "image", "image_path", "path", "file", "url", "photo"],
  category: ["category", "label", "class"],
  name: ["name"],
  source: ["source", "group", "page_url"],
  id: ["id"],
};

export type ImageListItem =
  | { kind: "person"; line: number; person: PersonRecord }
  | {
    kind: "invalid";
    line: number;
    reason: string;
    /** What the row still says, when it names enough to be kept in the manifest. */
    person?: PersonRecord;
  };

export interface ReadImageListOptions {
  /**
   * Folder that relative image paths resolve against: the list's own folder.
   * @default Deno.cwd()
   */
  baseDir?: string;
  /**
   * Header names to use for each field, where the aliases would not find them (a CSV whose
   * label column is `party`). Matched case-insensitively.
   * @default {}
   */
  columns?: Partial<Record<ImageListField, string>>;
  /**
   * Longest line accepted, in characters; longer lines are reported and skipped.
   * @default 65536
   */
  maxLineLength?: number;
}

/** Ids the list may give: any short token safe in a file name. */
const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** The image field as a URL: http(s) and file URLs as given, anything else a path. */
function imageUrlOf(value: string, baseDir: string): { url: string } | { error: string } {
  // A drive letter ("C:\…") is a path, not a URL scheme.
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) return { url: pathToFileURL(resolve(baseDir, value)).href };
  if (scheme === "http" || scheme === "https" || scheme === "file") {
    try {
      return { url: new URL(value).href };
    } catch {
      return { error: "bad_image: not a valid URL" };
    }
  }
  return { error: `bad_image: ${scheme}: is not http, https, file or a path` };
}

/** Maps each field to its column index, from explicit names first, then the aliases. */
function readHeader(
  fields: string[],
  columns: Partial<Record<ImageListField, string>>,
  line: number,
): Partial<Record<ImageListField, number>> {
  const names = fields.map((field) => field.trim().toLowerCase());
  const index: Partial<Record<ImageListField, number>> = {};
  for (const field of Object.keys(IMAGE_LIST_ALIASES) as ImageListField[]) {
    const wanted = columns[field];
    if (wanted !== undefined) {
      const at = names.indexOf(wanted.trim().toLowerCase());
      if (at < 0) {
        throw new ImageListFormatError(
          `image list header (line ${line}) has no column '${wanted}' for the ${field}: ` +
            `got '${fields.join(",")}'`,
        );
      }
      index[field] = at;
      continue;
    }
    const at = IMAGE_LIST_ALIASES[field].map((alias) => names.indexOf(alias)).find((i) => i >= 0);
    if (at !== undefined) index[field] = at;
  }
  for (const field of ["image", "category"] as const) {
    if (index[field] === undefined) {
      throw new ImageListFormatError(
        `image list header (line ${line}) needs a ${field} column (one of ` +
          `${IMAGE_LIST_ALIASES[field].join(", ")}): got '${fields.join(",")}'`,
      );
    }
  }
  return index;
}

function toItem(
  index: Partial<Record<ImageListField, number>>,
  width: number,
  fields: string[],
  line: number,
  baseDir: string,
): ImageListItem {
  const cell = (field: ImageListField) =>
    index[field] === undefined ? "" : fields[index[field]!]?.trim() ?? "";
  if (fields.length !== width) {
    return {
      kind: "invalid",
      line,
      reason: `column_count: expected ${width} fields, got ${fields.length}`,
    };
  }
  const [image, category, name, source, id] = [
    cell("image"),
    cell("category"),
    cell("name"),
    cell("source"),
    cell("id"),
  ];
  const resolved = image === "" ? { error: "missing_image: the image field is empty" } : imageUrlOf(
    image,
    baseDir,
  );
  const imageUrl = "url" in resolved ? resolved.url : image;
  // Without a source, an image on the web is grouped by its host, as a crawled page would be.
  const pageUrl = source !== ""
    ? source
    : /^https?:/.test(imageUrl)
    ? new URL(imageUrl).origin
    : "";
  // An id facefield made before ids were widened (an old index.csv fed back) is the record's
  // id now, not a second record beside it.
  const goodId = id !== "" && ID_PATTERN.test(id) &&
    id !== legacyPersonId(category, imageUrl, name);
  const person: PersonRecord = {
    id: goodId ? id : personId(category, imageUrl, name),
    category,
    imageUrl,
    name,
    pageUrl,
  };
  const invalid = (reason: string): ImageListItem => ({ kind: "invalid", line, reason, person });
  if ("error" in resolved) return invalid(resolved.error);
  if (category === "") return invalid("missing_category: the category field is empty");
  if (id !== "" && !goodId) {
    return invalid("bad_id: an id is 1 to 64 letters, digits, '.', '_' or '-'");
  }
  return { kind: "person", line, person };
}

/**
 * Turns image list bytes (or text chunks) into person records, each as soon as its line is
 * complete. Blank lines and lines starting with `#` are skipped; a bad row becomes an invalid
 * item with its line and a reason (`missing_image`, `missing_category`, `bad_image`, `bad_id`,
 * `column_count`, `bad_csv`, `line_too_long`), and the list goes on.
 *
 * @example
 * ```ts
 * sourceBytes("index.csv").pipe(readImageList({ baseDir: "." })).subscribe(console.log);
 * ```
 */
export function readImageList(
  options: ReadImageListOptions = {},
): OperatorFunction<Uint8Array | string, ImageListItem> {
  const { baseDir = Deno.cwd(), columns = {}, maxLineLength = 65536 } = options;
  if (!Number.isInteger(maxLineLength) || maxLineLength < 16) {
    throw new RangeError(
      `Cannot read an image list as 'maxLineLength' must be an integer >= 16: current value is ${maxLineLength}`,
    );
  }
  if (typeof baseDir !== "string" || baseDir === "") {
    throw new RangeError("Cannot read an image list as 'baseDir' must be a non-empty path");
  }
  return (input) =>
    new Observable<ImageListItem>((subscriber) => {
      let lineNumber = 0;
      let header: { index: Partial<Record<ImageListField, number>>; width: number } | undefined;

      const handleLine = (raw: string, tooLong: boolean) => {
        lineNumber++;
        const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (tooLong || text.length > maxLineLength) {
          const reason = `line_too_long: over ${maxLineLength} characters`;
          subscriber.next({ kind: "invalid", line: lineNumber, reason });
          return;
        }
        if (text.trim() === "" || text.trim().startsWith("#")) return;
        let fields: string[];
        try {
          fields = parseCsvLine(text);
        } catch (error) {
          const detail = (error as Error).message.replace(/ at line \d+/, "");
          if (!header) {
            throw new ImageListFormatError(`image list header (line ${lineNumber}): ${detail}`);
          }
          subscriber.next({ kind: "invalid", line: lineNumber, reason: `bad_csv: ${detail}` });
          return;
        }
        if (!header) {
          header = { index: readHeader(fields, columns, lineNumber), width: fields.length };
          return;
        }
        subscriber.next(toItem(header.index, header.width, fields, lineNumber, baseDir));
      };

      return subscribeLines(input, subscriber, maxLineLength, handleLine, () => {
        if (!header) throw new ImageListFormatError("image list is empty: it needs a header");
        subscriber.complete();
      });
    });
}
