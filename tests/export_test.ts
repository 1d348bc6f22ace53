/**
 * `deno task export`: every format read back by its real reader where one installs here
 * (torchvision's ImageFolder, Hugging Face datasets, hyparquet, Python's tarfile), counts held
 * against the manifest, hostile names kept inside OUT, and nothing removed ever exported.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parquetReadObjects } from "hyparquet";
import sharp from "sharp";
import { syntheticStore } from "../commands/dev/synthetic_store.ts";
import { safeName } from "../core/safe_names.ts";
import { Manifest, type ManifestRow } from "../store/manifest.ts";
import { dataPaths } from "../store/paths.ts";
import { forget } from "../store/forget.ts";
import { checkExport, ExportRefused, runExport } from "../pipeline/export/run.ts";

const PYTHON = "/usr/bin/python3";

async function python(script: string, ...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(PYTHON, {
    args: ["-c", script, ...args],
  }).output().catch(() => ({ code: 127, stdout: new Uint8Array(), stderr: new Uint8Array() }));
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, out: text(stdout), err: text(stderr) };
}

async function hasModule(name: string): Promise<boolean> {
  const ok = (await python(`import ${name}`)).code === 0;
  if (!ok) console.warn(`export test: ${PYTHON} has no '${name}': its reader test is skipped`);
  return ok;
}

const torchvision = await hasModule("torchvision");
const hfDatasets = await hasModule("datasets");
const tarReader = await hasModule("tarfile");

/** Faces per split and category, from the manifest through its API. */
async function manifestCounts(dataDir: string): Promise<Record<string, Record<string, number>>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const row of (await Manifest.open(dataPaths(dataDir).manifest)).rows()) {
    if (row.status !== "ok" || !row.split) continue;
    const split = counts[row.split] ??= {};
    split[row.category] = (split[row.category] ?? 0) + 1;
  }
  return counts;
}

/** Categories hostile as file names, beside a plain one. */
const HOSTILE = ["../x", "/etc/x", "con", "a\u0000b", "line\nbreak", "é".repeat(300), "plain"];

async function store(faces = 40, row?: (i: number) => Partial<ManifestRow>) {
  const dir = await Deno.makeTempDir({ prefix: "export-data-" });
  await syntheticStore(dir, { faces, folds: 4, row, dropped: { no_face: 3 } });
  return dir;
}

Deno.test("safeName() keeps plain names, and maps hostile ones to distinct names inside a folder", () => {
  assert.deepEqual(safeName("physics"), "physics");
  assert.deepEqual(safeName("Économie"), "Économie");
  const values = [...HOSTILE, ".", "..", "", "CON.txt", "lpt1", "a~b", "x\u202Egnp.exe", " x "];
  const names = values.map((v) => safeName(v));
  assert.deepEqual(new Set(names).size, values.length, "distinct values give distinct names");
  for (const name of names) {
    assert(!/[/\\\p{Cc}]/u.test(name), `no separator or control: ${JSON.stringify(name)}`);
    assert(name !== "." && name !== ".." && !name.startsWith("."), name);
    assert(!/^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i.test(name), name);
    assert(new TextEncoder().encode(name).length <= 96 + 9, name);
  }
  assert(!safeName("a.b", { dots: false }).includes("."));
});

Deno.test("imagefolder: torchvision reads every split; counts equal the manifest's", async () => {
  const data = await store();
  const out = join(await Deno.makeTempDir(), "out");
  const result = await runExport({ dataDir: data, out, format: "imagefolder" });
  const expected = await manifestCounts(data);
  assert.deepEqual(result.exported, 40);
  for (const [split, byCategory] of Object.entries(expected)) {
    const total = Object.values(byCategory).reduce((a, b) => a + b, 0);
    assert.deepEqual(result.layouts[0]!.bySplit[split], total);
    if (!torchvision) continue;
    const read = await python(
      `import sys, json\nfrom torchvision.datasets import ImageFolder\n` +
        `d = ImageFolder(sys.argv[1])\nimg, label = d[0]\n` +
        `print(json.dumps({c: sum(1 for _, l in d.samples if l == i) for i, c in enumerate(d.classes)}))`,
      join(out, split),
    );
    assert.deepEqual(read.code, 0, read.err);
    assert.deepEqual(JSON.parse(read.out), byCategory);
  }
  const sheet = await Deno.readTextFile(join(out, "DATASHEET.md"));
  assert(sheet.includes("There are **40** faces"), sheet.slice(0, 800));
});

