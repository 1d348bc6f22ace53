import assert from "node:assert/strict";
import { from, lastValueFrom, toArray } from "rxjs";
import type { PersonRecord } from "../core/types.ts";
import { filterRoles, parseRoleRules, roleExclusion } from "../stages/filter_roles.ts";

const person = (id: string, role?: string): PersonRecord => ({
  id,
  category: "c",
  imageUrl: `https://x.example/${id}.jpg`,
  name: `Person ${id}`,
  ...(role ? { role } : {}),
  pageUrl: "https://x.example/",
});

Deno.test("filterRoles() drops the roles a !word names and keeps everyone else", async () => {
  const people = [
    person("a", "Professor"),
    person("b", "Group Secretary"),
    person("c"),
    person("d", "Secretariat"),
  ];
  const outcomes = await lastValueFrom(
    from(people).pipe(filterRoles({ rules: parseRoleRules("!secretar") }), toArray()),
  );
  assert.deepEqual(outcomes.map((o) => [o.record.id, o.status]), [
    ["a", "ok"],
    ["b", "rejected"],
    ["c", "ok"],
    ["d", "rejected"],
  ]);
  const rejected = outcomes[1]!;
  assert.ok(rejected.status === "rejected");
  assert.equal(rejected.stage, "people");
  assert.match(rejected.reason, /^role_excluded: /);
});

Deno.test("roleExclusion() with words to keep: word prefixes, dots ignored, none for no role", () => {
  const rules = parseRoleRules("prof, phd student");
  assert.equal(roleExclusion("Associate Professor", rules), undefined);
  assert.equal(roleExclusion("Ph.D. Student", rules), undefined);
  assert.match(roleExclusion("Postdoc", rules) ?? "", /none of the roles kept/);
  assert.match(roleExclusion(undefined, rules) ?? "", /no role/);
  assert.equal(roleExclusion(undefined, parseRoleRules("prof,none")), undefined);
  // A rule matches the start of a word, not its inside: "roof" is not in "Proofreader".
  assert.match(roleExclusion("Chief Proofreader", parseRoleRules("roof")) ?? "", /none/);
});

Deno.test("parseRoleRules() rejects an empty entry", () => {
  assert.throws(() => parseRoleRules("professor,,!"), { name: "RangeError", message: /empty/ });
  assert.throws(() => parseRoleRules("!"), RangeError);
});
