/**
 * Stage 1: the sources CSV, as bytes arrive, to source rows. A bad row is reported with its line
 * number and skipped; the run goes on.
 *
 * Each line is parsed by csv-parse on its own rather than by one streaming csv-parse over the
 * whole file: after a quoting error csv-parse's stream parser can stay "inside a quote" and
 * swallow the valid rows that follow, while a line at a time keeps the damage to that line.
 * The price is that a quoted field cannot span lines, which no sources file needs.
 */
import { parseHTML } from "linkedom";
import { Observable, type OperatorFunction } from "rxjs";
import { dropped, ok, type Outcome, type RenderMode, type SourceRow } from "../core/types.ts";
import { subscribeLines } from "./_lines.ts";
import { parseCsvLine } from "./csv_line.ts";

/** The sources file as a whole cannot be read (no header, a bad header): the run cannot start. */
export class SourcesFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SourcesFormatError";
  }
}

/** Where in the sources file a row that could not be used stands. */
export interface SourceLine {
  /** 1-based line number in the sources file. */
  line: number;
}

/** A usable row, or a rejected line with its reason. */
export type SourceItem = Outcome<SourceRow, SourceLine>;

function invalidLine(line: number, reason: string): SourceItem {
  return dropped("sources", "rejected", reason, { line });
}

export interface ReadSourcesOptions {
  /**
   * Longest line accepted, in characters; longer lines are reported and skipped, so a binary
   * file without newlines cannot fill memory.
   * @default 65536
   */
  maxLineLength?: number;
}

/** Header names and the SourceRow field each fills as text. */
const COLUMNS = {
  url: "url",
  category: "category",
  person_selector: "personSelector",
  name_selector: "nameSelector",
  image_selector: "imageSelector",
  next_selector: "nextSelector",
} as const satisfies Record<string, keyof SourceRow>;

/** Columns read into something other than text. */
const TYPED_COLUMNS = ["render", "allow_hosts"] as const;

type ColumnName = keyof typeof COLUMNS | typeof TYPED_COLUMNS[number];

const RENDER_MODES: readonly RenderMode[] = ["auto", "http", "browser"];

function isColumnName(name: string): name is ColumnName {
  return Object.hasOwn(COLUMNS, name) || (TYPED_COLUMNS as readonly string[]).includes(name);
}

type SelectorEngine = { querySelectorAll(selector: string): unknown };
let selectorEngine: SelectorEngine | undefined;

/**
 * Why a CSS selector is invalid, or undefined. Checked with linkedom, the engine the parse stage
 * uses, so a typo is reported against its line here instead of failing the run mid-crawl.
 */
function selectorError(selector: string): string | undefined {
  selectorEngine ??= (parseHTML("<html><body></body></html>") as unknown as {
    document: SelectorEngine;
  }).document;
  try {
    selectorEngine.querySelectorAll(selector);
    return undefined;
  } catch (error) {
    return (error as Error).message || "invalid";
  }
}

/** Parses one CSV line into fields, or says why it cannot. */
function parseLine(text: string): { fields: string[] } | { error: string } {
  try {
    return { fields: parseCsvLine(text) };
  } catch (error) {
    return { error: (error as Error).message.replace(/ at line \d+/, "") };
  }
}

/** Validates the header line and returns the column order. Throws: a bad header is a config error. */
function readHeader(fields: string[], line: number): ColumnName[] {
  const names = fields.map((field) => field.trim().toLowerCase());
  const unknown = names.filter((name) => !isColumnName(name));
  const known = [...Object.keys(COLUMNS), ...TYPED_COLUMNS].join(",");
  if (unknown.length > 0 || !names.includes("url") || !names.includes("category")) {
    throw new SourcesFormatError(
      `sources CSV line ${line} must be a header naming the columns url,category and optionally ` +
        `${known.split(",").slice(2).join(",")}: got '${fields.join(",")}'`,
    );
  }
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate) {
    throw new SourcesFormatError(`sources CSV header names '${duplicate}' twice (line ${line})`);
  }
  return names as ColumnName[];
}

