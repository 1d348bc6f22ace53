import assert from "node:assert/strict";
import { firstValueFrom, from, lastValueFrom, type Observable, of, Subject, toArray } from "rxjs";
import { readSources, sourceBytes, type SourceItem } from "../stages/read_sources.ts";

const encoder = new TextEncoder();

function readAll(text: string | Uint8Array[]): Promise<SourceItem[]> {
  const input: Observable<string | Uint8Array> = typeof text === "string" ? of(text) : from(text);
  return lastValueFrom(input.pipe(readSources(), toArray()));
}

Deno.test("readSources() emits valid rows and reports malformed ones by line", async () => {
  const csv = [
    "url,category,person_selector",
    "https://uni.example/cs/staff,cs,.person",
    "# a comment line",
    "",
    ",cs,",
    "https://uni.example/econ,,",
    "ftp://uni.example/files,cs,",
    'https://uni.example/de,"german"x,',
    "https://uni.example/me,me",
    'https://uni.example/econ/people,econ,"div[data-role=""staff""]"',
    "not a url,cs,",
    "https://uni.example/bad-selector,cs,div[",
  ].join("\r\n");
  const items = await readAll(csv);
  const sources = items.flatMap((item) => item.status === "ok" ? [item.record] : []);
  const invalid = items.flatMap((item) =>
    item.status === "ok" ? [] : [{ line: item.record.line, reason: item.reason }]
  );
  assert.deepEqual(sources, [
    { line: 2, url: "https://uni.example/cs/staff", category: "cs", personSelector: ".person" },
    {
      line: 10,
      url: "https://uni.example/econ/people",
      category: "econ",
      personSelector: 'div[data-role="staff"]',
    },
  ]);
  assert.deepEqual(invalid.map((item) => [item.line, item.reason.split(":")[0]]), [
    [5, "missing_url"],
    [6, "missing_category"],
    [7, "bad_url"],
    [8, "bad_csv"],
    [9, "column_count"],
    [11, "bad_url"],
    [12, "bad_selector"],
  ]);
});

Deno.test("readSources() handles chunks split inside a line and a UTF-8 character", async () => {
  const bytes = encoder.encode("\uFEFFurl,category\nhttps://uni.example/ä,Wirtschaft\n");
  // Split inside "ä" (two bytes) and inside the second line.
  const chunks = [bytes.slice(0, 20), bytes.slice(20, 33), bytes.slice(33, 34), bytes.slice(34)];
  const items = await readAll(chunks);
  assert.deepEqual(items, [{
    status: "ok",
    record: { line: 2, url: "https://uni.example/%C3%A4", category: "Wirtschaft" },
  }]);
});

Deno.test("readSources() emits each row before the input ends", () => {
  const input = new Subject<string>();
  const seen: SourceItem[] = [];
  let completed = false;
  input.pipe(readSources()).subscribe({
    next: (item) => seen.push(item),
    complete: () => completed = true,
  });
  input.next("url,category\nhttps://a.example/,a\n");
  assert.deepEqual(seen.length, 1);
  input.next("https://b.example/,");
  assert.deepEqual(seen.length, 1, "an unfinished line waits for its newline");
  input.next("b\nbad,");
  assert.deepEqual(seen.length, 2);
  assert(!completed);
  input.complete();
  assert.deepEqual(seen.length, 3, "the last line without a newline is still read");
  assert.deepEqual(seen[2], {
    status: "rejected",
    stage: "sources",
    reason: "missing_category: the category field is empty",
    record: { line: 4 },
  });
  assert(completed);
});

Deno.test("readSources() fails on a missing or unknown header", async () => {
  await assert.rejects(() => readAll("https://a.example/,cs\n"), {
    name: "SourcesFormatError",
    message: /header/,
  });
  await assert.rejects(() => readAll("url,category,photo\n"), {
    name: "SourcesFormatError",
    message: /header/,
  });
  await assert.rejects(() => readAll(""), { name: "SourcesFormatError", message: /empty/ });
});

Deno.test("readSources() reports an overlong line and goes on", async () => {
  const input = of(`url,category\nhttps://a.example/${"x".repeat(200)},a\nhttps://b.example/,b\n`);
  const items = await lastValueFrom(input.pipe(readSources({ maxLineLength: 100 }), toArray()));
  assert.deepEqual(items.map((item) => item.status === "ok" ? item.record.line : item.reason), [
    "line_too_long: over 100 characters",
    3,
  ]);
  assert.throws(() => readSources({ maxLineLength: 0 }), {
    name: "RangeError",
    message: /maxLineLength/,
  });
});

Deno.test("sourceBytes() reads a file", async () => {
  const path = await Deno.makeTempFile({ suffix: ".csv" });
  try {
    await Deno.writeTextFile(path, "url,category\nhttps://a.example/,a\n");
    const item = await firstValueFrom(sourceBytes(path).pipe(readSources()));
    assert.deepEqual(item, {
      status: "ok",
      record: { line: 2, url: "https://a.example/", category: "a" },
    });
  } finally {
    await Deno.remove(path);
  }
  await assert.rejects(() => firstValueFrom(sourceBytes(path)), Deno.errors.NotFound);
});

Deno.test("data/sources.example.csv parses without an invalid row", async () => {
  const path = new URL("../data/sources.example.csv", import.meta.url).pathname;
  const items = await lastValueFrom(sourceBytes(path).pipe(readSources(), toArray()));
  assert.equal(items.length, 5);
  assert.deepEqual(items.filter((item) => item.status !== "ok"), []);
});

Deno.test("readSources() reads render (auto | http | browser) and allow_hosts, and rejects bad ones", async () => {
  const csv = [
    "url,category,render,allow_hosts",
    "https://a.example/team,a,browser,cdn.a-static.example api.example:8443",
    "https://b.example/team,b,,",
    "https://c.example/team,c,HTTP,",
    "https://d.example/team,d,selenium,",
    "https://e.example/team,e,auto,https://cdn.example/",
    "https://f.example/team,f,auto,*",
  ].join("\n");
  const items = await readAll(csv);
  assert.deepEqual(items.map((item) => item.status === "ok" ? item.record : item.reason), [
    {
      line: 2,
      url: "https://a.example/team",
      category: "a",
      render: "browser",
      allowHosts: ["cdn.a-static.example", "api.example:8443"],
    },
    { line: 3, url: "https://b.example/team", category: "b" },
    { line: 4, url: "https://c.example/team", category: "c", render: "http" },
    "bad_render: 'selenium' is not one of auto, http, browser",
    "bad_allow_hosts: 'https://cdn.example/' is not a host name",
    { line: 7, url: "https://f.example/team", category: "f", render: "auto", allowHosts: ["*"] },
  ]);
});
