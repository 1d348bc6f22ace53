/**
 * The Faces page, the record page and the removal plan at 20,000 records: SQLite filters, pages
 * and counts, and a request reads one page of whole rows, never the manifest. The SQL filters
 * keep exactly what `filterRows` (the in-memory rule) keeps, on the same records.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { MANIFEST_COLUMNS, type ManifestRow, writeManifestCsv } from "../store/manifest.ts";
import {
  inTransaction,
  openStateDb,
  PAGE_COLUMNS,
  PAGE_UPSERT,
  pageKey,
  RECORD_UPSERT,
  recordRows,
  toDb,
} from "../store/state_db.ts";
import { rowsOfPerson } from "../store/forget.ts";
import { type PageLogRow } from "../store/page_log.ts";
import { StoreView } from "../web/store_view.ts";
import { type FaceFilter, facesPage, filterRows, recordFilter } from "../web/faces_page.ts";
import { sourceOfPage, sourceOfRow } from "../web/funnel.ts";
import { removalPlan } from "../web/remove_page.ts";

const RECORDS = 20_000;
const STAGES = ["people", "images", "faces", "split"];

function syntheticRow(i: number): ManifestRow {
  const source = Math.floor(i / 100);
  const status = i % 7 === 0 ? "rejected" : i % 11 === 0 ? "failed" : "ok";
  const row = {} as ManifestRow;
  for (const column of MANIFEST_COLUMNS) row[column] = "";
  return {
    ...row,
    id: (0x10000000 + i).toString(16),
    category: `dept-${source % 13}`,
    name: `Synthetic Person ${i}`,
    // The last sources' pages are not in the page log.
    page_url: `http://127.0.0.1:9/s${source}/p${i % 4}.html`,
    status,
    stage: STAGES[i % 4]!,
    reason: status === "ok" ? "" : "no_face: none",
    // Records 10 and 20 share an image; 20 and 30 a face identity.
    sha256: i === 20 ? "a".repeat(63) + "0" : `c${i.toString(16).padStart(63, "0")}`,
    split: status === "ok" && i % 4 === 3 ? ["train", "val", "test"][i % 3]! : "",
    fold: status === "ok" && i % 4 === 3 ? String(i % 5) : "",
    identity: i === 20 || i === 30 ? "face-20" : "",
  };
}

/** A data dir of `RECORDS` records and their page log, written as a run would leave state.db. */
function syntheticDataDir(): { root: string; rows: ManifestRow[] } {
  const root = Deno.makeTempDirSync({ prefix: "serve_scale_" });
  const db = openStateDb(join(root, "state.db"));
  const rows = Array.from({ length: RECORDS }, (_, i) => syntheticRow(i));
  rows[10]!.sha256 = rows[20]!.sha256;
  const upsert = db.prepare(RECORD_UPSERT);
  const page = db.prepare(PAGE_UPSERT);
  inTransaction(db, () => {
    for (const row of rows) upsert.run(...MANIFEST_COLUMNS.map((c) => toDb(row[c])));
    for (let source = 0; source < RECORDS / 100 - 5; source++) {
      for (let p = 0; p < 4; p++) {
        const logged: PageLogRow = {
          source_url: `http://127.0.0.1:9/s${source}/p0.html`,
          page_url: `http://127.0.0.1:9/s${source}/p${p}.html`,
          category: `dept-${source % 13}`,
          status: "ok",
          reason: "",
          people: "25",
          fetched_at: "2026-12-07T00:00:00.000Z",
        };
        page.run(toDb(pageKey(logged)), ...PAGE_COLUMNS.map((c) => toDb(logged[c])));
      }
    }
  });
  writeManifestCsv(db, join(root, "index.csv"));
  db.close();
  return { root, rows };
}

const FILTERS: FaceFilter[] = [
  {},
  { category: "dept-3" },
  { split: "test" },
  { fold: "2", split: "train" },
  { status: "dropped" },
  { status: "failed", category: "dept-1" },
  { stage: "faces" },
  { stage: "images", status: "rejected" },
  { source: "http://127.0.0.1:9/s7/p0.html" },
  { source: "(not in the page log)" },
  { source: "nowhere" },
  { category: "dept-5", predicted: "dept-1", model: "descriptor" },
];

