import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "csv-stringify/sync";
import { ok } from "../core/types.ts";
import { HttpCacheStore } from "../store/http_cache.ts";
import { Manifest, outcomeToRow, parseManifest, stringifyManifest } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { dataPaths } from "../store/paths.ts";
import { nameHash, RemovedList } from "../store/removed.ts";
import { fromDb, openStateDb, toDb } from "../store/state_db.ts";

const person = (i: number, name = `Person ${i}`) =>
  ok({
    id: i.toString(16).padStart(8, "0"),
    category: i % 2 ? "cs" : "=math",
    imageUrl: `http://u.example/${i}.jpg`,
    name,
    pageUrl: "http://u.example/people",
  });

/** A data dir as the CSV-only code left it: index.csv, pages.csv, cache/http.csv, removed.csv. */
async function legacyDataDir(records: number) {
  const root = await Deno.makeTempDir({ prefix: "state-db-legacy-" });
  const paths = dataPaths(root);
  const rows = Array.from({ length: records }, (_, i) =>
    outcomeToRow(
      i % 7 === 0
        ? { status: "failed", stage: "images", reason: "http_404: GET", record: person(i).record }
        : person(i, i === 3 ? '\'=1+1, "Jr"\nSecond line' : `Person ${i}`),
      "images",
    ));
  await Deno.writeTextFile(paths.manifest, stringifyManifest(rows));
  const pageColumns = [
    "source_url",
    "page_url",
    "category",
    "status",
    "reason",
    "people",
    "fetched_at",
  ];
  await Deno.writeTextFile(
    paths.pages,
    stringify([
      ["http://u.example/s", "http://u.example/people", "cs", "ok", "", "3", "2024-01-01"],
      ["http://u.example/s", "", "cs", "complete", "", "", "2024-01-01"],
      ["http://v.example/s", "http://v.example/p2", "cs", "failed", "http_500", "", "2024-01-01"],
      ["http://v.example/s", "", "cs", "complete", "", "", "2024-01-01"],
    ], { header: true, columns: pageColumns }),
  );
  await Deno.mkdir(paths.cache, { recursive: true });
  await Deno.writeTextFile(
    paths.httpCache,
    stringify([["http://u.example/people", '"e1"', "", "text/html", "f".repeat(64)]], {
      header: true,
      columns: ["url", "etag", "last_modified", "content_type", "sha256"],
    }),
  );
  await Deno.writeTextFile(
    paths.removed,
    stringify([["name", nameHash("Gone Person"), "2024-01-01"]], {
      header: true,
      columns: ["kind", "value", "removed_at"],
    }),
  );
  return { paths, rows };
}

Deno.test("a CSV-only data dir migrates to state.db once, without loss", async () => {
  const { paths, rows } = await legacyDataDir(250);
  try {
    const manifest = await Manifest.open(paths.manifest);
    assert.equal(manifest.size, rows.length);
    assert.deepEqual(manifest.rows(), rows, "every row, every cell, in order");
    const pages = await PageLog.open(paths.pages);
    assert.equal(pages.rows().length, 4);
    assert.equal(pages.sourceDone("http://u.example/s"), true);
    assert.equal(pages.sourceDone("http://v.example/s"), false, "a failed page keeps it open");
    const cache = await HttpCacheStore.open(paths);
    assert.equal(cache.size, 1);
    assert.equal(cache.get("http://u.example/people")?.etag, '"e1"');
    const removed = await RemovedList.open(paths.removed);
    assert.ok(removed.matches({ id: "x", name: "gone  PERSON" }));
    // The CSVs that only state.db reads now are gone; index.csv stays for its readers.
    for (const file of [paths.pages, paths.httpCache, paths.removed]) {
      assert.equal(await Deno.stat(file).catch(() => undefined), undefined, file);
    }
    assert.deepEqual(parseManifest(await Deno.readTextFile(paths.manifest)), rows);

    // Once: an index.csv edited later is not imported again over the state.
    await Deno.writeTextFile(paths.manifest, stringifyManifest(rows.slice(0, 3)));
    assert.equal((await Manifest.open(paths.manifest)).size, rows.length);
    for (const handle of [manifest, pages, cache, removed]) handle.close();
  } finally {
    await Deno.remove(paths.root, { recursive: true });
  }
});

