import assert from "node:assert/strict";
import {
  escapeCell,
  outcomeToRow,
  parseManifest,
  stringifyManifest,
  unescapeCell,
} from "../store/manifest.ts";
import { ok } from "../core/types.ts";

/** A small seeded generator (mulberry32), so a failure names a case that reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Heavy on the characters the neutralisation cares about, with commas, quotes and newlines. */
const ALPHABET = [
  "'",
  "'",
  "'",
  "=",
  "+",
  "-",
  "@",
  "\t",
  "\r",
  "\n",
  ",",
  '"',
  " ",
  "a",
  "Z",
  "ü",
  "😀",
];

function strings(count: number, seed: number): string[] {
  const next = random(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const length = Math.floor(next() * 6);
    let text = "";
    for (let j = 0; j < length; j++) text += ALPHABET[Math.floor(next() * ALPHABET.length)];
    out.push(text);
  }
  return out;
}

const person = {
  id: "0a1b2c3d",
  category: "cs",
  imageUrl: "https://uni.example/a.jpg",
  name: "",
  pageUrl: "https://uni.example/staff",
};

Deno.test("escapeCell() round-trips every string, '= and '' included", () => {
  const named = ["'=1+1", "''", "'", "'t Hooft", "''=x", "'+", "=x", "'''", "'\t", "O'Brien", ""];
  for (const value of [...named, ...strings(20000, 7)]) {
    const escaped = escapeCell(value);
    assert.equal(unescapeCell(escaped), value, JSON.stringify(value));
    assert.ok(
      !/^[=+\-@\t\r]/.test(escaped),
      `escaped cell starts a formula: ${JSON.stringify(escaped)}`,
    );
  }
  assert.equal(escapeCell("'=1+1"), "''=1+1");
  assert.equal(escapeCell("'t Hooft"), "'t Hooft", "a plain apostrophe stays as it is");
});

Deno.test("a manifest written and read back keeps every name exactly", () => {
  const names = ['\'=HYPERLINK("http://x")', "''", "'t Hooft", ...strings(2000, 11)];
  const rows = names.map((name, i) =>
    outcomeToRow(ok({ ...person, id: i.toString(16).padStart(8, "0"), name }), "people")
  );
  const back = parseManifest(stringifyManifest(rows));
  assert.deepEqual(back.map((row) => row.name), names);
});
