import assert from "node:assert/strict";
import sharp from "sharp";
import { encodePng } from "../models/faces/png.ts";

Deno.test("encodePng() writes a PNG that sharp reads back to the same pixels", async () => {
  for (const [width, height] of [[1, 1], [7, 3], [128, 96]] as const) {
    const pixels = new Uint8Array(width * height * 3);
    let state = width * 31 + height;
    for (let i = 0; i < pixels.length; i++) {
      state = (state * 1103515245 + 12345) >>> 0;
      // Smooth rows with noise: both the filter's wrap-around and its gain are exercised.
      pixels[i] = ((i % (width * 3)) * 2 + (state >>> 28)) & 255;
    }
    const png = encodePng(pixels, width, height);
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([info.width, info.height, info.channels, info.format], [
      width,
      height,
      3,
      "raw",
    ]);
    assert.deepEqual(new Uint8Array(data), pixels, `${width}×${height}`);
  }
});

Deno.test("encodePng() rejects sizes that do not fit the bytes", () => {
  assert.throws(() => encodePng(new Uint8Array(10), 2, 2), RangeError);
  assert.throws(() => encodePng(new Uint8Array(0), 0, 0), RangeError);
  assert.throws(() => encodePng(new Uint8Array(6), 1.5, 1), RangeError);
});
