/** `bench --people`: any labelled CSV through the whole stream, as an image list or a site. */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { modelFigures, runPeopleBench, servedSiteOptions } from "../pipeline/people_bench.ts";
import {
  repeatDataDir,
  runRepeatedBench,
  seedRepeatDir,
  spreadOf,
} from "../pipeline/repeated_bench.ts";
import { Manifest } from "../store/manifest.ts";
import { dataPaths } from "../store/paths.ts";
import { saveDemoPortraits } from "./testdata/lists/demo_portraits.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A CSV with its own column names: photo, dept, origin (two groups), who. */
async function writeCsv(dir: string): Promise<string> {
  const { portraits } = await saveDemoPortraits(dir);
  const rows = ["photo,dept,origin,who"];
  portraits.forEach((p, i) => rows.push(`${p.file},${p.department},cam-${i % 2},"${p.name}"`));
  const path = join(dir, "people.csv");
  await Deno.writeTextFile(path, rows.join("\n") + "\n");
  return path;
}

for (const serve of [false, true]) {
  Deno.test({
    name: `runPeopleBench() ${
      serve ? "on a served site" : "on an image list"
    }: stages, models, RSS, report`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "facefield-bench-people-" });
      const csv = await writeCsv(dir);
      const summary = await runPeopleBench({
        csv: await Deno.readTextFile(csv),
        baseDir: dir,
        columns: { image: "photo", category: "dept", source: "origin", name: "who" },
        serve,
        perPage: 2,
        pipeline: { dataDir: join(dir, "data"), models: ["embedding"], epochs: 2 },
      });
      assert.equal(summary.people, 24);
      const stage = (name: string) => summary.stages.find((s) => s.stage === name);
      assert.ok((stage("faces")?.items ?? 0) >= 20, JSON.stringify(summary.stages));
      // One listing per label and group, 2 people a page.
      const rows = (await Deno.readTextFile(csv)).trim().split("\n").slice(1);
      const listings = Map.groupBy(rows, (row) => row.split(",").slice(1, 3).join());
      const pages = [...listings.values()].reduce((n, l) => n + Math.ceil(l.length / 2), 0);
      assert.equal(stage("pages")?.items, serve ? pages : 0);
      for (const name of ["images", "faces", "split", "train", "evaluate"]) {
        assert.ok(stage(name), `${name} is timed`);
      }
      assert.equal(summary.models.length, 1);
      const [model] = summary.models;
      assert.equal(model?.kind, "embedding");
      assert.ok(typeof model?.accuracy === "number" && Array.isArray(model.ci95));
      assert.ok("majorityBaseline" in (model?.baselines ?? {}), "the baselines come along");
      assert.ok((summary.peak_rss_mb ?? 0) > 50);
      assert.ok(summary.report && await Deno.stat(summary.report).then(() => true));
    },
  });
}

Deno.test("modelFigures() keeps every figure beside the model's own, and leaves out the detail", () => {
  const figures = modelFigures({
    kind: "cnn",
    metrics: {
      accuracy: 0.6,
      ci95: [0.5, 0.7],
      n: 100,
      chance: 0.5,
      confusion: { labels: [] },
      styleBaseline: { accuracy: 0.58 },
    },
  });
  assert.equal(figures.accuracy, 0.6);
  assert.deepEqual(figures.baselines, { styleBaseline: { accuracy: 0.58 } });
});

