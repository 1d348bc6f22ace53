/**
 * Faces: a paged grid of the manifest's records filtered by category, split, fold, source,
 * status and (from the report's confusion matrix) the label a model predicts; and one record's
 * page with its original image and face box, its page, its manifest row and the models' answers.
 */
import { html } from "hono/html";
import { MANIFEST_COLUMNS, type ManifestRow } from "../store/manifest.ts";
import {
  FUNNEL_STAGES,
  type FunnelStage,
  passedStage,
  sourceOfPage,
  sourceOfRow,
} from "./funnel.ts";
import { type Html, percent, query } from "./layout.ts";
import type { ModelSet } from "./models.ts";
import type { StoreView } from "./store_view.ts";
import { occlusionPanel } from "./occlusion_panel.ts";

/** Faces per page unless `per` says otherwise. */
export const DEFAULT_PER_PAGE = 120;
/** Most faces one page shows. */
export const MAX_PER_PAGE = 2000;

export const FILTER_KEYS = [
  "category",
  "split",
  "fold",
  "source",
  "status",
  "stage",
  "model",
  "predicted",
] as const;
export type FaceFilter = Partial<Record<typeof FILTER_KEYS[number], string>>;

/** The filter a query string names; unknown keys and empty values are ignored. */
export function readFilter(params: Record<string, string | undefined>): FaceFilter {
  const filter: FaceFilter = {};
  for (const key of FILTER_KEYS) {
    const value = params[key]?.trim();
    if (value) filter[key] = value;
  }
  return filter;
}

/**
 * The rows a filter keeps, in manifest order. `status` is ok, rejected, failed or dropped
 * (either); `predicted` needs `labels`, the model's predicted label per id.
 */
export function filterRows(
  rows: ManifestRow[],
  filter: FaceFilter,
  context: { sourceOf: (row: ManifestRow) => string; labels?: Map<string, string> },
): ManifestRow[] {
  const stage = FUNNEL_STAGES.includes(filter.stage as FunnelStage)
    ? filter.stage as FunnelStage
    : undefined;
  return rows.filter((row) =>
    (filter.category === undefined || row.category === filter.category) &&
    (filter.split === undefined || row.split === filter.split) &&
    (filter.fold === undefined || row.fold === filter.fold) &&
    (filter.source === undefined || context.sourceOf(row) === filter.source) &&
    (filter.status === undefined ||
      (filter.status === "dropped" ? row.status !== "ok" : row.status === filter.status)) &&
    (stage === undefined || passedStage(row, stage)) &&
    (filter.predicted === undefined || context.labels?.get(row.id) === filter.predicted)
  );
}

function options(name: string, values: string[], selected: string | undefined, any = "any"): Html {
  return html`<label>${name} <select name="${name}"><option value="">${any}</option>${
    values.map((v) =>
      html`
        <option value="${v}" ${v === selected
          ? html`
            selected
          `
          : ""}>${v}</option>
      `
    )
  }</select></label>`;
}

const distinct = (values: string[]) => [...new Set(values.filter(Boolean))].sort();

function card(row: ManifestRow): Html {
  const thumb = row.status === "ok" && row.face_box
    ? html`
      <img src="/thumb/face/${row.sha256}" alt="face of record ${row.id}" loading="lazy" width="112"
        height="112">
    `
    : row.sha256
    ? html`
      <img src="/thumb/image/${row.sha256}" alt="image of record ${row
        .id}" loading="lazy" width="112"
        height="112">
    `
    : html`<span class="noimage">no image</span>`;
  return html`<li class="card ${row.status}" data-id="${row.id}"><a href="/faces/${row.id}">${thumb}
<span class="name">${row.name}</span><span class="meta">${row.category}${
    row.split
      ? html`
        · ${row.split}
      `
      : ""
  }</span>${
    row.status === "ok" ? "" : html`<span class="reason">${row.status}: ${row.reason}</span>`
  }</a></li>`;
}

export interface GridRequest {
  filter: FaceFilter;
  page: number;
  perPage: number;
  notice?: string;
}

