/**
 * A person's name split from what trails it on the page: terms and years (`(FA21-)`,
 * `, REU 2017`), degrees with a year (`, Ph.D. 2023`) and roles (`, Postdoc`, `| Secretary`).
 * The clean name goes into the record's `name`, the rest into its `role`.
 */
import WORDS from "./words.json" with { type: "json" };
import { isTitleToken, looksLikeName, normalizeText, wordList } from "./dom.ts";

/** A name as the page shows it (titles kept) and the role or term that trailed it, if any. */
export interface NameAndRole {
  name: string;
  role?: string;
}

/** Lower-case words that make a trailing part a role or a term, never a part of the name. */
const ROLE_WORDS = new Set([
  ...wordList(WORDS.roleWords),
  ...wordList(WORDS.notNameWords.roles),
]);

/** A trailing `(…)` or `[…]`. */
const TRAILING_BRACKETS = /^(.*\S)\s*[([]([^()[\]]*)[)\]]$/u;
/** A trailing part after a comma, semicolon, colon, bar, bullet or a dash between spaces. */
const TRAILING_PART = /^(.*\S)\s*(?:[,;:|·•]|\s[–—-])\s*([^,;:|·•]*[^,;:|·•\s–—-][^,;:|·•]*)$/u;
/** Pronouns written after a name without brackets: "Jane Doe she/her". */
const TRAILING_PRONOUNS =
  /^(.*\S)\s+((?:she|he|they|ze|xe)\/(?:her|him|them|hir|xem)(?:\/\w+)?)$/iu;
/** A role written before the name: "Lab Manager: Jane Doe", "Postdoc | Ines Carvalho". */
const LEADING_PART = /^([^:|–—]{2,60}?)\s*(?::|\||\s[–—-]\s)\s*(.+)$/u;
/** Words of organisations, subjects, bodies and events: never in a name, so a trailing part. */
const ORGANISATION_WORDS = new Set(
  Object.entries(WORDS.notNameWords)
    .filter(([group]) => /^(organisations|subjects|bodies|events)/.test(group))
    .flatMap(([, lines]) => wordList(lines)),
);
/** A trailing e-mail address or web address: "Jane Doe jane.doe@uni.example". */
const TRAILING_ADDRESS = /^(.*\S)\s+[<(]?(\S+@\S+\.\w+|https?:\/\/\S+|www\.\S+)[>)]?$/iu;
/** Trailing words that hold a digit: years, terms, cohorts ("2019–2023", "FA21-", "'19"). */
const TRAILING_NUMBERS = /^(.*?\S)((?:\s+\S*\d\S*)+)$/u;