Deno.test("imagefolder --what both --size: a crops and an originals tree, resized", async () => {
  const data = await store(20);
  const out = join(await Deno.makeTempDir(), "out");
  await runExport({ dataDir: data, out, format: "imagefolder", what: "both", size: 16 });
  const crops = [...walk(join(out, "crops"))];
  const originals = [...walk(join(out, "originals"))];
  assert.equal(crops.length, 20);
  assert.equal(originals.length, 20);
  const meta = await sharp(await Deno.readFile(crops[0]!)).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ["png", 16, 16]);
  if (torchvision) {
    const read = await python(
      `import sys\nfrom torchvision.datasets import ImageFolder\n` +
        `print(len(ImageFolder(sys.argv[1])) + len(ImageFolder(sys.argv[2])))`,
      join(out, "originals", "train"),
      join(out, "crops", "train"),
    );
    assert.equal(read.code, 0, read.err);
    assert.equal(Number(read.out), 2 * 14);
  }
});

Deno.test("imagefolder: hostile categories and ids stay inside OUT and load; the originals are in the metadata", async () => {
  const data = await store(28, (i) => ({
    category: HOSTILE[i % HOSTILE.length]!,
    ...(i % 7 === 1 ? { id: ["../../evil", "/etc/passwd", "NUL", "a\nb"][i % 4]! } : {}),
  }));
  const parent = await Deno.makeTempDir();
  const out = join(parent, "out");
  await runExport({ dataDir: data, out, format: "hf" });
  // Nothing beside OUT in its parent, and every file below it.
  assert.deepEqual([...Deno.readDirSync(parent)].map((e) => e.name), ["out"]);
  const categories = new Set<string>();
  for (const split of ["train", "val", "test"]) {
    for (const entry of Deno.readDirSync(join(out, split))) {
      if (entry.isDirectory) categories.add(entry.name);
    }
  }
  assert.deepEqual(categories, new Set(HOSTILE.map((c) => safeName(c))));
  const metadata = await Deno.readTextFile(join(out, "train", "metadata.csv"));
  assert(metadata.includes('"line\nbreak"'), "the original category is in the metadata, quoted");
  if (torchvision) {
    const read = await python(
      `import sys\nfrom torchvision.datasets import ImageFolder\nd = ImageFolder(sys.argv[1])\n` +
        `[d[i] for i in range(len(d))]\nprint(len(d.classes))`,
      join(out, "train"),
    );
    assert.deepEqual(read.code, 0, read.err);
    assert.deepEqual(Number(read.out), HOSTILE.length);
  }
});

Deno.test({
  name: "hf: load_dataset('imagefolder') reads the splits with their metadata",
  ignore: !hfDatasets,
  async fn() {
    const data = await store();
    const out = join(await Deno.makeTempDir(), "out");
    await runExport({ dataDir: data, out, format: "hf" });
    const read = await python(
      `import sys, json\nfrom datasets import load_dataset\n` +
        `d = load_dataset("imagefolder", data_dir=sys.argv[1])\n` +
        `print(json.dumps({s: len(d[s]) for s in d}))`,
      out,
    );
    assert.deepEqual(read.code, 0, read.err);
    const expected = await manifestCounts(data);
    const totals = Object.fromEntries(
      Object.entries(expected).map(([s, c]) => [s, Object.values(c).reduce((a, b) => a + b, 0)]),
    );
    assert.deepEqual(JSON.parse(read.out.trim().split("\n").at(-1)!), totals);
  },
});