Deno.test("bench without --people, or with a missing file, is a usage error", async () => {
  for (const args of [["bench"], ["bench", "--people", "no-such.csv"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 2);
    assert.match(new TextDecoder().decode(out.stderr), /--people/);
  }
});

Deno.test("the served site runs without a politeness delay unless asked, even when flags pass undefined", () => {
  // What `bench --people … --serve` hands over when --delay-ms was not given.
  const fromFlags = servedSiteOptions({ dataDir: "x", delayMs: undefined, perHost: undefined });
  assert.equal(fromFlags.delayMs, 0);
  assert.equal(fromFlags.perHost, 8);
  assert.equal(fromFlags.sources, "-");
  const asked = servedSiteOptions({ dataDir: "x", delayMs: 250, perHost: 2 });
  assert.deepEqual([asked.delayMs, asked.perHost], [250, 2]);
});

Deno.test({
  name: "runRepeatedBench(): one partition per seed, figures per partition, caches shared",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield-bench-repeats-" });
    const csv = await writeCsv(dir);
    const dataDir = join(dir, "data");
    const summary = await runRepeatedBench({
      csv: await Deno.readTextFile(csv),
      baseDir: dir,
      columns: { image: "photo", category: "dept", source: "origin", name: "who" },
      pipeline: { dataDir, models: ["descriptor"], folds: 3, seed: 5 },
    }, 2);
    const repeats = summary.repeats!;
    assert.deepEqual(repeats.seeds, [5, 6]);
    assert.equal(repeats.wall_s_each[0], summary.wall_s);
    // Each is rounded to a tenth of a second.
    assert.ok(repeats.wall_s + 0.1 >= repeats.wall_s_each[0]! + repeats.wall_s_each[1]!);
    assert.deepEqual(repeats.dataDirs, [dataDir, repeatDataDir(dataDir, 6)]);
    // Each partition is a data dir of its own: the same faces, folds drawn by its seed.
    const folds = await Promise.all(repeats.dataDirs.map(async (root) => {
      const manifest = await Manifest.open(dataPaths(root).manifest);
      return new Map(manifest.rows().map((row) => [row.id, row.fold]));
    }));
    assert.deepEqual([...folds[0]!.keys()].sort(), [...folds[1]!.keys()].sort());
    const moved = [...folds[0]!].filter(([id, fold]) => folds[1]!.get(id) !== fold).length;
    assert.ok(moved > 0, "another seed draws another partition");
    // The figures are each partition's metrics.json, and their mean.
    const accuracies = await Promise.all(repeats.reports.map(async (report) => {
      const metrics = JSON.parse(await Deno.readTextFile(join(dirname(report!), "metrics.json")));
      return metrics.models[0].metrics.accuracy as number;
    }));
    const [descriptor] = repeats.models;
    assert.equal(descriptor?.kind, "descriptor");
    assert.deepEqual(descriptor?.each, accuracies);
    assert.ok(Math.abs(descriptor!.mean! - (accuracies[0]! + accuracies[1]!) / 2) < 1e-12);
    assert.equal(summary.models[0]?.accuracy, accuracies[0], "the first partition's summary");
    const statistics = repeats.baselines.find((b) => b.key === "image-statistics");
    assert.equal(statistics?.each.length, 2);
    assert.equal(statistics?.beatenBy.descriptor?.of, 2);
    // The repeat's face cache is the first's files, linked, not detected again.
    const faces = dataPaths(dataDir).faceCache;
    const [settings] = await Array.fromAsync(Deno.readDir(faces));
    const [shard] = await Array.fromAsync(Deno.readDir(join(faces, settings!.name)));
    const [entry] = await Array.fromAsync(Deno.readDir(join(faces, settings!.name, shard!.name)));
    const path = join(settings!.name, shard!.name, entry!.name);
    const [a, b] = await Promise.all(
      repeats.dataDirs.map((root) => Deno.stat(join(dataPaths(root).faceCache, path))),
    );
    assert.equal(a!.ino, b!.ino);
  },
});

Deno.test("spreadOf() leaves out partitions without the figure", () => {
  const spread = spreadOf([0.6, null, 0.7]);
  assert.ok(Math.abs(spread.mean! - 0.65) < 1e-12);
  assert.ok(Math.abs(spread.sd! - Math.sqrt(0.005)) < 1e-12);
  assert.deepEqual([spread.min, spread.max], [0.6, 0.7]);
  assert.equal(spreadOf([null]).mean, null);
  assert.equal(spreadOf([0.5]).sd, null);
});

Deno.test("seedRepeatDir(): a repeat starts from the caches and the removal list, not the partition", async () => {
  const first = dataPaths(await Deno.makeTempDir({ prefix: "facefield-repeat-seed-" }));
  const blob = join(first.imageCache, "ab", "abcd");
  await Deno.mkdir(dirname(blob), { recursive: true });
  await Deno.writeTextFile(blob, "image bytes");
  await Deno.writeTextFile(first.removed, "id,name_hash,sha256\n11111111,,\n");
  await Deno.writeTextFile(first.manifest, "id,fold\n22222222,3\n");
  const repeat = dataPaths(repeatDataDir(first.root, 43));
  await seedRepeatDir(first.root, repeat.root);
  await seedRepeatDir(first.root, repeat.root); // again, over what it linked before
  const linked = await Deno.stat(join(repeat.imageCache, "ab", "abcd"));
  assert.equal(linked.ino, (await Deno.stat(blob)).ino);
  assert.equal(await Deno.readTextFile(repeat.removed), await Deno.readTextFile(first.removed));
  await assert.rejects(Deno.stat(repeat.manifest), Deno.errors.NotFound);
});
