/**
 * The generic extractor's reading of one page (stages/parse_people.ts): the page's DOM indexed
 * for the heuristics, its portrait candidates, and the name (and role) each one shows, found by
 * per-source selectors or by the heuristics' search of the containers around an image.
 */
import type { SourceRow } from "../../core/types.ts";
import {
  blockText,
  declaredSize,
  type DomDocument,
  type DomElement,
  type DomNode,
  ELEMENT_NODE,
  hasNoiseWords,
  inPageChrome,
  isPageChrome,
  nameQuality,
  normalizeText,
  rawImageUrlOf,
  resolveHttpUrl,
  tagOf,
  TEXT_NODE,
} from "./dom.ts";
import { cleanRole, isDegreePart, looksLikeRole, type NameAndRole, splitName } from "./names.ts";

/** The extractor's tunables with their defaults filled in (stages/parse_people.ts checks them). */
export interface ExtractorSettings {
  minImageSide: number;
  maxAspectRatio: number;
  maxContainerDepth: number;
}

/** A portrait and the name (and role) found for it. */
export interface Pair extends NameAndRole {
  url: string;
}

/** A portrait candidate: the element showing an image and the image's absolute URL. */
export interface ImageCandidate {
  element: DomElement;
  url: string;
}

/** Headings of sections whose cards show projects, papers or partners, never people. */
const NOT_PEOPLE_SECTION =
  /^(our |unsere |current |laufende |aktuelle |selected |ausgewählte )*(research |forschungs)?(projects?|projekte|publications?|publikationen|papers|partners?|sponsors?|förderer|funding|news|aktuelles|neuigkeiten|software|tools|datasets?|datensätze|events|veranstaltungen|gallery|galerie)$/i;

/** Elements whose text is never a person's name on the page. */
const SKIPPED_TAGS = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "button",
  "select",
  "option",
  "textarea",
  "svg",
]);

/** Prefixes alt texts put before a name: "Portrait of Ada Lovelace", "Foto: Hans Müller". */
const ALT_PREFIX =
  /^(portrait|porträt|portraitfoto|photo|foto|bild|picture|image|profilbild|profile picture|headshot)(\s+(of|von|de))?\s*[:\-–]?\s+/i;

/** A child of a flat flow: one holding a portrait, or one holding a name. */
interface FlowItem {
  kind: "image" | "name";
  node: DomNode;
  name?: NameAndRole;
}

/** A name-like text found in a container, with how strongly its place suggests a name. */
interface ScoredName {
  name: NameAndRole;
  score: number;
  /** The node the text came from, for finding a role line beside it. */
  node: DomNode;
}

/** One page's DOM with the indexes the heuristics need. */
export class PageModel {
  /** Document order of every node, for "nearest text" tie-breaks. */
  readonly #order = new Map<DomNode, number>();
  /** Distinct portrait candidate URLs inside each element. */
  readonly #urlsInside = new Map<DomNode, Set<string>>();
  readonly #nameElements: Set<DomElement> | undefined;
  readonly #flowCache = new Map<DomElement, FlowItem[]>();
  /** Every h2–h6 in document order, for the section heading a person stands under. */
  readonly #headings: DomElement[] = [];
  /** How many portraits with different URLs carry each alt text: a shared alt names nobody. */
  readonly #altUse = new Map<string, Set<string>>();
  readonly candidates: ImageCandidate[] = [];

