import assert from "node:assert/strict";
import { join } from "node:path";
import { forget } from "../store/forget.ts";
import { Manifest, outcomeToRow } from "../store/manifest.ts";
import { blobPath, dataPaths } from "../store/paths.ts";
import { RemovedList } from "../store/removed.ts";
import { ok } from "../core/types.ts";

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function touch(path: string, text = "x"): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  await Deno.writeTextFile(path, text);
}

const shaA = "a".repeat(64);
const shaB = "b".repeat(64);
const shaOther = "c".repeat(64);

/** A data dir where "Dr. Ada Byron" appears on two pages (same face), next to someone else. */
async function seededDataDir(root?: string) {
  root ??= await Deno.makeTempDir();
  await Deno.mkdir(root, { recursive: true });
  const paths = dataPaths(root);
  const manifest = await Manifest.open(paths.manifest);
  const base = { imageUrl: "https://u.example/i.jpg", pageUrl: "https://u.example/p" };
  manifest.set(outcomeToRow(
    ok({
      ...base,
      id: "11111111",
      category: "cs",
      name: "Dr. Ada Byron",
      sha256: shaA,
      identity: "11111111",
    }),
    "split",
  ));
  manifest.set(outcomeToRow(
    ok({
      ...base,
      id: "22222222",
      category: "math",
      name: "Ada Byron",
      sha256: shaB,
      identity: "11111111",
    }),
    "split",
  ));
  manifest.set(outcomeToRow(
    ok({
      ...base,
      id: "33333333",
      category: "cs",
      name: "Grace Hopper",
      sha256: shaOther,
      identity: "33333333",
    }),
    "split",
  ));
  manifest.flushSync();
  for (const sha of [shaA, shaB, shaOther]) {
    await touch(blobPath(paths.imageCache, sha));
    await touch(blobPath(join(paths.faceCache, "settings1"), sha, ".png"));
    await touch(blobPath(join(paths.faceCache, "settings1"), sha, ".json"));
    await touch(blobPath(paths.thumbnails, sha, ".face.webp"));
  }
  await touch(
    join(paths.models, "cnn", "training_ids.json"),
    JSON.stringify(["11111111", "33333333"]),
  );
  await touch(join(paths.models, "other", "training_ids.json"), JSON.stringify(["33333333"]));
  await touch(join(paths.reports, "report.html"), "<img src=data:...>");
  return paths;
}

Deno.test("forget() removes the person everywhere, including their face under another category", async () => {
  const paths = await seededDataDir();
  const result = await forget({ dataDir: paths.root, ids: ["11111111"] });
  assert.equal(result.records, 2);
  const manifest = await Manifest.open(paths.manifest);
  assert.deepEqual(manifest.rows().map((r) => r.id), ["33333333"]);
  for (const sha of [shaA, shaB]) {
    assert.equal(await exists(blobPath(paths.imageCache, sha)), false);
    assert.equal(await exists(blobPath(join(paths.faceCache, "settings1"), sha, ".png")), false);
    assert.equal(await exists(blobPath(join(paths.faceCache, "settings1"), sha, ".json")), false);
    assert.equal(await exists(blobPath(paths.thumbnails, sha, ".face.webp")), false, "thumbnail");
  }
  assert.equal(await exists(blobPath(paths.imageCache, shaOther)), true, "others stay");
  assert.equal(await exists(blobPath(paths.thumbnails, shaOther, ".face.webp")), true);
  assert.equal(await exists(join(paths.models, "cnn")), false, "model trained on them is gone");
  assert.equal(await exists(join(paths.models, "other")), true, "model without them stays");
  assert.equal(await exists(paths.reports), false);
});

Deno.test("forget() reaches into a repeated benchmark's data dirs", async () => {
  const paths = await seededDataDir();
  const repeat = await seededDataDir(join(paths.repeats, "seed-43"));
  const result = await forget({ dataDir: paths.root, names: ["Ada Byron"] });
  assert.equal(result.records, 4, "two rows in each data dir");
  for (const dir of [paths, repeat]) {
    const manifest = await Manifest.open(dir.manifest);
    assert.deepEqual(manifest.rows().map((r) => r.id), ["33333333"], dir.root);
    assert.equal(await exists(blobPath(dir.imageCache, shaA)), false, dir.root);
    assert.equal(await exists(join(dir.models, "cnn")), false, dir.root);
    assert.ok((await RemovedList.open(dir.removed)).matches({ id: "ffffffff", name: "Ada Byron" }));
  }
  assert.equal(result.models.length, 2);
});

Deno.test("forget() by name keeps no plain name, and later crawls recognise the person", async () => {
  const paths = await seededDataDir();
  await forget({ dataDir: paths.root, names: ["  dr. ada   BYRON "] });
  // Nothing of the data dir's state keeps the name: not the removal list, not the deleted rows'
  // old bytes in state.db's free pages or its WAL, not index.csv.
  for (const file of [paths.state, `${paths.state}-wal`, paths.manifest]) {
    const bytes = await Deno.readFile(file).catch(() => new Uint8Array());
    assert.ok(!/byron/i.test(new TextDecoder("latin1").decode(bytes)), `${file} holds the name`);
  }
  const removed = await RemovedList.open(paths.removed);
  assert.ok(removed.matches({ id: "ffffffff", name: "Dr. Ada Byron" }));
  assert.ok(removed.matches({ id: "ffffffff", name: "x", sha256: shaB }));
  assert.ok(!removed.matches({ id: "33333333", name: "Grace Hopper", sha256: shaOther }));
  const manifest = await Manifest.open(paths.manifest);
  assert.deepEqual(manifest.rows().map((r) => r.id), ["33333333"]);
});
