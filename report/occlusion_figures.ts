/**
 * The report's "Where the models look": per model, the mean occlusion map of each class drawn
 * over that class's mean face (a PNG per model), the share of the effect inside the face box,
 * and the same numbers for metrics.json (`models[].occlusion`).
 */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import type { Box, RgbImage } from "../core/types.ts";
import { insideShare, type OcclusionGrid, pixelMap } from "../models/occlusion.ts";

/** One face's occlusion results: per model kind, the true class's probability and its falls. */
export interface FaceOcclusion {
  id: string;
  category: string;
  /** The crop the patches slid over (for the mean face; never written to JSON). */
  crop: RgbImage;
  /** Per kind: the true class's probability on the whole crop, and its fall under each patch. */
  kinds: Record<string, { base: number; falls: number[] }>;
}

/** A run's occlusion maps, as `pipeline/occlusion_run.ts` makes them. */
export interface OcclusionResult {
  grid: OcclusionGrid;
  /** The face box in crop px: the square the descriptor reads, `facePercent` of the height. */
  faceBox: Box;
  faces: FaceOcclusion[];
  /** Kinds with no map, and why. */
  skipped: Record<string, string>;
  /** What a portrait's map means, where the run has one. */
  portraitNote?: string;
  /** Seconds the maps took. */
  seconds: number;
}

/** What metrics.json keeps of a model's maps. */
export interface OcclusionSummary {
  /** Share of the effect (Σ |fall| per pixel, over the sampled faces) inside the face box. */
  insideFace: number | null;
  patch: number;
  stride: number;
  /** Faces mapped. */
  faces: number;
  /** Per class: faces, the inside share, and the largest fall of the class's mean map. */
  classes: Record<string, { faces: number; insideFace: number | null; peakFall: number }>;
}

/** One class's mean map and mean face, for a figure panel. */
interface ClassMap {
  label: string;
  faces: number;
  /** Mean signed fall per pixel. */
  mean: Float32Array;
  insideFace: number | null;
  meanFace: Float32Array;
}

const pct = (value: number | null) => value === null ? "n/a" : `${Math.round(value * 100)} %`;

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Safe in a file name. */
function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "x";
}

/** The mean maps of one kind's faces of one class (or of all, with `label` undefined). */
function classMap(
  result: OcclusionResult,
  kind: string,
  label: string | undefined,
): ClassMap | undefined {
  const faces = result.faces.filter((f) => f.kinds[kind] && (!label || f.category === label));
  if (faces.length === 0) return undefined;
  const { width, height } = result.grid;
  const mean = new Float32Array(width * height);
  const magnitude = new Float32Array(width * height);
  const meanFace = new Float32Array(width * height * 3);
  for (const face of faces) {
    const map = pixelMap(result.grid, face.kinds[kind]!.falls);
    for (let i = 0; i < map.length; i++) {
      mean[i]! += map[i]! / faces.length;
      magnitude[i]! += Math.abs(map[i]!) / faces.length;
    }
    for (let i = 0; i < meanFace.length; i++) meanFace[i]! += face.crop.data[i]! / faces.length;
  }
  return {
    label: label ?? "all",
    faces: faces.length,
    mean,
    insideFace: insideShare(magnitude, width, result.faceBox),
    meanFace,
  };
}

/** The numbers metrics.json keeps for each mapped kind. */
export function occlusionSummaries(result: OcclusionResult): Record<string, OcclusionSummary> {
  const kinds = [...new Set(result.faces.flatMap((f) => Object.keys(f.kinds)))];
  const labels = [...new Set(result.faces.map((f) => f.category))].sort();
  return Object.fromEntries(kinds.map((kind) => {
    const all = classMap(result, kind, undefined)!;
    const classes = Object.fromEntries(labels.flatMap((label) => {
      const map = classMap(result, kind, label);
      return map
        ? [[label, {
          faces: map.faces,
          insideFace: map.insideFace,
          peakFall: Math.round(Math.max(...map.mean) * 1e4) / 1e4,
        }]]
        : [];
    }));
    return [kind, {
      insideFace: all.insideFace,
      patch: result.grid.patch,
      stride: result.grid.stride,
      faces: all.faces,
      classes,
    }];
  }));
}

/** Panel scale: each crop px is drawn this many times over. */
const ZOOM = 2;
const CAPTION = 44;
const GAP = 10;

/**
 * One panel's pixels: the mean face in grey, red where hiding a place lowers the true class's
 * probability, blue where it raises it, full colour at `scale`.
 */
function panelPixels(map: ClassMap, scale: number): Uint8Array {
  const out = new Uint8Array(map.mean.length * 3);
  for (let i = 0; i < map.mean.length; i++) {
    const [r, g, b] = [map.meanFace[3 * i]!, map.meanFace[3 * i + 1]!, map.meanFace[3 * i + 2]!];
    const grey = 40 + 0.7 * (0.299 * r + 0.587 * g + 0.114 * b);
    const value = map.mean[i]!;
    const alpha = scale > 0 ? Math.min(1, Math.abs(value) / scale) * 0.8 : 0;
    const colour = value >= 0 ? [230, 30, 20] : [30, 90, 230];
    for (let c = 0; c < 3; c++) {
      out[3 * i + c] = Math.round(grey * (1 - alpha) + colour[c]! * alpha);
    }
  }
  return out;
}

