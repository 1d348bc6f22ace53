/**
 * Every face `extractFaces` finds (`allFaces`) in the images under some folders, one line an
 * image: detector, face count, usable faces, rejection, each box and score, and the call's CPU
 * ms. Run it in two checkouts and diff the lines without the last column to compare the face
 * stage's detections before and after a change (docs/no-face.md); 16 generated bench:scale
 * portraits (no face) are added at the end. `--composites OUT` first writes 60 scenes with a
 * small face each (the first 60 portraits of the first folder, 70–120 px high, in 800×1000 and
 * 1024×768 frames: faces only SSD finds) into OUT and adds OUT to the folders.
 *
 *   deno run -A commands/dev/face_dump.ts --composites /tmp/small DEV_PORTRAITS OTHER... > after.tsv
 */
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { extractFaces, faceEngineInfo } from "../../models/faces/faces.ts";
import { benchPortrait } from "../bench/crawl.ts";

function imagesUnder(dir: string, into: string[] = []): string[] {
  const entries = [...Deno.readDirSync(dir)].sort((a, b) => a.name < b.name ? -1 : 1);
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) imagesUnder(path, into);
    else if (/\.(jpe?g|png|webp|gif)$/i.test(entry.name)) into.push(path);
  }
  return into;
}

async function makeComposites(portraits: string[], out: string): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  for (const [k, path] of portraits.slice(0, 60).entries()) {
    const [width, height] = k % 2 ? [1024, 768] : [800, 1000];
    const face = await sharp(path).resize({ height: [70, 90, 120][k % 3]! }).toBuffer();
    const background = { r: 90 + (k * 37) % 120, g: 110, b: 100 + (k * 53) % 100 };
    await sharp({ create: { width, height, channels: 3, background } })
      .composite([{
        input: face,
        left: (k * 97) % (width - 200) + 20,
        top: (k * 61) % (height - 200) + 20,
      }])
      .jpeg({ quality: 85 })
      .toFile(`${out}/${k}_${path.split("/").pop()}`);
  }
}

function line(result: Awaited<ReturnType<typeof extractFaces>>): string {
  const faces = result.faces.map((face) =>
    [face.box.x, face.box.y, face.box.width, face.box.height].map((v) => v.toFixed(2)).join(",") +
    "@" + face.score.toFixed(4)
  );
  return [result.detector, result.faceCount, result.faces.length, result.rejection ?? ""]
    .concat(faces.join(" ")).join("\t");
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { composites: { type: "string" } },
  allowPositionals: true,
});
const folders = [...positionals];
if (values.composites && folders[0]) {
  await makeComposites(imagesUnder(folders[0]), values.composites);
  folders.push(values.composites);
}
console.error(JSON.stringify(await faceEngineInfo()));
const inputs: [string, () => Promise<Uint8Array>][] = folders.flatMap((folder) =>
  imagesUnder(folder).map((path): [string, () => Promise<Uint8Array>] => [
    path,
    () => Deno.readFile(path),
  ])
);
for (let n = 0; n < 16; n++) inputs.push([`bench-${n}`, () => benchPortrait(n * 13 + 1)]);
let total = 0;
for (const [name, read] of inputs) {
  const bytes = await read();
  const before = cpuUsage();
  let text: string;
  try {
    text = line(await extractFaces(bytes, { allFaces: true }));
  } catch (error) {
    text = `error\t${String((error as Error).message).split("\n")[0]}\t\t\t`;
  }
  const used = cpuUsage(before);
  total += (used.user + used.system) / 1000;
  console.log(`${name}\t${text}\t${((used.user + used.system) / 1000).toFixed(0)}`);
}
console.error(`${inputs.length} images, ${total.toFixed(0)} ms CPU`);
