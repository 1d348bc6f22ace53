/**
 * DATASHEET.md: its figures are read back from the Markdown and held against counts made here
 * from the manifest (through its API), for the data dir's sheet and for an export's.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { syntheticStore } from "../commands/dev/synthetic_store.ts";
import { Manifest, type ManifestRow } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { dataPaths } from "../store/paths.ts";
import { datasheetMarkdown } from "../report/datasheet.ts";
import { datasetRecords, writeDataDirDatasheet } from "../pipeline/datasheet.ts";
import { runExport } from "../pipeline/export/run.ts";

/** The rows of the Markdown table after the line that starts with `title`. */
function tableAfter(markdown: string, title: string): string[][] {
  const lines = markdown.split("\n");
  let i = lines.findIndex((line) => line.startsWith(title));
  assert(i >= 0, `no '${title}' in the sheet`);
  while (!lines[i]!.startsWith("|")) i++;
  const rows: string[][] = [];
  for (; lines[i]?.startsWith("|"); i++) {
    rows.push(lines[i]!.slice(1, -1).split("|").map((c) => c.trim()));
  }
  return rows.filter((_, k) => k !== 1); // the header, then the body without the --- line
}

/** A table's body as { first cell: number in `column` }. */
function countsIn(table: string[][], column: string): Record<string, number> {
  const index = table[0]!.indexOf(column);
  assert(index >= 0, `no column '${column}' in ${table[0]}`);
  return Object.fromEntries(table.slice(1).map((row) => [row[0]!, Number(row[index])]));
}

function count(rows: ManifestRow[], key: (row: ManifestRow) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of rows) counts[key(row)] = (counts[key(row)] ?? 0) + 1;
  return counts;
}

async function dataDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "datasheet-" });
  await syntheticStore(dir, {
    faces: 57,
    categories: ["alpha", "beta", "gamma"],
    dropped: { no_face: 4, http_404: 2, low_score: 1 },
    row: (i) => i % 5 === 0 ? { page_url: "http://127.0.0.1/alpha/page-2" } : {},
  });
  const pages = await PageLog.open(dataPaths(dir).pages);
  for (const category of ["alpha", "beta", "gamma"]) {
    pages.record({
      source_url: `http://127.0.0.1/${category}/`,
      page_url: `http://127.0.0.1/${category}/`,
      category,
      status: "ok",
      reason: "",
      people: "19",
    });
  }
  pages.record({
    source_url: "http://127.0.0.1/alpha/",
    page_url: "http://127.0.0.1/alpha/page-2",
    category: "alpha",
    status: "ok",
    reason: "",
    people: "12",
  });
  return dir;
}

Deno.test("the data dir's datasheet: every figure equals the manifest's", async () => {
  const dir = await dataDir();
  const paths = dataPaths(dir);
  const manifest = await Manifest.open(paths.manifest);
  await writeDataDirDatasheet(paths, manifest);
  const sheet = await Deno.readTextFile(paths.datasheet);

  const rows = manifest.rows();
  const faces = rows.filter((r) => r.status === "ok" && r.split);
  assert.match(sheet, new RegExp(`There are \\*\\*${faces.length}\\*\\* faces`));
  const bySplit = tableAfter(sheet, "Faces per category and split");
  for (const split of ["train", "val", "test"]) {
    const expected = count(faces.filter((r) => r.split === split), (r) => r.category);
    assert.deepEqual(countsIn(bySplit, split), expected, split);
  }
  assert.deepEqual(countsIn(bySplit, "all"), count(faces, (r) => r.category));
  assert.deepEqual(
    countsIn(tableAfter(sheet, "Faces per role"), "faces"),
    count(faces, (r) => r.role || "(none given)"),
  );
  assert.deepEqual(
    countsIn(tableAfter(sheet, "Records dropped"), "records"),
    count(rows.filter((r) => r.status !== "ok"), (r) => r.reason.split(":")[0]!),
  );
  // Sources: each page's source row from pages.csv (page-2 belongs to the alpha source).
  assert.deepEqual(
    countsIn(tableAfter(sheet, "Faces per source"), "faces"),
    count(faces, (r) => r.page_url.endsWith("page-2") ? "http://127.0.0.1/alpha/" : r.page_url),
  );
  assert.match(sheet, /## Uses[\s\S]*identifying\s+people/);
  assert.match(sheet, /deno task forget/);
});

Deno.test("an export's datasheet counts what it exported, the filtered faces as dropped by the export", async () => {
  const dir = await dataDir();
  const out = join(await Deno.makeTempDir(), "out");
  const result = await runExport({
    dataDir: dir,
    out,
    format: "webdataset",
    categories: ["alpha", "gamma"],
  });
  const sheet = await Deno.readTextFile(join(out, "DATASHEET.md"));
  const faces = (await Manifest.open(dataPaths(dir).manifest)).rows().filter((r) =>
    r.status === "ok" && r.split && r.category !== "beta"
  );
  assert.equal(result.exported, faces.length);
  assert.match(sheet, new RegExp(`There are \\*\\*${faces.length}\\*\\* faces`));
  const table = tableAfter(sheet, "Faces per category and split");
  assert.deepEqual(countsIn(table, "all"), count(faces, (r) => r.category));
  assert.deepEqual(
    countsIn(table, "test"),
    count(faces.filter((r) => r.split === "test"), (r) => r.category),
  );
  const dropped = countsIn(tableAfter(sheet, "Records dropped"), "records");
  assert.equal(dropped["export: category_not_asked"], 19);
  assert.match(sheet, /\| format \| webdataset \|/);
});

Deno.test("datasheetMarkdown() keeps page text out of the Markdown's structure", () => {
  const row = {
    category: "a|b\n# injected",
    role: "<script>x</script>",
    id: "x",
    identity: "x",
    page_url: "not a url",
  } as ManifestRow;
  const sheet = datasheetMarkdown({
    subject: "test",
    records: datasetRecords([{ ...row, status: "ok", split: "train", sha256: "ab" }]),
    manifestRows: [],
    pages: [],
    removalEntries: 0,
  });
  assert(!sheet.includes("\n# injected"));
  assert(!sheet.includes("<script>"));
  assert.match(sheet, /\| a&#124;b # injected \| 1 \| 1 \|/);
});
