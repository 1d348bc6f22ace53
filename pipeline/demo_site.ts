/**
 * The offline demo: a small university website served on 127.0.0.1 from inside the process,
 * so `deno task pipeline` without --sources crawls something real with no network. Two
 * departments, each with two sources (its staff page and a research group's page), each page
 * in a different layout: a table split over two pages, a card grid, a figure list, and
 * lazy-loaded and CSS-background portraits. Page chrome (logo, icons) and a shared "no photo"
 * placeholder make the extractor work for it.
 *
 * It is a planted confound, the seed study's trap in small: every source has its own
 * photographer (a colour cast, an exposure, a JPEG quality that all its portraits carry), and
 * every person is listed once in each department, so the faces say nothing about the
 * department while the photo style says everything about the source. The report's random
 * split looks good; leave-one-source-out and the style baselines show why.
 *
 * Portraits are cut with sharp from face-api's sample photos using the boxes in
 * data/demo/people.json (made once by commands/dev/build_demo_people.ts), so no detector runs
 * at startup. All names are invented.
 */
import { join } from "node:path";
import sharp from "sharp";
import { faceApiPackageDir } from "../models/faces/package_files.ts";

export interface DemoSiteOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Portrait width in px (height is 5/4 of it, like the crops' boxes).
   * @default 225
   */
  portraitWidth?: number;
}

export interface DemoSite {
  /** Root URL, `http://127.0.0.1:<port>/`. */
  url: string;
  /** A sources CSV (header included) listing the department pages. */
  sourcesCsv: string;
  /** People with a portrait (the "no photo" staff not counted). */
  people: number;
  close(): Promise<void>;
}

interface DemoPerson {
  sample: string;
  box: { x: number; y: number; width: number; height: number };
  name: string;
  /** One of people.json's four random draws; it picks the person's two pages (`lists`). */
  department: string;
  flop?: boolean;
}

/** A source's photographer: what every portrait on its pages goes through. */
interface PhotoStyle {
  /** Said in the page's markup (a comment), for whoever reads the demo's HTML. */
  name: string;
  apply: (image: sharp.Sharp) => sharp.Sharp;
  quality: number;
}

/** One source: a listing page (maybe paginated) of one category, in one layout and style. */
interface SourcePage {
  /** URL path without slashes at either end: `computer-science/distributed-systems`. */
  slug: string;
  category: string;
  title: string;
  /** people.json draws whose people this page lists. */
  lists: string[];
  /** Where its portraits are served: `/people/` for the first, its own folder for others. */
  imageDir: string;
  style: PhotoStyle;
  /** Renders the staff list; `people` already includes any placeholder staff. */
  layout: (people: StaffEntry[]) => string;
  /** Splits the list over this many pages. */
  pages: number;
}

interface StaffEntry {
  name: string;
  role: string;
  /** Absolute path of the image. */
  image: string;
  slug: string;
}

const ASSET_DIR = new URL("../data/demo/", import.meta.url);
const PLACEHOLDER = "/static/no-photo.png";
/** A 1×1 transparent GIF, the usual lazy-loading stand-in. */
const BLANK_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/** Staff without a photo: they show the shared placeholder. Invented names. */
const NO_PHOTO_STAFF: Record<string, string[]> = {
  "computer-science": ["Dr. Jan Novak"],
  "german-studies": ["Petra Sommerfeld"],
};

