import { createHash } from "node:crypto";

/** Hex sha256 of bytes or a string. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Hex digits of a record id: 64 bits, so 100,000 records collide with odds of about 3 in 10^10. */
export const PERSON_ID_LENGTH = 16;

/**
 * Hex digits of a record id in data dirs made before ids were widened: the seed study's 8, whose
 * 32 bits gave two of 100,000 people one id more often than not (one was then lost). Such an id is the first 8 digits of the
 * record's id now, so an old export's id still names its person.
 */
export const LEGACY_PERSON_ID_LENGTH = 8;

/**
 * A person record's stable id: the same person on the same page with the same image gets the
 * same id in every run.
 *
 * @example
 * ```ts
 * personId("cs", "https://uni.example/p/a.jpg", "Ada Lovelace"); // "3f1c9a0b6d2e4f81"-like
 * ```
 */
export function personId(category: string, imageUrl: string, name: string): string {
  return personHash(category, imageUrl, name).slice(0, PERSON_ID_LENGTH);
}

/** The id `personId` gave the same record before ids were widened to 16 hex digits. */
export function legacyPersonId(category: string, imageUrl: string, name: string): string {
  return personHash(category, imageUrl, name).slice(0, LEGACY_PERSON_ID_LENGTH);
}

function personHash(category: string, imageUrl: string, name: string): string {
  return sha256Hex(`${category}\n${imageUrl}\n${name}`);
}

/**
 * Whether a record id answers to `asked`: the id itself, or, for an id `personId` made, its
 * legacy 8-digit prefix (an id from an index.csv or export written before ids were widened).
 */
export function idAnswersTo(id: string, asked: string): boolean {
  return id === asked || (asked.length === LEGACY_PERSON_ID_LENGTH && legacyIdOf(id) === asked);
}

/** The id a widened record id had before (its first 8 digits); undefined for any other id. */
export function legacyIdOf(id: string): string | undefined {
  return id.length === PERSON_ID_LENGTH && HEX.test(id)
    ? id.slice(0, LEGACY_PERSON_ID_LENGTH)
    : undefined;
}

const HEX = /^[0-9a-f]+$/;

/** Stable short hash of a settings object, for cache keys. Key order does not matter. */
export function settingsHash(settings: Record<string, unknown>): string {
  const sorted = Object.keys(settings).sort().map((k) => [k, settings[k]]);
  return sha256Hex(JSON.stringify(sorted)).slice(0, 12);
}