  constructor(
    readonly document: DomDocument,
    readonly baseUrl: string,
    readonly source: SourceRow,
    readonly settings: ExtractorSettings,
  ) {
    let index = 0;
    const stack: DomNode[] = [document.documentElement];
    while (stack.length > 0) {
      const node = stack.pop()!;
      this.#order.set(node, index++);
      // The h1 titles the page ("Staff", "People"), not a section of it.
      if (node.nodeType === ELEMENT_NODE && /^h[2-6]$/.test(tagOf(node as DomElement))) {
        this.#headings.push(node as DomElement);
      }
      const children = node.childNodes;
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
    this.#nameElements = source.nameSelector && !source.personSelector
      ? new Set(this.#select(document, source.nameSelector, "nameSelector"))
      : undefined;
    if (!source.personSelector) this.#collectCandidates();
  }

  /** Heuristic path: each candidate portrait paired with the name nearest to it. */
  pairsByHeuristics(): Pair[] {
    const pairs: Pair[] = [];
    for (const candidate of this.candidates) {
      // Cards under "Projects" or "Publications" on a page that also lists people are not people.
      const section = this.#sectionHeading(candidate.element);
      if (section !== undefined && NOT_PEOPLE_SECTION.test(section)) continue;
      const name = this.#nameFor(candidate);
      if (name) pairs.push({ url: candidate.url, ...name });
    }
    return pairs;
  }

  /** Override path: one person per `personSelector` match. */
  pairsBySelector(): Pair[] {
    const { personSelector, imageSelector, nameSelector } = this.source;
    const pairs: Pair[] = [];
    for (const container of this.#select(this.document, personSelector!, "personSelector")) {
      const images = imageSelector
        ? this.#select(container, imageSelector, "imageSelector")
        : [container, ...this.#select(container, "*", "")];
      let image: ImageCandidate | undefined;
      for (const element of images) {
        const url = this.#portraitUrl(element, !imageSelector);
        if (url) {
          image = { element, url };
          break;
        }
      }
      if (!image) continue;
      let name: NameAndRole | undefined;
      if (nameSelector) {
        const element = this.#select(container, nameSelector, "nameSelector")[0];
        const text = element ? selectedText(element) : undefined;
        if (text) name = splitName(text) ?? { name: text };
      } else {
        const best = this.#bestNameIn(container, image.element);
        name = best ? this.#withRole(best, container) : this.#attributeName(image.element);
      }
      if (name) pairs.push({ url: image.url, ...name });
    }
    return pairs;
  }

  #select(root: DomDocument | DomElement, selector: string, what: string): DomElement[] {
    try {
      return [...root.querySelectorAll(selector)];
    } catch (error) {
      throw new TypeError(
        `Cannot parse people as the ${what} '${selector}' of sources line ${this.source.line} is not valid CSS: ${
          (error as Error).message
        }`,
      );
    }
  }

  /** The absolute URL of a portrait the element shows, or undefined when it shows none. */
  #portraitUrl(element: DomElement, judgeLayout: boolean): string | undefined {
    const raw = rawImageUrlOf(element);
    // A template's placeholder left in the page ("{{member.image}}", "${photo}") shows nobody.
    if (!raw || /\{\{|\$\{|<%/.test(raw)) return undefined;
    const url = resolveHttpUrl(raw, this.baseUrl);
    if (!url || /\.svgz?$/i.test(new URL(url).pathname)) return undefined;
    if (hasNoiseWords(element, url)) return undefined;
    if (!judgeLayout) return url;
    const { width, height } = declaredSize(element);
    const { minImageSide, maxAspectRatio } = this.settings;
    if (
      (width !== undefined && width < minImageSide) ||
      (height !== undefined && height < minImageSide)
    ) {
      return undefined;
    }
    if (width && height && Math.max(width / height, height / width) > maxAspectRatio) {
      return undefined;
    }
    return inPageChrome(element) ? undefined : url;
  }

  #collectCandidates(): void {
    const { imageSelector } = this.source;
    const elements = imageSelector
      ? this.#select(this.document, imageSelector, "imageSelector")
      : this.#select(this.document, "*", "");
    for (const element of elements) {
      const url = this.#portraitUrl(element, !imageSelector);
      // A lazy image's <noscript> twin would make its card look like two portraits.
      if (!url || hasAncestor(element, "noscript")) continue;
      this.candidates.push({ element, url });
      const alt = normalizeText(element.getAttribute("alt") ?? "");
      if (alt) this.#altUse.set(alt, (this.#altUse.get(alt) ?? new Set()).add(url));
      for (let node: DomElement | null = element; node; node = node.parentElement) {
        const urls = this.#urlsInside.get(node) ?? new Set();
        urls.add(url);
        this.#urlsInside.set(node, urls);
      }
    }
  }

  #urlCount(node: DomNode): number {
    return this.#urlsInside.get(node)?.size ?? 0;
  }

  /**
   * The candidate's name: the best name-like text in the smallest ancestor that shows no other
   * portrait; else the neighbouring text in a flat flow or the same table column; else alt text.
   */
  #nameFor(candidate: ImageCandidate): NameAndRole | undefined {
    const { element } = candidate;
    let solo: DomElement = element;
    let node: DomElement | null = tagOf(element) === "img" ? element.parentElement : element;
    for (let depth = 0; node && depth < this.settings.maxContainerDepth; depth++) {
      if (this.#urlCount(node) > 1) {
        return this.#flatFlowName(solo, node) ?? this.#tableColumnName(element) ??
          this.#attributeName(element);
      }
      const best = this.#bestNameIn(node, element);
      if (best) return this.#withRole(best, node);
      if (tagOf(node) === "body") break;
      solo = node;
      node = node.parentElement;
    }
    return this.#attributeName(element);
  }

  /**
   * The name with its role: what trailed the name, else the first role line ("PhD Student",
   * "Secretary") in the person's own container, else the heading of the section the person
   * stands under ("Administrative Staff", "Alumni").
   */
  #withRole(best: ScoredName, container: DomNode): NameAndRole {
    const degrees = best.name.role !== undefined && best.name.role.split(",").every(isDegreePart)
      ? best.name.role
      : undefined;
    if ((best.name.role && !degrees) || this.#nameElements) return best.name;
    const role = this.#roleLineIn(container, best.node) ?? this.#sectionRole(container);
    // Degrees after the name join the role line: "Research Scientist, PhD".
    if (role && degrees) return { ...best.name, role: `${role}, ${degrees}` };
    return role ? { ...best.name, role } : best.name;
  }

  /**
   * The role a section heading before `node` gives, if the nearest section heading names one.
   * A heading inside one person's card (a name, or that person's role) is not a section's.
   */
  #sectionRole(node: DomNode): string | undefined {
    const text = this.#sectionHeading(node);
    return text !== undefined && text.length <= 80 && looksLikeRole(text)
      ? cleanRole(text)
      : undefined;
  }

