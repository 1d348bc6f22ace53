/**
 * Sites whose truth is known, to measure how often the verdict is right. From a pool of
 * portraits (`truth_pool.ts`) and a seed, each case writes a labelled image list (CSV:
 * image,label,source,name,id) and its images into a folder, with one thing planted:
 *
 * - `null` [no-signal]: people at random, no style;
 * - `style-per-source` [photo]: every source its own photographer (cast, exposure, JPEG
 *   quality, crop), as the demo site does;
 * - `style-per-class` [photo]: one look for all sources of a category (a university's CMS for a
 *   whole department), so it survives leave-one-source-out;
 * - `demographic` [demographics]: 85 % women in one class, 15 % in the other, faces as they are;
 * - `face` [face]: in one class the eyes moved apart and the chin down (`face_warp.ts`), the
 *   rest of the photo untouched: a face signal that is no demographic;
 * - `face+style` [face]: that, and a photographer per source;
 * - `four-class` [photo]: 4 classes of 3 sources, a photographer per source (the seed study).
 *
 * Every portrait goes through the same decode and encode (sharp), warped or not, so the
 * encoding itself plants nothing.
 */
import { stringify } from "csv-stringify/sync";
import { join } from "node:path";
import sharp from "sharp";
import { seededUniform } from "../core/statistics.ts";
import { type FaceWarp, type Point, type RawImage, warpFace } from "../models/faces/face_warp.ts";
import type { Conclusion } from "../stages/verdict.ts";
import type { Gender, LandmarkFinder, PoolPortrait } from "./truth_pool.ts";

export const TRUTH_CASES = [
  "null",
  "style-per-source",
  "style-per-class",
  "demographic",
  "face",
  "face+style",
  "four-class",
] as const;
export type TruthCase = typeof TRUTH_CASES[number];

/** The conclusion each case plants. */
export const CASE_TRUTH: Record<TruthCase, Conclusion> = {
  "null": "no-signal",
  "style-per-source": "photo",
  "style-per-class": "photo",
  "demographic": "demographics",
  "face": "face",
  "face+style": "face",
  "four-class": "photo",
};

/** A photographer: what every portrait of a source goes through. */
export interface PhotoStyle {
  name: string;
  /** A colour matrix (rows: out R, G, B), or none. */
  recomb?: sharp.Matrix3x3;
  /** A linear exposure change `a·v + b`, or none. */
  linear?: [number, number];
  quality: number;
  /** Share of the portrait kept around its centre before it is scaled back up (1: all). */
  crop: number;
}

/** How portraits look without a photographer: the same encode every case uses. */
export const NO_STYLE: PhotoStyle = { name: "none", quality: 90, crop: 1 };

/** The photographers sources draw from, strong and subtle (the first four are the demo's). */
export const PHOTO_STYLES: readonly PhotoStyle[] = [
  { name: "studio, neutral, tight crop", quality: 92, crop: 0.85 },
  {
    name: "dark, cold blue cast",
    recomb: [[0.4, 0, 0], [0, 0.5, 0.05], [0, 0.1, 0.95]],
    quality: 85,
    crop: 1,
  },
  { name: "overexposed, low contrast", linear: [0.5, 125], quality: 85, crop: 1 },
  {
    name: "warm cast, heavy JPEG",
    recomb: [[1.05, 0.1, 0], [0, 0.9, 0], [0, 0, 0.6]],
    quality: 8,
    crop: 1,
  },
  {
    name: "slight green, loose JPEG",
    recomb: [[0.92, 0, 0], [0, 1, 0], [0, 0, 0.92]],
    quality: 60,
    crop: 0.92,
  },
  {
    name: "washed out colours",
    recomb: [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.2, 0.3, 0.5]],
    quality: 80,
    crop: 0.9,
  },
  { name: "high contrast", linear: [1.3, -30], quality: 70, crop: 1 },
  {
    name: "grey, soft",
    recomb: [[0.5, 0.4, 0.1], [0.5, 0.4, 0.1], [0.5, 0.4, 0.1]],
    quality: 85,
    crop: 1,
  },
  { name: "underexposed", linear: [0.7, 0], quality: 90, crop: 0.9 },
  {
    name: "yellow cast, mid JPEG",
    recomb: [[1, 0.05, 0], [0.05, 1, 0], [0, 0, 0.75]],
    quality: 40,
    crop: 1,
  },
  {
    name: "cyan cast, loose crop",
    recomb: [[0.8, 0, 0], [0, 1, 0.05], [0, 0.05, 1]],
    quality: 88,
    crop: 0.97,
  },
  {
    name: "magenta cast",
    recomb: [[1, 0, 0.1], [0, 0.85, 0], [0.1, 0, 1]],
    quality: 75,
    crop: 0.95,
  },
];

