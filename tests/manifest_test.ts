import assert from "node:assert/strict";
import { join } from "node:path";
import {
  escapeCell,
  Manifest,
  outcomeToRow,
  parseManifest,
  stringifyManifest,
} from "../store/manifest.ts";
import { DataDirLock } from "../store/lock.ts";
import { ok } from "../core/types.ts";

const person = {
  id: "0a1b2c3d",
  category: "cs",
  imageUrl: "https://uni.example/a.jpg",
  name: "Prof. Dr.-Ing. Jürgen Müller",
  pageUrl: "https://uni.example/staff",
};

Deno.test("manifest cells that a spreadsheet would execute are neutralised and round-trip", () => {
  const hostile = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "Normal Name"];
  for (const name of hostile) {
    const text = stringifyManifest([outcomeToRow(ok({ ...person, name }), "people")]);
    const cells = parseManifestRaw(text);
    assert.ok(!/^[=+\-@\t]/.test(cells[3] ?? ""), `cell starts with a formula char: ${cells[3]}`);
    assert.equal(parseManifest(text)[0]?.name, name);
  }
  assert.equal(escapeCell("=1+1"), "'=1+1");
  assert.equal(escapeCell("Ada"), "Ada");
});

/** The cells as a spreadsheet would see them, before our unescaping. */
function parseManifestRaw(text: string): string[] {
  const line = text.split("\n")[1] ?? "";
  return line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)?.map((c) =>
    c.replace(/,$/, "").replace(/^"|"$/g, "")
  ) ?? [];
}

Deno.test("manifest keeps one row per id, writes atomically and reloads what it wrote", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "index.csv");
  const manifest = await Manifest.open(path, { flushIntervalMs: 10 });
  manifest.record(ok(person), "people");
  manifest.record(
    { status: "failed", stage: "images", reason: "http_404: GET", record: person },
    "images",
  );
  manifest.flushSync();
  const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name);
  assert.ok(leftovers.includes("index.csv") && leftovers.includes("state.db"), `${leftovers}`);
  assert.ok(!leftovers.some((name) => name.endsWith(".tmp")), `a temp file stayed: ${leftovers}`);
  const reloaded = await Manifest.open(path);
  assert.deepEqual(reloaded.size, 1);
  const row = reloaded.get(person.id);
  assert.deepEqual(row?.status, "failed");
  assert.deepEqual(row?.stage, "images");
  assert.deepEqual(row?.reason, "http_404: GET");
  assert.deepEqual(row?.name, person.name);
  assert.deepEqual((await Deno.readTextFile(path)).split("\n")[0]?.split(",").slice(0, 4), [
    "id",
    "category",
    "image_url",
    "name",
  ]);
});

Deno.test("manifest flushes by itself within its interval", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "index.csv");
  const manifest = await Manifest.open(path, { flushIntervalMs: 20 });
  manifest.record(ok(person), "people");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual((await Manifest.open(path)).size, 1);
});

Deno.test("data dir lock refuses a second live owner and takes over a dead one", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, ".lock");
  await Deno.writeTextFile(path, "1"); // pid 1 is alive in any container
  await assert.rejects(() => DataDirLock.acquire(path), Deno.errors.Busy);
  await Deno.writeTextFile(path, "999999999");
  const lock = await DataDirLock.acquire(path);
  assert.deepEqual(await Deno.readTextFile(path), String(Deno.pid));
  lock.releaseSync();
});

Deno.test("statusRows() gives every row's status, stage, reason and category, across pages", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const manifest = await Manifest.open(join(dir, "index.csv"));
    // More than one page of 1,000 rows, with a reason that holds a NUL (escaped in state.db).
    for (let i = 0; i < 2500; i++) {
      const record = { ...person, id: `${i}`.padStart(16, "0"), category: `c${i % 3}` };
      manifest.record(
        i % 7 === 0
          ? { status: "failed", stage: "images", reason: `http_404: \u0000${i}`, record }
          : ok(record),
        "people",
      );
    }
    const expected = manifest.rows().map(({ status, stage, reason, category }) => ({
      status,
      stage,
      reason,
      category,
    }));
    assert.deepEqual(await manifest.statusRows(), expected);
    assert.equal(expected.length, 2500);
    assert.equal(expected[7]!.reason, "http_404: \u00007");
    manifest.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