/** Words of a part, lower case, dots dropped ("Ph.D." → "phd"). */
function partWords(part: string): string[] {
  return part.toLowerCase().split(/[^\p{L}\p{N}.'’-]+/u).map((word) => word.replace(/\./g, ""))
    .filter(Boolean);
}

/** Degrees written after a name without dots ("DiplPsych", "PP"), lower case. */
const DEGREES = new Set(wordList(WORDS.degrees).map((word) => word.toLowerCase()));

/**
 * True when a part after a comma is only degrees ("MSc", "Ph.D.", "DiplPsych", "M.A."): the
 * role column takes them. Initials ("A. B.") and suffixes ("Jr.") are not degrees.
 */
export function isDegreePart(part: string): boolean {
  const tokens = part.trim().split(/\s+/).filter(Boolean);
  if (tokens.length === 0 || tokens.length > 3) return false;
  const degree = (token: string) => {
    const bare = token.replace(/\./g, "").toLowerCase();
    if (bare.length < 2 || /^(jr|sr|ii|iii|iv)$/.test(bare)) return false;
    return DEGREES.has(bare) ||
      (isTitleToken(token) && !/^(prof|dr|mr|mrs|ms|mx|herr|frau|sir|dame)$/i.test(bare));
  };
  return tokens.every(degree);
}

/**
 * True when commas separate three or more parts, two of them whole names ("Anna Schmidt, Jonas
 * Weber, Lea Fischer"): a group photo's caption, not one person written surname first ("Obi,
 * Chiamaka").
 */
function isNameList(text: string): boolean {
  // Two parts stay ambiguous: "García Márquez, Gabriel José" is one person.
  const parts = text.split(",").map((part) => part.trim());
  if (parts.length < 3) return false;
  const whole = parts.filter((part) => {
    const words = part.split(/\s+/).filter((word) => !isTitleToken(word));
    return words.length >= 2 && words.every((word) => /^\p{Lu}/u.test(word));
  });
  return whole.length >= 2;
}

/** True when the trailing part is a role, term or year rather than more of the name. */
function isTrailer(part: string, bracketed: boolean): boolean {
  const text = part.trim();
  if (text === "") return bracketed;
  if (/\d/.test(text)) return true;
  if (!bracketed && isDegreePart(text)) return true;
  const words = partWords(text);
  if (words.some((word) => ROLE_WORDS.has(word))) return true;
  // "Department of Physics", "now at Acme": words a name never has.
  if (words.some((word) => ORGANISATION_WORDS.has(word))) return true;
  // Lower-case asides in brackets: pronouns ("she/her"), "on leave".
  return bracketed && /^\p{Ll}/u.test(text);
}

/**
 * The name in `text` and the role or term that trails it, or undefined when what is left does
 * not read as a name. Degrees after a comma go to the role ("Jane Doe, MSc", "Obi, Chiamaka,
 * M.A."); nicknames in brackets stay with the name ("Mengwei (Vivienne) Liu").
 *
 * @example
 * ```ts
 * splitName("Anita Brown, REU 2017"); // { name: "Anita Brown", role: "REU 2017" }
 * ```
 */
export function splitName(text: string): NameAndRole | undefined {
  const leading = normalizeText(text).match(LEADING_PART);
  if (leading && looksLikeRole(leading[1]!) && !splitName(leading[1]!)) {
    const rest = splitName(leading[2]!);
    if (rest) {
      return { name: rest.name, role: [leading[1]!.trim(), rest.role].filter(Boolean).join(", ") };
    }
  }
  let name = normalizeText(text).replace(/[,;:–-]+$/, "").trim();
  let trailers = 0;
  // A few rounds: "Jane Doe, PhD Student (2019–2023)" trails two parts.
  for (let round = 0; round < 4; round++) {
    const brackets = name.match(TRAILING_BRACKETS);
    if (brackets && isTrailer(brackets[2]!, true)) {
      trailers++;
      name = brackets[1]!;
      continue;
    }
    const address = name.match(TRAILING_ADDRESS);
    if (address) {
      trailers++;
      name = address[1]!;
      continue;
    }
    const pronouns = name.match(TRAILING_PRONOUNS);
    if (pronouns) {
      trailers++;
      name = pronouns[1]!;
      continue;
    }
    const part = name.match(TRAILING_PART);
    if (part && isTrailer(part[2]!, false)) {
      trailers++;
      name = part[1]!;
      continue;
    }
    const numbers = name.match(TRAILING_NUMBERS);
    if (numbers) {
      // Degrees just before a year belong to the trailer: "Jane Doe PhD 2023".
      const words = numbers[1]!.split(" ");
      let keep = words.length;
      while (keep > 2 && isTitleToken(words[keep - 1]!)) keep--;
      trailers++;
      name = words.slice(0, keep).join(" ");
      continue;
    }
    break;
  }
  name = name.replace(/[,;:–-]+$/, "").trim();
  if (!looksLikeName(name) || isNameList(name)) return undefined;
  if (trailers === 0) return { name };
  // The role as the page writes it, without the separator or the brackets around all of it.
  const rest = normalizeText(text).slice(name.length).replace(/^[\s,;:|·•–—-]+/, "").trim();
  const role = cleanRole(rest.match(/^[([]([^()[\]]*)[)\]]$/)?.[1] ?? rest);
  return role ? { name, role } : { name };
}

/**
 * A role as the page writes it, without separators at its ends and without addresses: an
 * e-mail or web address is a contact detail, not a role.
 */
export function cleanRole(text: string): string {
  return normalizeText(
    text.replace(/[<(]?(\S+@\S+\.\w+|https?:\/\/\S+|www\.\S+)[>)]?/giu, ""),
  ).replace(/^[\s,;:|–—-]+|[\s,;:|#¶]+$/g, "");
}

/** True when `text` names a role ("PhD Student", "Secretary"): a role line in a person's card. */
export function looksLikeRole(text: string): boolean {
  if (text.length < 2 || text.length > 80) return false;
  return partWords(text).some((word) => ROLE_WORDS.has(word));
}
