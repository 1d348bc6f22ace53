/**
 * A university made up at run time and served on 127.0.0.1, for `bench:discover` and the
 * discovery tests: faculties and their units (German and English, several page layouts), each
 * unit's people page somewhere one to three clicks deep, and the decoys a crawler must step
 * around: news and events with photos and dates, publication lists with author photos, group
 * photos with a caption of names, a calendar that links every day, and an English mirror of
 * some people pages. Its ground truth says which pages are people pages and of which unit.
 */

/** One unit's ground truth. */
export interface UniversityUnit {
  /** The unit's name as its pages show it. */
  name: string;
  /** Its people page (the German one where it has an English mirror). */
  peopleUrl: string;
  /** The English mirror of the people page, where it has one. */
  mirrorUrl?: string;
  people: number;
}

export interface University {
  url: string;
  units: UniversityUnit[];
  /** Pages that show photos of people but are not people pages. */
  decoys: string[];
  /** Requests the server answered, by path and query. */
  requests: string[];
  close(): Promise<void>;
}

export interface UniversityOptions {
  /**
   * Units in all, spread over four faculties.
   * @default 24
   */
  units?: number;
}

const FIRST =
  "Anna Jonas Lea Felix Marie Paul Sophie Lukas Emma Max Hannah Leon Clara Jan Nora Tim Ida Erik Mila Ben Greta Noah Lina Finn"
    .split(" ");
const LAST =
  "Schmidt Weber Fischer Wagner Becker Hoffmann Schulz Koch Richter Klein Wolf Neumann Schwarz Braun Zimmermann Hartmann Lange Krause Lehmann Maier Köhler Walter Peters Möller"
    .split(" ");
const SUBJECTS = [
  ["Maschinenbau", "Mechanical Engineering"],
  ["Physik", "Physics"],
  ["Chemie", "Chemistry"],
  ["Informatik", "Computer Science"],
  ["Mathematik", "Mathematics"],
  ["Biologie", "Biology"],
  ["Soziologie", "Sociology"],
  ["Geschichte", "History"],
  ["Philosophie", "Philosophy"],
  ["Psychologie", "Psychology"],
  ["Volkswirtschaftslehre", "Economics"],
  ["Rechtswissenschaft", "Law"],
  ["Elektrotechnik", "Electrical Engineering"],
  ["Geographie", "Geography"],
  ["Linguistik", "Linguistics"],
  ["Politikwissenschaft", "Political Science"],
  ["Wirtschaftsinformatik", "Information Systems"],
  ["Materialwissenschaft", "Materials Science"],
  ["Astronomie", "Astronomy"],
  ["Pharmazie", "Pharmacy"],
  ["Musikwissenschaft", "Musicology"],
  ["Archäologie", "Archaeology"],
  ["Statistik", "Statistics"],
  ["Medizininformatik", "Medical Informatics"],
  ["Kunstgeschichte", "Art History"],
  ["Ethnologie", "Anthropology"],
] as const;
const FACULTIES = [
  "Fakultät für Ingenieurwissenschaften",
  "Faculty of Natural Sciences",
  "Philosophische Fakultät",
  "School of Social Sciences",
];
const PEOPLE_SLUGS = [
  "team",
  "mitarbeiter",
  "people",
  "personen",
  "staff",
  "wir",
  "ueber-uns/team",
  "members",
];
const ROLES = [
  "Professor",
  "Postdoc",
  "Doktorandin",
  "Research Associate",
  "Sekretariat",
  "PhD Student",
];

interface UnitPlan {
  index: number;
  faculty: number;
  german: boolean;
  name: string;
  linkText: string;
  base: string;
  peoplePath: string;
  layout: number;
  people: string[];
  mirror: boolean;
  inMenu: boolean;
}

function personName(unit: number, i: number): string {
  const first = FIRST[(unit * 7 + i * 3) % FIRST.length]!;
  const last = LAST[(unit * 5 + i * 11) % LAST.length]!;
  const title = i === 0 ? "Prof. Dr. " : i % 3 === 1 ? "Dr. " : "";
  return `${title}${first} ${last}`;
}

