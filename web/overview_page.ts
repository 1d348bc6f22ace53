/**
 * Overview: per source the funnel pages → people → images → faces → split with its drops, per
 * category the faces per split, and the current run's training curves. The part below the
 * heading is one fragment, which the live view (Server-Sent Events) sends again on each change.
 */
import { basename, extname } from "node:path";
import { html } from "hono/html";
import type { RunEvent } from "../store/run_events.ts";
import { FUNNEL_STAGES, overview, type SourceFunnel } from "./funnel.ts";
import { type Html, lineChart, percent, query, readableDate } from "./layout.ts";
import type { ReportData, StoreView } from "./store_view.ts";
import { verdictFor } from "./verdict_view.ts";

/** A source whose share of people that became faces is below this stands out. */
const LOW_YIELD = 0.5;

function droppedList(dropped: Record<string, number>): Html {
  const entries = Object.entries(dropped).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return html`–`;
  return html`${entries.map(([code, n], i) => html`${i ? ", " : ""}<code>${code}</code> ${n}`)}`;
}

function sourceRow(funnel: SourceFunnel): Html {
  const people = funnel.passed.people;
  const yieldShare = people ? funnel.passed.split / people : 0;
  const broken = funnel.pages.failed > 0 || people === 0 || yieldShare < LOW_YIELD;
  const link = (stage: string, n: number) =>
    html`<a href="/faces${query({ source: funnel.source, stage })}">${n}</a>`;
  return html`<tr class="${broken ? "warn" : ""}">
<td class="source">${funnel.source}</td><td>${funnel.category}</td>
<td class="num">${funnel.pages.ok}${
    funnel.pages.failed
      ? html`
        <span class="bad">+${funnel.pages.failed} failed</span>
      `
      : ""
  }</td>
${
    FUNNEL_STAGES.map((stage) =>
      html`<td class="num">${link(stage, funnel.passed[stage])}${
        stage !== "people" && people
          ? html`
            <small>${percent(funnel.passed[stage] / people, 0)}</small>
          `
          : ""
      }</td>`
    )
  }
<td>${droppedList(funnel.dropped)}</td></tr>`;
}

/** Training curves per model from the run's event file: loss and validation accuracy. */
export function trainingCurves(events: RunEvent[]): Html {
  const byModel = new Map<string, Extract<RunEvent, { type: "epoch" }>[]>();
  for (const event of events) {
    if (event.type === "epoch") {
      const list = byModel.get(event.model) ?? [];
      list.push(event);
      byModel.set(event.model, list);
    }
  }
  if (byModel.size === 0) return html`<p class="muted">No training epochs in this run yet.</p>`;
  return html`<div class="charts">${
    [...byModel].map(([model, epochs]) => {
      const last = epochs.at(-1)!;
      return lineChart(
        `${model}: epoch ${last.epoch}, loss ${last.loss.toFixed(3)}, val acc ${
          last.valAccuracy === null ? "n/a" : last.valAccuracy.toFixed(3)
        }`,
        [
          { name: "loss", points: epochs.map((e) => [e.epoch, e.loss]) },
          { name: "train acc", points: epochs.map((e) => [e.epoch, e.accuracy]) },
          {
            name: "val acc",
            points: epochs.flatMap((e) => e.valAccuracy === null ? [] : [[e.epoch, e.valAccuracy]]),
          },
        ],
      );
    })
  }</div>`;
}

function runState(events: RunEvent[], running: boolean): Html {
  const started = events.find((e) => e.type === "run_started");
  const finished = events.findLast((e) => e.type === "run_finished");
  if (running) {
    return html`
      <p class="running"
        data-run="running">A run is working on this data dir (since ${readableDate(
          started?.at,
        )}); this page follows it.</p>
    `;
  }
  if (finished) {
    return html`<p data-run="idle">Last run finished ${readableDate(finished.at)}.</p>`;
  }
  return html`<p data-run="idle">No run is working on this data dir.</p>`;
}

/** "a, b and c" */
export function plainList(items: string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/** The data set's name: its sources file's (without extension), else the data dir's folder. */
export function dataSetName(report: ReportData | undefined, dataDir: string): string {
  const sources = report?.dataset?.provenance?.sources;
  if (typeof sources === "string" && sources !== "") {
    return sources === "embedded demo" ? "the demo (invented people)" : basename(
      sources,
      extname(sources),
    );
  }
  return basename(dataDir);
}

/** One plain sentence on what this data dir holds and what the models try. */
function dataSetLine(name: string, people: number, sources: number, categories: string[]): Html {
  if (people === 0) {
    return html`<p class="dataset" data-dataset="${name}">Data set <strong>${name}</strong>: no
      people yet.</p>`;
  }
  return html`<p class="dataset" data-dataset="${name}">Data set <strong>${name}</strong>: ${people}
    people from ${sources} source page(s), in ${categories.length} groups (categories):
    ${plainList(categories)}. The models try to tell a person's group from their face; the
    verdict above says whether they manage, and why.</p>`;
}

/** Everything the live view refreshes. */
export async function overviewFragment(view: StoreView): Promise<Html> {
  const [rows, pages, events, running, report] = await Promise.all([
    view.overviewRows(),
    view.pages(),
    view.runEvents(),
    view.running(),
    view.report(),
  ]);
  const data = overview(rows, pages);
  const splits = ["train", "val", "test"];
  const categories = Object.keys(data.categories).sort();
  const allCategories = [...new Set(rows.map((row) => row.category).filter(Boolean))].sort();
  return html`
    ${await verdictFor(view)}
    ${dataSetLine(
      dataSetName(report, view.paths.root),
      data.totals.records,
      data.sources.length,
      allCategories,
    )}
    ${runState(events, running)}
    <p class="totals"><span data-total="records">${data.totals.records}</span> records,
    <span data-total="faces">${data.totals.faces}</span> faces in the split,
    <span data-total="dropped">${data.totals.dropped}</span> dropped.</p>
    <h2>Per source</h2>
    <div class="scroll">
      <table class="sortable funnel">
        <thead>
          <tr>
            <th>source</th>
            <th>category</th>
            <th>pages</th>
            <th>people</th>
            <th>images</th>
            <th>faces</th>
            <th>split</th>
            <th>dropped (reason)</th>
          </tr>
        </thead>
        <tbody>${data.sources.map(sourceRow)}</tbody>
      </table>
    </div>
    <p
      class="muted">Highlighted: a failed page, no people, or under ${percent(
        LOW_YIELD,
        0,
      )} of the people reaching the split. Percentages are of the source's people.</p>
    <h2>Per category</h2>
    <div class="scroll">
      <table class="sortable categories">
        <thead>
          <tr><th>category</th>${splits.map((s) => html`<th>${s}</th>`)}<th>total</th></tr>
        </thead>
        <tbody>${categories.map((category) => {
          const counts = data.categories[category]!;
          const total = Object.values(counts).reduce((a, b) => a + b, 0);
          return html`<tr><td><a href="/faces${query({ category })}">${category}</a></td>${
            splits.map((split) =>
              html`<td class="num"><a href="/faces${query({ category, split })}">${
                counts[split] ?? 0
              }</a></td>`
            )
          }<td class="num">${total}</td></tr>`;
        })}</tbody>
      </table>
    </div>
    <h2>Training</h2>
    ${trainingCurves(events)}
  `;
}

export async function overviewPage(view: StoreView): Promise<Html> {
  return html`<h1>Overview</h1>
<div id="live" data-live="/events">${await overviewFragment(view)}</div>`;
}