Deno.test("a failed migration leaves the CSVs and no half state", async () => {
  const { paths } = await legacyDataDir(20);
  try {
    await Deno.writeTextFile(paths.pages, 'source_url,page_url\n"unterminated,x\n');
    assert.throws(() => openStateDb(paths.state));
    for (const file of [paths.manifest, paths.pages, paths.httpCache, paths.removed]) {
      assert.ok((await Deno.stat(file)).isFile, file);
    }
    await Deno.writeTextFile(paths.pages, "source_url,page_url\n");
    const manifest = await Manifest.open(paths.manifest);
    assert.equal(manifest.size, 20, "the retry imports everything");
    manifest.close();
  } finally {
    await Deno.remove(paths.root, { recursive: true });
  }
});

Deno.test("records commit per batch: a second process sees them before index.csv is written", async () => {
  const root = await Deno.makeTempDir({ prefix: "state-db-live-" });
  try {
    const paths = dataPaths(root);
    const writer = await Manifest.open(paths.manifest);
    for (let i = 0; i < 1000; i++) writer.record(person(i), "people");
    writer.commit();
    assert.equal(await Deno.stat(paths.manifest).catch(() => undefined), undefined);
    // Another connection, as a reader process has: the committed rows, nothing pending.
    const reader = await Manifest.open(join(root, "index.csv"));
    assert.equal(reader.size, 1000);
    writer.record(
      { status: "failed", stage: "images", reason: "x", record: person(5).record },
      "images",
    );
    writer.flushSync();
    const text = await Deno.readTextFile(paths.manifest);
    assert.equal(text.trim().split("\n").length, 1001);
    assert.equal(parseManifest(text).find((r) => r.id === person(5).record.id)?.status, "failed");
    writer.close();
    reader.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("export --format csv writes index.csv's columns from state.db, streamed", async () => {
  const root = await Deno.makeTempDir({ prefix: "state-db-export-" });
  try {
    const paths = dataPaths(root);
    const manifest = await Manifest.open(paths.manifest);
    for (let i = 0; i < 4500; i++) {
      manifest.record(person(i, i === 7 ? "=HYPERLINK()" : undefined), "people");
    }
    manifest.close();
    const { exportManifestCsv } = await import("../pipeline/export/manifest_csv.ts");
    const out = join(root, "copy.csv");
    assert.deepEqual(await exportManifestCsv({ dataDir: root, out }), { out, rows: 4500 });
    const text = await Deno.readTextFile(out);
    assert.ok(text.includes(",'=HYPERLINK(),"), "cells escaped as index.csv escapes them");
    const back = parseManifest(text);
    assert.equal(back.length, 4500);
    assert.equal(new Set(back.map((r) => r.id)).size, 4500, "each record once, chunks joined");
    await assert.rejects(exportManifestCsv({ dataDir: root, out }), /exists/);
    await exportManifestCsv({ dataDir: root });
    assert.deepEqual(parseManifest(await Deno.readTextFile(paths.manifest)), back);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("toDb() and fromDb() round-trip every string, NUL and U+0001 included", () => {
  const values = [
    "",
    "plain",
    "a\u0000b",
    "\u0001",
    "\u0001\u0002",
    "\u0000\u0001\u0000",
    "é\u0001x",
  ];
  for (const value of values) assert.equal(fromDb(toDb(value)), value);
  assert.equal(toDb("plain"), "plain");
  assert.ok(!toDb("a\u0000b").includes("\u0000"));
});

Deno.test("a category with a NUL character comes back whole from state.db", async () => {
  const root = await Deno.makeTempDir({ prefix: "state-db-nul-" });
  try {
    const manifest = await Manifest.open(join(root, "index.csv"));
    manifest.record(ok({ ...person(1).record, category: "a\u0000b", name: "x\u0001y" }), "people");
    manifest.close();
    const back = (await Manifest.open(join(root, "index.csv"))).get(person(1).record.id);
    assert.equal(back?.category, "a\u0000b");
    assert.equal(back?.name, "x\u0001y");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
