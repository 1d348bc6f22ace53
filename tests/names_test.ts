import assert from "node:assert/strict";
import { looksLikeRole, splitName } from "../stages/people/names.ts";

Deno.test("splitName() cuts terms, years, degrees with a year and roles off the name", () => {
  const cases: [string, string, string][] = [
    ["Sven Albrecht (WS19-)", "Sven Albrecht", "WS19-"],
    ["Amara Osei, REU 2018", "Amara Osei", "REU 2018"],
    ["Li (Lily) Zhang, Ph.D. 2022", "Li (Lily) Zhang", "Ph.D. 2022"],
    ["Jonas Berg, Ph.D. Student", "Jonas Berg", "Ph.D. Student"],
    ["Dr. Ines Carvalho | Postdoc", "Dr. Ines Carvalho", "Postdoc"],
    ["Prof. Dr. Karl Weber – Dekan", "Prof. Dr. Karl Weber", "Dekan"],
    ["Rosa Jiménez 2015–2019", "Rosa Jiménez", "2015–2019"],
    ["Noor Haddad PhD 2021", "Noor Haddad", "PhD 2021"],
    ["Tariq Aziz (they/them)", "Tariq Aziz", "they/them"],
    ["Ella Park, Lab Secretary (on leave)", "Ella Park", "Lab Secretary (on leave)"],
    ["Ravi Menon she/her", "Ravi Menon", "she/her"],
    ["Lab Manager: Greta Holm", "Greta Holm", "Lab Manager"],
    ["Postdoc | Ines Carvalho", "Ines Carvalho", "Postdoc"],
    ["Anna Lee: Team Lead", "Anna Lee", "Team Lead"],
    ["Jana Novak, Department of Physics", "Jana Novak", "Department of Physics"],
    ["Omar Farouk, now at Acme Robotics", "Omar Farouk", "now at Acme Robotics"],
    // Degrees after a comma go to the role, as terms do (issue 21).
    ["Jane Doe, MSc", "Jane Doe", "MSc"],
    ["Anna Berg, DiplPsych, PP", "Anna Berg", "DiplPsych, PP"],
    ["Lee Chan, Ph.D.", "Lee Chan", "Ph.D."],
    ["Tom Li, MBA, CPA", "Tom Li", "MBA, CPA"],
    ["Obi, Chiamaka, M.A.", "Obi, Chiamaka", "M.A."],
  ];
  for (const [text, name, role] of cases) {
    assert.deepEqual(splitName(text), { name, role }, text);
  }
});

Deno.test("splitName() keeps titles, suffixes, initials, nicknames and surname-first names whole", () => {
  for (
    const text of [
      "Kowalski, Dr. Marta",
      "Mengwei (Vivienne) Liu",
      "Wei Zhang (张伟)",
      "김지현 (Jihyun Kim)",
      "Sajal Das Shovon",
      "Jane A Smith",
      "Smith, A. B.",
      "Jean-Luc Picard",
      'Robert C. "Bobby" Scott',
      "Howard P. “Buck” McKeon",
      "Francisco „Quico“ Canseco",
    ]
  ) {
    assert.deepEqual(splitName(text), { name: text }, text);
  }
  assert.deepEqual(splitName("  Jane   Doe,  "), { name: "Jane Doe" });
  assert.equal(splitName('Henry C. "Hank" Johnson, Jr.')?.name, 'Henry C. "Hank" Johnson, Jr.');
  // An address is cut off and kept out of the role: contact details are not a role.
  assert.deepEqual(splitName("Jane Doe jane.doe@uni.example"), { name: "Jane Doe" });
  assert.deepEqual(splitName("Jane Doe, PhD Student <jdoe@uni.example>"), {
    name: "Jane Doe",
    role: "PhD Student",
  });
});

Deno.test("splitName() rejects what is not a name once the trailer is gone", () => {
  for (
    const text of [
      "Postdoctoral Researcher",
      "Open Day 2024",
      "(FA21-)",
      "Team, 2019",
      "Das Team",
      // Quotes around more than one word are a title or a quotation, not a nickname.
      '"Meet The Team"',
      'Jane "The Best Lab Manager" Doe',
    ]
  ) {
    assert.equal(splitName(text), undefined, text);
  }
});

Deno.test("looksLikeRole() knows role lines and not names", () => {
  assert.ok(looksLikeRole("MS Student, Wildlife Ecology"));
  assert.ok(looksLikeRole("Sekretariat"));
  assert.ok(!looksLikeRole("Ada Lovelace"));
});
