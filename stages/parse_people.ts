/**
 * Stage "parse people": every (name, portrait) pair on a fetched staff page, found by one
 * generic extractor instead of one crawler per site. Per-source CSS selectors are the escape
 * hatch for pages the heuristics cannot read.
 */
import { concatMap, type OperatorFunction } from "rxjs";
import { personId } from "../core/ids.ts";
import type { FetchedPage, PersonRecord } from "../core/types.ts";
import { baseUrlOf, isTitleToken, pageDocument, releaseDocument } from "./people/dom.ts";
import { type ExtractorSettings, PageModel, type Pair } from "./people/page_model.ts";

export { findNextPageUrl } from "./people/next_page.ts";

/** Tunables of the generic extractor. */
export interface ParsePeopleOptions {
  /**
   * An image that declares a width or height (attribute or inline CSS) below this many pixels
   * is an icon, not a portrait.
   * @default 40
   */
  minImageSide?: number;
  /**
   * An image whose declared width:height (or height:width) exceeds this ratio is a banner or a
   * strip, not a portrait.
   * @default 2.5
   */
  maxAspectRatio?: number;
  /**
   * How many ancestors above an image are searched for the person's name before giving up.
   * @default 6
   */
  maxContainerDepth?: number;
}

function checkOptions(options: ParsePeopleOptions | undefined): ExtractorSettings {
  const { minImageSide = 40, maxAspectRatio = 2.5, maxContainerDepth = 6 } = options ?? {};
  if (!Number.isFinite(minImageSide) || minImageSide < 0) {
    throw new RangeError(
      `Cannot parse people as 'minImageSide' must be a non-negative number: current value is ${minImageSide}`,
    );
  }
  if (!Number.isFinite(maxAspectRatio) || maxAspectRatio < 1) {
    throw new RangeError(
      `Cannot parse people as 'maxAspectRatio' must be a number of at least 1: current value is ${maxAspectRatio}`,
    );
  }
  if (!Number.isInteger(maxContainerDepth) || maxContainerDepth < 1) {
    throw new RangeError(
      `Cannot parse people as 'maxContainerDepth' must be a positive integer: current value is ${maxContainerDepth}`,
    );
  }
  return { minImageSide, maxAspectRatio, maxContainerDepth };
}

/**
 * Stage: every (name, portrait) pair on a fetched page, in page order.
 *
 * @example
 * ```ts
 * const people = await lastValueFrom(from(pages).pipe(parsePeople(), toArray()));
 * ```
 */
export function parsePeople(
  options?: ParsePeopleOptions,
): OperatorFunction<FetchedPage, PersonRecord> {
  checkOptions(options);
  return concatMap((page: FetchedPage) => extractPeople(page, options));
}

/**
 * People found with the default options, per page: `fetchPages` asks whether a page shows
 * people (to decide on the browser) and `parsePeople` then reads the same answer.
 */
const defaultPeople = new WeakMap<FetchedPage, PersonRecord[]>();

/**
 * Drops what was worked out for `page` (its parse, its people): `fetchPages` calls it once the
 * page has gone downstream and its next page is known. Asking again works it out again.
 */
export function releasePage(page: FetchedPage): void {
  defaultPeople.delete(page);
  releaseDocument(page);
}

/** Pure function the stage maps over: the people on one page, de-duplicated, in page order. */
export function extractPeople(page: FetchedPage, options?: ParsePeopleOptions): PersonRecord[] {
  if (options !== undefined) return findPeople(page, options);
  let people = defaultPeople.get(page);
  if (!people) {
    people = findPeople(page, undefined);
    defaultPeople.set(page, people);
  }
  return people.map((person) => ({ ...person }));
}

function findPeople(page: FetchedPage, options: ParsePeopleOptions | undefined): PersonRecord[] {
  const settings = checkOptions(options);
  const document = pageDocument(page);
  const model = new PageModel(document, baseUrlOf(document, page.url), page.source, settings);
  const pairs = page.source.personSelector ? model.pairsBySelector() : model.pairsByHeuristics();

  // The same person may be written two ways ("Prof. Dr. Hans Müller", "Müller, Hans"): compare
  // names by their words without titles, keep the first spelling.
  const seen = new Set<string>();
  const peopleByUrl = new Map<string, Set<string>>();
  const unique: Pair[] = [];
  for (const pair of pairs) {
    const person = personKey(pair.name);
    const key = `${pair.url}\n${person}`;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(pair);
    const people = peopleByUrl.get(pair.url) ?? new Set();
    people.add(person);
    peopleByUrl.set(pair.url, people);
  }
  const category = page.source.category;
  return unique
    // One image shown for several different people is a "no photo" stand-in.
    .filter((pair) => peopleByUrl.get(pair.url)!.size === 1)
    .map(({ url, name, role }) => ({
      id: personId(category, url, name),
      category,
      imageUrl: url,
      name,
      ...(role ? { role } : {}),
      pageUrl: page.url,
    }));
}

/** A name's words without titles or punctuation, sorted: equal for two spellings of one name. */
function personKey(name: string): string {
  return name.split(" ")
    .map((token) => token.replace(/,$/, ""))
    .filter((token) => token && !isTitleToken(token))
    .map((token) => token.toLowerCase())
    .sort()
    .join(" ");
}
