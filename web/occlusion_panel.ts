/**
 * A face's own occlusion maps on its page: what the run saved in `<report>/occlusion/<id>.json`
 * (`pipeline/occlusion_run.ts`), one small map per model over the aligned crop. Faces outside
 * the run's sample (or removed with `forget`) have none, and the page says so.
 */
import { html } from "hono/html";
import type { ManifestRow } from "../store/manifest.ts";
import { occlusionMapPath } from "../store/paths.ts";
import { type OcclusionGrid, pixelMap } from "../models/occlusion.ts";
import type { FaceMapFile, FrameMapFile } from "../pipeline/occlusion_run.ts";
import { type Html, percent } from "./layout.ts";
import { ID_PATTERN } from "./store_view.ts";

/** The saved map of a record, or undefined where there is none or it does not parse. */
export async function readFaceMap(reports: string, id: string): Promise<FaceMapFile | undefined> {
  if (!ID_PATTERN.test(id)) return undefined;
  try {
    const file = JSON.parse(await Deno.readTextFile(occlusionMapPath(reports, id)));
    const frames = [file?.crop, file?.photo].filter(Boolean);
    const valid = frames.every((frame) => Array.isArray(frame.positions) && frame.kinds);
    return file?.id === id && frames.length > 0 && valid ? file : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One model's map as SVG cells of `stride` px over `image`: the face crop's thumbnail, or for
 * the masked photo the photo's, squeezed square as the model reads it.
 */
function mapSvg(frame: FrameMapFile, kind: string, scale: number, image: string): Html {
  const { width, height, stride } = frame;
  const grid: OcclusionGrid = { ...frame };
  const map = pixelMap(grid, frame.kinds[kind]!.falls);
  const cells: Html[] = [];
  for (let y = 0; y < height; y += stride) {
    for (let x = 0; x < width; x += stride) {
      const side = Math.min(stride, width - x, height - y);
      const value = map[Math.min(height - 1, y + (side >> 1)) * width + x + (side >> 1)]!;
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
  const box = frame.faceBox;
  return html`
    <svg viewBox="0 0 ${width} ${height}" width="160" height="160" role="img"
      aria-label="occlusion map of ${kind}"><image href="${image}" x="0" y="0"
        width="${width}" height="${height}" preserveAspectRatio="none"/>${cells}<rect x="${box.x}"
        y="${box.y}" width="${box.width}" height="${box.height}" fill="none" stroke="#00c060"
        stroke-width="${(width / 128).toFixed(2)}" stroke-dasharray="${width / 32} ${width /
          42}"/></svg>
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
  const frames = [
    { frame: file.crop, image: `/thumb/face/${row.sha256}`, what: "the whole crop" },
    { frame: file.photo, image: `/thumb/view/${row.sha256}`, what: "the masked photo" },
  ].flatMap(({ frame, ...rest }) => frame ? [{ frame, ...rest }] : []);
  const scale = Math.max(
    1e-6,
    ...frames.flatMap(({ frame }) => Object.values(frame.kinds).flatMap((k) => k.falls))
      .map(Math.abs),
  );
  const crop = file.crop;
  return html`<h2>Where the models look</h2>
<p>${
    crop ? `A grey ${crop.patch} px patch slid over the crop every ${crop.stride} px: ` : ""
  }red where hiding the place lowered the model's probability of '${file.category}', blue where
it raised it; full colour is a change of ${(scale * 100).toFixed(1)} percentage points. The dashed
box is the face box.${
    file.photo
      ? " context's patch slid over the photo with the face masked, squeezed square as it reads it."
      : ""
  }</p>
<div class="detail occlusion">${
    frames.flatMap(({ frame, image, what }) =>
      Object.keys(frame.kinds).map((kind) =>
        html`<figure>${mapSvg(frame, kind, scale, image)}<figcaption>${kind}: ${
          percent(frame.kinds[kind]!.base)
        } on ${what}</figcaption></figure>`
      )
    )
  }</div>`;
}