const ROLES = ["Professor", "Research Associate", "Postdoctoral Researcher", "Lecturer"];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function slugify(name: string): string {
  return name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

const contact = (slug: string) =>
  `<span class="contact"><a href="mailto:${slug}@demo-university.invalid"><img src="/static/icon-mail.png" width="16" height="16" alt="E-mail"></a> <img src="/static/icon-phone.png" width="16" height="16" alt="Phone"></span>`;

// Each person is on one computer-science and one german-studies page: every face under both.
const SOURCE_PAGES: SourcePage[] = [
  {
    slug: "computer-science",
    category: "computer-science",
    title: "Department of Computer Science",
    lists: ["computer-science", "economics"],
    imageDir: "/people/",
    style: { name: "studio, neutral", apply: (image) => image, quality: 90 },
    pages: 2,
    layout: (people) =>
      `<table class="staff"><thead><tr><th>Photo</th><th>Name</th><th>Position</th><th>Contact</th></tr></thead><tbody>${
        people.map((p) =>
          `<tr><td><img src="${p.image}" alt="" width="90" height="110"></td><td><a href="/people/${p.slug}.html">${
            escapeHtml(p.name)
          }</a></td><td>${p.role}</td><td>${contact(p.slug)}</td></tr>`
        ).join("")
      }</tbody></table>`,
  },
  {
    slug: "computer-science/distributed-systems",
    category: "computer-science",
    title: "Distributed Systems Group",
    lists: ["german-studies", "mechanical-engineering"],
    imageDir: "/photos/distributed-systems/",
    style: {
      name: "dark, cold blue cast",
      apply: (image) => image.recomb([[0.4, 0, 0], [0, 0.5, 0.05], [0, 0.1, 0.95]]),
      quality: 85,
    },
    pages: 1,
    layout: (people) =>
      `<div class="grid">${
        people.map((p) =>
          `<div class="card"><img class="card-img" src="${p.image}" alt="${
            escapeHtml(p.name)
          }"><div class="card-body"><h3>${escapeHtml(p.name)}</h3><p>${p.role}</p>${
            contact(p.slug)
          }</div></div>`
        ).join("")
      }</div>`,
  },
  {
    slug: "german-studies",
    category: "german-studies",
    title: "Institute of German Studies",
    lists: ["computer-science", "german-studies"],
    imageDir: "/photos/german-studies/",
    style: {
      name: "overexposed, low contrast",
      apply: (image) => image.linear(0.5, 125),
      quality: 85,
    },
    pages: 1,
    layout: (people) =>
      `<ul class="figures">${
        people.map((p) =>
          `<li><figure><img src="${p.image}" alt="Portrait"><figcaption><strong>${
            escapeHtml(p.name)
          }</strong><br>${p.role}</figcaption></figure></li>`
        ).join("")
      }</ul>`,
  },
  {
    slug: "german-studies/medieval-literature",
    category: "german-studies",
    title: "Centre for Medieval Literature",
    lists: ["economics", "mechanical-engineering"],
    imageDir: "/photos/medieval-literature/",
    style: {
      name: "warm cast, heavy JPEG compression",
      apply: (image) => image.recomb([[1.05, 0.1, 0], [0, 0.9, 0], [0, 0, 0.6]]),
      quality: 8,
    },
    pages: 1,
    // Half lazy-loaded <img>, half CSS backgrounds: two ways real sites hide their portraits.
    layout: (people) =>
      `<section class="team">${
        people.map((p, i) =>
          i % 2 === 0
            ? `<article class="member"><img class="lazy" src="${BLANK_GIF}" data-src="${p.image}" loading="lazy" alt="${
              escapeHtml(p.name)
            }"><h4>${escapeHtml(p.name)}</h4><p>${p.role}</p></article>`
            : `<article class="member"><div class="photo" style="background-image: url('${p.image}'); width: 225px; height: 275px"></div><h4>${
              escapeHtml(p.name)
            }</h4><p>${p.role}</p></article>`
        ).join("")
      }</section>`,
  },
];

function pagePath(slug: string, index: number): string {
  return index === 0 ? `/${slug}/` : `/${slug}/page-${index + 1}.html`;
}

function shell(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} – Demo University</title>
<style>.grid{display:flex;flex-wrap:wrap}.card{width:240px;margin:8px}.photo{background-size:cover}</style></head>
<body><header><a href="/"><img src="/static/logo.png" alt="Demo University logo" width="240" height="64"></a>
<nav><a href="/">Home</a> · <a href="/computer-science/">Computer Science</a> · <a href="/computer-science/distributed-systems/">Distributed Systems</a> · <a href="/german-studies/">German Studies</a> · <a href="/german-studies/medieval-literature/">Medieval Literature</a></nav></header>
<main><h1>${escapeHtml(title)}</h1>
${body}
</main><footer><img src="/static/icon-mail.png" width="16" height="16" alt=""> info@demo-university.invalid · All names on this demo site are invented.</footer></body></html>`;
}

