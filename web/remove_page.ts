/**
 * Remove a person: a confirmation that lists what `forget()` (store/forget.ts) will delete,
 * worked out with its own `rowsOfPerson`, and the POST that runs it.
 */
import { join } from "node:path";
import { html } from "hono/html";
import { forget, type ForgetResult } from "../store/forget.ts";
import type { ManifestRow } from "../store/manifest.ts";
import { CSRF_FIELD } from "./security.ts";
import type { Html } from "./layout.ts";
import type { StoreView } from "./store_view.ts";
import { type Retrain, retrainOf, retrainOffer } from "./retrain.ts";

export interface RemovalPlan {
  rows: ManifestRow[];
  images: number;
  /** Model folders (names under models/) trained on one of the rows. */
  models: string[];
  report: boolean;
}

/** What `forget({ ids: [id] })` would delete, without deleting anything. */
export async function removalPlan(view: StoreView, id: string): Promise<RemovalPlan> {
  const rows = await view.recordsOfPerson(id);
  const ids = new Set(rows.map((row) => row.id));
  const models: string[] = [];
  try {
    for await (const entry of Deno.readDir(view.paths.models)) {
      if (!entry.isDirectory) continue;
      let trainedOn: string[] | undefined;
      try {
        trainedOn = JSON.parse(
          await Deno.readTextFile(join(view.paths.models, entry.name, "training_ids.json")),
        );
      } catch {
        trainedOn = undefined; // forget() removes a model it cannot prove clean; so do we here.
      }
      if (!trainedOn || trainedOn.some((t) => ids.has(t))) models.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const report = await Deno.stat(view.paths.reports).then(() => true, () => false);
  return {
    rows,
    images: new Set(rows.map((row) => row.sha256).filter(Boolean)).size,
    models: models.sort(),
    report: report && (rows.length > 0 || models.length > 0),
  };
}

/** Why other records go too: the same face (image or identity) under other names or groups. */
function sameFace(row: ManifestRow, plan: RemovalPlan): Html {
  const others = plan.rows.filter((r) => r.id !== row.id);
  if (others.length === 0) return html``;
  return html`
    <p class="same-face" data-plan="same-face">The same face was found under these names, so they
    are the same person and go too:</p>
    <ul class="same-face">${others.map((r) =>
      html`<li><code>${r.id}</code> ${r.name || "(no name)"} (${r.category}${
        r.sha256 === row.sha256 ? ", the same image" : ", the same face in another image"
      })</li>`
    )}</ul>
  `;
}

/** What stops working until a retrain, and the command that retrains. */
function afterwards(plan: RemovalPlan, command: Retrain): Html {
  if (plan.models.length === 0 && !plan.report) return html``;
  return html`
    <p class="warn"
      data-plan="afterwards">Until you retrain, ${plan.report
        ? "the Report page has no evaluation"
        : ""}${plan.report && plan.models.length ? " and " : ""}${plan.models.length
        ? "Try it cannot answer with the removed model(s)"
        : ""}. Retrain afterwards with
    <code>${command.command}</code>${command.hint}: it keeps the data dir's split and
        caches, and the removal list keeps this person out.</p>
  `;
}

export async function removePage(
  view: StoreView,
  row: ManifestRow,
  csrfToken: string,
): Promise<Html> {
  const plan = await removalPlan(view, row.id);
  const command = await retrainOf(view);
  return html`
    <h1>Remove ${row.name || row.id}?</h1>
    <p>This runs the same removal as <code>deno task forget --id ${row
      .id}</code> and cannot be undone.
    It deletes:</p>
    ${sameFace(row, plan)}
    <ul class="plan">
      <li data-plan="records">${plan.rows.length} manifest record(s): ${plan.rows.map((r, i) =>
        html`${i ? ", " : ""}<code>${r.id}</code> (${r.category}, ${r.name})`
      )}</li>
      <li
        data-plan="images">${plan
          .images} cached image(s) with their face crops, descriptors and thumbnails</li>
      <li data-plan="models">${plan.models.length
        ? html`${plan.models.length} trained model(s) that saw them: ${plan.models.join(", ")}`
        : "no trained model"}</li>
      <li data-plan="report">${plan.report ? "the evaluation report" : "no report"}</li>
    </ul>
    <p>Their id, image hash and a one-way hash of their name go on the data dir's removal list, so
    later crawls drop them before anything is stored.</p>
    ${afterwards(plan, command)}
    <form method="post" action="/faces/${row.id}/remove">
      <input type="hidden" name="${CSRF_FIELD}" value="${csrfToken}">
      <button type="submit" class="danger">Remove ${plan.rows.length} record(s) for good</button>
      <a href="/faces/${row.id}">cancel</a>
    </form>
  `;
}

/** Runs the removal; a run holding the data dir makes it wait (Deno.errors.Busy is thrown). */
export async function removePerson(view: StoreView, id: string): Promise<ForgetResult> {
  return await forget({ dataDir: view.paths.root, ids: [id] });
}

/** What the removal did, what stopped working, and the command that retrains. */
export function removedNotice(result: ForgetResult, retrain: Retrain, csrfToken: string): Html {
  const done = `Removed ${result.records} record(s), ${result.images} image(s), ` +
    `${result.faceFiles} cached face file(s), ${result.models.length} model(s)` +
    `${result.reportRemoved ? " and the report" : ""}.`;
  const broken = [
    ...(result.reportRemoved ? ["the Report page"] : []),
    ...(result.models.length ? ["Try it"] : []),
  ];
  const what = `${broken.join(" and ")} ${broken.length > 1 ? "stop" : "stops"} working`;
  return html`<div class="notice" role="status"><p>${done}</p>${
    broken.length
      ? html`<div data-retrain>${what} until a retrain: run ${
        retrainOffer(retrain, csrfToken)
      }</div>`
      : ""
  }</div>`;
}
