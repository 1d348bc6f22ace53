/**
 * The report's "Where the models look": per model, the mean occlusion map of each class drawn
 * over that class's mean face (a PNG per model), the share of the effect inside the face box,
 * and the same numbers for metrics.json (`models[].occlusion`).
 */
import { Buffer } from "node:buffer";
import sharp from "sharp";
import type { Box, RgbImage } from "../core/types.ts";
import { effectSums, type OcclusionGrid, pixelMap } from "../models/occlusion.ts";

/** A model's true-class probability on the whole image, and its fall under each patch. */
export interface KindFalls {
  base: number;
  falls: number[];
}

/** One face in one frame: the image the patch slid over, the face box in it, each kind's falls. */
export interface FrameFace {
  id: string;
  category: string;
  /** The crop, or the masked photo (never written to JSON). */
  image: RgbImage;
  /** The face box in the image's px. */
  faceBox: Box;
  kinds: Record<string, KindFalls>;
}

/** The faces mapped on one kind of image, all on one grid. */
export interface OcclusionFrame {
  grid: OcclusionGrid;
  faces: FrameFace[];
}

/** A run's occlusion maps, as `pipeline/occlusion_run.ts` makes them. */
export interface OcclusionResult {
  /** On the aligned crop: every model that reads the face. */
  frames: {
    crop: OcclusionFrame;
    /** On the masked photo: `context`, which reads the photo around the face. */
    photo?: OcclusionFrame;
  };
  /** Sampled faces that could not be mapped, with the reason. */
  failed: { id: string; reason: string }[];
  /** What a portrait's map means, where the run has one. */
  portraitNote?: string;
  /** Seconds the maps took. */
  seconds: number;
  /** CPU seconds they took (this process, all threads): steadier than wall time on a busy machine. */
  cpuSeconds?: number;
}

/** What metrics.json keeps of a model's maps. */
export interface OcclusionSummary {
  /** What the patch slid over: the aligned crop, or (context) the photo with the face masked. */
  frame: "crop" | "photo";
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
  /** The faces' mean image (crop or masked photo), RGB floats. */
  meanImage: Float32Array;
  /** The faces' mean face box. */
  box: Box;
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
  frame: OcclusionFrame,
  kind: string,
  label: string | undefined,
): ClassMap | undefined {
  const faces = frame.faces.filter((f) => f.kinds[kind] && (!label || f.category === label));
  if (faces.length === 0) return undefined;
  const { width, height } = frame.grid;
  const mean = new Float32Array(width * height);
  const meanImage = new Float32Array(width * height * 3);
  const box = { x: 0, y: 0, width: 0, height: 0 };
  let [inside, total] = [0, 0];
  for (const face of faces) {
    const map = pixelMap(frame.grid, face.kinds[kind]!.falls);
    for (let i = 0; i < map.length; i++) mean[i]! += map[i]! / faces.length;
    for (let i = 0; i < meanImage.length; i++) meanImage[i]! += face.image.data[i]! / faces.length;
    const sums = effectSums(map, width, face.faceBox);
    [inside, total] = [inside + sums.inside, total + sums.total];
    for (const key of ["x", "y", "width", "height"] as const) {
      box[key] += face.faceBox[key] / faces.length;
    }
  }
  return {
    label: label ?? "all",
    faces: faces.length,
    mean,
    insideFace: total > 0 ? inside / total : null,
    meanImage,
    box,
  };
}

/** The frame a kind was mapped on. */
function frameOf(result: OcclusionResult, kind: string): "crop" | "photo" {
  return result.frames.photo?.faces.some((f) => f.kinds[kind]) ? "photo" : "crop";
}

/** The kinds mapped, crop-frame kinds first. */
function mappedKinds(result: OcclusionResult): string[] {
  const { crop, photo } = result.frames;
  return [...new Set([...crop.faces, ...photo?.faces ?? []].flatMap((f) => Object.keys(f.kinds)))];
}

/** The numbers metrics.json keeps for each mapped kind. */
export function occlusionSummaries(result: OcclusionResult): Record<string, OcclusionSummary> {
  return Object.fromEntries(
    mappedKinds(result).map((kind) => {
      const where = frameOf(result, kind);
      const frame = result.frames[where]!;
      const labels = [...new Set(frame.faces.map((f) => f.category))].sort();
      const all = classMap(frame, kind, undefined)!;
      const classes = Object.fromEntries(labels.flatMap((label) => {
        const map = classMap(frame, kind, label);
        return map
          ? [[label, {
            faces: map.faces,
            insideFace: map.insideFace,
            peakFall: Math.round(Math.max(...map.mean) * 1e4) / 1e4,
          }]]
          : [];
      }));
      return [kind, {
        frame: where,
        insideFace: all.insideFace,
        patch: frame.grid.patch,
        stride: frame.grid.stride,
        faces: all.faces,
        classes,
      }];
    }),
  );
}

