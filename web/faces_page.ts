/**
 * Faces: a paged grid of the manifest's records filtered by category, split, fold, source,
 * status and (from the report's confusion matrix) the label a model predicts; and one record's
 * page with its original image and face box, its page, its manifest row and the models' answers.
 */
import { html } from "hono/html";
import { MANIFEST_COLUMNS, type ManifestRow } from "../store/manifest.ts";
import { FUNNEL_STAGES, type FunnelStage, passedStage } from "./funnel.ts";
import { type Html, percent, query, readableDate } from "./layout.ts";
import type { ModelSet } from "./models.ts";
import type { FilterChoices, ReportData, StoreView } from "./store_view.ts";
import type { RecordFilter } from "../store/record_query.ts";
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

/**
 * Id → the label a model gave each face it was scored on, as the report's confusion matrix
 * counts it (each face by the model that held it out: the fold model under cross-validation).
 * Undefined when the report has no such model or predates the matrix's ids.
 */
export function heldOutLabels(
  report: ReportData | undefined,
  kind: string,
): Map<string, string> | undefined {
  const confusion = report?.models?.find((m) => m.kind === kind)?.metrics?.confusion;
  if (!confusion?.ids) return undefined;
  const labels = new Map<string, string>();
  confusion.ids.forEach((row) =>
    row.forEach((ids, j) => {
      for (const id of ids) labels.set(id, confusion.labels[j]!);
    })
  );
  return labels;
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
  /** A one-shot message shown above the grid (after a removal). */
  notice?: Html;
}

/** Page links: the first, the last, and two either side of the current one, with gaps. */
export function pageNumbers(current: number, count: number): (number | "…")[] {
  const shown: (number | "…")[] = [];
  for (let p = 1; p <= count; p++) {
    if (p === 1 || p === count || Math.abs(p - current) <= 2) shown.push(p);
    else if (shown.at(-1) !== "…") shown.push("…");
  }
  return shown;
}

function pager(current: number, count: number, link: (p: number) => string): Html {
  if (count <= 1) return html``;
  return html`<nav class="pager" aria-label="pages">${
    current > 1 ? html`<a rel="prev" href="${link(current - 1)}">← previous</a>` : ""
  }${
    pageNumbers(current, count).map((p) =>
      p === "…"
        ? html`<span class="gap">…</span>`
        : p === current
        ? html`<span aria-current="page" class="page">${p}</span>`
        : html`<a class="page" href="${link(p)}">${p}</a>`
    )
  }${current < count ? html`<a rel="next" href="${link(current + 1)}">next →</a>` : ""}</nav>`;
}

/** The chip that says a confusion cell's faces are shown, and how to drop it. */
function cellChip(filter: FaceFilter, found: boolean): Html {
  if (!filter.model || !filter.predicted) return html``;
  return html`
    <input type="hidden" name="model" value="${filter.model}"><input type="hidden"
      name="predicted" value="${filter.predicted}"><span
      class="chip">${filter.category ? `${filter.category} faces ` : "faces "}the ${filter
        .model} called ${filter.predicted} when held out
    <a href="/faces${query({ ...filter, model: undefined, predicted: undefined })}"
      aria-label="show all">×</a></span>
    ${found ? "" : html`<p class="notice warn" data-cell-missing>This run's report predates
      the faces per confusion cell (or has no ${filter.model} model): rerun the pipeline to open
      them.</p>`}
  `;
}

function filterForm(filter: FaceFilter, choices: FilterChoices, found: boolean) {
  return html`<form class="filters" method="get" action="/faces">
${options("category", choices.categories, filter.category)}
${options("split", ["train", "val", "test"], filter.split)}
${options("fold", choices.folds, filter.fold)}
${options("source", choices.sources, filter.source)}
${options("status", ["ok", "rejected", "failed", "dropped"], filter.status)}
${filter.stage ? html`<input type="hidden" name="stage" value="${filter.stage}">` : ""}${
    cellChip(filter, found)
  }
<button type="submit">Filter</button> <a href="/faces">reset</a>
</form>`;
}

/**
 * The query a filter makes: `predicted` becomes the ids the model gave that label (none when
 * the report has no such model), everything else is asked as it is.
 */
export function recordFilter(filter: FaceFilter, labels?: Map<string, string>): RecordFilter {
  const { model: _model, predicted, ...rest } = filter;
  if (predicted === undefined) return rest;
  const ids: string[] = [];
  for (const [id, label] of labels ?? []) if (label === predicted) ids.push(id);
  return { ...rest, ids };
}

export async function facesPage(view: StoreView, request: GridRequest): Promise<Html> {
  const { filter, notice } = request;
  const perPage = Math.min(MAX_PER_PAGE, Math.max(1, request.perPage));
  const labels = filter.predicted && filter.model
    ? heldOutLabels(await view.report(), filter.model)
    : undefined;
  const query_ = recordFilter(filter, labels);
  const choices = await view.choices();
  // The count first, to clamp the page; then only that page's rows are read.
  // No filter: the choices' count is the grid's (both kept until the next commit).
  const count = Object.keys(query_).length === 0 ? choices.records : await view.count(query_);
  const pageCount = Math.max(1, Math.ceil(count / perPage));
  const pageIndex = Math.min(Math.max(1, request.page), pageCount);
  const shown = await view.records(query_, (pageIndex - 1) * perPage, perPage);
  const link = (p: number) =>
    `/faces${
      query({
        ...filter,
        page: p === 1 ? undefined : p,
        per: perPage === DEFAULT_PER_PAGE ? undefined : perPage,
      })
    }`;
  return html`<h1>Faces</h1>
${notice}
${filterForm(filter, choices, labels !== undefined)}
<p class="count" data-count="${count}">${count} of ${choices.records} records${
    count > perPage ? html`, page ${pageIndex} of ${pageCount}` : ""
  }.</p>
<ul class="grid">${shown.map(card)}</ul>
${pager(pageIndex, pageCount, link)}`;
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
            <td>${column === "updated_at" && row[column]
              ? readableDate(row[column])
              : row[column]}</td>
          </tr>
        `
      )}</tbody>
    </table>
    <p><a class="button danger" href="/faces/${row.id}/remove">Remove this person…</a></p>
  `;
}