function planUnits(count: number): UnitPlan[] {
  return Array.from({ length: count }, (_, index) => {
    // Past the list of subjects, a subject comes again under a numbered name.
    const round = Math.floor(index / SUBJECTS.length);
    const [deBase, enBase] = SUBJECTS[index % SUBJECTS.length]!;
    const [de, en] = round
      ? [`${deBase} ${round + 1}`, `${enBase} ${round + 1}`]
      : [deBase, enBase];
    const german = index % 2 === 0;
    const kind = index % 4;
    const name = german
      ? [
        `Lehrstuhl für ${de}`,
        `Institut für ${de}`,
        `Professur für ${de}`,
        `Seminar für ${de}`,
      ][kind]!
      : [
        `Department of ${en}`,
        `Institute of ${en}`,
        `Chair of ${en}`,
        `${en} Research Group`,
      ][kind]!;
    const faculty = index % FACULTIES.length;
    const slug = (german ? de : en).toLowerCase().replace(/ä/g, "ae").replace(/ö/g, "oe").replace(
      /\s+/g,
      "-",
    );
    const base = `/de/f${faculty}/${slug}/`;
    return {
      index,
      faculty,
      german,
      name,
      // Every third unit is listed by its bare subject on its faculty's page.
      linkText: index % 3 === 0 ? (german ? de : en) : name,
      base,
      peoplePath: `${base}${PEOPLE_SLUGS[index % PEOPLE_SLUGS.length]}/`,
      layout: index % 6,
      people: Array.from({ length: 4 + (index % 5) }, (_, i) => personName(index, i)),
      mirror: index % 5 === 1,
      inMenu: faculty !== 3,
    };
  });
}

