import assert from "node:assert/strict";
import { from, lastValueFrom, toArray } from "rxjs";
import { sha256Hex } from "../core/ids.ts";
import type { FaceRecord, SplitName, SplitRecord } from "../core/types.ts";
import { isOk } from "../core/types.ts";
import { assignSplit, inSeedOrder, type SplitOptions } from "../stages/split.ts";
import { foldRole, SPLIT_NAMES } from "../core/split_rules.ts";
import { seededRandom } from "../models/augment.ts";

/** A random unit-ish descriptor: two of them are about 1.4 apart, never "the same person". */
function descriptor(next: () => number): number[] {
  const v = Array.from({ length: 128 }, () => next() - 0.5);
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function face(id: string, category: string, extra: Partial<FaceRecord> = {}): FaceRecord {
  return {
    id,
    category,
    imageUrl: `https://example.org/${id}.jpg`,
    name: `person ${id}`,
    pageUrl: `https://example.org/${category}`,
    sha256: sha256Hex(id),
    imagePath: `/cache/${id}`,
    format: "jpeg",
    width: 128,
    height: 128,
    bytes: 1000,
    cropPath: `/faces/${id}.png`,
    faceBox: { x: 0, y: 0, width: 64, height: 64 },
    faceScore: 0.9,
    faceCount: 1,
    faceAngle: 0,
    descriptor: [],
    detector: "test",
    ...extra,
  };
}

/** Three categories of different sizes, interleaved in a shuffled order. */
function stream(count: number, seed = 1): FaceRecord[] {
  const next = seededRandom(seed);
  const records: FaceRecord[] = [];
  for (let i = 0; i < count; i++) {
    const category = ["biology", "history", "physics"][i % 7 < 4 ? 0 : i % 7 < 6 ? 1 : 2]!;
    records.push(face(`r${i}`, category, { descriptor: descriptor(next) }));
  }
  for (let i = records.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [records[i], records[j]] = [records[j]!, records[i]!];
  }
  return records;
}

async function split(records: FaceRecord[], options?: SplitOptions): Promise<SplitRecord[]> {
  const outcomes = await lastValueFrom(from(records).pipe(assignSplit(options), toArray()));
  return outcomes.map((outcome) => {
    assert(isOk(outcome), `unexpected ${outcome.status}`);
    return outcome.record;
  });
}

/** Largest |count − share·n| over every prefix, per category (and per fold cell when given). */
function worstPrefixDeviation(
  records: SplitRecord[],
  shares: Record<string, number>,
  key: (r: SplitRecord) => string,
  group: (r: SplitRecord) => string,
): number {
  const counts = new Map<string, Map<string, number>>();
  let worst = 0;
  for (const record of records) {
    const g = group(record);
    const cell = counts.get(g) ?? new Map<string, number>();
    counts.set(g, cell);
    cell.set(key(record), (cell.get(key(record)) ?? 0) + 1);
    const n = [...cell.values()].reduce((a, b) => a + b, 0);
    for (const [name, share] of Object.entries(shares)) {
      worst = Math.max(worst, Math.abs((cell.get(name) ?? 0) - share * n));
    }
  }
  return worst;
}

const ratios = { train: 0.7, val: 0.1, test: 0.2 };

Deno.test("assignSplit() keeps every prefix of each category within one item of 70/10/20", async () => {
  const records = await split(stream(700));
  const worst = worstPrefixDeviation(records, ratios, (r) => r.split, (r) => r.category);
  assert(worst <= 1, `a prefix strayed ${worst} items from its share`);
  const train = records.filter((r) => r.split === "train").length;
  assert(Math.abs(train - 490) <= 3, `train has ${train} of 700`);
  assert(records.every((r) => r.fold === null && r.identity === r.id));
});

Deno.test("assignSplit() honours configured ratios, ties broken by the seed", async () => {
  const even = { train: 0.5, val: 0.25, test: 0.25 };
  const a = await split(stream(300), { ratios: even });
  const worst = worstPrefixDeviation(a, even, (r) => r.split, (r) => r.category);
  assert(worst <= 1, `a prefix strayed ${worst} items from its share`);
  const b = await split(stream(300), { ratios: even, seed: "other" });
  assert.notDeepEqual(a.map((r) => r.split), b.map((r) => r.split));
  const again = await split(stream(300), { ratios: even });
  assert.deepEqual(again.map((r) => r.split), a.map((r) => r.split));
});

Deno.test("assignSplit() with folds stratifies folds per category and splits per fold", async () => {
  const records = await split(stream(500), { folds: 5 });
  const folds = { "0": 0.2, "1": 0.2, "2": 0.2, "3": 0.2, "4": 0.2 };
  assert(worstPrefixDeviation(records, folds, (r) => String(r.fold), (r) => r.category) <= 1);
  const perCell = worstPrefixDeviation(records, ratios, (r) => r.split, (r) => {
    return `${r.category}/${r.fold}`;
  });
  assert(perCell <= 1, `a (category, fold) prefix strayed ${perCell} items`);
  // Test fold 2: 1/5 test, and val carved from the other folds' val records.
  const roles = records.map((r) => foldRole(r, 2));
  const share = (role: SplitName) => roles.filter((x) => x === role).length / roles.length;
  assert(Math.abs(share("test") - 0.2) < 0.02, `test share ${share("test")}`);
  assert(Math.abs(share("val") - 0.08) < 0.02, `val share ${share("val")}`);
});

Deno.test("assignSplit() reruns identically with previous assignments and never moves old ones", async () => {
  const first = await split(stream(200, 3));
  const previous = first.map(({ id, sha256, category, split, fold, identity, descriptor }) => ({
    id,
    sha256,
    category,
    split,
    fold,
    identity,
    descriptor,
  }));
  // Same records in another order: without `previous` the order would matter; with it, not.
  const reordered = [...stream(200, 3)].reverse();
  const rerun = await split(reordered, { previous });
  const byId = new Map(first.map((r) => [r.id, r]));
  for (const record of rerun) {
    const before = byId.get(record.id)!;
    assert.deepEqual([record.split, record.fold, record.identity], [
      before.split,
      before.fold,
      before.identity,
    ]);
  }
  // New records (new ids) mixed in: old ones stay, and the whole stays stratified.
  const next = seededRandom(99);
  const added = Array.from(
    { length: 100 },
    (_, i) => face(`n${i}`, i % 2 ? "biology" : "physics", { descriptor: descriptor(next) }),
  );
  const grown = await split([...added.slice(0, 50), ...reordered, ...added.slice(50)], {
    previous,
  });
  for (const record of grown) {
    const before = byId.get(record.id);
    if (before) assert.deepEqual(record.split, before.split);
  }
  const all = grown.filter((r) => r.category === "biology");
  const trainShare = all.filter((r) => r.split === "train").length / all.length;
  assert(Math.abs(trainShare - 0.7) < 0.02, `biology train share ${trainShare}`);
});

Deno.test("assignSplit() keeps one person in one split: same sha256 or near descriptor", async () => {
  const next = seededRandom(7);
  const base = stream(60, 5);
  const target = base[10]!;
  const near = target.descriptor.map((x, i) => x + (i === 0 ? 0.3 : 0));
  const far = target.descriptor.map((x, i) => x + (i === 1 ? 0.7 : 0));
  const records = [
    ...base,
    // The same photo on another department's page.
    face("same-sha", "history", { sha256: target.sha256, descriptor: descriptor(next) }),
    // Another photo of the same person: descriptor 0.3 away.
    face("near", "physics", { descriptor: near }),
    // A look-alike 0.7 away: a different person.
    face("far", "physics", { descriptor: far }),
  ];
  // Many copies of one person in one category: they all follow the first, even past 70 %.
  for (let i = 0; i < 6; i++) {
    records.push(face(`copy${i}`, "history", { sha256: target.sha256 }));
  }
  const out = await split(records);
  const byId = new Map(out.map((r) => [r.id, r]));
  const first = byId.get(target.id)!;
  for (const id of ["same-sha", "near", "copy0", "copy5"]) {
    const record = byId.get(id)!;
    assert.deepEqual(record.identity, target.id, id);
    assert.deepEqual(record.split, first.split, id);
  }
  assert.deepEqual(byId.get("far")!.identity, "far");
  // A stricter threshold separates the 0.3 pair.
  const strict = await split(records, { identityThreshold: 0.2 });
  assert.deepEqual(strict.find((r) => r.id === "near")!.identity, "near");
});

Deno.test("assignSplit() matches new faces to earlier people whose descriptors the manifest lacks", async () => {
  const first = await split(stream(50, 6));
  // The manifest keeps no descriptors; the faces come round again from the face cache.
  const previous = first.map(({ id, sha256, category, split, fold, identity }) => ({
    id,
    sha256,
    category,
    split,
    fold,
    identity,
  }));
  const target = first[7]!;
  const lookAlike = face("again", "physics", {
    descriptor: target.descriptor.map((x, i) => x + (i === 3 ? 0.2 : 0)),
  });
  const rerun = await split([...stream(50, 6), lookAlike], { previous });
  const placed = rerun.find((r) => r.id === "again")!;
  assert.deepEqual([placed.identity, placed.split], [target.identity, target.split]);
});

Deno.test("assignSplit() gives an identity's fold to every face of that person", async () => {
  const base = stream(40, 8);
  const target = base[3]!;
  const copy = face("copy", "physics", { sha256: target.sha256 });
  const out = await split([...base, copy], { folds: 4 });
  const a = out.find((r) => r.id === target.id)!;
  const b = out.find((r) => r.id === "copy")!;
  assert.deepEqual([b.fold, b.split, b.identity], [a.fold, a.split, a.id]);
});

Deno.test("assignSplit() adds folds to a rerun that had none, keeping the split", async () => {
  const first = await split(stream(100, 4));
  const previous = first.map((r) => ({ ...r, fold: null }));
  const rerun = await split(stream(100, 4), { previous, folds: 5 });
  const byId = new Map(first.map((r) => [r.id, r]));
  for (const record of rerun) assert.deepEqual(record.split, byId.get(record.id)!.split);
  const folds = new Set(rerun.map((r) => r.fold));
  assert.deepEqual([...folds].sort(), [0, 1, 2, 3, 4]);
});

Deno.test("assignSplit() rejects bad options early", () => {
  assert.throws(() => assignSplit({ ratios: { train: 0.7, val: 0.1, test: 0.1 } }), RangeError);
  assert.throws(() => assignSplit({ ratios: { train: 1.2, val: -0.2, test: 0 } }), RangeError);
  assert.throws(() => assignSplit({ folds: 1 }), RangeError);
  assert.throws(() => assignSplit({ folds: 2.5 }), RangeError);
  assert.throws(() => assignSplit({ identityThreshold: Number.NaN }), RangeError);
  assert.deepEqual(SPLIT_NAMES, ["train", "val", "test"]);
});

Deno.test("inSeedOrder() gives the same faces the same split and fold in any arrival order, and on another port", async () => {
  const random = seededRandom(21);
  const faces = Array.from({ length: 120 }, (_, i) => face(`p${i}`, i % 3 ? "bio" : "law"));
  const shuffled = (list: FaceRecord[]) => {
    const copy = [...list];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  };
  const options: SplitOptions = { folds: 5, seed: "42" };
  /** Split and fold by image content, as two runs on the same images would compare them. */
  const placements = async (records: FaceRecord[], ordered: boolean) => {
    const arriving = from(records);
    const stream = (ordered ? arriving.pipe(inSeedOrder("42")) : arriving).pipe(
      assignSplit(options),
      toArray(),
    );
    const out = (await lastValueFrom(stream)).filter(isOk).map((o) => o.record);
    return new Map(out.map((r) => [r.sha256, `${r.split}/${r.fold}`]));
  };
  const first = await placements(faces, true);
  const again = await placements(shuffled(faces), true);
  assert.deepEqual(again, first);
  // A loopback bench site on another port: other image URLs, so other record ids.
  const moved = faces.map((f) => ({ ...f, id: sha256Hex(`port 2\n${f.id}`).slice(0, 8) }));
  assert.deepEqual(await placements(shuffled(moved), true), first);
  // Arrival order alone does move faces: this is what inSeedOrder is for.
  assert.notDeepEqual(await placements(shuffled(faces), false), first);
  // Another seed is another partition.
  const other = await lastValueFrom(
    from(faces).pipe(inSeedOrder("7"), assignSplit({ folds: 5, seed: "7" }), toArray()),
  );
  const otherPlacements = new Map(
    other.filter(isOk).map((o) => [o.record.sha256, `${o.record.split}/${o.record.fold}`]),
  );
  assert.notDeepEqual(otherPlacements, first);
});
