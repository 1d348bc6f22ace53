/** The seed-like study's layout: random categories, sources that each hold one category. */
import assert from "node:assert/strict";
import { seedlikeRows } from "../commands/bench/seedlike.ts";

const people = Array.from({ length: 873 }, (_, i) => ({
  id: `p${i}`,
  name: `Person ${i}`,
  image: `img/${i}.jpg`,
}));

Deno.test("seedlikeRows() deals 873 people into 57 single-category sources over 4 categories", () => {
  const rows = seedlikeRows(people, { sources: 57, categories: 4, seed: 1 });
  assert.equal(rows.length, 873);
  assert.equal(new Set(rows.map((r) => r.id)).size, 873, "each person once");
  const categoryOf = new Map<string, Set<string>>();
  for (const row of rows) {
    categoryOf.set(row.source, (categoryOf.get(row.source) ?? new Set()).add(row.category));
  }
  assert.equal(categoryOf.size, 57);
  assert.ok([...categoryOf.values()].every((set) => set.size === 1), "a source is one category");
  const perCategory = new Map<string, number>();
  for (const row of rows) perCategory.set(row.category, (perCategory.get(row.category) ?? 0) + 1);
  assert.deepEqual([...perCategory.keys()].sort(), [
    "category-a",
    "category-b",
    "category-c",
    "category-d",
  ]);
  assert.ok([...perCategory.values()].every((n) => n >= 218 && n <= 219));
  const sourcesPerCategory = [...perCategory.keys()].map((c) =>
    [...categoryOf].filter(([, set]) => set.has(c)).length
  );
  assert.deepEqual(sourcesPerCategory.sort(), [14, 14, 14, 15]);
});

Deno.test("seedlikeRows() is random by seed, not by the people's order", () => {
  const a = seedlikeRows(people, { sources: 57, categories: 4, seed: 1 });
  const b = seedlikeRows(people, { sources: 57, categories: 4, seed: 2 });
  assert.deepEqual(a, seedlikeRows(people, { sources: 57, categories: 4, seed: 1 }));
  const byId = (rows: typeof a) => rows.map((r) => `${r.id}:${r.category}`).sort();
  assert.notDeepEqual(byId(a), byId(b));
  // Not dealt in input order: the first four people do not land in a, b, c, d.
  const categoryOf = new Map(a.map((r) => [r.id, r.category]));
  assert.notDeepEqual(["p0", "p1", "p2", "p3"].map((id) => categoryOf.get(id)), [
    "category-a",
    "category-b",
    "category-c",
    "category-d",
  ]);
  assert.throws(() => seedlikeRows(people, { sources: 5, categories: 4, seed: 1 }), RangeError);
});