function page(title: string, nav: string, body: string, lang = "de"): string {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>${title}</title></head>` +
    `<body><header><a class="logo" href="/">Universität Beispielstadt</a>${nav}</header>` +
    `<main>${body}</main><footer><a href="/de/impressum/">Impressum</a> <a href="/de/kontakt/">Kontakt</a></footer></body></html>`;
}

function menu(units: UnitPlan[]): string {
  const faculties = FACULTIES.map((faculty, f) => {
    const sub = units.filter((u) => u.faculty === f && u.inMenu)
      .map((u) => `<li><a href="${u.base}">${u.linkText}</a></li>`).join("");
    return `<li class="dropdown"><a href="/de/f${f}/">${faculty}</a><ul class="dropdown-menu">${sub}</ul></li>`;
  }).join("");
  return `<nav class="navbar"><ul><li><a href="/de/">Startseite</a></li>${faculties}` +
    `<li><a href="/de/aktuelles/">Aktuelles</a></li><li><a href="/de/kalender/?date=2024-05-01">Kalender</a></li>` +
    `<li><a href="/en/" hreflang="en">English</a></li>` +
    `<li><a href="/intern/team/">Internes Team</a></li></ul></nav>`;
}

function portrait(unit: number, i: number): string {
  return `/img/u${unit}/p${i}.jpg`;
}

/** A unit's people, in one of four layouts. */
function peopleList(unit: UnitPlan): string {
  const rows = unit.people.map((name, i) => {
    const img = `<img src="${portrait(unit.index, i)}" alt="" width="120" height="150">`;
    const role = ROLES[i % ROLES.length];
    switch (unit.layout) {
      case 0:
        return `<div class="card">${img}<h3>${name}</h3><p>${role}</p></div>`;
      case 1:
        return `<li>${img}<a href="#p${i}">${name}</a><span>${role}</span></li>`;
      case 2:
        return `<tr><td>${img}</td><td><strong>${name}</strong><br>${role}</td></tr>`;
      case 4:
        return `<a class="profile" href="p${i}/">${img}<span class="name">${name}</span><span>${role}</span></a>`;
      case 5:
        return `<div class="person"><div class="photo">${img}</div><div class="text"><h4>${name}</h4><p>${role}</p><p>Raum ${
          100 + i
        }</p></div></div>`;
      default:
        return `<figure>${img}<figcaption>${name}<br>${role}</figcaption></figure>`;
    }
  }).join("");
  if (unit.layout === 1) return `<ul class="people">${rows}</ul>`;
  if (unit.layout === 2) return `<table>${rows}</table>`;
  return `<div class="team">${rows}</div>`;
}

/** Where a unit's pages are and what they hold. */
function unitPages(unit: UnitPlan, nav: string, pages: Map<string, string>, decoys: string[]) {
  const crumbs =
    `<nav aria-label="Breadcrumb"><a href="/">Universität</a> › <a href="/de/f${unit.faculty}/">${
      FACULTIES[unit.faculty]
    }</a> › <a href="${unit.base}">${unit.name}</a></nav>`;
  const peopleWord = unit.german
    ? ["Team", "Mitarbeiter", "Personen"][unit.index % 3]!
    : ["People", "Staff", "Our Team"][unit.index % 3]!;
  const via = unit.peoplePath.includes("ueber-uns/")
    ? `<a href="${unit.base}ueber-uns/">${unit.german ? "Über uns" : "About us"}</a>`
    : `<a href="${unit.peoplePath}">${peopleWord}</a>`;
  const lang = unit.german ? "de" : "en";
  pages.set(
    unit.base,
    page(
      unit.name,
      nav,
      `${crumbs}<h1>${unit.name}</h1><p>Willkommen.</p>
    <ul class="unit-nav">${via}<li><a href="${unit.base}highlights/">Highlights</a></li>
    <li><a href="${unit.base}research/">${unit.german ? "Forschung" : "Research"}</a></li>
    <li><a href="${unit.base}gaeste/">${unit.german ? "Gäste" : "Guests"}</a></li>
    <li><a href="${unit.base}sommerfest-2024/">${
        unit.german ? "Unser Team beim Sommerfest 2024" : "Our team at the summer party 2024"
      }</a></li>
    <li><a href="${unit.base}gruppenfoto/">${
        unit.german ? "Wir im Bild" : "Gallery"
      }</a></li></ul>`,
      lang,
    ),
  );
  if (unit.peoplePath.includes("ueber-uns/")) {
    pages.set(
      `${unit.base}ueber-uns/`,
      page(unit.name, nav, `${crumbs}<h1>Über uns</h1><a href="${unit.peoplePath}">Team</a>`),
    );
  }
  const heading = unit.index % 3 === 0
    ? `<h1>${peopleWord} – ${unit.name}</h1>`
    : `${crumbs}<h1>${peopleWord}</h1>`;
  pages.set(
    unit.peoplePath,
    page(`${peopleWord} | ${unit.name}`, nav, `${heading}${peopleList(unit)}`, lang),
  );
  if (unit.mirror) {
    pages.set(
      unit.peoplePath.replace("/de/", "/en/"),
      page(`People | ${unit.name}`, nav, `${crumbs}<h1>People</h1>${peopleList(unit)}`, "en"),
    );
  }
  for (const [path, html] of decoyPages(unit, nav)) {
    pages.set(path, html);
    decoys.push(path);
  }
}

/**
 * A unit's decoys: news with dated photos of people, publications with author photos, a group
 * photo with a caption of names, talks with speakers' photos, and a news item whose link says
 * "team".
 */
function decoyPages(unit: UnitPlan, nav: string): [string, string][] {
  const entries: [string, string][] = [];
  const lang = unit.german ? "de" : "en";
  // News with dated photos of people, publications with author photos, a group photo.
  const names = unit.people;
  entries.push([
    `${unit.base}highlights/`,
    page(
      `Aktuelles | ${unit.name}`,
      nav,
      `<h1>${unit.german ? "Aktuelles" : "News"}</h1>` +
        names.slice(0, 4).map((name, i) =>
          `<article><img src="/img/news/u${unit.index}-${i}.jpg" width="200" height="150"><h3>${name}</h3><time>1${i}.03.2024</time><p>Preis verliehen am 1${i}.03.2024.</p></article>`
        ).join(""),
      lang,
    ),
  ]);
  entries.push([
    `${unit.base}research/`,
    page(
      `Publikationen | ${unit.name}`,
      nav,
      `<h1>${unit.german ? "Publikationen" : "Publications"}</h1><div class="team">` +
        names.slice(0, 4).map((name, i) =>
          `<div class="card"><img src="/img/pub/u${unit.index}-${i}.jpg" width="100" height="120"><h3>${name}</h3><p>On things (2023)</p></div>`
        ).join("") + "</div>",
      lang,
    ),
  ]);
  entries.push([
    `${unit.base}gruppenfoto/`,
    page(
      `Gruppenfoto | ${unit.name}`,
      nav,
      `<h1>${
        unit.german ? "Wir im Bild" : "Gallery"
      }</h1><figure><img src="/img/group/u${unit.index}.jpg" width="800" height="400"><figcaption>Das Team 2024 (v.l.n.r.): ${
        names.join(", ")
      }</figcaption></figure>`,
      lang,
    ),
  ]);
  const cards = (dir: string, count: number) =>
    unit.people.slice(0, count).map((name, i) =>
      `<div class="card"><img src="/img/${dir}/u${unit.index}-${i}.jpg" width="100" height="120"><h3>${name}</h3></div>`
    ).join("");
  entries.push([
    `${unit.base}gaeste/`,
    page(
      `Veranstaltungen | ${unit.name}`,
      nav,
      `<h1>${unit.german ? "Veranstaltungen" : "Events"}</h1>` +
        unit.people.slice(0, 3).map((name, i) =>
          `<div class="event"><img src="/img/talk/u${unit.index}-${i}.jpg" width="100" height="120"><h3>${name}</h3><p>Vortrag: Über Dinge</p><p>2${i}.06.2024, 16:00 Uhr</p></div>`
        ).join(""),
      lang,
    ),
  ]);
  const party = unit.german
    ? "Unser Team beim Sommerfest 2024"
    : "Our team at the summer party 2024";
  entries.push([
    `${unit.base}sommerfest-2024/`,
    page(
      `${party} | ${unit.name}`,
      nav,
      `<article><h1>${party}</h1><time datetime="2024-07-05">05.07.2024</time>` +
        `<img src="/img/party/u${unit.index}.jpg" width="800" height="400"><p>Ein schöner Abend.</p>` +
        `<div class="team">${cards("party", 3)}</div></article>`,
      lang,
    ),
  ]);
  return entries;
}

/** Every page of the university, by path, and its decoys. */
export function universityPages(
  count: number,
): { pages: Map<string, string>; units: UnitPlan[]; decoys: string[] } {
  const units = planUnits(count);
  const nav = menu(units);
  const pages = new Map<string, string>();
  const decoys: string[] = [];
  pages.set(
    "/de/",
    page(
      "Universität Beispielstadt",
      nav,
      `<h1>Willkommen</h1>` +
        FACULTIES.map((f, i) => `<p><a href="/de/f${i}/">${f}</a></p>`).join(""),
    ),
  );
  pages.set(
    "/en/",
    page(
      "University of Beispielstadt",
      nav,
      `<h1>Welcome</h1><a href="/en/about/">About</a>`,
      "en",
    ),
  );
  pages.set("/en/about/", page("About", nav, `<h1>About the university</h1>`, "en"));
  FACULTIES.forEach((faculty, f) => {
    const list = units.filter((u) => u.faculty === f).map((u) =>
      `<li><a href="${u.base}">${u.linkText}</a></li>`
    ).join("");
    pages.set(`/de/f${f}/`, page(faculty, nav, `<h1>${faculty}</h1><ul>${list}</ul>`));
  });
  for (const unit of units) unitPages(unit, nav, pages, decoys);
  pages.set("/de/aktuelles/", page("Aktuelles", nav, "<h1>Aktuelles</h1>"));
  return { pages, units, decoys };
}

/** A short hash of a page's text, for its ETag. */
function hashOf(text: string): string {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) | 0;
  return (hash >>> 0).toString(36);
}

/** A calendar day that links to the day before and after, forever. */
function calendarDay(date: string): string {
  const day = new Date(`${date}T00:00:00Z`);
  const link = (offset: number) =>
    new Date(day.getTime() + offset * 86400000).toISOString().slice(0, 10);
  return page(
    `Kalender ${date}`,
    "",
    `<h1>Kalender</h1><a href="/de/kalender/?date=${link(-1)}">←</a> <a href="/de/kalender/?date=${
      link(1)
    }">→</a>`,
  );
}

