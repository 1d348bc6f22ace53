/**
 * Report: the evaluation's metrics.json, made interactive: sortable tables, a confusion matrix
 * whose cells open their faces in the grid, and the top-k faces linking to each face.
 */
import { html } from "hono/html";
import type { RankedFace } from "../stages/evaluate.ts";
import { type Html, lineChart, percent, query, readableDate } from "./layout.ts";
import type { ReportModel, StoreView } from "./store_view.ts";
import { verdictFor } from "./verdict_view.ts";

const pValue = (p: number) => (p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`);

function headline(model: ReportModel): Html {
  const m = model.metrics;
  return html`
    <table class="headline">
      <tbody>
    <tr><th>accuracy</th><td data-accuracy="${m.accuracy}">${percent(
      m.accuracy,
    )} (95 % CI ${percent(m.ci95[0])}–${percent(m.ci95[1])}), ${m.correct} of ${m
      .n} test faces</td></tr>
    <tr><th>majority class</th><td>${m.majorityBaseline.label}: ${percent(
      m.majorityBaseline.accuracy,
    )}; beaten: ${m.beatsMajority.significant ? "yes" : "no"} (${pValue(
      m.beatsMajority.pValue,
    )})</td></tr>
    <tr><th>chance</th><td>${percent(m.chance)}; beaten: ${m.beatsChance.significant
      ? "yes"
      : "no"} (${pValue(m.beatsChance.pValue)})</td></tr>
    <tr><th>macro-F1</th><td>${m.macroF1.toFixed(3)}</td></tr>
    ${m.folds
      ? html`
        <tr>
          <th>folds</th>
          <td>mean ${percent(m.folds.mean)} ± ${percent(m.folds.std)} over ${m.folds.perFold
            .length}</td>
        </tr>
      `
      : ""}
    <tr><th>gender-only rule</th><td>${percent(m.confounds.genderOnly.accuracy)} on ${m.confounds
      .genderOnly.n} faces</td></tr>
    <tr><th>black-and-white / colour photos</th><td>${colourLine(m)}</td></tr>
      </tbody>
    </table>
  `;
}

/** Accuracy on black-and-white and on colour photos, in words ("– (0)" said plainly). */
export function colourLine(m: ReportModel["metrics"]): string {
  const part = (what: string, subset: { accuracy: number | null; n: number }) =>
    subset.n === 0
      ? `no ${what} photos among the test faces`
      : `${percent(subset.accuracy)} right on the ${subset.n} ${what} photo${
        subset.n === 1 ? "" : "s"
      }`;
  return `${part("black-and-white", m.confounds.grayscale)}; ${
    part("colour", m.confounds.colour)
  }. A large gap means the model may read the photo's colour, not the face.`;
}

