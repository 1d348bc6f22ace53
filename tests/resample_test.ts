import assert from "node:assert/strict";
import { sampleWindow, toBytes } from "../models/faces/resample.ts";
import type { RgbImage } from "../core/types.ts";

/** An image whose pixel (x, y) has the colour `colour(x, y)`. */
function imageOf(
  width: number,
  height: number,
  colour: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(colour(x, y), (y * width + x) * 3);
  }
  return { data, width, height };
}

const gradient = imageOf(12, 8, (x, y) => [x * 20, y * 30, 255 - x * 10 - y * 5]);

Deno.test("sampleWindow() over the whole image at its own size copies it exactly", () => {
  const window = { centreX: 6, centreY: 4, angle: 0, spanWidth: 12, spanHeight: 8 };
  assert.deepEqual(toBytes(sampleWindow(gradient, window, 12, 8)), gradient.data);
});

Deno.test("sampleWindow() turns the window: a quarter turn reads columns as rows", () => {
  // Turned by +90° (clockwise on screen, y pointing down), the window's x axis runs down the
  // image and its y axis runs from right to left.
  const square = imageOf(6, 6, (x, y) => [x * 40, y * 40, 0]);
  const window = { centreX: 3, centreY: 3, angle: Math.PI / 2, spanWidth: 6, spanHeight: 6 };
  const out = toBytes(sampleWindow(square, window, 6, 6));
  for (let v = 0; v < 6; v++) {
    for (let u = 0; u < 6; u++) {
      const at = (v * 6 + u) * 3;
      assert.deepEqual([out[at], out[at + 1]], [(5 - v) * 40, u * 40], `(${u}, ${v})`);
    }
  }
});

Deno.test("sampleWindow() averages what it shrinks: a fine checkerboard becomes flat grey", () => {
  const board = imageOf(64, 64, (x, y) => (x + y) % 2 ? [255, 255, 255] : [0, 0, 0]);
  for (const [span, out] of [[64, 32], [64, 16], [63, 18], [64, 9]] as const) {
    const window = { centreX: 32, centreY: 32, angle: 0.3, spanWidth: span, spanHeight: span };
    const values = sampleWindow(board, window, out, out);
    const inner: number[] = [];
    // Away from the border, where the edge repeats and the board's phase shows.
    for (let v = 2; v < out - 2; v++) {
      for (let u = 2; u < out - 2; u++) inner.push(values[(v * out + u) * 3]!);
    }
    const spread = Math.max(...inner) - Math.min(...inner);
    assert.ok(spread < 40, `${span} px into ${out}: grey levels spread over ${spread}`);
    const mean = inner.reduce((a, b) => a + b, 0) / inner.length;
    assert.ok(Math.abs(mean - 127.5) < 12, `${span} px into ${out}: mean ${mean}`);
  }
});

/** Exact area weights of 1-D output pixels of `k` image px from `from`: [pixel, weight][]. */
function areaWeights(out: number, k: number, from: number): [number, number][][] {
  return Array.from({ length: out }, (_, u) => {
    const start = from + u * k;
    const weights: [number, number][] = [];
    for (let i = Math.floor(start); i < Math.ceil(start + k); i++) {
      const overlap = Math.min(start + k, i + 1) - Math.max(start, i);
      if (overlap > 0) weights.push([i, overlap / k]);
    }
    return weights;
  });
}

Deno.test("sampleWindow() shrinks as an exact area filter does, neither blurrier nor aliased", () => {
  // Fine stripes with noise: what a blurring filter softens and a point sampler aliases.
  let state = 7;
  const noise = () => (state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5;
  const texture = imageOf(200, 200, (x, y) => {
    const value = Math.round(128 + 80 * Math.sin(x * 0.9) * Math.cos(y * 0.7) + 40 * noise());
    const byte = Math.max(0, Math.min(255, value));
    return [byte, byte, byte];
  });
  for (const out of [80, 57, 40]) {
    const span = 160;
    const weights = areaWeights(out, span / out, 100 - span / 2);
    const window = { centreX: 100, centreY: 100, angle: 0, spanWidth: span, spanHeight: span };
    const values = sampleWindow(texture, window, out, out);
    let difference = 0;
    for (let v = 0; v < out; v++) {
      for (let u = 0; u < out; u++) {
        let exact = 0;
        for (const [y, wy] of weights[v]!) {
          for (const [x, wx] of weights[u]!) exact += wy * wx * texture.data[(y * 200 + x) * 3]!;
        }
        difference += Math.abs(exact - values[(v * out + u) * 3]!);
      }
    }
    // Measured: 0.00 at whole reductions, 0.35 at 2.8×; 2×2 blocks first gave 7, points 3–6.
    assert.ok(difference / out / out < 1, `${span} px into ${out}: ${difference / out / out}`);
  }
});

Deno.test("sampleWindow() averages blocks first past an 8× reduction, and still does not alias", () => {
  const board = imageOf(256, 256, (x, y) => (x + y) % 2 ? [255, 255, 255] : [0, 0, 0]);
  const window = { centreX: 128, centreY: 128, angle: 0.2, spanWidth: 200, spanHeight: 200 };
  const values = sampleWindow(board, window, 16, 16);
  for (let k = 0; k < values.length; k += 3) {
    assert.ok(Math.abs(values[k]! - 127.5) < 20, `value ${values[k]} at ${k / 3}`);
  }
});

Deno.test("sampleWindow() repeats the edge outside the image", () => {
  // Row 4's centre is at y = 4.5: pixel i covers [i, i + 1).
  const window = { centreX: -20, centreY: 4.5, angle: 0, spanWidth: 4, spanHeight: 1 };
  const out = toBytes(sampleWindow(gradient, window, 4, 1));
  for (let u = 0; u < 4; u++) assert.deepEqual([...out.slice(u * 3, u * 3 + 3)], [0, 120, 235]);
  // Shrunk (the block-averaged path) as well as at scale.
  const far = { centreX: 6, centreY: 100, angle: 0, spanWidth: 48, spanHeight: 16 };
  const bottom = toBytes(sampleWindow(gradient, far, 4, 2));
  for (let k = 0; k < 8; k++) assert.equal(bottom[k * 3 + 1], 210, `pixel ${k}`);
});

Deno.test("sampleWindow() rejects data that does not fit its size and empty windows", () => {
  const window = { centreX: 1, centreY: 1, angle: 0, spanWidth: 2, spanHeight: 2 };
  assert.throws(
    () => sampleWindow({ data: new Uint8Array(5), width: 2, height: 2 }, window, 2, 2),
    RangeError,
  );
  assert.throws(() => sampleWindow(gradient, { ...window, spanWidth: 0 }, 2, 2), RangeError);
  assert.throws(() => sampleWindow(gradient, window, 0, 2), RangeError);
});
