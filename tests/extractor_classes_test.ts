/**
 * The extractor's failure classes of issue 21 (section 2), each on a fixture in our own markup:
 * degrees after a comma go to the role; group photo captions and project cards are not people;
 * label-cell tables with the portrait outside the table; role lines above the name on two
 * pages; and a list where some people are served and a script adds the rest (`render auto`
 * renders it; that part skips visibly without Chromium).
 */
import assert from "node:assert/strict";
import { from, lastValueFrom, toArray } from "rxjs";
import type { FetchedPage } from "../core/types.ts";
import { HttpClient } from "../net/http.ts";
import { BrowserRenderer, findChromium } from "../net/browser.ts";
import { fetchPages, scriptAddsPeople } from "../stages/fetch_pages.ts";
import { extractPeople } from "../stages/parse_people.ts";
import { startLoopback } from "./testdata/crawl/loopback.ts";

const PEOPLE = ["Anna Schmidt", "Jonas Weber", "Lea Fischer", "Paul Wagner", "Marie Becker"];

function pageOf(html: string, url = "https://lab.example/team/", category = "c"): FetchedPage {
  return { source: { line: 1, url, category }, url, html, pageIndex: 0 };
}

function read(html: string, url?: string, category?: string) {
  return extractPeople(pageOf(html, url, category)).map((person) => ({
    name: person.name,
    role: person.role,
    image: new URL(person.imageUrl).pathname,
    id: person.id,
  }));
}

Deno.test("degrees after a comma go to the role, joined to the card's role line", () => {
  const names = [
    "Jane Doe, MSc",
    "Anna Berg, DiplPsych, PP",
    "Lee Chan, Ph.D.",
    "Obi, Chiamaka, M.A.",
  ];
  const html = `<main><h1>People</h1>${
    names.map((name, i) =>
      `<div class="card"><img src="/p/${i}.jpg"><h3>${name}</h3>${
        i === 2 ? "<p>Research Scientist</p>" : ""
      }</div>`
    ).join("")
  }</main>`;
  assert.deepEqual(read(html).map(({ name, role }) => [name, role]), [
    ["Jane Doe", "MSc"],
    ["Anna Berg", "DiplPsych, PP"],
    ["Lee Chan", "Research Scientist, Ph.D."],
    ["Obi, Chiamaka", "M.A."],
  ]);
});

Deno.test("group photo captions and project cards are not taken as people", () => {
  const cards = PEOPLE.slice(0, 4).map((name, i) =>
    `<div class="card"><img src="/p/${i}.jpg" width="120" height="150"><h3>${name}</h3><p>Doktorand</p></div>`
  ).join("");
  const project = (i: number, title: string) =>
    `<div class="card"><img src="/proj/${i}.jpg" width="300" height="200"><h3>${title}</h3><p>Ein Projekt.</p></div>`;
  const html = `<main><h1>Team</h1>
    <figure><img src="/group/1.jpg" width="900" height="500"><figcaption>Anna Schmidt, Jonas Weber, Lea Fischer</figcaption></figure>
    <figure><img src="/group/2.jpg" width="900" height="500"><figcaption>Das Team 2024 (v.l.n.r.): Anna Schmidt, Jonas Weber und Lea Fischer</figcaption></figure>
    <figure><img src="/group/3.jpg"><figcaption>Anna Schmidt (left) with Jonas Weber</figcaption></figure>
    <div class="team">${cards}</div>
    <h2>Projekte</h2><div class="row">${project(1, "Helios Rover")}${
    project(2, "Grace Hopper")
  }</div>
    <div class="projects">${project(3, "Blue Whale")}${project(4, "Ada Lovelace")}</div>
  </main>`;
  assert.deepEqual(read(html).map(({ name, image }) => [name, image]), [
    ["Anna Schmidt", "/p/0.jpg"],
    ["Jonas Weber", "/p/1.jpg"],
    ["Lea Fischer", "/p/2.jpg"],
    ["Paul Wagner", "/p/3.jpg"],
  ]);
  // A name written surname first, with a double surname, is still one person.
  const one = `<div class="card"><img src="/p/9.jpg"><h3>García Márquez, Gabriel José</h3></div>`;
  assert.deepEqual(read(one).map((p) => p.name), ["García Márquez, Gabriel José"]);
});

