/** Face montages: a grid of crops per class, captioned, as one PNG. */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import type { Metrics, RankedFace } from "../stages/evaluate.ts";
import { escapeXml, pct } from "./html.ts";

const TILE = 96;

const CAPTION = 30;

const ROW_LABEL = 140;

const GAP = 6;

/** Montages are drawn at twice their CSS size, so faces and text stay sharp when zoomed. */
const MONTAGE_SCALE = 2;

export async function faceTile(crop: Uint8Array | undefined, side: number): Promise<Buffer> {
  if (crop) {
    try {
      return await sharp(crop).resize(side, side, { fit: "cover" }).png().toBuffer();
    } catch {
      // An unreadable crop is shown as a blank tile rather than failing the whole report.
    }
  }
  return await sharp({
    create: { width: side, height: side, channels: 3, background: "#ddd" },
  }).png().toBuffer();
}

/**
 * The seed study's figure for one class: its most confident true positives, false negatives and
 * false positives, one row each, with the confidence under every face.
 */
export async function montage(
  kind: string,
  lists: Metrics["topK"][number],
  faces: Map<string, Uint8Array>,
): Promise<Uint8Array> {
  // Captions must fit under a tile and hints beside it; librsvg does not wrap or clip text.
  const short = (label: string, max: number) =>
    label.length > max ? `${label.slice(0, max - 1)}…` : label;
  const rows: [string, string[], RankedFace[], (f: RankedFace) => string][] = [
    ["true positives", ["right, most sure"], lists.truePositives, () => "right"],
    [
      "false negatives",
      [`is ${short(lists.label, 17)},`, "called as below"],
      lists.falseNegatives,
      (f) => short(f.predicted, 16),
    ],
    [
      "false positives",
      [`called ${short(lists.label, 13)},`, "is as below"],
      lists.falsePositives,
      (f) => short(f.actual, 16),
    ],
  ];
  const columns = Math.max(1, ...rows.map(([, , list]) => list.length));
  const title = 34;
  const width = ROW_LABEL + columns * (TILE + GAP) + GAP;
  const rowHeight = TILE + CAPTION + GAP;
  const height = title + rows.length * rowHeight;
  const text: string[] = [
    `<text x="${GAP}" y="22" font-size="16" font-weight="bold">${
      escapeXml(`${kind}: '${short(lists.label, 40)}'`)
    }</text>`,
  ];
  const composites: sharp.OverlayOptions[] = [];
  for (const [r, [name, hints, list, caption]] of rows.entries()) {
    const top = title + r * rowHeight;
    text.push(
      `<text x="${GAP}" y="${top + TILE / 2 - 6}" font-size="13" font-weight="bold">${name}</text>`,
      ...hints.map((hint, h) =>
        `<text x="${GAP}" y="${top + TILE / 2 + 10 + h * 14}" font-size="11" fill="#555">${
          escapeXml(hint)
        }</text>`
      ),
    );
    if (list.length === 0) {
      text.push(
        `<text x="${ROW_LABEL}" y="${top + TILE / 2}" font-size="12" fill="#888">none</text>`,
      );
    }
    for (const [c, face] of list.entries()) {
      const left = ROW_LABEL + c * (TILE + GAP);
      composites.push({
        input: await faceTile(faces.get(face.id), TILE * MONTAGE_SCALE),
        left: left * MONTAGE_SCALE,
        top: top * MONTAGE_SCALE,
      });
      text.push(
        `<text x="${left + TILE / 2}" y="${top + TILE + 13}" font-size="10" text-anchor="middle">${
          escapeXml(caption(face))
        }</text>`,
        `<text x="${left + TILE / 2}" y="${
          top + TILE + 26
        }" font-size="10" fill="#666" text-anchor="middle">${
          escapeXml(`${pct(face.confidence, 0)} · ${face.id}`)
        }</text>`,
      );
    }
  }
  const [pixelWidth, pixelHeight] = [width * MONTAGE_SCALE, height * MONTAGE_SCALE];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${pixelWidth}" height="${pixelHeight}"
viewBox="0 0 ${width} ${height}">
<g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">${text.join("\n")}</g></svg>`;
  const png = await sharp({
    create: { width: pixelWidth, height: pixelHeight, channels: 3, background: "white" },
  })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }, ...composites])
    .png()
    .toBuffer();
  return new Uint8Array(png);
}