export interface TruthSiteOptions {
  pool: PoolPortrait[];
  case: TruthCase;
  seed: number;
  /** Folder the CSV and images are written to (made if missing). */
  dir: string;
  /**
   * Most faces in the site; fewer where the case needs it (the demographic mix).
   * @default 160
   */
  faces?: number;
  /**
   * The face cases' change, in face widths.
   * @default { eyesOut: 0.02, chinDown: 0.02 }
   */
  warp?: FaceWarp;
  /** The landmarks of a portrait (the face cases need them). */
  landmarks?: LandmarkFinder;
  /**
   * The demographic case's share of women in its first class, and in the other.
   * @default [0.85, 0.15]
   */
  womenShares?: [number, number];
}

/** One row of the site's list, and what was planted in it. */
export interface TruthRow {
  image: string;
  label: string;
  source: string;
  name: string;
  id: string;
  gender: Gender;
  style: string;
  warped: boolean;
}

export interface TruthSite {
  case: TruthCase;
  truth: Conclusion;
  seed: number;
  dir: string;
  csvPath: string;
  csv: string;
  rows: TruthRow[];
  /** The class whose faces were warped (face cases), else null. */
  warpedClass: string | null;
  warp: FaceWarp | null;
  /** Pool portraits left out because the face stage found no face to warp. */
  noLandmarks: number;
}

interface Layout {
  classes: number;
  sourcesPerClass: number;
  styled: "none" | "per-source" | "per-class";
  warped: boolean;
}

const LAYOUTS: Record<TruthCase, Layout> = {
  "null": { classes: 2, sourcesPerClass: 2, styled: "none", warped: false },
  "style-per-source": { classes: 2, sourcesPerClass: 2, styled: "per-source", warped: false },
  "style-per-class": { classes: 2, sourcesPerClass: 2, styled: "per-class", warped: false },
  "demographic": { classes: 2, sourcesPerClass: 2, styled: "none", warped: false },
  "face": { classes: 2, sourcesPerClass: 2, styled: "none", warped: true },
  "face+style": { classes: 2, sourcesPerClass: 2, styled: "per-source", warped: true },
  "four-class": { classes: 4, sourcesPerClass: 3, styled: "per-source", warped: false },
};

/** A Fisher–Yates shuffle driven by `random`. */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const className = (k: number) => `class-${String.fromCharCode(97 + k)}`;

/**
 * The demographic case's two classes: `m` people each, round(share·m) women, as many as the
 * pool's women and men allow up to `faces`.
 */
export function demographicClasses(
  people: PoolPortrait[],
  faces: number,
  shares: [number, number],
): PoolPortrait[][] {
  const women = people.filter((p) => p.gender === "F");
  const men = people.filter((p) => p.gender === "M");
  for (let m = Math.floor(faces / 2); m >= 2; m--) {
    const w = shares.map((share) => Math.round(share * m));
    if (w[0]! + w[1]! <= women.length && 2 * m - w[0]! - w[1]! <= men.length) {
      let wi = 0;
      let mi = 0;
      return w.map((count) => {
        const chosen = [...women.slice(wi, wi + count), ...men.slice(mi, mi + m - count)];
        wi += count;
        mi += m - count;
        return chosen;
      });
    }
  }
  throw new RangeError(
    `the demographic case needs women and men in the pool: it has ${women.length} women and ${men.length} men`,
  );
}

/** People per class: balanced, at random from the seed (the demographic case by its mix). */
function assignClasses(
  people: PoolPortrait[],
  layout: Layout,
  options: Required<Pick<TruthSiteOptions, "case" | "faces" | "womenShares">>,
): PoolPortrait[][] {
  if (options.case === "demographic") {
    return demographicClasses(people, options.faces, options.womenShares);
  }
  const perClass = Math.floor(Math.min(options.faces, people.length) / layout.classes);
  if (perClass < layout.sourcesPerClass) {
    throw new RangeError(
      `case ${options.case} needs at least ${
        layout.classes * layout.sourcesPerClass
      } portraits: the pool gives ${people.length}`,
    );
  }
  return Array.from(
    { length: layout.classes },
    (_, k) => people.slice(k * perClass, (k + 1) * perClass),
  );
}

/** Each source's photographer: drawn without replacement, per source or one per class. */
function styleOf(layout: Layout, random: () => number): (k: number, s: number) => PhotoStyle {
  if (layout.styled === "none") return () => NO_STYLE;
  const palette = shuffled(PHOTO_STYLES, random);
  const needed = layout.styled === "per-class"
    ? layout.classes
    : layout.classes * layout.sourcesPerClass;
  if (needed > palette.length) {
    throw new RangeError(`${needed} photographers wanted, ${palette.length} in the palette`);
  }
  return layout.styled === "per-class"
    ? (k) => palette[k]!
    : (k, s) => palette[k * layout.sourcesPerClass + s]!;
}