Deno.test("label-cell tables with the portrait outside the table", () => {
  const beside = PEOPLE.slice(0, 3).map((name, i) =>
    `<div class="person"><img src="/p/${i}.jpg" width="120" height="150"><table>
      <tr><td>Name:</td><td>${name}</td></tr><tr><td>Funktion:</td><td>Doktorand</td></tr>
      <tr><td>E-Mail:</td><td>p${i}@uni.example</td></tr><tr><td>Telefon:</td><td>+49 30 12${i}</td></tr>
    </table></div>`
  ).join("");
  assert.deepEqual(
    read(`<main><h1>Mitarbeiter</h1>${beside}</main>`).map((p) => [p.name, p.role]),
    [
      ["Anna Schmidt", "Doktorand"],
      ["Jonas Weber", "Doktorand"],
      ["Lea Fischer", "Doktorand"],
    ],
  );
  const above = PEOPLE.slice(0, 3).map((name, i) =>
    `<p><img src="/p/${i}.jpg" width="120" height="150"></p><table class="contenttable"><tbody>
      <tr><th>Name</th><td>${name}</td></tr><tr><th>Raum</th><td>A ${i}.01</td></tr>
      <tr><th>E-Mail</th><td>p${i}@uni.example</td></tr></tbody></table>`
  ).join("");
  assert.deepEqual(
    read(`<main><h1>Mitarbeiter</h1>${above}</main>`).map((p) => [p.name, p.image]),
    [
      ["Anna Schmidt", "/p/0.jpg"],
      ["Jonas Weber", "/p/1.jpg"],
      ["Lea Fischer", "/p/2.jpg"],
    ],
  );
});

Deno.test("one person on two pages with different role lines above the name", () => {
  const card = (name: string, i: number, role: string) =>
    `<div class="card"><img src="/p/${i}.jpg"><p class="role">${role}</p><h3>${name}</h3></div>`;
  const team = read(
    `<main><h1>Team</h1>${card("Anna Schmidt", 0, "Professorin")}${
      card("Jonas Weber", 1, "Postdoc")
    }</main>`,
    "https://lab.example/team/",
  );
  const teaching = read(
    `<main><h1>Lehre</h1>${card("Anna Schmidt", 0, "Studiendekanin")}${
      card("Jonas Weber", 1, "Dozent")
    }</main>`,
    "https://lab.example/lehre/",
  );
  assert.deepEqual(team.map((p) => [p.name, p.role]), [["Anna Schmidt", "Professorin"], [
    "Jonas Weber",
    "Postdoc",
  ]]);
  assert.deepEqual(teaching.map((p) => p.name), ["Anna Schmidt", "Jonas Weber"]);
  // The same portrait and name in one category is one record, whichever page showed it.
  assert.deepEqual(teaching.map((p) => p.id), team.map((p) => p.id));
});

/** One person as served; a script fetches the other four into an empty list. */
function partlyScripted(): string {
  return `<!doctype html><html><body><main><h1>Team</h1>
    <div class="card"><img src="/p/0.jpg" width="120" height="150"><h3>${PEOPLE[0]}</h3></div>
    <div id="more-people"></div>
    <script>
      fetch("/people.json").then((r) => r.json()).then((people) => {
        const list = document.getElementById("more-people");
        for (const [i, name] of people.entries()) {
          list.insertAdjacentHTML("beforeend",
            '<div class="card"><img src="/p/' + (i + 1) + '.jpg" width="120" height="150"><h3>' + name + '</h3></div>');
        }
      });
    </script></main></body></html>`;
}

Deno.test("a page whose script adds people to those served is told from one that does not", () => {
  assert.ok(scriptAddsPeople(pageOf(partlyScripted())));
  const loadMore = `<main><div class="card"><img src="/p/0.jpg"><h3>Anna Schmidt</h3></div>
    <button>Load more</button><script src="/app.js"></script></main>`;
  assert.ok(scriptAddsPeople(pageOf(loadMore)));
  const whole = `<main><div class="team">${
    PEOPLE.map((name, i) => `<div class="card"><img src="/p/${i}.jpg"><h3>${name}</h3></div>`).join(
      "",
    )
  }</div><script src="/analytics.js"></script></main>`;
  assert.ok(!scriptAddsPeople(pageOf(whole)));
});

const chromiumPath = findChromium();
if (!chromiumPath) console.warn("render auto part skipped: no Chromium (set FACEFIELD_CHROMIUM)");

Deno.test({
  name: "render auto renders a list whose script adds people to those served: 5 of 5, not 1",
  ignore: chromiumPath === undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = startLoopback((_request, url) => {
      if (url.pathname === "/team/") {
        return new Response(partlyScripted(), { headers: { "content-type": "text/html" } });
      }
      if (url.pathname === "/people.json") return Response.json(PEOPLE.slice(1));
      return new Response("", { status: 404 });
    });
    const http = new HttpClient({ politenessDelayMs: 0, maxRetries: 0 });
    const browser = new BrowserRenderer(http, { executablePath: chromiumPath });
    try {
      const [outcome] = await lastValueFrom(
        from([{ line: 2, url: `${server.origin}/team/`, category: "c" }]).pipe(
          fetchPages({ http, browser, concurrency: 1 }),
          toArray(),
        ),
      );
      assert.ok(outcome?.status === "ok", JSON.stringify(outcome));
      assert.equal(outcome.record.renderedBy, "browser");
      assert.deepEqual(extractPeople(outcome.record).map((p) => p.name), PEOPLE);
    } finally {
      await browser.close();
      await server.close();
    }
  },
});
