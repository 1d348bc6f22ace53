/**
 * Report: the evaluation's metrics.json, made interactive: sortable tables, a confusion matrix
 * whose cells open their faces in the grid, and the top-k faces linking to each face.
 */
import { html } from "hono/html";
import type { RankedFace } from "../stages/evaluate.ts";
import { type Html, lineChart, percent, query } from "./layout.ts";
import type { ReportModel, StoreView } from "./store_view.ts";

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
    <tr><th>black-and-white / colour</th><td>${percent(m.confounds.grayscale.accuracy)} (${m
      .confounds.grayscale.n}) / ${percent(m.confounds.colour.accuracy)} (${m.confounds.colour
      .n})</td></tr>
      </tbody>
    </table>
  `;
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
  const { labels, counts, rowNormalised } = model.metrics.confusion;
  return html`
    <table class="confusion">
      <thead>
        <tr><th>true ↓ / predicted →</th>${labels.map((l) => html`<th>${l}</th>`)}</tr>
      </thead>
      <tbody>${labels.map((actual, i) =>
        html`<tr><th>${actual}</th>${
          labels.map((predicted, j) => {
            const n = counts[i]?.[j] ?? 0;
            const href = `/faces${
              query({ split: "test", category: actual, model: model.kind, predicted })
            }`;
            return html`
              <td class="${i === j ? "diagonal" : ""}"
                data-cell="${actual}|${predicted}">${n
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
  const report = await view.report();
  if (!report?.models?.length) {
    return html`
      <h1>Report</h1>
      <p>No evaluation report in this data dir yet: run
      <code>deno task pipeline</code> to the end (or it was removed with a person; retrain).</p>
    `;
  }
  return html`<h1>Report</h1>
<p><a href="/report/static">The report as the run wrote it</a> (report.html, charts included).</p>
<p class="muted">Evaluated ${report.generatedAt}. A confusion cell opens its test faces as the
model in <code>models/</code> labels them now; with cross-validation folds the matrix counts the
fold models' answers, so the grid can differ.</p>
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