Deno.test("hf: every metadata row names an image beside it", async () => {
  const data = await store();
  const out = join(await Deno.makeTempDir(), "out");
  await runExport({ dataDir: data, out, format: "hf" });
  const { parse } = await import("csv-parse/sync");
  let rows = 0;
  for (const split of ["train", "val", "test"]) {
    const table = parse(await Deno.readTextFile(join(out, split, "metadata.csv")), {
      columns: true,
    }) as Record<string, string>[];
    for (const row of table) {
      await Deno.stat(join(out, split, row.file_name!));
      assert(row.category && row.id && row.box_width, JSON.stringify(row));
      rows++;
    }
  }
  assert.deepEqual(rows, 40);
});

Deno.test("parquet: hyparquet reads each split's rows, PNG bytes, box and descriptor", async () => {
  const data = await store();
  const out = join(await Deno.makeTempDir(), "out");
  await runExport({ dataDir: data, out, format: "parquet", embeddings: true, what: "both" });
  const expected = await manifestCounts(data);
  for (const [split, byCategory] of Object.entries(expected)) {
    const bytes = await Deno.readFile(join(out, `${split}.parquet`));
    const rows = await parquetReadObjects({ file: bytes.buffer as ArrayBuffer, utf8: false });
    const counts: Record<string, number> = {};
    for (const row of rows) counts[row.category] = (counts[row.category] ?? 0) + 1;
    assert.deepEqual(counts, byCategory);
    const first = rows[0]!;
    assert.deepEqual((await sharp(first.image as Uint8Array).metadata()).format, "png");
    assert.deepEqual((await sharp(first.original as Uint8Array).metadata()).format, "png");
    assert.deepEqual([first.box_x, first.box_y, first.box_width, first.box_height], [4, 4, 24, 24]);
    assert.deepEqual((first.descriptor as number[]).length, 128);
    assert.deepEqual(first.split, split);
  }
});

/** DuckDB's Parquet reader (C++, from npm), where its native library loads. */
async function duckdb() {
  try {
    const { DuckDBInstance } = await import("@duckdb/node-api");
    return await (await DuckDBInstance.create(":memory:")).connect();
  } catch (error) {
    console.warn(`export test: DuckDB does not load here (${error}): its reader test is skipped`);
    return undefined;
  }
}

const connection = await duckdb();

Deno.test({
  name: "parquet: DuckDB, a second reader, counts the rows and reads the lists and bytes",
  ignore: !connection,
  async fn() {
    const data = await store();
    const out = join(await Deno.makeTempDir(), "out");
    await runExport({ dataDir: data, out, format: "parquet", embeddings: true });
    const result = await connection!.runAndReadAll(
      `select split, category, count(*) as n, min(len(descriptor)) as d, ` +
        `min(octet_length(image)) as b from read_parquet('${out}/*.parquet') group by all`,
    );
    const read: Record<string, Record<string, number>> = {};
    for (const row of result.getRowObjects()) {
      (read[String(row.split)] ??= {})[String(row.category)] = Number(row.n);
      assert.equal(Number(row.d), 128);
      assert(Number(row.b) > 100);
    }
    assert.deepEqual(read, await manifestCounts(data));
  },
});

