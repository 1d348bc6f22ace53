/**
 * Pools of portraits for sites whose truth is known (`truth_sites.ts`): each a photo of one
 * person with a known gender. `congress-dev` is the shared congress portraits' dev set (200
 * people, gender from congress-legislators); `demo` is the demo site's 22 people cut from
 * face-api's sample photos (the flopped copies left out), all women, so it serves every case
 * but `demographic`. Each portrait's 68 landmarks are found once by the face stage and cached.
 */
import { parse } from "csv-parse/sync";
import { join } from "node:path";
import sharp from "sharp";
import { findLandmarks } from "../models/faces/faces.ts";
import type { Point } from "../models/faces/face_warp.ts";
import { faceApiPackageDir } from "../models/faces/package_files.ts";
import { sharedPath } from "../core/shared_data.ts";

export type Gender = "M" | "F";

export interface PoolPortrait {
  /** A short token, unique in the pool, safe in a file name. */
  id: string;
  name: string;
  gender: Gender;
  /** The portrait's bytes (JPEG or PNG), as the site's photographer gets them. */
  bytes(): Promise<Uint8Array>;
}

export const POOL_NAMES = ["congress-dev", "demo"] as const;
export type PoolName = typeof POOL_NAMES[number];

/** The congress dev set: 200 official portraits, 225×275, gender M/F. */
export async function congressDevPool(
  dir = sharedPath("data/congress/"),
): Promise<PoolPortrait[]> {
  const rows: Record<string, string>[] = parse(
    await Deno.readTextFile(join(dir, "people.csv")),
    { columns: true },
  );
  return rows.filter((row) => row.set === "dev").map((row) => {
    if (row.gender !== "M" && row.gender !== "F") {
      throw new RangeError(`congress row ${row.id} has gender '${row.gender}', not M or F`);
    }
    return {
      id: row.id!,
      name: row.name!,
      gender: row.gender,
      bytes: () => Deno.readFile(join(dir, row.image!)),
    };
  });
}

interface DemoPerson {
  sample: string;
  box: { x: number; y: number; width: number; height: number };
  name: string;
  flop?: boolean;
}

/** The demo's people, cut 225×281 from face-api's sample photos as the demo site cuts them. */
export async function demoPool(): Promise<PoolPortrait[]> {
  const people = JSON.parse(
    await Deno.readTextFile(new URL("../data/demo/people.json", import.meta.url)),
  ) as DemoPerson[];
  const sampleDir = join(faceApiPackageDir(), "demo");
  return people.filter((person) => !person.flop).map((person, i) => ({
    id: `demo-${String(i + 1).padStart(2, "0")}`,
    name: person.name,
    // The invented names are women's, and so are the faces in face-api's samples.
    gender: "F" as const,
    bytes: async () => {
      const { x, y, width, height } = person.box;
      const png = await sharp(join(sampleDir, person.sample)).rotate()
        .extract({ left: x, top: y, width, height })
        .resize(225, 281, { fit: "cover" }).png().toBuffer();
      return Uint8Array.from(png);
    },
  }));
}

export function loadPool(name: PoolName): Promise<PoolPortrait[]> {
  return name === "demo" ? demoPool() : congressDevPool();
}

/** Finds a portrait's 68 landmarks (original px), or null where the face stage finds no face. */
export type LandmarkFinder = (portrait: PoolPortrait) => Promise<Point[] | null>;

/**
 * The face stage's landmarks per portrait, found once: kept in memory and, with `file`, in a
 * JSON file keyed by pool id, so a second bench run finds none again.
 */
export function landmarkCache(file?: string): LandmarkFinder {
  type Stored = Record<string, Point[] | null>;
  let stored: Promise<Stored> | undefined;
  const load = () =>
    stored ??= file === undefined ? Promise.resolve({} as Stored) : Deno.readTextFile(file).then(
      (text) => JSON.parse(text) as Stored,
      () => ({} as Stored),
    );
  let writing = Promise.resolve();
  return async (portrait) => {
    const known = await load();
    if (portrait.id in known) return known[portrait.id] ?? null;
    const found = await findLandmarks(await portrait.bytes());
    const points = found?.points.map((p) => ({
      x: Math.round(p.x * 100) / 100,
      y: Math.round(p.y * 100) / 100,
    })) ?? null;
    known[portrait.id] = points;
    if (file !== undefined) {
      writing = writing.then(() => Deno.writeTextFile(file, JSON.stringify(known)));
      await writing;
    }
    return points;
  };
}