Deno.test({
  name: "Faces at 20,000 records: SQL keeps what filterRows keeps, and a page reads one page",
  sanitizeResources: false,
  async fn() {
    const { root, rows } = syntheticDataDir();
    try {
      const view = new StoreView(root);
      const db = openStateDb(join(root, "state.db"));
      const pages = [...db.prepare("SELECT * FROM pages").all()] as unknown as PageLogRow[];
      assert.equal([...recordRows(db)].length, RECORDS);
      db.close();
      const pageMap = sourceOfPage(pages);
      const sourceOf = (row: ManifestRow) => sourceOfRow(row, pageMap);
      const labels = new Map(rows.filter((_, i) => i % 3 === 0).map((r) => [r.id, "dept-1"]));
      for (const filter of FILTERS) {
        const expected = filterRows(rows, filter, { sourceOf, labels }).map((r) => r.id);
        const query = recordFilter(filter, labels);
        assert.equal(await view.count(query), expected.length, JSON.stringify(filter));
        const page = await view.records(query, 40, 30);
        assert.deepEqual(page.map((r) => r.id), expected.slice(40, 70), JSON.stringify(filter));
      }

      const fresh = new StoreView(root);
      const html = String(await facesPage(fresh, { filter: {}, page: 50, perPage: 120 }));
      assert.equal(fresh.rowsRead, 120, "the page's 120 rows, not the manifest's 20,000");
      assert.match(html, /data-count="20000">20000 of 20000 records, page 50 of 167/);
      assert.equal(html.match(/<li class="card/g)?.length, 120);
      assert.match(html, new RegExp(`data-id="${rows[49 * 120]!.id}"`));
      const sources = html.match(/<option value="http:\/\/127\.0\.0\.1:9\/s\d+\/p0\.html"/g);
      assert.equal(sources?.length, RECORDS / 100 - 5, "every logged source offered once");
      assert.match(html, /<option value="\(not in the page log\)"/);

      const filtered = new StoreView(root);
      const text = String(
        await facesPage(filtered, { filter: { category: "dept-4" }, page: 1, perPage: 50 }),
      );
      const kept = rows.filter((r) => r.category === "dept-4").length;
      assert.match(text, new RegExp(`data-count="${kept}">${kept} of 20000 records`));
      assert.equal(filtered.rowsRead, 50);

      // One person: by id, then the same image, then the same face identity.
      const plan = await removalPlan(filtered, rows[10]!.id);
      const reference = rowsOfPerson(rows, { dataDir: root, ids: [rows[10]!.id] });
      assert.deepEqual(plan.rows.map((r) => r.id).sort(), reference.map((r) => r.id).sort());
      assert.equal(plan.rows.length, 3);
      assert.equal((await filtered.row(rows[30]!.id))?.name, "Synthetic Person 30");
      assert.ok(filtered.rowsRead <= 50 + 3 + 1);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test({
  name: "Faces of a data dir not migrated yet (index.csv only) page and count the same",
  sanitizeResources: false,
  async fn() {
    const { root, rows } = syntheticDataDir();
    try {
      await Deno.remove(join(root, "state.db"));
      for (const suffix of ["-wal", "-shm"]) {
        await Deno.remove(join(root, `state.db${suffix}`)).catch(() => {});
      }
      const view = new StoreView(root);
      const html = String(
        await facesPage(view, { filter: { split: "val" }, page: 2, perPage: 10 }),
      );
      const kept = rows.filter((r) => r.split === "val");
      assert.match(html, new RegExp(`data-count="${kept.length}">${kept.length} of 20000`));
      assert.match(html, new RegExp(`data-id="${kept[10]!.id}"`));
      assert.equal(view.rowsRead, 10);
      assert.equal(await Deno.stat(join(root, "state.db")).then(() => true, () => false), false);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