Deno.test({
  name: "webdataset: Python's tarfile reads size-bounded shards of png + json",
  ignore: !tarReader,
  async fn() {
    const data = await store();
    const out = join(await Deno.makeTempDir(), "out");
    const shardSize = 8192;
    await runExport({ dataDir: data, out, format: "webdataset", shardSize });
    const read = await python(
      `import sys, glob, json, tarfile, collections\nsamples = collections.Counter()\n` +
        `for path in sorted(glob.glob(sys.argv[1] + "/*.tar")):\n` +
        `  with tarfile.open(path) as t:\n` +
        `    keys = collections.defaultdict(set)\n` +
        `    for m in t.getmembers(): keys[m.name.split(".")[0]].add(m.name.split(".", 1)[1])\n` +
        `    for key, exts in keys.items():\n` +
        `      assert exts == {"png", "json"}, exts\n` +
        `      meta = json.load(t.extractfile(key + ".json"))\n` +
        `      samples[meta["split"] + "/" + meta["category"]] += 1\n` +
        `print(json.dumps(samples))`,
      out,
    );
    assert.deepEqual(read.code, 0, read.err);
    const expected: Record<string, number> = {};
    for (const [split, byCategory] of Object.entries(await manifestCounts(data))) {
      for (const [category, n] of Object.entries(byCategory)) expected[`${split}/${category}`] = n;
    }
    assert.deepEqual(JSON.parse(read.out), expected);
    const shards = [...Deno.readDirSync(out)].filter((e) => e.name.endsWith(".tar"));
    assert(shards.length > 3, `a small --shard-size gives several shards: ${shards.length}`);
    for (const shard of shards) assert(Deno.statSync(join(out, shard.name)).size <= shardSize);
  },
});

Deno.test({
  name: "webdataset: long and non-ASCII keys (pax headers) still keep shards within the bound",
  ignore: !tarReader,
  async fn() {
    const data = await store(12, (i) => ({ id: `${"ü".repeat(60)}.${i}` }));
    const out = join(await Deno.makeTempDir(), "out");
    const shardSize = 20000;
    await runExport({ dataDir: data, out, format: "webdataset", shardSize });
    const shards = [...walk(out)].filter((f) => f.endsWith(".tar"));
    for (const shard of shards) assert(Deno.statSync(shard).size <= shardSize, shard);
    assert(shards.length < 12, `shards hold more than one sample: ${shards.length}`);
    const read = await python(
      `import sys, json, tarfile\nids = []\n` +
        `for p in sys.argv[1:]:\n  with tarfile.open(p) as t:\n` +
        `    ids += [json.load(t.extractfile(m))["id"] for m in t.getmembers() if m.name.endswith(".json")]\n` +
        `print(json.dumps(sorted(ids)))`,
      ...shards,
    );
    assert.equal(read.code, 0, read.err);
    const ids = Array.from({ length: 12 }, (_, i) => `${"ü".repeat(60)}.${i}`).sort();
    assert.deepEqual(JSON.parse(read.out), ids);
  },
});

Deno.test("--folds writes a layout per fold, fold k its test set", async () => {
  const data = await store();
  const out = join(await Deno.makeTempDir(), "out");
  const result = await runExport({ dataDir: data, out, format: "imagefolder", folds: true });
  assert.deepEqual(result.layouts.map((l) => l.dir), ["fold-0", "fold-1", "fold-2", "fold-3"]);
  for (const layout of result.layouts) assert.deepEqual(layout.bySplit.test, 10);
  await Deno.stat(join(out, "fold-2", "DATASHEET.md"));
  // --split fold:K is one of those layouts; a run without folds has none to give.
  const one = await runExport({
    dataDir: data,
    out: join(out, "..", "one"),
    format: "parquet",
    split: { kind: "fold", fold: 2 },
  });
  assert.deepEqual(one.layouts[0]!.bySplit, result.layouts[2]!.bySplit);
  const plain = await Deno.makeTempDir();
  await syntheticStore(plain, { faces: 10 });
  await assert.rejects(
    () =>
      runExport({
        dataDir: plain,
        out: join(out, "..", "plain"),
        format: "hf",
        split: { kind: "fold", fold: 0 },
      }),
    (e) => e instanceof RangeError && e.message.includes("did not use --folds"),
  );
});

Deno.test("filters: --min-score, --categories and --roles leave faces out, counted by reason", async () => {
  const data = await store();
  const out = join(await Deno.makeTempDir(), "out");
  const { parseRoleRules } = await import("../stages/filter_roles.ts");
  const result = await runExport({
    dataDir: data,
    out,
    format: "parquet",
    categories: ["alpha"],
    minScore: 0.6,
    roles: parseRoleRules("!secretary"),
  });
  const rows = (await Manifest.open(dataPaths(data).manifest)).rows().filter((r) =>
    r.status === "ok" && r.category === "alpha" && Number(r.face_score) >= 0.6 &&
    r.role !== "Secretary"
  );
  assert.deepEqual(result.exported, rows.length);
  assert.deepEqual(result.excluded.category_not_asked, 20);
});

