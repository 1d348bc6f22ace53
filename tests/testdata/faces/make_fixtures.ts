/**
 * Regenerates the face fixtures from face-api's demo photos (MIT, in node_modules):
 * `deno run -A tests/testdata/faces/make_fixtures.ts`. Small files, each testing one decode path.
 */
import sharp from "sharp";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const here = dirname(new URL(import.meta.url).pathname);
const demo = join(
  dirname(createRequire(import.meta.url).resolve("@vladmandic/face-api/package.json")),
  "demo",
);
const portrait = await Deno.readFile(join(demo, "sample3.jpg"));
const group = await Deno.readFile(join(demo, "sample4.jpg"));
const out = (name: string) => join(here, name);

/** One face (the middle one of sample3), 300 px wide. */
const small = await sharp(portrait)
  .extract({ left: 880, top: 20, width: 520, height: 640 })
  .resize(300)
  .jpeg({ quality: 85 })
  .toBuffer();
await Deno.writeFile(out("portrait.jpg"), small);
/** Four faces of different sizes. */
await sharp(group).resize(800).jpeg({ quality: 85 }).toFile(out("group.jpg"));
/** The portrait stored on its side with EXIF orientation 6 (display turned 90° clockwise). */
await sharp(small).rotate(-90).withMetadata({ orientation: 6 }).jpeg({ quality: 85 }).toFile(
  out("exif_rotated.jpg"),
);
/** CMYK JPEG, as print workflows leave them. */
await sharp(small).toColourspace("cmyk").jpeg({ quality: 85 }).toFile(out("cmyk.jpg"));
/** RGBA: the face opaque, the rest transparent over pure green that must not show. */
const { width = 300, height = 370 } = await sharp(small).metadata();
const mask = Buffer.from(
  `<svg width="${width}" height="${height}"><ellipse cx="${width * 0.55}" cy="${height * 0.4}" ` +
    `rx="${width * 0.32}" ry="${height * 0.38}" fill="#fff"/></svg>`,
);
const alphaRaw = await sharp(mask).extractChannel(3).raw().toBuffer();
const green = Buffer.alloc(width * height * 3);
for (let i = 0; i < width * height; i++) green[3 * i + 1] = 255;
const rgb = await sharp(small).removeAlpha().raw().toBuffer();
const opaque = Buffer.alloc(width * height * 3);
for (let i = 0; i < width * height; i++) {
  const source = alphaRaw[i]! > 0 ? rgb : green;
  source.copy(opaque, 3 * i, 3 * i, 3 * i + 3);
}
await sharp(opaque, { raw: { width, height, channels: 3 } })
  .joinChannel(alphaRaw, { raw: { width, height, channels: 1 } })
  .png()
  .toFile(out("rgba.png"));
/** The first third of a JPEG. */
await Deno.writeFile(out("truncated.jpg"), small.subarray(0, Math.floor(small.length / 3)));
/** 12×12 px: decodes, but holds no face. */
await sharp(small).resize(12, 12).png().toFile(out("tiny.png"));
/** Text with an image's name. */
await Deno.writeTextFile(out("not_an_image.jpg"), "This is a text file, not a JPEG.\n");
