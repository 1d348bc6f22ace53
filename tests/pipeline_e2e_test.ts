/** End-to-end: the real CLI on the embedded demo, as a user drives it. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Manifest } from "../store/manifest.ts";
import { DEFAULT_MODEL_KINDS } from "../models/classifier.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function facefield(args: string[], stdin?: string): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test({
  name: "pipeline on the demo: faces → split → both models → report, then predict on a demo face",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const data = await Deno.makeTempDir({ prefix: "facefield-e2e-" });
    const run = await facefield(["pipeline", "--data", data, "--epochs", "3", "--patience", "2"]);
    assert.equal(run.code, 0, run.stderr);
    const manifest = await Manifest.open(join(data, "index.csv"));
    const rows = manifest.rows();
    assert.ok(rows.length >= 20, `expected the demo's people, got ${rows.length}`);
    // The demo cross-validates in 4 folds: its 9 test faces of one split said nothing.
    const placed = rows.filter((row) => row.status === "ok");
    assert.deepEqual([...new Set(placed.map((row) => row.fold))].sort(), ["0", "1", "2", "3"]);
    const splits = new Set(placed.map((row) => row.split));
    assert.ok(splits.has("train") && splits.has("test"), [...splits].join());
    for (const kind of DEFAULT_MODEL_KINDS) {
      // The ensemble's folder holds copies of its members' models, not weights of its own.
      const weights = kind === "ensemble"
        ? join("members", "descriptor", "model.json")
        : "model.json";
      assert.ok(await exists(join(data, "models", kind, weights)), `${kind} model saved`);
      assert.ok(await exists(join(data, "models", kind, "metadata.json")));
    }
    assert.ok(await exists(join(data, "report", "report.html")));
    const metrics = JSON.parse(await Deno.readTextFile(join(data, "report", "metrics.json")));
    assert.ok(JSON.stringify(metrics).includes("ci95"));
    // The demo's sources differ in photo style: the checks run and the verdict leads.
    assert.equal(Object.keys(metrics)[0], "verdict");
    assert.equal(metrics.checks.sources.length, 4);
    assert.equal(metrics.checks.loso.length, DEFAULT_MODEL_KINDS.length, "one per model kind");
    assert.ok(metrics.checks.loso.every((l: { possible: boolean }) => l.possible));
    assert.deepEqual(
      metrics.checks.baselines.map((b: { key: string }) => b.key),
      // The default landmarks probe keeps the faces' landmarks, so the head's pose is a check.
      ["image-statistics", "masked-face", "blurred-face", "demographics", "head-pose"],
    );
    // The face stage estimated ethnicity for the demographic checks, and they read it.
    assert.match(metrics.checks.demographics.estimatedBy, /GEAR/);
    assert.ok(Object.keys(metrics.checks.seconds).includes("demographics"));
    // The answer leads the terminal too: the demo's sources differ only in photo style.
    assert.equal(metrics.verdict.conclusion, "photo", metrics.verdict.why);
    assert.equal(metrics.verdict.model, "ensemble");
    assert.match(run.stdout, /^verdict \(the photo\): No: the model reads the photo/m);
    assert.match(run.stdout, /report: .*report\.html/);
    // Names are personal data: the run's logs carry ids and counts only.
    for (const row of rows) {
      assert.ok(!run.stderr.includes(row.name), "a name leaked into the log");
    }

    // Predict on one of the demo's own images, piped as bytes.
    const face = rows.find((row) => row.status === "ok" && row.sha256)!;
    const image = join(data, "cache", "images", face.sha256.slice(0, 2), face.sha256);
    // The probe on a shipped network computes its embedding for the new image too.
    for (const kind of ["embedding", "mobilefacenet", "ensemble"]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "predict", "--model", join(data, "models", kind)],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(await Deno.readFile(image));
      await writer.close();
      const out = await child.output();
      const stdout = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      const line = JSON.parse(stdout.trim().split("\n")[0]!);
      assert.ok(line.label, stdout);
      assert.ok(line.box, stdout);
    }

    // A rerun fetches nothing again and redoes no face work.
    const rerun = await facefield(["pipeline", "--data", data, "--until", "split"]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, /pages: 0 ok, 0 failed · \d+ sources already crawled/);
    const after = await Manifest.open(join(data, "index.csv"));
    for (const row of rows) assert.equal(after.get(row.id)?.split, row.split, "split is stable");

    // Forgetting a person takes them out of the manifest, the caches, the models and the report.
    const forgotten = rows.find((row) => row.status === "ok")!;
    const forget = await facefield(["forget", "--data", data, "--id", forgotten.id]);
    assert.equal(forget.code, 0, forget.stderr);
    const afterForget = await Manifest.open(join(data, "index.csv"));
    assert.equal(afterForget.get(forgotten.id), undefined);
    assert.equal(await exists(join(data, "report")), false);
    assert.equal(await exists(join(data, "models", "cnn")), false);
    assert.equal(
      await exists(join(data, "models", "ensemble")),
      false,
      "the ensemble saw them too",
    );
    const again = await facefield(["pipeline", "--data", data, "--until", "faces", "--refresh"]);
    assert.equal(again.code, 0, again.stderr);
    const afterRecrawl = await Manifest.open(join(data, "index.csv"));
    assert.ok(
      !afterRecrawl.rows().some((row) => row.name === forgotten.name),
      "a re-crawl must not bring a removed person back",
    );
    await Deno.remove(data, { recursive: true });
  },
});

Deno.test({
  name: "pipeline reads sources from stdin, reports a malformed row by line and goes on",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const data = await Deno.makeTempDir({ prefix: "facefield-e2e-" });
    const csv = "url,category\nnot a url,cs\nhttp://127.0.0.1:9/unreachable,cs\n";
    const run = await facefield(
      ["pipeline", "--sources", "-", "--data", data, "--until", "images"],
      csv,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /sources line 2: skipped, bad_url/);
    assert.match(run.stdout, /pages: 0 ok, 1 failed/);
    await Deno.remove(data, { recursive: true });
  },
});

Deno.test("bad command-line input exits non-zero with a specific message", async () => {
  const cases: [string[], RegExp][] = [
    [["pipeline", "--until", "nowhere"], /--until must be one of/],
    [["pipeline", "--ratios", "70/10"], /--ratios must be three numbers/],
    [["pipeline", "--epochs", "zero"], /--epochs must be an integer/],
    [["pipeline", "--no-such-flag"], /Unknown option '--no-such-flag'/],
    [["pipeline", "--sources", "/nonexistent/sources.csv", "--data", "/tmp/ff-none"], /sources/],
    [["pipeline", "--data", new URL("../README.md", import.meta.url).pathname], /is a file/],
    [["pipeline", "--sources", new URL("../data", import.meta.url).pathname], /not a file/],
    [["nosuchcommand"], /unknown command 'nosuchcommand'/],
    [["forget", "--data", "/nonexistent-dir"], /say who to remove/],
  ];
  for (const [args, message] of cases) {
    const run = await facefield(args);
    assert.notEqual(run.code, 0, `${args.join(" ")} should fail`);
    assert.match(run.stderr, message, `${args.join(" ")}: ${run.stderr}`);
    assert.ok(!run.stderr.includes("internal error"), run.stderr);
  }
});

Deno.test("every command answers --help", async () => {
  for (const command of ["pipeline", "predict", "crop", "forget", "bench:crawl", "bench:faces"]) {
    const run = await facefield([command, "--help"]);
    assert.equal(run.code, 0, `${command} --help: ${run.stderr}`);
    assert.match(run.stdout, /usage/i);
  }
});

Deno.test({
  name: "a run killed mid-way loses nothing it finished, and a rerun completes it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const data = await Deno.makeTempDir({ prefix: "facefield-e2e-" });
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "pipeline", "--data", data, "--until", "faces"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const manifestPath = join(data, "index.csv");
    const deadline = Date.now() + 60_000;
    // Kill it once some records are on disk but before the face stage has finished them all.
    // The records are read from state.db, committed per record; index.csv waits for a stage end.
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const reader = await Manifest.open(manifestPath).catch(() => undefined);
      const size = reader?.size ?? 0;
      reader?.close();
      if (size > 0) break;
    }
    child.kill("SIGKILL");
    await child.status;
    const before = (await Manifest.open(manifestPath)).rows();
    assert.ok(before.length > 0, "the manifest had rows on disk before the kill");
    assert.ok(await exists(join(data, ".lock")), "the killed run left its lock behind");

    const rerun = await facefield(["pipeline", "--data", data, "--until", "faces"]);
    assert.equal(rerun.code, 0, rerun.stderr);
    const after = await Manifest.open(manifestPath);
    for (const row of before) assert.ok(after.get(row.id), `record ${row.id} survived the kill`);
    const faces = after.rows().filter((row) => row.status === "ok" && row.stage === "faces");
    // Every portrait got to the face stage: a face, or a specific reason why none was taken.
    const unfinished = after.rows().filter((row) => row.status === "ok" && row.stage !== "faces");
    assert.deepEqual(unfinished.map((row) => row.stage), [], "the rerun finished every demo face");
    assert.ok(faces.length >= 40, `the demo's 48 portraits gave ${faces.length} faces`);
    const leftovers = [...Deno.readDirSync(data)].filter((entry) => entry.name.endsWith(".tmp"));
    assert.deepEqual(leftovers, []);
    await Deno.remove(data, { recursive: true });
  },
});

Deno.test("a sources file that cannot be read at all exits 2 with what is wrong", async () => {
  const cases: [string, RegExp][] = [
    ["foo,bar\nx,y\n", /line 1 must be a header naming the columns url,category/],
    ["", /sources CSV is empty/],
  ];
  for (const [csv, message] of cases) {
    const data = await Deno.makeTempDir({ prefix: "facefield-e2e-" });
    const run = await facefield(
      ["pipeline", "--sources", "-", "--data", data, "--until", "images"],
      csv,
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
    assert.ok(!run.stderr.includes("internal error"), run.stderr);
    await Deno.remove(data, { recursive: true });
  }
});