/** Side of a panel in px: a 128 px crop twice over. */
const PANEL = 256;
const CAPTION = 44;
const GAP = 10;

/**
 * One panel's pixels: the mean face in grey, red where hiding a place lowers the true class's
 * probability, blue where it raises it, full colour at `scale`.
 */
function panelPixels(map: ClassMap, scale: number): Uint8Array {
  const out = new Uint8Array(map.mean.length * 3);
  for (let i = 0; i < map.mean.length; i++) {
    const [r, g, b] = [map.meanImage[3 * i]!, map.meanImage[3 * i + 1]!, map.meanImage[3 * i + 2]!];
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
): Promise<Uint8Array> {
  const zoom = Math.max(1, Math.round(PANEL / grid.width));
  const side = grid.width * zoom;
  const panelHeight = grid.height * zoom;
  const scale = Math.max(1e-6, ...maps.map((m) => Math.max(...m.mean.map(Math.abs))));
  const title = 30;
  const width = Math.max(360, maps.length * (side + GAP) + GAP);
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
    const { box } = map;
    text.push(
      `<rect x="${left + box.x * zoom}" y="${title + box.y * zoom}" width="${
        box.width * zoom
      }" height="${box.height * zoom}" fill="none" stroke="#00c060" stroke-width="2" ` +
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

const CONTEXT_NOTE = "<li>context reads no face: the photo with the face box painted grey, " +
  "squeezed to 12×12 px. Its patch (3×3 px, every px) slides over that masked photo, drawn " +
  "over the class's mean masked photo; its face box is the grey box it never sees, so little " +
  "of its effect can lie inside.</li>";

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
  const figures: string[] = [];
  for (const kind of kinds) {
    const frame = result.frames[summaries[kind]!.frame]!;
    const labels = [...new Set(frame.faces.map((f) => f.category))].sort();
    const maps = labels.flatMap((label) => classMap(frame, kind, label) ?? []);
    const png = await occlusionFigure(kind, maps, frame.grid);
    figures.push(
      await images.figure(`occlusion-${slug(kind)}.png`, png, `where ${kind} looks, per class`),
    );
  }
  const { patch, stride, width, height } = result.frames.crop.grid;
  const shown = [result.frames.crop, result.frames.photo].find((f) => f?.faces.length);
  const box = shown?.faces[0]?.faceBox;
  const uniform = box ? (box.width * box.height) / (shown!.grid.width * shown!.grid.height) : null;
  const rows = kinds.map((kind) =>
    `<tr><td>${escapeXml(kind)}</td><td>${
      summaries[kind]!.frame === "photo" ? "the photo, face masked" : "the face crop"
    }</td><td>${summaries[kind]!.faces}</td><td>${pct(summaries[kind]!.insideFace)}</td></tr>`
  ).join("");
  const faces = new Set(
    [...result.frames.crop.faces, ...result.frames.photo?.faces ?? []].map((f) => f.id),
  ).size;
  const notes = [
    result.frames.photo ? CONTEXT_NOTE : "",
    result.portraitNote ? `<li>${escapeXml(result.portraitNote)}.</li>` : "",
    result.failed.length
      ? `<li>${result.failed.length} sampled faces could not be mapped (first: ${
        escapeXml(result.failed[0]!.reason)
      }).</li>`
      : "",
  ].join("");
  return {
    summaries,
    html: `<details class="occlusion"><summary><h2 style="display:inline">Where the models look` +
      `</h2></summary>
<p>How much of each model's reaction to a hidden patch lies inside the face box. A model that
leaned on every place alike would score ${pct(uniform)} (the box's share of the crop); well above
it, the model reads the face; near or below it, hair, clothes, background or the frame.</p>
<table class="num"><thead><tr><th>model</th><th>patch over</th><th>faces</th>` +
      `<th>effect inside the face box</th>` +
      `</tr></thead><tbody>${rows}</tbody></table>
<p>How: a grey ${patch}×${patch} px patch slid over each ${width}×${height} face crop every
${stride} px. Red is where hiding the place lowered the model's probability of the person's own
class, blue where it raised it, averaged per class over held-out faces and drawn over their mean
face; the dashed box is the face box the face networks read. Pixel models saw the occluded crop;
the probes saw embeddings their face networks computed again from it. The share inside the box is
the share of Σ |fall| there. Held-out faces, at most a fixed number per class, chosen by a hash of
their id before scoring: ${faces} faces in ${result.seconds.toFixed(1)} s${
        result.cpuSeconds === undefined ? "" : ` (${result.cpuSeconds.toFixed(1)} s of CPU)`
      }.</p>
${notes ? `<ul>${notes}</ul>` : ""}
<div class="grid">${figures.join("\n")}</div></details>`,
  };
}
