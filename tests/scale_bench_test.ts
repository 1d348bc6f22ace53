import assert from "node:assert/strict";
import sharp from "sharp";
import { curveOf } from "../pipeline/scale_bench.ts";
import { benchPortrait, numberedJpeg } from "../commands/bench/crawl.ts";
import { sha256Hex } from "../core/ids.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

Deno.test("curveOf() gives records/s per tenth of the items, and the last tenth over the first", () => {
  // 101 items: the first half one per 10 ms (100/s), the second one per 20 ms (50/s).
  const times = Array.from({ length: 101 }, (_, i) => i <= 50 ? i * 10 : 500 + (i - 50) * 20);
  const curve = curveOf("images", times);
  assert.equal(curve.items, 101);
  assert.equal(curve.seconds, 1.5);
  assert.deepEqual(curve.bucketsPerS, [100, 100, 100, 100, 100, 50, 50, 50, 50, 50]);
  assert.equal(curve.lastOverFirst, 0.5);
  assert.deepEqual(curveOf("faces", []).bucketsPerS, []);
});

Deno.test({
  name: "bench:scale at a tiny size prints every figure the issue asks for",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "bench:scale",
        "--sources=2",
        "--pages=2",
        "--per-page=5",
        "--faces=5",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
    for (
      const pattern of [
        /^pipeline --until images: [\d.]+ s wall, peak RSS [\d.]+ MB, longest event-loop stall [\d.]+ ms/m,
        /^ {2}images +20 items in [\d.]+ s; records\/s per 10 %: ([\d.-]+ ){9}[\d.-]+; last\/first/m,
        /^idle event loop \(3 s, nothing to do\): longest stall [\d.]+ ms/m,
        /^no-op rerun: [\d.]+ s wall/m,
        /^web app: Overview \d+ ms \(then \d+ ms\), Faces \d+ ms/m,
        /^forget of one person: [\d.]+ s \(1 records\)/m,
        /^faces on 10 records: /m,
        /^ {2}faces +10 items/m,
      ]
    ) assert.match(stdout, pattern);
    const figures = JSON.parse(stdout.trim().split("\n").at(-1)!);
    assert.equal(figures.bench, "scale");
    assert.equal(figures.records, 20);
    const images = figures.images.curves.find((c: { stage: string }) => c.stage === "images");
    assert.equal(images.items, 20, "every generated portrait was stored");
    assert.equal(images.bucketsPerS.length, 10);
    assert.ok(figures.images.peakRssMb > 0 && figures.images.longestStallMs >= 0);
    assert.equal(typeof figures.noop_rerun_s, "number");
    assert.equal(figures.overview_page.status, 200);
    assert.equal(figures.faces_page.status, 200);
    assert.equal(figures.forget_s >= 0, true);
    const faces = figures.faces.curves.find((c: { stage: string }) => c.stage === "faces");
    assert.equal(faces.items, 10, "each subset record passed the face stage once");
  },
});

Deno.test("a lazy bench site's portraits are one picture under distinct bytes", async () => {
  const base = await benchPortrait(3);
  const [a, b] = [numberedJpeg(base, 7), numberedJpeg(base, 8)];
  assert.notEqual(sha256Hex(a), sha256Hex(b));
  const pixels = await sharp(base).raw().toBuffer();
  assert.ok(pixels.equals(await sharp(a).raw().toBuffer()), "the comment leaves the pixels be");
});