  /**
   * The text of the nearest section heading before `node`, outside any one person's card and
   * not itself a name; undefined when there is none.
   */
  #sectionHeading(node: DomNode): string | undefined {
    const at = this.#order.get(node) ?? 0;
    let low = 0, high = this.#headings.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.#order.get(this.#headings[middle]!) ?? 0) < at) low = middle + 1;
      else high = middle;
    }
    for (let i = low - 1; i >= 0; i--) {
      const heading = this.#headings[i]!;
      if (isInside(node, heading)) continue;
      let card: DomElement | null = heading;
      while (card && this.#urlCount(card) === 0) card = card.parentElement;
      // Inside another person's card, not a section around this one.
      if (card && this.#urlCount(card) === 1 && !isInside(node, card)) continue;
      const text = normalizeText(heading.textContent ?? "");
      if (!text || splitName(text)) continue;
      return text;
    }
    return undefined;
  }

  /** The first short text in `container`, other than the name's own, that names a role. */
  #roleLineIn(container: DomNode, nameNode: DomNode): string | undefined {
    const stack: DomNode[] = [container];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node === nameNode) continue;
      if (node.nodeType === TEXT_NODE) {
        const text = normalizeText(node.textContent ?? "");
        if (!text || !looksLikeRole(text)) continue;
        // The whole line, where the parser split it at an entity ("Ecology &amp; Conservation").
        const parent = node.parentElement;
        // Not where the parent holds the name too, or breaks its text into lines.
        const line = parent && parent !== container && !isInside(nameNode, parent) &&
            !parent.querySelector("br")
          ? normalizeText(parent.textContent ?? "")
          : "";
        const role = line.length <= 100 && looksLikeRole(line) ? line : text;
        return cleanRole(role) || undefined;
      }
      if (node.nodeType !== ELEMENT_NODE) continue;
      const element = node as DomElement;
      if (SKIPPED_TAGS.has(tagOf(element)) || isPageChrome(element)) continue;
      const children = element.childNodes;
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
    return undefined;
  }

  /** A name from the image's alt or title, unless that alt is shared by other portraits. */
  #attributeName(image: DomElement): NameAndRole | undefined {
    const alt = normalizeText(image.getAttribute("alt") ?? "");
    const shared = (this.#altUse.get(alt)?.size ?? 0) > 1;
    return attributeName(image, shared);
  }

  /** The highest-scoring name-like text inside `container`, nearest to `near` on ties. */
  #bestNameIn(container: DomNode, near: DomNode): ScoredName | undefined {
    const nearOrder = this.#order.get(near) ?? 0;
    let best: (ScoredName & { distance: number }) | undefined;
    const consider = (name: NameAndRole, tagScore: number, node: DomNode) => {
      const score = tagScore + nameQuality(name.name);
      const distance = Math.abs((this.#order.get(node) ?? 0) - nearOrder);
      if (
        !best || score > best.score || (score === best.score && distance < best.distance)
      ) {
        best = { name, score, distance, node };
      }
    };
    // A run of adjacent text nodes is one line of text (parsers split text at entities).
    const considerRun = (run: DomNode[]) => {
      const parent = run[0]?.parentElement;
      if (!parent || this.#nameElements) return;
      const joined = run.map((node) => node.textContent ?? "").join("");
      const name = splitName(joined);
      if (name) consider(name, elementScore(parent) - 0.5, run[0]!);
    };
    const visit = (node: DomNode) => {
      if (node.nodeType === TEXT_NODE) return considerRun([node]);
      if (node.nodeType !== ELEMENT_NODE) return;
      const element = node as DomElement;
      if (SKIPPED_TAGS.has(tagOf(element)) || isPageChrome(element)) return;
      if (this.#nameElements) {
        if (this.#nameElements.has(element)) {
          const text = selectedText(element);
          if (text) consider(splitName(text) ?? { name: text }, 100, element);
        }
      } else if (!element.querySelector("br")) {
        // Text joined from several parts ("Name" + "Role") reads as one long name: prefer a part.
        const length = normalizeText(element.textContent ?? "").length;
        const { text, parts } = length <= 120 ? blockText(element) : { text: "", parts: 0 };
        const name = text ? splitName(text) : undefined;
        if (name) {
          const penalty = textParts(element) > 1 || parts > 1 ? 1.5 : 0;
          consider(name, elementScore(element) - penalty, element);
        }
      }
      let run: DomNode[] = [];
      for (const child of element.childNodes) {
        if (child.nodeType === TEXT_NODE) {
          run.push(child);
          continue;
        }
        considerRun(run);
        run = [];
        visit(child);
      }
      considerRun(run);
    };
    visit(container);
    return best;
  }

  /**
   * Name for a portrait whose wrapper (`solo`) sits among siblings holding other portraits:
   * pages list "photo, name, photo, name" or "name, photo, name, photo" without a wrapper per
   * person, and the first item tells which way the pairs go.
   */
  #flatFlowName(solo: DomElement, parent: DomElement): NameAndRole | undefined {
    const items = this.#flowItems(parent);
    const at = items.findIndex((item) => item.node === solo);
    if (at < 0) return undefined;
    const step = items[0]!.kind === "name" ? -1 : 1;
    const neighbour = items[at + step];
    return neighbour?.kind === "name" ? neighbour.name : undefined;
  }

  /** The parent's children as portraits and names, computed once per parent. */
  #flowItems(parent: DomElement): FlowItem[] {
    const cached = this.#flowCache.get(parent);
    if (cached) return cached;
    const items: FlowItem[] = [];
    for (const child of parent.childNodes) {
      if (this.#urlCount(child) > 0) {
        items.push({ kind: "image", node: child });
        continue;
      }
      if (child.nodeType === ELEMENT_NODE) {
        const element = child as DomElement;
        if (SKIPPED_TAGS.has(tagOf(element)) || isPageChrome(element)) continue;
      }
      const found = this.#bestNameIn(child, child);
      if (found) items.push({ kind: "name", node: child, name: this.#withRole(found, child) });
    }
    this.#flowCache.set(parent, items);
    return items;
  }

  /** Name for a photo in a table row of photos: the same column in the next (or previous) row. */
  #tableColumnName(image: DomElement): NameAndRole | undefined {
    let cell: DomElement | null = image.parentElement;
    while (cell && !["td", "th"].includes(tagOf(cell))) cell = cell.parentElement;
    const row = cell?.parentElement;
    if (!cell || !row || tagOf(row) !== "tr") return undefined;
    const column = [...row.children].indexOf(cell);
    for (const neighbour of [row.nextElementSibling, row.previousElementSibling]) {
      if (!neighbour || tagOf(neighbour) !== "tr" || this.#urlCount(neighbour) > 0) continue;
      const other = neighbour.children[column];
      const found = other ? this.#bestNameIn(other, image) : undefined;
      if (found) return this.#withRole(found, other!);
    }
    return undefined;
  }
}

function isInside(node: DomNode, ancestor: DomNode): boolean {
  for (let at: DomNode | null = node; at; at = at.parentNode) if (at === ancestor) return true;
  return false;
}

function hasAncestor(element: DomElement, tag: string): boolean {
  for (let node = element.parentElement; node; node = node.parentElement) {
    if (tagOf(node) === tag) return true;
  }
  return false;
}

/** How many child elements carry text of their own ("Name" + "Role" makes two). */
function textParts(element: DomElement): number {
  let parts = 0;
  for (const child of element.children) {
    if (normalizeText(child.textContent ?? "")) parts++;
  }
  return parts;
}

/** How strongly an element's tag and class suggest it holds the name. */
function elementScore(element: DomElement): number {
  const tag = tagOf(element);
  let score = 0;
  if (/^h[1-6]$/.test(tag)) score += 3;
  else if (tag === "strong" || tag === "b") score += 2;
  else if (["figcaption", "caption", "dt", "th", "a", "summary"].includes(tag)) score += 1.5;
  const marks = `${element.getAttribute("class") ?? ""} ${element.getAttribute("itemprop") ?? ""}`
    .toLowerCase();
  if (/name/.test(marks)) score += 3;
  if (/role|position|function|funktion|job|department|email|phone|subtitle/.test(marks)) score -= 2;
  return score;
}

/** Text of a `nameSelector` match: its text, else the alt or title of an image it is. */
function selectedText(element: DomElement): string | undefined {
  const text = blockText(element).text ||
    normalizeText(element.getAttribute("alt") ?? element.getAttribute("title") ?? "");
  return text || undefined;
}

/** A name from the image's own alt or title, or its link's title or aria-label. */
function attributeName(image: DomElement, altShared = false): NameAndRole | undefined {
  const link = image.parentElement && tagOf(image.parentElement) === "a"
    ? image.parentElement
    : undefined;
  const values = [
    altShared ? null : image.getAttribute("alt"),
    image.getAttribute("title"),
    image.getAttribute("aria-label"),
    link?.getAttribute("title"),
    link?.getAttribute("aria-label"),
  ];
  for (const value of values) {
    const name = splitName(normalizeText(value ?? "").replace(ALT_PREFIX, ""));
    if (name) return name;
  }
  return undefined;
}