/** A portrait through the same decode, the warp where asked, the style, and a JPEG encode. */
export async function renderPortrait(
  bytes: Uint8Array,
  style: PhotoStyle,
  warp?: { points: { x: number; y: number }[]; warp: FaceWarp },
): Promise<Uint8Array> {
  const { data, info } = await sharp(bytes).rotate().toColourspace("srgb").removeAlpha().raw()
    .toBuffer({ resolveWithObject: true });
  let raw: RawImage = {
    data: Uint8Array.from(data),
    width: info.width,
    height: info.height,
    channels: 3,
  };
  if (warp) raw = warpFace(raw, warp.points, warp.warp);
  let image = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } });
  if (style.crop < 1) {
    const width = Math.round(raw.width * style.crop);
    const height = Math.round(raw.height * style.crop);
    const cropped = await image.extract({
      left: Math.floor((raw.width - width) / 2),
      top: Math.floor((raw.height - height) / 2),
      width,
      height,
    }).resize(raw.width, raw.height).png().toBuffer();
    image = sharp(cropped);
  }
  if (style.recomb) image = image.recomb(style.recomb);
  if (style.linear) image = image.linear(style.linear[0], style.linear[1]);
  return Uint8Array.from(await image.jpeg({ quality: style.quality }).toBuffer());
}

/** The landmarks of each portrait in which the face stage finds a face. */
async function landmarksOf(
  people: PoolPortrait[],
  landmarks: LandmarkFinder,
): Promise<Map<string, Point[]>> {
  const found = await Promise.all(people.map((p) => landmarks(p)));
  return new Map(people.flatMap((p, i) => found[i] ? [[p.id, found[i]!] as const] : []));
}

/** Renders each class's people into `dir`, sources taking the (shuffled) class in turn. */
async function writeRows(
  dir: string,
  classes: PoolPortrait[][],
  sourcesPerClass: number,
  plan: {
    random: () => number;
    style: (k: number, s: number) => PhotoStyle;
    warpedClass: number;
    warp: FaceWarp;
    points: Map<string, Point[]>;
  },
): Promise<TruthRow[]> {
  const { random, style, warpedClass, warp, points } = plan;
  const layout = { sourcesPerClass };
  const rows: TruthRow[] = [];
  for (const [k, members] of classes.entries()) {
    // Sources within a class take its (shuffled) people in turn.
    const ordered = shuffled(members, random);
    for (const [i, person] of ordered.entries()) {
      const s = i % layout.sourcesPerClass;
      const look = style(k, s);
      const warped = k === warpedClass;
      const image = `${person.id}.jpg`;
      await Deno.writeFile(
        join(dir, image),
        await renderPortrait(
          await person.bytes(),
          look,
          warped ? { points: points.get(person.id)!, warp } : undefined,
        ),
      );
      rows.push({
        image,
        label: className(k),
        source: `${className(k)}-source-${s + 1}`,
        name: person.name,
        id: person.id,
        gender: person.gender,
        style: look.name,
        warped,
      });
    }
  }
  return rows;
}

/**
 * Writes one case's site for one seed: the images and `list.csv` in `dir`.
 *
 * @example
 * ```ts
 * const site = await makeTruthSite({ pool: await demoPool(), case: "null", seed: 1, dir });
 * console.log(site.csvPath, site.rows.length);
 * ```
 */
export async function makeTruthSite(options: TruthSiteOptions): Promise<TruthSite> {
  const {
    pool,
    case: name,
    seed,
    dir,
    faces = 160,
    warp = { eyesOut: 0.02, chinDown: 0.02 },
    landmarks,
    womenShares = [0.85, 0.15],
  } = options;
  if (!(TRUTH_CASES as readonly string[]).includes(name)) {
    throw new RangeError(`unknown case '${name}': one of ${TRUTH_CASES.join(", ")}`);
  }
  if (!Number.isInteger(faces) || faces < 4) {
    throw new RangeError(`'faces' must be an integer >= 4: current value is ${faces}`);
  }
  const layout = LAYOUTS[name];
  if (layout.warped && !landmarks) {
    throw new RangeError(`case ${name} warps faces: it needs a 'landmarks' finder`);
  }
  const random = seededUniform(seed * 7919 + TRUTH_CASES.indexOf(name) + 1);
  let people = shuffled(pool, random);
  let points = new Map<string, Point[]>();
  let noLandmarks = 0;
  if (layout.warped) {
    points = await landmarksOf(people, landmarks!);
    noLandmarks = people.length - points.size;
    people = people.filter((p) => points.has(p.id));
  }
  const classes = assignClasses(people, layout, { case: name, faces, womenShares });
  const style = styleOf(layout, random);
  const warpedClass = layout.warped ? Math.floor(random() * layout.classes) : -1;
  await Deno.mkdir(dir, { recursive: true });
  const rows = await writeRows(dir, classes, layout.sourcesPerClass, {
    random,
    style,
    warpedClass,
    warp,
    points,
  });
  const csv = stringify(rows, {
    header: true,
    columns: ["image", "label", "source", "name", "id"],
  });
  const csvPath = join(dir, "list.csv");
  await Deno.writeTextFile(csvPath, csv);
  return {
    case: name,
    truth: CASE_TRUTH[name],
    seed,
    dir,
    csvPath,
    csv,
    rows,
    warpedClass: layout.warped ? className(warpedClass) : null,
    warp: layout.warped ? warp : null,
    noLandmarks,
  };
}