/** Renders one of data/demo's SVG assets to PNG. */
async function svgToPng(name: string): Promise<Uint8Array<ArrayBuffer>> {
  const svg = await Deno.readFile(new URL(name, ASSET_DIR));
  return Uint8Array.from(await sharp(svg).png().toBuffer());
}

/** The page chrome's images (logo, placeholder, icons) by their path on the site. */
async function staticFiles(): Promise<Map<string, Uint8Array<ArrayBuffer>>> {
  const names = ["logo", "no-photo", "icon-mail", "icon-phone"];
  return new Map(
    await Promise.all(
      names.map(async (name) => [`/static/${name}.png`, await svgToPng(`${name}.svg`)] as const),
    ),
  );
}

/** A portrait the site serves: whose face, through which source's photographer. */
interface ServedPortrait {
  person: DemoPerson;
  style: PhotoStyle;
}

/** What the site serves, all made at startup but the portraits' bytes. */
interface SiteContent {
  pages: Map<string, string>;
  portraitsByPath: Map<string, ServedPortrait>;
  /** People listed with a portrait, summed over the sources. */
  listings: number;
}

/** A source's staff list: its people with a role and portrait, then its "no photo" staff. */
function staffOf(department: SourcePage, listed: DemoPerson[]): StaffEntry[] {
  const staff: StaffEntry[] = listed.map((person, i) => ({
    name: person.name,
    role: ROLES[i % ROLES.length]!,
    slug: slugify(person.name),
    image: `${department.imageDir}${slugify(person.name)}.jpg`,
  }));
  for (const name of NO_PHOTO_STAFF[department.slug] ?? []) {
    staff.push({ name, role: "Secretary", slug: slugify(name), image: PLACEHOLDER });
  }
  return staff;
}

/** The previous/next links under page `index` of a paginated source; none on a single page. */
function pager(department: SourcePage, index: number): string {
  if (department.pages === 1) return "";
  const previous = index > 0
    ? `<a href="${pagePath(department.slug, index - 1)}" rel="prev">‹ Previous</a> `
    : "";
  const next = index < department.pages - 1
    ? ` <a href="${pagePath(department.slug, index + 1)}" rel="next">Next ›</a>`
    : "";
  return `<nav class="pagination">${previous}Page ${index + 1} of ${department.pages}${next}</nav>`;
}

/** A source's listing pages by path: its staff split evenly over `department.pages`. */
function listingPages(department: SourcePage, staff: StaffEntry[]): Array<[string, string]> {
  const perPage = Math.ceil(staff.length / department.pages);
  return Array.from({ length: department.pages }, (_, index) => {
    const chunk = staff.slice(index * perPage, (index + 1) * perPage);
    return [
      pagePath(department.slug, index),
      shell(
        `${department.title}: People`,
        `<!-- photos: ${department.style.name} -->${department.layout(chunk)}${
          pager(department, index)
        }`,
      ),
    ];
  });
}

function homePage(): string {
  return shell(
    "Demo University",
    `<ul>${
      SOURCE_PAGES.map((d) => `<li><a href="/${d.slug}/">${escapeHtml(d.title)}</a></li>`)
        .join("")
    }</ul>`,
  );
}

