/**
 * The demo's 24 portraits (face-api's sample photos, cut at run time by the demo site) saved
 * into a folder, for tests of image lists and of the people benchmark.
 */
import { join } from "node:path";
import { startDemoSite } from "../../../pipeline/demo_site.ts";

export interface DemoPortrait {
  /** Path relative to the folder. */
  file: string;
  /** The portrait on the demo site, valid while it serves. */
  url: string;
  name: string;
  department: string;
}

function slugify(name: string): string {
  return name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

/** Saves every demo portrait under `dir/photos/`; `keepSite` leaves the site serving. */
export async function saveDemoPortraits(dir: string, keepSite = false) {
  const people = JSON.parse(
    await Deno.readTextFile(new URL("../../../data/demo/people.json", import.meta.url)),
  ) as { name: string; department: string }[];
  const site = await startDemoSite();
  await Deno.mkdir(join(dir, "photos"), { recursive: true });
  const portraits: DemoPortrait[] = [];
  for (const [i, person] of people.entries()) {
    const url = new URL(`/people/${slugify(person.name)}.jpg`, site.url).href;
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    await Deno.writeFile(join(dir, "photos", `${i}.jpg`), bytes);
    portraits.push({ file: `photos/${i}.jpg`, url, ...person });
  }
  if (!keepSite) await site.close();
  return { portraits, close: () => site.close() };
}
