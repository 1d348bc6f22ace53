/**
 * `--images`: a labelled list instead of a crawl, through the same stream. The portraits are the
 * demo's (face-api's sample photos, cut at run time by the demo site): half saved as local
 * files named by relative paths, half left on the loopback site as URLs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type DemoPortrait, saveDemoPortraits } from "./testdata/lists/demo_portraits.ts";
import { runPipeline } from "../pipeline/run.ts";
import { Manifest } from "../store/manifest.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const NOT_AN_IMAGE = new URL("./testdata/faces/not_an_image.jpg", import.meta.url).pathname;

/** A list of the demo's 24 people (even ones as files, odd ones as URLs) plus bad rows. */
async function writeList(dir: string, portraits: DemoPortrait[]): Promise<string> {
  const rows = ["id,category,image_url,name,source"];
  for (const [i, person] of portraits.entries()) {
    const image = i % 2 === 0 ? person.file : person.url;
    rows.push(`p${i},${person.department},${image},"${person.name}",site-${i % 2}`);
  }
  rows.push("missing,economics,photos/none.jpg,Nobody,site-0");
  rows.push(`junk,economics,${NOT_AN_IMAGE},Junk,site-0`);
  rows.push("folder,economics,photos,Folder,site-0");
  rows.push("nocat,,photos/0.jpg,No Category,site-0");
  const path = join(dir, "list.csv");
  await Deno.writeTextFile(path, rows.join("\n") + "\n");
  return path;
}

Deno.test({
  name:
    "runPipeline({ images }) takes local paths and URLs into faces and split, bad rows kept with reasons",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield-list-" });
    const site = await saveDemoPortraits(dir, true);
    try {
      const list = await writeList(dir, site.portraits);
      const data = join(dir, "data");
      const summary = await runPipeline({ images: list, dataDir: data, until: "split" });
      const manifest = await Manifest.open(join(data, "index.csv"));
      const rows = new Map(manifest.rows().map((row) => [row.id, row]));
      const split = manifest.rows().filter((row) => row.status === "ok" && row.split);
      assert.ok(split.length >= 20, `most of the 24 demo faces reach the split: ${split.length}`);
      assert.ok(split.some((row) => row.image_url.startsWith("file:")), "local files");
      assert.ok(split.some((row) => row.image_url.startsWith("http:")), "and URLs");
      assert.equal(rows.get("p0")?.page_url, "site-0", "the source is kept as the page");
      assert.match(rows.get("missing")?.reason ?? "", /^file_not_found/);
      assert.match(rows.get("junk")?.reason ?? "", /^not_an_image/);
      assert.match(rows.get("folder")?.reason ?? "", /^not_a_file/);
      assert.equal(rows.get("nocat")?.stage, "sources");
      assert.match(rows.get("nocat")?.reason ?? "", /^missing_category/);
      assert.equal(summary.invalidSources, 1);
      assert.equal(summary.pages.ok, 0, "nothing was crawled");

      // A rerun redoes nothing and keeps every split.
      await runPipeline({ images: list, dataDir: data, until: "split" });
      const again = await Manifest.open(join(data, "index.csv"));
      for (const row of split) assert.equal(again.get(row.id)?.split, row.split);
    } finally {
      await site.close();
    }
  },
});

Deno.test({
  name: "pipeline --images trains and reports; --images with --sources is a usage error",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield-list-cli-" });
    const { portraits } = await saveDemoPortraits(dir);
    const list = await writeList(dir, portraits);
    // The site is closed: the run reads the local files only.
    await Deno.writeTextFile(
      list,
      (await Deno.readTextFile(list)).split("\n").filter((line) => !line.includes("http:"))
        .join("\n"),
    );
    const data = join(dir, "data");
    const run = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "pipeline", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const both = await run("--images", list, "--sources", list, "--data", data);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /cannot both be given/);
    const ok = await run(
      ...["--images", list, "--data", data, "--models", "embedding", "--epochs", "2"],
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(await Deno.stat(join(data, "report", "report.html")).then(() => true));
    assert.ok(!ok.stderr.includes("Helena Varga"), "names stay out of the log");
  },
});