/** Every page of the site, and where each source's styled portrait of each person is served. */
function siteContent(people: DemoPerson[]): SiteContent {
  const pages = new Map<string, string>();
  const portraitsByPath = new Map<string, ServedPortrait>();
  // Every person's portrait in the first source's neutral style at /people/, linked or not:
  // the portraits tests and image lists take from the demo.
  for (const person of people) {
    portraitsByPath.set(`/people/${slugify(person.name)}.jpg`, {
      person,
      style: SOURCE_PAGES[0]!.style,
    });
  }
  let listings = 0;
  for (const department of SOURCE_PAGES) {
    const listed = people.filter((person) => department.lists.includes(person.department));
    listings += listed.length;
    for (const person of listed) {
      portraitsByPath.set(`${department.imageDir}${slugify(person.name)}.jpg`, {
        person,
        style: department.style,
      });
    }
    for (const [path, html] of listingPages(department, staffOf(department, listed))) {
      pages.set(path, html);
    }
  }
  pages.set("/", homePage());
  return { pages, portraitsByPath, listings };
}

/**
 * Cuts portraits from face-api's sample photos on first request and keeps them: one small JPEG
 * per person and page.
 */
function portraitCutter(width: number, height: number) {
  const sampleDir = join(faceApiPackageDir(), "demo");
  const portraits = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  return (path: string, { person, style }: ServedPortrait) => {
    let bytes = portraits.get(path);
    if (!bytes) {
      const { x, y, width: boxWidth, height: boxHeight } = person.box;
      let image = sharp(join(sampleDir, person.sample))
        .rotate()
        .extract({ left: x, top: y, width: boxWidth, height: boxHeight });
      if (person.flop) image = image.flop();
      // Styled from a lossless copy, so the cast and the JPEG step compose as a camera's would.
      bytes = image.resize(width, height, { fit: "cover" }).png().toBuffer()
        .then((png) => style.apply(sharp(png)).jpeg({ quality: style.quality }).toBuffer())
        .then((buffer) => Uint8Array.from(buffer));
      portraits.set(path, bytes);
    }
    return bytes;
  };
}

/** Answers GET and HEAD: robots.txt, the pages, the chrome's images, then the portraits. */
function siteHandler(
  content: SiteContent,
  files: Map<string, Uint8Array<ArrayBuffer>>,
  portrait: ReturnType<typeof portraitCutter>,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed", { status: 405 });
    }
    if (pathname === "/robots.txt") {
      return new Response("User-agent: *\nAllow: /\n", {
        headers: { "content-type": "text/plain" },
      });
    }
    const html = content.pages.get(pathname);
    if (html !== undefined) {
      return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    const file = files.get(pathname);
    if (file) return new Response(file, { headers: { "content-type": "image/png" } });
    const served = content.portraitsByPath.get(pathname);
    if (served) {
      return new Response(await portrait(pathname, served), {
        headers: { "content-type": "image/jpeg" },
      });
    }
    return new Response("not found", { status: 404, headers: { "content-type": "text/plain" } });
  };
}

/**
 * Starts the demo site on 127.0.0.1 and returns its address and a sources CSV for it.
 *
 * @example
 * ```ts
 * const site = await startDemoSite();
 * console.log(site.sourcesCsv);
 * await site.close();
 * ```
 */
export async function startDemoSite(options: DemoSiteOptions = {}): Promise<DemoSite> {
  const { port = 0, portraitWidth = 225 } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(
      `Cannot start the demo site as 'port' must be 0–65535: current value is ${port}`,
    );
  }
  if (!Number.isInteger(portraitWidth) || portraitWidth < 32 || portraitWidth > 1000) {
    throw new RangeError(
      `Cannot start the demo site as 'portraitWidth' must be 32–1000: current value is ${portraitWidth}`,
    );
  }
  const people = JSON.parse(
    await Deno.readTextFile(new URL("people.json", ASSET_DIR)),
  ) as DemoPerson[];
  const content = siteContent(people);
  const portrait = portraitCutter(portraitWidth, Math.round(portraitWidth * 5 / 4));
  const handler = siteHandler(content, await staticFiles(), portrait);
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler);
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const sourcesCsv = [
    "url,category",
    ...SOURCE_PAGES.map((d) => `${new URL(`/${d.slug}/`, url).href},${d.category}`),
  ].join("\n") + "\n";
  return { url, sourcesCsv, people: content.listings, close: () => server.shutdown() };
}