/** Serves the university on 127.0.0.1 at a free port. */
export function startUniversity(options: UniversityOptions = {}): University {
  const { units: count = 24 } = options;
  if (!Number.isInteger(count) || count < 1 || count > SUBJECTS.length * 4) {
    throw new RangeError(
      `Cannot start the university as 'units' must be 1–${
        SUBJECTS.length * 4
      }: current value is ${count}`,
    );
  }
  const { pages, units, decoys } = universityPages(count);
  const requests: string[] = [];
  const sitemap = [...pages.keys()].filter((path) =>
    path.includes("/f1/") || path.endsWith("/de/")
  );
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
    const url = new URL(request.url);
    requests.push(url.pathname + url.search);
    // Pages carry an ETag, so a rerun through the HTTP cache gets 304s.
    const html = (body: string) => {
      const etag = `"${body.length.toString(36)}-${hashOf(body)}"`;
      if (request.headers.get("if-none-match") === etag) {
        return new Response(null, { status: 304, headers: { etag } });
      }
      return new Response(body, { headers: { "content-type": "text/html; charset=utf-8", etag } });
    };
    if (url.pathname === "/") return Response.redirect(new URL("/de/", url), 302);
    if (url.pathname === "/robots.txt") {
      return new Response(
        `User-agent: *\nDisallow: /intern/\nSitemap: ${url.origin}/sitemap.xml\n`,
      );
    }
    if (url.pathname === "/sitemap.xml") {
      const locs = sitemap.map((path) => `<url><loc>${url.origin}${path}</loc></url>`).join("");
      return new Response(
        `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">${locs}</urlset>`,
        { headers: { "content-type": "application/xml" } },
      );
    }
    if (url.pathname === "/de/kalender/") {
      return html(calendarDay(url.searchParams.get("date") ?? "2024-05-01"));
    }
    const body = pages.get(url.pathname);
    return body === undefined ? new Response("not found", { status: 404 }) : html(body);
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    url: `${origin}/`,
    units: units.map((unit) => ({
      name: unit.name,
      peopleUrl: origin + unit.peoplePath,
      mirrorUrl: unit.mirror ? origin + unit.peoplePath.replace("/de/", "/en/") : undefined,
      people: unit.people.length,
    })),
    decoys: decoys.map((path) => origin + path),
    requests,
    close: () => server.shutdown(),
  };
}