/** A model's figure: one panel per class, the face box drawn, the inside share under each. */
export async function occlusionFigure(
  kind: string,
  maps: ClassMap[],
  grid: OcclusionGrid,
  faceBox: Box,
): Promise<Uint8Array> {
  const side = grid.width * ZOOM;
  const panelHeight = grid.height * ZOOM;
  const scale = Math.max(1e-6, ...maps.map((m) => Math.max(...m.mean.map(Math.abs))));
  const title = 30;
  const width = maps.length * (side + GAP) + GAP;
  const height = title + panelHeight + CAPTION;
  const text: string[] = [
    `<text x="${GAP}" y="20" font-size="15" font-weight="bold">${escapeXml(kind)}</text>`,
    `<text x="${width - GAP}" y="20" font-size="11" text-anchor="end" fill="#555">full red: ` +
    `p(true class) falls ${scale.toFixed(3)}</text>`,
  ];
  const composites: sharp.OverlayOptions[] = [];
  for (const [i, map] of maps.entries()) {
    const left = GAP + i * (side + GAP);
    const panel = await sharp(panelPixels(map, scale), {
      raw: { width: grid.width, height: grid.height, channels: 3 },
    }).resize(side, panelHeight, { kernel: "nearest" }).png().toBuffer();
    composites.push({ input: panel, left, top: title });
    text.push(
      `<rect x="${left + faceBox.x * ZOOM}" y="${title + faceBox.y * ZOOM}" width="${
        faceBox.width * ZOOM
      }" height="${faceBox.height * ZOOM}" fill="none" stroke="#00c060" stroke-width="2" ` +
        `stroke-dasharray="6 4"/>`,
      `<text x="${left}" y="${title + panelHeight + 16}" font-size="12">${
        escapeXml(`${map.label.slice(0, 28)} (n = ${map.faces})`)
      }</text>`,
      `<text x="${left}" y="${title + panelHeight + 32}" font-size="12" fill="#333">` +
        `inside face box ${pct(map.insideFace)}</text>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">${text.join("\n")}</g></svg>`;
  // The panels first, the SVG (box outlines and text) over them.
  const png = await sharp({ create: { width, height, channels: 3, background: "white" } })
    .composite([...composites, { input: Buffer.from(svg), left: 0, top: 0 }])
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

/** Writes a PNG under the report's folder and gives its figure (report.ts's ReportImages). */
export interface FigureWriter {
  figure(name: string, png: Uint8Array, alt: string): Promise<string>;
}

/**
 * The folded section "Where the models look" and each mapped kind's numbers for metrics.json.
 * Empty where no face was mapped.
 */
export async function occlusionSection(
  result: OcclusionResult,
  images: FigureWriter,
): Promise<{ html: string; summaries: Record<string, OcclusionSummary> }> {
  const summaries = occlusionSummaries(result);
  const kinds = Object.keys(summaries);
  if (kinds.length === 0) return { html: "", summaries };
  const labels = [...new Set(result.faces.map((f) => f.category))].sort();
  const figures: string[] = [];
  for (const kind of kinds) {
    const maps = labels.flatMap((label) => classMap(result, kind, label) ?? []);
    const png = await occlusionFigure(kind, maps, result.grid, result.faceBox);
    figures.push(
      await images.figure(`occlusion-${slug(kind)}.png`, png, `where ${kind} looks, per class`),
    );
  }
  const { patch, stride, width, height } = result.grid;
  const rows = kinds.map((kind) =>
    `<tr><td>${escapeXml(kind)}</td><td>${summaries[kind]!.faces}</td><td>${
      pct(summaries[kind]!.insideFace)
    }</td></tr>`
  ).join("");
  const skipped = Object.entries(result.skipped).map(([kind, why]) =>
    `<li>${escapeXml(kind)}: not mapped; it ${escapeXml(why)}.</li>`
  ).join("");
  const portrait = result.portraitNote ? `<li>${escapeXml(result.portraitNote)}.</li>` : "";
  return {
    summaries,
    html: `<details class="occlusion"><summary><h2 style="display:inline">Where the models look` +
      `</h2></summary>
<p>A grey ${patch}×${patch} px patch slid over each ${width}×${height} face crop every ${stride} px;
red is where hiding the face lowered the model's probability for the person's own class, blue
where it raised it, averaged per class over held-out faces drawn over their mean face. The dashed
box is the face box the face networks read. Pixel models saw the occluded crop; the probes saw
embeddings their face networks computed again from it. The share inside the face box is the share
of Σ |fall| there. Held-out faces, at most a fixed number per class chosen by a hash of their id
before scoring; ${result.faces.length} faces in ${result.seconds.toFixed(1)} s.</p>
<table class="num"><thead><tr><th>model</th><th>faces</th><th>effect inside the face box</th>` +
      `</tr></thead><tbody>${rows}</tbody></table>
${skipped || portrait ? `<ul>${skipped}${portrait}</ul>` : ""}
<div class="grid">${figures.join("\n")}</div></details>`,
  };
}
