/**
 * A face's own occlusion maps on its page: what the run saved in `<report>/occlusion/<id>.json`
 * (`pipeline/occlusion_run.ts`), one small map per model over the aligned crop. Faces outside
 * the run's sample (or removed with `forget`) have none, and the page says so.
 */
import { html } from "hono/html";
import type { ManifestRow } from "../store/manifest.ts";
import { occlusionMapPath } from "../store/paths.ts";
import { type OcclusionGrid, pixelMap } from "../models/occlusion.ts";
import type { FaceMapFile } from "../pipeline/occlusion_run.ts";
import { type Html, percent } from "./layout.ts";
import { ID_PATTERN } from "./store_view.ts";

/** The saved map of a record, or undefined where there is none or it does not parse. */
export async function readFaceMap(reports: string, id: string): Promise<FaceMapFile | undefined> {
  if (!ID_PATTERN.test(id)) return undefined;
  try {
    const file = JSON.parse(await Deno.readTextFile(occlusionMapPath(reports, id)));
    return file?.id === id && Array.isArray(file.positions) && file.kinds ? file : undefined;
  } catch {
    return undefined;
  }
}

/** One model's map as SVG cells of `stride` px over the face thumbnail. */
function mapSvg(file: FaceMapFile, kind: string, scale: number, sha256: string): Html {
  const grid: OcclusionGrid = {
    width: file.width,
    height: file.height,
    patch: file.patch,
    stride: file.stride,
    positions: file.positions,
  };
  const map = pixelMap(grid, file.kinds[kind]!.falls);
  const cells: Html[] = [];
  for (let y = 0; y < file.height; y += file.stride) {
    for (let x = 0; x < file.width; x += file.stride) {
      const side = Math.min(file.stride, file.width - x, file.height - y);
      const value = map[Math.min(file.height - 1, y + (side >> 1)) * file.width + x + (side >> 1)]!;
      const opacity = Math.min(1, Math.abs(value) / scale) * 0.8;
      if (opacity < 0.02) continue;
      cells.push(
        html`
          <rect x="${x}" y="${y}" width="${side}" height="${side}" fill="${value > 0
            ? "#e61e14"
            : "#1e5ae6"}"
            fill-opacity="${opacity.toFixed(2)}" />
        `,
      );
    }
  }
  const box = file.faceBox;
  return html`
    <svg viewBox="0 0 ${file.width} ${file.height}" width="160" height="160" role="img"
      aria-label="occlusion map of ${kind}"><image href="/thumb/face/${sha256}" x="0" y="0"
        width="${file.width}" height="${file.height}"/>${cells}<rect x="${box.x}" y="${box.y}"
        width="${box.width}" height="${box.height}" fill="none" stroke="#00c060" stroke-width="1"
        stroke-dasharray="4 3"/></svg>
  `;
}

/** The face page's section: each model's map of this face, or why there is none. */
export async function occlusionPanel(reports: string, row: ManifestRow): Promise<Html> {
  const file = row.status === "ok" ? await readFaceMap(reports, row.id) : undefined;
  if (!file) {
    return html`
      <h2>Where the models look</h2>
      <p class="muted">No occlusion map for this face:
      the run maps a sample of held-out faces only.</p>
    `;
  }
  const kinds = Object.keys(file.kinds);
  const scale = Math.max(
    1e-6,
    ...kinds.flatMap((kind) => file.kinds[kind]!.falls.map(Math.abs)),
  );
  return html`<h2>Where the models look</h2>
<p>A grey ${file.patch} px patch slid over the crop every ${file.stride} px: red where hiding the
place lowered the model's probability of '${file.category}', blue where it raised it; full colour
is a change of ${(scale * 100).toFixed(1)} percentage points. The dashed box is the face box.</p>
<div class="detail occlusion">${
    kinds.map((kind) =>
      html`<figure>${mapSvg(file, kind, scale, row.sha256)}<figcaption>${kind}: ${
        percent(file.kinds[kind]!.base)
      } on the whole crop</figcaption></figure>`
    )
  }</div>`;
}