Deno.test("nothing on the removal list is exported, and --check names what a later forget removed", async () => {
  const data = await store();
  const rows = (await Manifest.open(dataPaths(data).manifest)).rows().filter((r) =>
    r.status === "ok"
  );
  const [before, after] = [rows[0]!, rows[5]!];
  await forget({ dataDir: data, ids: [before.id] });
  const out = join(await Deno.makeTempDir(), "out");
  const result = await runExport({ dataDir: data, out, format: "imagefolder" });
  assert.deepEqual(result.exported, 39);
  const written = [...walk(out)];
  assert(!written.some((f) => f.includes(before.id)), "the forgotten face is not in the copy");
  assert.deepEqual((await checkExport(out)).mustDelete, []);

  await forget({ dataDir: data, names: [after.name] });
  const check = await checkExport(out);
  assert.deepEqual(check.mustDelete.map((f) => f.id), [after.id]);
  const place = check.mustDelete[0]!.places[0]!;
  assert(place.endsWith(`/${after.id}.png`), place);
  await Deno.stat(join(out, place));
  await Deno.remove(data, { recursive: true });
  await assert.rejects(
    () => checkExport(out),
    (e) => e instanceof ExportRefused && e.message.includes("--data"),
  );
});

function* walk(dir: string): Generator<string> {
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else yield path;
  }
}

Deno.test("a non-empty OUT is refused; --force replaces only an earlier export's files", async () => {
  const data = await store();
  const out = await Deno.makeTempDir();
  await Deno.writeTextFile(join(out, "notes.txt"), "mine");
  await assert.rejects(
    () => runExport({ dataDir: data, out, format: "imagefolder" }),
    (e) => e instanceof ExportRefused && e.message.includes("not empty"),
  );
  await runExport({ dataDir: data, out, format: "imagefolder", force: true });
  await runExport({ dataDir: data, out, format: "imagefolder", force: true });
  assert.deepEqual(await Deno.readTextFile(join(out, "notes.txt")), "mine");
  assert.deepEqual([...walk(out)].filter((f) => f.endsWith(".png")).length, 40);
});

Deno.test("a link planted in OUT cannot lead the export outside it", async () => {
  const data = await store();
  const out = await Deno.makeTempDir();
  const elsewhere = await Deno.makeTempDir();
  await Deno.symlink(elsewhere, join(out, "train"));
  await assert.rejects(
    () => runExport({ dataDir: data, out, format: "imagefolder", force: true }),
    (e) => e instanceof RangeError && e.message.includes("could lead outside OUT"),
  );
  assert.deepEqual([...Deno.readDirSync(elsewhere)], []);
});

Deno.test("the CLI: a usage error exits 2; --check exits 1 when the copy holds a removed face", async () => {
  const data = await store(20);
  const out = join(await Deno.makeTempDir(), "out");
  const cli = (...args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "export", ...args],
      env: { NO_COLOR: "1" },
    }).output();
  const bad = await cli("--data", data, "--format", "zip", "--out", out);
  assert.deepEqual(bad.code, 2);
  assert(new TextDecoder().decode(bad.stderr).includes("--format must be one of"));
  const made = await cli("--data", data, "--format", "webdataset", "--out", out);
  assert.deepEqual(made.code, 0, new TextDecoder().decode(made.stderr));
  const row = (await Manifest.open(dataPaths(data).manifest)).rows().find((r) =>
    r.status === "ok"
  )!;
  await forget({ dataDir: data, ids: [row.id] });
  const checked = await cli("--check", out);
  assert.deepEqual(checked.code, 1);
  const said = new TextDecoder().decode(checked.stdout);
  assert(said.includes(`-000000.tar: the row or sample ${row.id}`), said);
});