/** How well a discovery did on the university, by its ground truth. */
export interface DiscoveryScore {
  units: number;
  /** Units whose people page (or its mirror) was written as sure. */
  found: number;
  recall: number;
  /** Rows written as sure. */
  sure: number;
  /** Sure rows that are not a unit's people page. */
  falseSure: number;
  falseSureShare: number;
  /** Found units whose proposed category is the unit's name. */
  hintsRight: number;
  hintAccuracy: number;
  pagesFetched: number;
  pagesPerPeoplePage: number;
}

/** Scores one site's candidates against the university's units. */
export function scoreDiscovery(
  university: Pick<University, "units">,
  candidates: { url: string; sure: boolean; unit: string }[],
  pagesFetched: number,
): DiscoveryScore {
  const sure = candidates.filter((c) => c.sure);
  const pageOf = (c: { url: string }) =>
    university.units.find((u) => u.peopleUrl === c.url || u.mirrorUrl === c.url);
  const foundUnits = new Set(sure.map(pageOf).filter((unit) => unit !== undefined));
  const hintsRight = sure.filter((c) => pageOf(c)?.name === c.unit).length;
  const falseSure = sure.filter((c) => pageOf(c) === undefined).length;
  const ratio = (a: number, b: number) => b === 0 ? 0 : Math.round((a / b) * 1000) / 1000;
  return {
    units: university.units.length,
    found: foundUnits.size,
    recall: ratio(foundUnits.size, university.units.length),
    sure: sure.length,
    falseSure,
    falseSureShare: ratio(falseSure, sure.length),
    hintsRight,
    hintAccuracy: ratio(hintsRight, sure.length - falseSure),
    pagesFetched,
    pagesPerPeoplePage: ratio(pagesFetched, foundUnits.size),
  };
}
