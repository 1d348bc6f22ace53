import assert from "node:assert/strict";
import { join } from "node:path";
import { ok } from "../core/types.ts";
import { idAnswersTo, legacyPersonId, PERSON_ID_LENGTH, personId } from "../core/ids.ts";
import { Manifest, outcomeToRow, stringifyManifest } from "../store/manifest.ts";
import { dataPaths, MODEL_FILES, occlusionMapPath } from "../store/paths.ts";
import { RemovedList } from "../store/removed.ts";
import { forget } from "../store/forget.ts";
import { moveIdFiles, widenedIds } from "../store/id_migration.ts";

/** Two people whose ids the seed's 8 hex digits could not tell apart: a birthday search. */
function legacyCollision(): [{ name: string }, { name: string }] {
  const seen = new Map<string, string>();
  for (let i = 0;; i++) {
    const name = `Person ${i}`;
    const id = legacyPersonId("cs", "http://u.example/p.jpg", name);
    const earlier = seen.get(id);
    if (earlier !== undefined) return [{ name: earlier }, { name }];
    seen.set(id, name);
  }
}

Deno.test("two people whose 8-digit ids collide keep two records", async () => {
  const [first, second] = legacyCollision();
  const url = "http://u.example/p.jpg";
  assert.equal(legacyPersonId("cs", url, first.name), legacyPersonId("cs", url, second.name));
  const root = await Deno.makeTempDir({ prefix: "record-ids-" });
  try {
    const manifest = await Manifest.open(dataPaths(root).manifest);
    for (const { name } of [first, second]) {
      const id = personId("cs", url, name);
      assert.equal(id.length, PERSON_ID_LENGTH);
      manifest.record(ok({ id, category: "cs", imageUrl: url, name, pageUrl: url }), "people");
    }
    manifest.close();
    const reopened = await Manifest.open(dataPaths(root).manifest);
    assert.deepEqual(
      reopened.rows().map((row) => row.name).sort(),
      [first.name, second.name].sort(),
    );
    reopened.close();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const legacyPerson = (i: number) => {
  const category = i % 2 ? "cs" : "math";
  const imageUrl = `http://u.example/${i}.jpg`;
  const name = `Person ${i}`;
  return {
    id: legacyPersonId(category, imageUrl, name),
    category,
    imageUrl,
    name,
    pageUrl: imageUrl,
  };
};

/** A data dir as facefield left it before ids were widened: index.csv, a model, a face map. */
async function legacyDataDir() {
  const root = await Deno.makeTempDir({ prefix: "record-ids-legacy-" });
  const paths = dataPaths(root);
  const people = [0, 1, 2, 3].map(legacyPerson);
  const rows = people.map((person) => outcomeToRow(ok(person), "people"));
  rows[1]!.identity = people[0]!.id; // The same face as person 0: one identity.
  // An id the user's own image list gave: not facefield's to change.
  rows.push(outcomeToRow(ok({ ...legacyPerson(9), id: "list-9" }), "people"));
  await Deno.writeTextFile(paths.manifest, stringifyManifest(rows));
  const model = join(paths.models, "descriptor");
  await Deno.mkdir(model, { recursive: true });
  await Deno.writeTextFile(
    join(model, MODEL_FILES.trainingIds),
    JSON.stringify([people[2]!.id, "list-9"]),
  );
  await Deno.mkdir(join(paths.reports, "occlusion"), { recursive: true });
  await Deno.writeTextFile(
    occlusionMapPath(paths.reports, people[3]!.id),
    JSON.stringify({ id: people[3]!.id, frames: [] }),
  );
  return { paths, people };
}

Deno.test("a data dir's 8-digit ids widen once, with the files that name them", async () => {
  const { paths, people } = await legacyDataDir();
  try {
    const manifest = await Manifest.open(paths.manifest);
    const wide = people.map((p) => personId(p.category, p.imageUrl, p.name));
    assert.deepEqual(manifest.rows().map((row) => row.id), [...wide, "list-9"]);
    assert.ok(wide.every((id, i) => id.startsWith(people[i]!.id)), "the old id is the prefix");
    assert.equal(manifest.get(wide[1]!)?.identity, wide[0], "identities follow their ids");
    const trained = JSON.parse(
      await Deno.readTextFile(join(paths.models, "descriptor", MODEL_FILES.trainingIds)),
    );
    assert.deepEqual(trained, [wide[2], "list-9"]);
    const map = JSON.parse(await Deno.readTextFile(occlusionMapPath(paths.reports, wide[3]!)));
    assert.equal(map.id, wide[3]);
    await assert.rejects(Deno.stat(occlusionMapPath(paths.reports, people[3]!.id)));

    // A rerun's parse makes the wide id: the same record, not a second one.
    manifest.record(ok({ ...people[0]!, id: wide[0]! }), "people");
    assert.equal(manifest.size, 5);
    manifest.close();
    const again = await Manifest.open(paths.manifest);
    assert.equal(again.size, 5, "a second open changes nothing");
    again.close();

    // An old export's id still finds the person, and the model that saw them goes.
    const result = await forget({ dataDir: paths.root, ids: [people[2]!.id] });
    assert.equal(result.records, 1);
    assert.equal(result.models.length, 1);
    const removed = await RemovedList.open(paths.removed);
    assert.ok(removed.matches({ id: wide[2]! }), "a later crawl drops them by their wide id");
    removed.close();
  } finally {
    await Deno.remove(paths.root, { recursive: true });
  }
});

Deno.test("a widening killed after the files moved finishes on the next open", async () => {
  const { paths, people } = await legacyDataDir();
  try {
    // As if killed between the file moves and the database's commit: the files say wide ids,
    // state.db still the old ones.
    const widened = widenedIds(people);
    moveIdFiles(paths.root, widened);
    moveIdFiles(paths.root, widened); // And the next open moves them again: idempotent.
    const manifest = await Manifest.open(paths.manifest);
    const wide = people.map((p) => personId(p.category, p.imageUrl, p.name));
    assert.ok(wide.every((id) => manifest.get(id) !== undefined));
    const map = JSON.parse(await Deno.readTextFile(occlusionMapPath(paths.reports, wide[3]!)));
    assert.equal(map.id, wide[3]);
    manifest.close();
  } finally {
    await Deno.remove(paths.root, { recursive: true });
  }
});

Deno.test("an id answers to itself and to its legacy prefix, nothing shorter", () => {
  const id = personId("cs", "http://u.example/a.jpg", "Ada");
  assert.ok(idAnswersTo(id, id));
  assert.ok(idAnswersTo(id, id.slice(0, 8)));
  assert.ok(!idAnswersTo(id, id.slice(0, 7)));
  assert.ok(!idAnswersTo("list-9-and-more!", "list-9-a"), "only facefield's hex ids");
});
