/** `bench --people`: any labelled CSV through the whole stream, as an image list or a site. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { modelFigures, runPeopleBench, servedSiteOptions } from "../pipeline/people_bench.ts";
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
