/**
 * `forget` leaves index.csv without the person by copying it without their records
 * (store/csv_drop.ts), not by writing 100,000 rows again: the copy must be the file state.db
 * would give, byte for byte, across chunk boundaries and with cells that hold newlines, quotes
 * and text that looks like the start of a record.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  MANIFEST_COLUMNS,
  type ManifestRow,
  stringifyManifest,
  writeManifestCsv,
} from "../store/manifest.ts";
import { inTransaction, openStateDb, RECORD_UPSERT, toDb } from "../store/state_db.ts";
import { dropFromManifestCsv } from "../store/csv_drop.ts";
import { forget } from "../store/forget.ts";

function row(i: number): ManifestRow {
  const empty = {} as ManifestRow;
  for (const column of MANIFEST_COLUMNS) empty[column] = "";
  const id = (0x20000000 + i).toString(16);
  // Every 97th name holds a newline followed by another record's id and a comma, in quotes.
  const name = i % 97 === 0
    ? `Evil "Name"\n${(0x20000000 + i + 1).toString(16)},x,\n${"y".repeat(i % 5000)}`
    : i % 13 === 0
    ? `=SUM(A1), Jr.\r\n`
    : `Person ${i}`;
  return {
    ...empty,
    id,
    category: `dept-${i % 9}`,
    name,
    page_url: `http://127.0.0.1:9/p${i % 40}.html`,
    status: "ok",
    stage: "images",
    sha256: i === 500 ? "f".repeat(64) : `e${i.toString(16).padStart(63, "0")}`,
    updated_at: "2026-12-07T00:00:00.000Z",
  };
}

Deno.test("dropFromManifestCsv() gives the file without those records, byte for byte", async () => {
  const dir = await Deno.makeTempDir({ prefix: "csv_drop_" });
  try {
    const rows = Array.from({ length: 20_000 }, (_, i) => row(i));
    const path = join(dir, "index.csv");
    await Deno.writeTextFile(path, stringifyManifest(rows));
    assert.ok((await Deno.stat(path)).size > 3 << 20, "several chunks");
    // The evil rows, the rows their names pretend to start, every 50th (some across a chunk's
    // end), the first and the last.
    const picked = [97, 98, 19_400, 19_401, 19_999, ...rows.keys().filter((i) => i % 50 === 0)];
    const drop = new Set(picked.map((i) => rows[i]!.id));
    assert.equal(await dropFromManifestCsv(path, drop), drop.size);
    const expected = stringifyManifest(rows.filter((r) => !drop.has(r.id)));
    assert.equal(await Deno.readTextFile(path), expected);
    assert.equal(await dropFromManifestCsv(path, drop), 0, "nothing left to drop");
    assert.equal(await Deno.readTextFile(path), expected);
    const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".tmp"));
    assert.deepEqual(leftovers, [], "no temp file left");

    // A file this version did not write is left alone for the caller to write again.
    await Deno.writeTextFile(path, "id,name\n" + rows[3]!.id + ",x\n");
    assert.equal(await dropFromManifestCsv(path, new Set([rows[3]!.id])), undefined);
    assert.equal(await Deno.readTextFile(path), "id,name\n" + rows[3]!.id + ",x\n");
    assert.equal(await dropFromManifestCsv(join(dir, "missing.csv"), drop), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("forget at 20,000 records: index.csv is state.db's without the person", async () => {
  const dir = await Deno.makeTempDir({ prefix: "forget_scale_" });
  try {
    const rows = Array.from({ length: 20_000 }, (_, i) => row(i));
    rows[9_000]!.sha256 = rows[500]!.sha256; // The same image under another name.
    const db = openStateDb(join(dir, "state.db"));
    const upsert = db.prepare(RECORD_UPSERT);
    inTransaction(db, () => {
      for (const r of rows) upsert.run(...MANIFEST_COLUMNS.map((c) => toDb(r[c])));
    });
    writeManifestCsv(db, join(dir, "index.csv"));
    db.close();
    const result = await forget({ dataDir: dir, ids: [rows[500]!.id] });
    assert.equal(result.records, 2);
    assert.deepEqual(result.people.map((p) => p.id).sort(), [rows[500]!.id, rows[9_000]!.id]);
    const text = await Deno.readTextFile(join(dir, "index.csv"));
    assert.ok(!text.includes(rows[500]!.name + ",") && !text.includes(rows[9_000]!.name + ","));
    const again = openStateDb(join(dir, "state.db"));
    writeManifestCsv(again, join(dir, "fresh.csv"));
    again.close();
    assert.equal(text, await Deno.readTextFile(join(dir, "fresh.csv")));
    assert.equal(text, stringifyManifest(rows.filter((_, i) => i !== 500 && i !== 9_000)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
