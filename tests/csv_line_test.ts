import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { parseCsvLine } from "../stages/csv_line.ts";

/** What csv-parse makes of the line on its own: the reference the fast path must equal. */
function csvParse(text: string): string[] | Error {
  try {
    return (parse(text, { relax_column_count: true }) as string[][])[0] ?? [];
  } catch (error) {
    return error as Error;
  }
}

function ours(text: string): string[] | Error {
  try {
    return parseCsvLine(text);
  } catch (error) {
    return error as Error;
  }
}

Deno.test("parseCsvLine() splits a line as csv-parse does, edge cases", () => {
  const lines = [
    "",
    "\r",
    "\r\r",
    " ",
    ",",
    ",,",
    "a,,b",
    "a,b\r",
    "a, b ,c",
    "\t,\t",
    "https://uni.example/a?b=1&c=2,cs,.person > img",
    'https://uni.example/x,"quoted, comma",y',
    'a,"say ""hi""",b',
    'a,"unterminated',
    'a,b"c,d',
    "a,b\rc",
    "# a comment, with a comma",
  ];
  for (const line of lines) {
    const reference = csvParse(line);
    const fields = ours(line);
    if (reference instanceof Error) assert.ok(fields instanceof Error, JSON.stringify(line));
    else assert.deepEqual(fields, reference, JSON.stringify(line));
  }
});

Deno.test("parseCsvLine() splits generated lines as csv-parse does", () => {
  const alphabet = ["a", "b", " ", "\t", ",", ",", "\r", '"', "é", "#", "/", ".", "=", ";"];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  let plain = 0;
  for (let n = 0; n < 5_000; n++) {
    const length = Math.floor(next() * 12);
    let line = "";
    for (let i = 0; i < length; i++) line += alphabet[Math.floor(next() * alphabet.length)];
    if (!line.includes('"')) plain++;
    const reference = csvParse(line);
    const fields = ours(line);
    if (reference instanceof Error) assert.ok(fields instanceof Error, JSON.stringify(line));
    else assert.deepEqual(fields, reference, JSON.stringify(line));
  }
  // Most generated lines take the fast path, so the comparison covers it.
  assert.ok(plain > 2_000, `only ${plain} lines without a quote`);
});