export async function facesPage(
  view: StoreView,
  models: ModelSet,
  request: GridRequest,
): Promise<Html> {
  const { filter, notice } = request;
  const perPage = Math.min(MAX_PER_PAGE, Math.max(1, request.perPage));
  const [rows, pages] = await Promise.all([view.rows(), view.pages()]);
  const pageMap = sourceOfPage(pages);
  const sourceOf = (row: ManifestRow) => sourceOfRow(row, pageMap);
  const labels = filter.predicted && filter.model
    ? await models.predictedLabels(filter.model, rows)
    : undefined;
  const kept = filterRows(rows, filter, { sourceOf, labels });
  const pageCount = Math.max(1, Math.ceil(kept.length / perPage));
  const pageIndex = Math.min(Math.max(1, request.page), pageCount);
  const shown = kept.slice((pageIndex - 1) * perPage, pageIndex * perPage);
  const link = (p: number) =>
    `/faces${
      query({ ...filter, page: p, per: perPage === DEFAULT_PER_PAGE ? undefined : perPage })
    }`;
  return html`<h1>Faces</h1>
${notice ? html`<p class="notice" role="status">${notice}</p>` : ""}
<form class="filters" method="get" action="/faces">
${options("category", distinct(rows.map((r) => r.category)), filter.category)}
${options("split", ["train", "val", "test"], filter.split)}
${options("fold", distinct(rows.map((r) => r.fold)), filter.fold)}
${options("source", distinct(rows.map(sourceOf)), filter.source)}
${options("status", ["ok", "rejected", "failed", "dropped"], filter.status)}
${filter.stage ? html`<input type="hidden" name="stage" value="${filter.stage}">` : ""}${
    filter.model && filter.predicted
      ? html`
        <input type="hidden" name="model" value="${filter.model}"><input type="hidden"
          name="predicted" value="${filter.predicted}"><span class="chip">${filter
            .model} predicts ${filter.predicted}
        <a href="/faces${query({ ...filter, model: undefined, predicted: undefined })}">×</a></span>
      `
      : ""
  }
<button type="submit">Filter</button> <a href="/faces">reset</a>
</form>
<p class="count" data-count="${kept.length}">${kept.length} of ${rows.length} records${
    kept.length > perPage ? html`, page ${pageIndex} of ${pageCount}` : ""
  }.</p>
<ul class="grid">${shown.map(card)}</ul>
<nav class="pager">${
    pageIndex > 1 ? html`<a rel="prev" href="${link(pageIndex - 1)}">← previous</a>` : ""
  } ${
    pageIndex < pageCount ? html`<a rel="next" href="${link(pageIndex + 1)}">next →</a>` : ""
  }</nav>`;
}

/** The original image (its large preview) with the face box drawn in the image's own pixels. */
function imageWithBox(row: ManifestRow): Html {
  const width = Number(row.width);
  const height = Number(row.height);
  if (!row.sha256 || !(width > 0 && height > 0)) {
    return html`<p class="muted">No image was downloaded for this record.</p>`;
  }
  const [x, y, w, h] = row.face_box.split(" ").map(Number);
  const box = row.face_box && [x, y, w, h].every(Number.isFinite)
    ? html`
      <rect class="facebox" x="${x!}" y="${y!}" width="${w!}" height="${h!}"
        fill="none"
        stroke="#00e676" stroke-width="${Math.max(2, width / 150).toFixed(1)}" />
    `
    : "";
  return html`
    <figure class="original">
      <svg viewBox="0 0 ${width} ${height}" width="${Math.min(480, width)}" role="img"
        aria-label="original image with the face box">
    <image href="/thumb/view/${row.sha256}" x="0" y="0" width="${width}" height="${height}"
    preserveAspectRatio="none"/>${box}</svg>
      <figcaption>original ${width}×${height} ${row.format} · <a href="/image/${row
        .sha256}">bytes</a></figcaption>
    </figure>
  `;
}

function answersTable(
  answers: Awaited<ReturnType<ModelSet["predictStored"]>>,
  row: ManifestRow,
): Html {
  const kinds = Object.keys(answers);
  if (kinds.length === 0) return html`<p class="muted">No model to ask (or no face crop).</p>`;
  return html`
    ${row.split && row.split !== "test"
      ? html`<p class="muted">This face is in the ${row.split} split: the models have seen it,
 so their answer is optimistic.</p>`
      : ""}<table class="answers">
      <thead>
        <tr>
          <th>model</th>
          <th>predicts</th>
          <th>probabilities</th>
        </tr>
      </thead>
      <tbody>${kinds.map((kind) => {
        const answer = answers[kind]!;
        const right = answer.label === row.category;
        return html`
          <tr>
            <td>${kind}</td>
            <td class="${right ? "good" : "bad"}" data-model="${kind}">${answer.label}
          (${percent(answer.probability)})</td>
            <td>${Object.entries(answer.probabilities).map(([label, p]) =>
              html`
                ${label} ${percent(p)};
              `
            )}</td>
          </tr>
        `;
      })}</tbody>
    </table>
  `;
}

export async function facePage(view: StoreView, models: ModelSet, row: ManifestRow): Promise<Html> {
  const answers = row.status === "ok" ? await models.predictStored(row) : {};
  const crop = row.status === "ok" && row.sha256 && await view.cropPath(row.sha256);
  return html`
    <h1>${row.name || row.id}</h1>
    <p class="meta">${row.category} · ${row.status}${row.split
      ? html`
        · ${row.split}
      `
      : ""}${row.reason
      ? html`
        · <span class="reason">${row.reason}</span>
      `
      : ""}</p>
    <div class="detail">
    ${imageWithBox(row)}
    ${crop
      ? html`<figure><img src="/thumb/face/${row.sha256}" alt="aligned face" width="112" height="112">
<figcaption>aligned crop</figcaption></figure>`
      : ""}
    </div>
    <p>Page: ${/^https?:\/\//i.test(row.page_url)
      ? html`<a href="${row.page_url}" rel="noreferrer noopener" target="_blank">${row.page_url}</a>`
      : row.page_url || "–"}</p>
    <h2>The models' answers</h2>
    ${answersTable(answers, row)}
    ${await occlusionPanel(view.paths.reports, row)}
    <h2>Manifest row</h2>
    <table class="manifest-row">
      <tbody>${MANIFEST_COLUMNS.map((column) =>
        html`
          <tr>
            <th>${column}</th>
            <td>${row[column]}</td>
          </tr>
        `
      )}</tbody>
    </table>
    <p><a class="button danger" href="/faces/${row.id}/remove">Remove this person…</a></p>
  `;
}