function perClass(model: ReportModel): Html {
  return html`
    <table class="sortable per-class">
      <thead>
        <tr>
          <th>class</th>
          <th>precision</th>
          <th>recall</th>
          <th>F1</th>
          <th>support</th>
        </tr>
      </thead>
      <tbody>${model.metrics.perClass.map((c) =>
        html`
          <tr>
            <td>${c.label}</td>
            <td class="num" data-value="${c.precision}">${percent(c.precision)}</td>
            <td class="num" data-value="${c.recall}">${percent(c.recall)}</td>
            <td class="num" data-value="${c.f1}">${c.f1.toFixed(3)}</td>
            <td class="num">${c.support}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function confusion(model: ReportModel): Html {
  const { labels, counts, rowNormalised, ids } = model.metrics.confusion;
  return html`
    <table class="confusion">
      <thead>
        <tr><th>true ↓ / predicted →</th>${labels.map((l) => html`<th>${l}</th>`)}</tr>
      </thead>
      <tbody>${labels.map((actual, i) =>
        html`<tr><th>${actual}</th>${
          labels.map((predicted, j) => {
            const n = counts[i]?.[j] ?? 0;
            // The cell's own faces (each as the model that held it out answered it).
            const href = `/faces${query({ category: actual, model: model.kind, predicted })}`;
            return html`
              <td class="${i === j ? "diagonal" : ""}"
                data-cell="${actual}|${predicted}">${n && ids
                  ? html`<a href="${href}">${n}</a>`
                  : "0"} <small>${percent(rowNormalised[i]?.[j] ?? 0, 0)}</small></td>
            `;
          })
        }</tr>`
      )}</tbody>
    </table>
  `;
}

async function faceStrip(view: StoreView, title: string, faces: RankedFace[]): Promise<Html> {
  if (faces.length === 0) return html``;
  const items = await Promise.all(faces.map(async (face) => {
    const row = await view.row(face.id);
    if (!row?.sha256) return html`<li class="gone">${face.id} (removed)</li>`;
    return html`<li><a href="/faces/${face.id}"><img src="/thumb/face/${row.sha256}" loading="lazy"
 width="64" height="64" alt="${face.actual} predicted ${face.predicted}"><small>${face.actual} → ${face.predicted}
 ${percent(face.confidence, 0)}</small></a></li>`;
  }));
  return html`
    <div class="strip">
      <h4>${title}</h4>
      <ul>${items}</ul>
    </div>
  `;
}

async function topK(view: StoreView, model: ReportModel): Promise<Html> {
  return html`${await Promise.all(
    model.metrics.topK.map(async (k) =>
      html`<section class="topk"><h3>${k.label}</h3>${await faceStrip(
        view,
        "most sure, right",
        k.truePositives,
      )}${await faceStrip(
        view,
        `${k.label} called something else`,
        k.falseNegatives,
      )}${await faceStrip(view, `others called ${k.label}`, k.falsePositives)}</section>`
    ),
  )}`;
}

function curves(model: ReportModel): Html {
  const history = model.history;
  return lineChart(`${model.kind}: training curves (best epoch ${model.bestEpoch})`, [
    { name: "loss", points: history.map((h) => [h.epoch, h.loss]) },
    { name: "train acc", points: history.map((h) => [h.epoch, h.accuracy]) },
    {
      name: "val acc",
      points: history.flatMap((h) => (h.valAccuracy == null ? [] : [[h.epoch, h.valAccuracy]])),
    },
  ]);
}

export async function reportPage(view: StoreView): Promise<Html> {
  const [report, verdict] = await Promise.all([view.report(), verdictFor(view)]);
  if (!report?.models?.length) {
    return html`
      <h1>Report</h1>
      ${verdict}
      <p>No evaluation report in this data dir yet: run
      <code>deno task pipeline</code> to the end (or it was removed with a person; retrain).</p>
    `;
  }
  return html`<h1>Report</h1>
${verdict}
<p><a href="/report/static">The report as the run wrote it</a> (report.html, charts included).</p>
<p class="muted">Evaluated ${readableDate(report.generatedAt)}. Each model's figures below are
measured on faces it never saw${
    report.dataset?.folds
      ? html` (${report.dataset.folds}-fold cross-validation: every face scored by the fold model
that held it out)`
      : " (the test split)"
  }. A confusion cell opens exactly the faces it counts.</p>
${await Promise.all(
    report.models.map(async (model) =>
      html`<section class="model" data-kind="${model.kind}"><h2>${model.kind}</h2>
${headline(model)}
<div class="side"><div><h3>Confusion matrix</h3>${confusion(model)}</div>${curves(model)}</div>
<h3>Per class</h3>${perClass(model)}
<h3>Real against predicted</h3>
<table class="sortable distribution"><thead><tr><th>class</th><th>real</th><th>predicted</th></tr></thead><tbody>${
        model.metrics.distribution.map((d) =>
          html`
            <tr>
              <td>${d.label}</td>
              <td class="num">${d.real}</td>
              <td class="num">${d.predicted}</td>
            </tr>
          `
        )
      }</tbody></table>
<h3>Faces the model was most sure about</h3>${await topK(view, model)}
</section>`
    ),
  )}`;
}