function toItem(columns: ColumnName[], fields: string[], line: number): SourceItem {
  const invalid = (reason: string): SourceItem => invalidLine(line, reason);
  if (fields.length !== columns.length) {
    return invalid(`column_count: expected ${columns.length} fields, got ${fields.length}`);
  }
  const source: SourceRow = { line, url: "", category: "" };
  let render = "";
  let allowHosts = "";
  columns.forEach((column, index) => {
    const value = fields[index]?.trim() ?? "";
    if (column === "render") render = value.toLowerCase();
    else if (column === "allow_hosts") allowHosts = value;
    else if (value !== "") source[COLUMNS[column]] = value;
  });
  if (render !== "") {
    if (!(RENDER_MODES as readonly string[]).includes(render)) {
      return invalid(`bad_render: '${render}' is not one of ${RENDER_MODES.join(", ")}`);
    }
    source.render = render as RenderMode;
  }
  if (allowHosts !== "") {
    const hosts = allowHosts.split(/[\s;]+/).filter(Boolean);
    const bad = hosts.find((host) => host !== "*" && !/^[a-z0-9.-]+(:\d{1,5})?$/i.test(host));
    if (bad) return invalid(`bad_allow_hosts: '${bad}' is not a host name`);
    source.allowHosts = hosts;
  }
  if (source.url === "") return invalid("missing_url: the url field is empty");
  if (source.category === "") return invalid("missing_category: the category field is empty");
  let url: URL;
  try {
    url = new URL(source.url);
  } catch {
    return invalid("bad_url: not an absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return invalid(`bad_url: ${url.protocol} is not http or https`);
  }
  for (const column of columns) {
    if (!Object.hasOwn(COLUMNS, column)) continue;
    const selector = source[COLUMNS[column as keyof typeof COLUMNS]];
    if (column.endsWith("_selector") && typeof selector === "string") {
      const error = selectorError(selector);
      if (error) return invalid(`bad_selector: ${column} '${selector}': ${error}`);
    }
  }
  return ok({ ...source, url: url.href });
}

/**
 * Turns sources CSV bytes (or text chunks) into source items, emitting each row as soon as its
 * line is complete. Header: `url,category[,person_selector,name_selector,image_selector,
 * next_selector,render,allow_hosts]` in any order; blank lines and lines starting with `#` are skipped.
 *
 * @example
 * ```ts
 * sourceBytes("data/sources.example.csv").pipe(readSources()).subscribe(console.log);
 * ```
 */
export function readSources(
  options: ReadSourcesOptions = {},
): OperatorFunction<Uint8Array | string, SourceItem> {
  const { maxLineLength = 65536 } = options;
  if (!Number.isInteger(maxLineLength) || maxLineLength < 16) {
    throw new RangeError(
      `Cannot read sources as 'maxLineLength' must be an integer >= 16: current value is ${maxLineLength}`,
    );
  }
  return (input) =>
    new Observable<SourceItem>((subscriber) => {
      let lineNumber = 0;
      let columns: ColumnName[] | undefined;

      const handleLine = (raw: string, tooLong: boolean) => {
        lineNumber++;
        const text = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
        if (tooLong || text.length > maxLineLength) {
          subscriber.next(
            invalidLine(lineNumber, `line_too_long: over ${maxLineLength} characters`),
          );
          return;
        }
        const trimmed = text.trim();
        if (trimmed === "" || trimmed.startsWith("#")) return;
        const parsed = parseLine(text);
        if (!columns) {
          if ("error" in parsed) {
            throw new SourcesFormatError(
              `sources CSV header (line ${lineNumber}) is not CSV: ${parsed.error}`,
            );
          }
          columns = readHeader(parsed.fields, lineNumber);
          return;
        }
        subscriber.next(
          "error" in parsed
            ? invalidLine(lineNumber, `bad_csv: ${parsed.error}`)
            : toItem(columns, parsed.fields, lineNumber),
        );
      };

      return subscribeLines(input, subscriber, maxLineLength, handleLine, () => {
        if (!columns) {
          throw new SourcesFormatError("sources CSV is empty: it needs a header line");
        }
        subscriber.complete();
      });
    });
}

/**
 * The bytes of a sources file, or of stdin for `-`, read lazily on subscribe and cancelled on
 * unsubscribe.
 */
export function sourceBytes(pathOrDash: string): Observable<Uint8Array> {
  return new Observable<Uint8Array>((subscriber) => {
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let cancelled = false;
    (async () => {
      const stream = pathOrDash === "-"
        ? Deno.stdin.readable
        : (await Deno.open(pathOrDash, { read: true })).readable;
      reader = stream.getReader();
      if (cancelled) return void reader.cancel();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        subscriber.next(value);
      }
      subscriber.complete();
    })().catch((error) => {
      if (!cancelled) subscriber.error(error);
    });
    return () => {
      cancelled = true;
      reader?.cancel().catch(() => {});
    };
  });
}
