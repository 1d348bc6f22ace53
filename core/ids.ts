import { createHash } from "node:crypto";

/** Hex sha256 of bytes or a string. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * The seed study's short stable id (8 hex chars) for a person record: the same person on the
 * same page with the same image gets the same id in every run.
 *
 * @example
 * ```ts
 * personId("cs", "https://uni.example/p/a.jpg", "Ada Lovelace"); // "3f1c9a0b"-like
 * ```
 */
export function personId(category: string, imageUrl: string, name: string): string {
  return sha256Hex(`${category}\n${imageUrl}\n${name}`).slice(0, 8);
}

/** Stable short hash of a settings object, for cache keys. Key order does not matter. */
export function settingsHash(settings: Record<string, unknown>): string {
  const sorted = Object.keys(settings).sort().map((k) => [k, settings[k]]);
  return sha256Hex(JSON.stringify(sorted)).slice(0, 12);
}
