import assert from "node:assert/strict";
import { join } from "node:path";
import { Manifest } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { dropDuplicateImages } from "../pipeline/crawl.ts";
import { formatSummary, summarise } from "../report/summary.ts";
import { type ImageRecord, ok } from "../core/types.ts";

function image(id: string, category: string, sha256: string): ImageRecord {
  return {
    id,
    category,
    sha256,
    imageUrl: `https://u.example/${id}.jpg`,
    name: `Person ${id}`,
    pageUrl: "https://u.example/staff",
    imagePath: `/cache/${sha256}`,
    format: "jpeg",
    width: 225,
    height: 275,
    bytes: 1000,
  };
}

Deno.test("dropDuplicateImages() rejects the same bytes twice in one category, keeps other categories", async () => {
  const manifest = await Manifest.open(join(await Deno.makeTempDir(), "index.csv"));
  manifest.record(ok(image("aaaaaaaa", "cs", "s1")), "images");
  const check = dropDuplicateImages(manifest);
  const moved = check(ok(image("bbbbbbbb", "cs", "s1")));
  if (moved.status === "ok") throw new Error("the second copy must be rejected");
  assert.match(moved.reason, /^duplicate_image: .*aaaaaaaa/);
  assert.equal(check(ok(image("cccccccc", "math", "s1"))).status, "ok", "another category stays");
  assert.equal(check(ok(image("aaaaaaaa", "cs", "s1"))).status, "ok", "the first owner stays");
  assert.equal(check(ok(image("dddddddd", "cs", "s2"))).status, "ok");
  assert.equal(check(ok(image("eeeeeeee", "cs", "s2"))).status, "rejected", "within one run too");
});

Deno.test("summarise() counts records by status, reason code and category", async () => {
  const manifest = await Manifest.open(join(await Deno.makeTempDir(), "index.csv"));
  manifest.record(ok(image("aaaaaaaa", "cs", "s1")), "faces");
  manifest.record(
    {
      status: "rejected",
      stage: "faces",
      reason: "no_face",
      record: image("bbbbbbbb", "cs", "s2"),
    },
    "faces",
  );
  manifest.record(
    {
      status: "failed",
      stage: "images",
      reason: "http_404: GET",
      record: image("cccccccc", "law", ""),
    },
    "images",
  );
  const summary = summarise(manifest.path, manifest.rows(), {
    dataDir: "d",
    invalidSources: 1,
    skippedSources: 0,
    pages: { ok: 2, failed: 1 },
    models: [],
  });
  assert.deepEqual(summary.byStatus, {
    "ok (faces)": 1,
    "rejected at faces": 1,
    "failed at images": 1,
  });
  assert.deepEqual(summary.byReason, { no_face: 1, http_404: 1 });
  assert.deepEqual(summary.byCategory, { cs: { ok: 1, dropped: 1 }, law: { ok: 0, dropped: 1 } });
  const text = formatSummary(summary);
  assert.match(text, /pages: 2 ok, 1 failed · 1 invalid source rows/);
  assert.ok(!text.includes("Person"), "the summary names no one");
});

Deno.test("PageLog: a source is done only once crawled to its end with every page ok", async () => {
  const path = join(await Deno.makeTempDir(), "pages.csv");
  const log = await PageLog.open(path);
  const page = (page_url: string, status: "ok" | "failed") => ({
    source_url: "https://u.example/staff",
    page_url,
    category: "cs",
    status,
    reason: "",
    people: "3",
  });
  log.record(page("https://u.example/staff", "ok"));
  assert.equal(log.sourceDone("https://u.example/staff"), false, "page 2 may still be missing");
  log.recordComplete("https://u.example/staff", "cs");
  assert.equal((await PageLog.open(path)).sourceDone("https://u.example/staff"), true);
  log.record(page("https://u.example/staff?page=2", "failed"));
  assert.equal((await PageLog.open(path)).sourceDone("https://u.example/staff"), false);
});
