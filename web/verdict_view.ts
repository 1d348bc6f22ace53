/**
 * The verdict block the Overview and the Report pages lead with: the run's one-sentence answer
 * (large), its one line of why, and the accuracy ladder chart the run drew (`report/verdict.png`),
 * before anything else. A run that wrote no verdict says so plainly instead of showing a bare
 * accuracy, which can suggest the opposite of the truth.
 */
import { basename } from "node:path";
import { html } from "hono/html";
import type { Conclusion, Rung, Verdict } from "../stages/verdict.ts";
import { type Html, percent } from "./layout.ts";
import type { StoreView } from "./store_view.ts";

/** Where the app serves the run's verdict chart. */
export const VERDICT_CHART_PATH = "/report/verdict.png";

/** What the view needs: the report's `verdict` field as metrics.json holds it, if any. */
export interface VerdictInput {
  /** Whether a metrics.json exists at all. */
  hasReport: boolean;
  /** metrics.json's `verdict`: an object on current runs, lines of text or absent on older ones. */
  verdict: unknown;
  /** Whether the run drew `report/verdict.png`. */
  hasChart: boolean;
  /** The data dir's folder name, for the rerun command. */
  dataDir?: string;
}

/** The verdict object, when metrics.json carries one this app can read. */
export function readVerdict(value: unknown): Verdict | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Partial<Verdict>;
  if (typeof v.headline !== "string" || typeof v.conclusion !== "string") return undefined;
  return value as Verdict;
}

/** A short label per conclusion, for the badge beside the headline. */
const CONCLUSION_LABELS: Record<Conclusion, string> = {
  "no-signal": "no signal",
  photo: "the photo explains it",
  demographics: "demographics explain it",
  face: "the face adds something",
  undetermined: "too few faces to tell",
};

/** The ladder as a small table, where the run drew no chart (and for screen readers). */
function ladderTable(ladder: Rung[]): Html {
  if (!Array.isArray(ladder) || ladder.length === 0) return html``;
  return html`
    <table class="ladder">
      <thead>
        <tr>
          <th>step</th>
          <th>accuracy</th>
          <th>95 % interval</th>
          <th>faces</th>
        </tr>
      </thead>
      <tbody>${ladder.map((rung) =>
        html`
          <tr data-rung="${rung.key}">
            <td>${rung.label}</td>
            <td class="num">${percent(
              rung.accuracy,
            )}</td>
            <td class="num">${rung.ci95
              ? `${percent(rung.ci95[0])}–${percent(rung.ci95[1])}`
              : "–"}</td>
            <td class="num">${rung.n || "–"}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function rerun(dataDir: string | undefined): Html {
  return html`<code>deno task pipeline --data ${dataDir ?? "DIR"}</code>`;
}

/** The block itself; `data-verdict` names the conclusion, or why there is none. */
export function verdictView(input: VerdictInput): Html {
  if (!input.hasReport) {
    return html`
      <section class="verdict" data-verdict="none">
        <p class="verdict-missing">No verdict yet: no run has reached the evaluation in this data
        dir. Run ${rerun(input.dataDir)} to the end.</p>
      </section>
    `;
  }
  const verdict = readVerdict(input.verdict);
  if (input.verdict === null) {
    return html`
      <section class="verdict" data-verdict="unchecked">
        <p class="verdict-missing">This run has no verdict: its validity checks did not run, so it
        cannot tell whether the face, the photo or the demographics carry the signal. Rerun the
        pipeline (${rerun(input.dataDir)}) with them.</p>
      </section>
    `;
  }
  if (!verdict) {
    return html`
      <section class="verdict" data-verdict="predates">
        <p class="verdict-missing">This run predates the verdict: rerun the pipeline
        (${rerun(input.dataDir)}) to learn whether the face, the photo or the demographics carry
        the signal. Until then, an accuracy alone says nothing about where it comes from.</p>
      </section>
    `;
  }
  const label = CONCLUSION_LABELS[verdict.conclusion] ?? verdict.conclusion;
  return html`
    <section class="verdict" data-verdict="${verdict.conclusion}">
      <p class="verdict-headline">${verdict.headline}</p>
      <p class="verdict-why"><span class="badge">${label}</span> ${verdict.why}</p>
      ${input.hasChart
        ? html`
          <figure
            class="verdict-chart"><a href="${VERDICT_CHART_PATH}"><img src="${VERDICT_CHART_PATH}"
              alt="${ladderAlt(verdict.ladder)}"></a><figcaption>The headline model: ${verdict
                .model}. On a small screen, tap the chart to see it full size.</figcaption></figure>
        `
        : ladderTable(verdict.ladder)}
    </section>
  `;
}

/** The chart's alternative text: the ladder in words. */
function ladderAlt(ladder: Rung[]): string {
  if (!Array.isArray(ladder) || ladder.length === 0) return "the accuracy ladder";
  return "Accuracy ladder: " +
    ladder.map((rung) => `${rung.label} ${percent(rung.accuracy)}`).join(", ");
}

/** The verdict block for a data dir, as both pages show it. */
export async function verdictFor(view: StoreView): Promise<Html> {
  const [report, chart] = await Promise.all([view.report(), view.verdictChartPath()]);
  return verdictView({
    hasReport: report !== undefined,
    verdict: report?.verdict,
    hasChart: chart !== undefined,
    dataDir: basename(view.paths.root),
  });
}
