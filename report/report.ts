/**
 * The evaluation report: `metrics.json` (every number, machine-readable), `report.html` (one
 * self-contained page that opens offline), the charts and face montages as PNGs, and a short
 * terminal summary. Headline numbers come with their interval and the baselines, always.
 */
import { join } from "node:path";
import sharp from "sharp";
import type { TopLevelSpec } from "vega-lite";
import {
  checksSpec,
  confusionSpec,
  distributionSpec,
  type EpochPoint,
  headlineSpec,
  type ModelResult,
  penaltySpec,
  renderChart,
  trainingCurvesSpec,
} from "./charts.ts";
import type { Metrics } from "../stages/evaluate.ts";
import type { SplitName } from "../core/types.ts";
import { REPORT_FILES } from "../store/paths.ts";
import type { ValidityChecks } from "../stages/validity.ts";
import { verdictLines, verdictSection, verdictSummary } from "./verdict.ts";
import { escapeXml, imageTag, pct, pValue, slug, table } from "./html.ts";
import { montage } from "./montage.ts";
import { checksSection, confoundSection, verdict } from "./checks_section.ts";
import { verdictSpec } from "./verdict_chart.ts";
import type { Verdict } from "../stages/verdict.ts";
import {
  type OcclusionResult,
  occlusionSection,
  type OcclusionSummary,
} from "./occlusion_figures.ts";

export type { EpochPoint, ModelResult };

/** What the data set looked like, for the provenance section. Counts only, never names. */
export interface DatasetSummary {
  /** A short name for the data, e.g. the data dir's. */
  name: string;
  /** Faces per class in each split. */
  splits: Partial<Record<SplitName, Record<string, number>>>;
  /** Records dropped on the way, by reason code (`no_face`, `http_404`, …). */
  dropped?: Record<string, number>;
  /** Number of cross-validation folds, when used. */
  folds?: number | null;
  /** Free key/value facts shown as they are: sources file, detector, settings hash, command… */
  provenance?: Record<string, string | number | boolean>;
}

export interface ReportInput {
  /** One entry per trained model kind; shown side by side. */
  models: ModelResult[];
  /** Face crops (PNG) by record id, for the montages. Faces without a crop show as grey. */
  faces: Map<string, Uint8Array>;
  dataset: DatasetSummary;
  /** The validity checks (leave-one-source-out, style baselines), when they were run. */
  checks?: ValidityChecks;
  /** The occlusion maps ("Where the models look"), when they were made. */
  occlusion?: OcclusionResult;
  /**
   * Heading of the page.
   * @default "facefield evaluation"
   */
  title?: string;
  /**
   * When the report was made (shown and stored).
   * @default new Date()
   */
  generatedAt?: Date;
}

export interface ReportFiles {
  /** Path of report.html. */
  html: string;
  /** Path of metrics.json. */
  metricsJson: string;
  /** Paths of every PNG written. */
  pngs: string[];
}

function headlineCard(model: ModelResult): string {
  const m = model.metrics;
  const gender = m.confounds.genderOnly;
  const folds = m.folds
    ? `<p>${m.folds.perFold.length} folds: mean ${pct(m.folds.mean)} ± ${
      pct(m.folds.std)
    } (sample std)</p>`
    : "";
  return `<div class="card">
<h3>${escapeXml(model.kind)}</h3>
<p class="big">${pct(m.accuracy)}</p>
<p class="ci">95 % CI ${pct(m.ci95[0])} – ${pct(m.ci95[1])} · ${m.correct} of ${m.n} test faces</p>
${folds}<ul>
<li>majority (always '${escapeXml(m.majorityBaseline.label)}'): ${
    pct(m.majorityBaseline.accuracy)
  } — ${verdict(m.beatsMajority, "it")}</li>
<li>chance: ${pct(m.chance)} — ${verdict(m.beatsChance, "it")}</li>
<li>gender only: ${pct(gender.accuracy)}${
    gender.modelBeatsIt ? ` — ${verdict(gender.modelBeatsIt, "it")}` : ""
  }</li>
<li>macro-F1: ${m.macroF1.toFixed(3)}; balanced accuracy ${pct(m.balancedAccuracy)}</li>
<li>label-permutation p = ${
    m.permutation.pValue.toFixed(4)
  } (${m.permutation.permutations} shuffles)</li>
<li>most confused: ${
    m.mostConfused.slice(0, 3).map((c) =>
      `${escapeXml(c.actual)} → ${escapeXml(c.predicted)} (${c.count})`
    ).join(", ") || "none"
  }</li>
</ul></div>`;
}

function perClassTable(m: Metrics): string {
  return table(
    ["class", "precision", "recall", "F1", "support", "real", "predicted"],
    m.perClass.map((c, i) => [
      escapeXml(c.label),
      pct(c.precision),
      pct(c.recall),
      c.f1.toFixed(3),
      c.support,
      m.distribution[i]?.real ?? 0,
      m.distribution[i]?.predicted ?? 0,
    ]),
    "num",
  );
}

function datasetSection(dataset: DatasetSummary, classes: string[]): string {
  const splits = (["train", "val", "test"] as const).filter((s) => dataset.splits[s]);
  const splitTable = table(
    ["class", ...splits, "total"],
    [...classes, "all"].map((label) => {
      const counts = splits.map((s) => {
        const perClass = dataset.splits[s] ?? {};
        return label === "all"
          ? Object.values(perClass).reduce((a, b) => a + b, 0)
          : perClass[label] ?? 0;
      });
      return [escapeXml(label), ...counts, counts.reduce((a, b) => a + b, 0)];
    }),
    "num",
  );
  const dropped = Object.entries(dataset.dropped ?? {}).sort((a, b) => b[1] - a[1]);
  const droppedTable = dropped.length
    ? `<h3>Dropped on the way</h3>${
      table(["reason", "records"], dropped.map(([r, n]) => [escapeXml(r), n]), "num")
    }`
    : "";
  const facts = Object.entries(dataset.provenance ?? {});
  const factTable = facts.length
    ? `<h3>Provenance</h3>${
      table(["", ""], facts.map(([k, v]) => [escapeXml(k), escapeXml(String(v))]), "facts")
    }`
    : "";
  const folds = dataset.folds ? `<p>Cross-validation with ${dataset.folds} folds.</p>` : "";
  return `<p>Data: ${escapeXml(dataset.name)}</p>${folds}<h3>Faces per split</h3>${splitTable}
${droppedTable}${factTable}`;
}

const STYLE = `
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #222;
  max-width: 1360px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 10px;
  border-bottom: 2px solid #eee; padding-bottom: 4px; } h3 { font-size: 16px; margin: 18px 0 6px; }
p { max-width: 80ch; } .sub { color: #666; margin: 0 0 18px; }
.cards { display: flex; flex-wrap: wrap; gap: 16px; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 12px 18px; flex: 1 1 320px; }
.card h3 { margin: 0; color: #4c78a8; text-transform: uppercase; letter-spacing: .05em; }
.big { font-size: 40px; font-weight: 700; margin: 0; }
.ci { color: #444; margin: 0 0 6px; } .card ul { margin: 6px 0; padding-left: 18px; }
.yes { color: #17803d; font-weight: 600; } .no { color: #b4471c; font-weight: 600; }
.warn { background: #fff6e0; border-left: 4px solid #e0a000; padding: 6px 10px; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.grid figure { margin: 0; } img { max-width: 100%; height: auto; }
.grid > *, figure { min-width: 0; max-width: 100%; } figure { margin: 8px 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; } td, th { overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; }
th { background: #f6f6f6; } table.num td:not(:first-child) { text-align: right; }
table.facts thead { display: none; }
.verdict pre { white-space: pre-wrap; background: #f6f6f6; padding: 8px 12px; font-size: 14px; }
.verdict .answer { font-size: 26px; line-height: 1.3; font-weight: 650; margin: 8px 0; max-width: 46ch; }
.verdict .why { font-size: 16px; color: #333; }
.verdict.face .answer { color: #1f5f9e; } .verdict.photo .answer, .verdict.demographics .answer { color: #a33a12; }
details { margin: 8px 0; } summary { cursor: pointer; color: #335; }
table { display: block; overflow-x: auto; max-width: 100%; }
@media (max-width: 600px) { body { padding: 12px; } .verdict .answer { font-size: 21px; }
  .card { flex-basis: 100%; } }
footer { margin-top: 40px; color: #888; font-size: 13px; }
`;

/**
 * Writes `metrics.json`, `report.html` and the PNGs (charts, face montages) under `outDir`.
 *
 * @example
 * ```ts
 * const files = await writeReport("data/report", { models, faces, dataset });
 * console.log(terminalSummary(models, files.html));
 * ```
 */
export async function writeReport(outDir: string, input: ReportInput): Promise<ReportFiles> {
  const {
    models,
    faces,
    dataset,
    checks,
    title = "facefield evaluation",
    generatedAt = new Date(),
  } = input;
  if (models.length === 0) throw new RangeError("Cannot write a report without a model");
  const kinds = models.map((m) => m.kind);
  if (new Set(kinds).size !== kinds.length) {
    throw new RangeError(`Each model kind may appear once: got ${kinds.join(", ")}`);
  }
  await Deno.mkdir(outDir, { recursive: true });
  const images = new ReportImages(outDir);
  const headlineImage = await images.chart(
    "accuracy.png",
    headlineSpec(models),
    "accuracy against baselines",
  );
  const checksImage = checks
    ? await images.chart(
      "checks.png",
      checksSpec(models, checks),
      "face models against what sees no face",
    )
    : "";
  const verdict = checks?.verdict
    ? {
      ...checks.verdict,
      evidence: { ...checks.verdict.evidence, perModel: verdictLines(models, checks) },
    }
    : null;
  const verdictImage = verdict
    ? await images.chart("verdict.png", verdictSpec(verdict), "where the accuracy comes from")
    : "";
  const perModel: ModelFigures[] = [];
  for (const model of models) perModel.push(await modelFigures(model, faces, images));
  const occlusion = input.occlusion && await occlusionSection(input.occlusion, images);
  const html = reportHtml({
    occlusionHtml: occlusion?.html ?? "",
    title,
    generatedAt,
    dataset,
    models,
    checks,
    verdict,
    verdictImage,
    perModelLines: verdict?.evidence.perModel ?? verdictLines(models, checks),
    headlineImage,
    checksImage,
    perModel,
  });
  const htmlPath = join(outDir, REPORT_FILES.html);
  const metricsPath = join(outDir, REPORT_FILES.metrics);
  await Deno.writeTextFile(
    metricsPath,
    metricsJsonText(verdict, generatedAt, checks, dataset, models, occlusion?.summaries) + "\n",
  );
  await Deno.writeTextFile(htmlPath, html);
  return { html: htmlPath, metricsJson: metricsPath, pngs: images.pngs };
}

/** The report's PNGs: each written under the report's folder and shown as a figure. */
class ReportImages {
  /** Paths of every PNG written, in order. */
  readonly pngs: string[] = [];

  constructor(readonly outDir: string) {}

  /** Renders a chart, writes it and gives its figure. */
  async chart(name: string, spec: TopLevelSpec, alt: string): Promise<string> {
    return await this.figure(name, (await renderChart(spec)).png, alt);
  }

  /** Writes `png` as `name` and gives its figure. */
  async figure(name: string, png: Uint8Array, alt: string): Promise<string> {
    const path = join(this.outDir, name);
    await Deno.writeFile(path, png);
    this.pngs.push(path);
    // Shown at half the PNG's pixels, so charts stay sharp on high-density screens.
    const { width = 0 } = await sharp(png).metadata();
    return `<figure>${imageTag(png, alt, Math.round(width / 2))}</figure>`;
  }
}

/** One model's figures on the page. */
interface ModelFigures {
  confusion: string;
  curves: string;
  distribution: string;
  /** One per class, in the confusion matrix's order. */
  montages: string[];
}

/** Renders and writes one model's charts and face montages. */
async function modelFigures(
  model: ModelResult,
  faces: Map<string, Uint8Array>,
  images: ReportImages,
): Promise<ModelFigures> {
  const kind = slug(model.kind);
  const confusion = await images.chart(
    `confusion-${kind}.png`,
    confusionSpec(model.kind, model.metrics),
    `confusion matrix of ${model.kind}`,
  );
  const curves = model.fit?.cv.length
    ? await images.chart(
      `training-${kind}.png`,
      penaltySpec(model.kind, model.fit),
      `penalty choice of ${model.kind}`,
    )
    : model.history.length
    ? await images.chart(
      `training-${kind}.png`,
      trainingCurvesSpec(model.kind, model.history, model.bestEpoch),
      `training curves of ${model.kind}`,
    )
    : "<p>No training history recorded.</p>";
  const distribution = await images.chart(
    `distribution-${kind}.png`,
    distributionSpec(model.kind, model.metrics),
    `class distribution of ${model.kind}`,
  );
  const montages: string[] = [];
  for (const lists of model.metrics.topK) {
    montages.push(
      await images.figure(
        `faces-${kind}-${slug(lists.label)}.png`,
        await montage(model.kind, lists, faces),
        `faces of ${lists.label} (${model.kind})`,
      ),
    );
  }
  return { confusion, curves, distribution, montages };
}

/** What the page is made of, its figures already rendered. */
interface ReportPage {
  title: string;
  generatedAt: Date;
  dataset: DatasetSummary;
  models: ModelResult[];
  checks?: ValidityChecks;
  verdict: Verdict | null;
  verdictImage: string;
  /** Each model's verdict lines (what it beats, what explains it), folded under the answer. */
  perModelLines: string[];
  headlineImage: string;
  checksImage: string;
  /** In the order of `models`. */
  perModel: ModelFigures[];
  occlusionHtml: string;
}

/**
 * report.html, in the order people read: verdict, headline, charts, per class, faces, checks,
 * provenance.
 */
function reportHtml(page: ReportPage): string {
  const {
    title,
    generatedAt,
    dataset,
    models,
    checks,
    verdict,
    verdictImage,
    perModelLines,
    headlineImage,
    checksImage,
    perModel,
    occlusionHtml,
  } = page;
  const classes = models[0]!.metrics.confusion.labels;
  const sideBySide = (pick: (i: number) => string) =>
    `<div class="grid">${models.map((_, i) => pick(i)).join("\n")}</div>`;
  const perClass = models.map((m) =>
    `<div><h3>${escapeXml(m.kind)}</h3>${perClassTable(m.metrics)}</div>`
  ).join("\n");
  const stamp = generatedAt.toISOString().replace("T", " ").slice(0, 16) + " UTC";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
<p class="sub">${escapeXml(dataset.name)} · ${classes.length} classes · ${stamp}</p>
${verdictSection(verdict, verdictImage, perModelLines)}
<h2>How good is it?</h2>
<div class="cards">${models.map(headlineCard).join("\n")}</div>
${headlineImage}
<h2>Confusion and class distribution</h2>
${sideBySide((i) => perModel[i]!.confusion)}
${sideBySide((i) => perModel[i]!.distribution)}
<h2>Per class</h2>
<div class="grid">${perClass}</div>
<h2>Training</h2>
${sideBySide((i) => perModel[i]!.curves)}
<h2>Faces the models were most sure about</h2>
<p>Per class: the most confident right answers, the faces of the class most confidently called
something else, and the faces of other classes most confidently called this one.</p>
${classes.map((_, c) => sideBySide((i) => perModel[i]!.montages[c] ?? "")).join("\n")}
${occlusionHtml}
<h2>Is it the face, or the photo?</h2>
${checksImage}
${checksSection(models, checks)}
<h2>Confound check</h2>
${confoundSection(models)}
<h2>Data and provenance</h2>
${datasetSection(dataset, classes)}
<p>What the data set is, how it was made, and its unsound uses: <a href="../DATASHEET.md">DATASHEET.md</a> in the data dir.</p>
<footer>Written by facefield. Every number is in metrics.json next to this page.</footer>
</body></html>
`;
}

/** The checks as metrics.json keeps them: the verdict stands first, on its own. */
function withoutVerdict(checks: ValidityChecks): Omit<ValidityChecks, "verdict"> {
  const { verdict: _verdict, ...rest } = checks;
  return rest;
}

/** metrics.json: every number of the report, machine-readable. */
function metricsJsonText(
  verdict: Verdict | null,
  generatedAt: Date,
  checks: ValidityChecks | undefined,
  dataset: DatasetSummary,
  models: ModelResult[],
  occlusion: Record<string, OcclusionSummary> = {},
): string {
  return JSON.stringify(
    {
      verdict,
      generatedAt: generatedAt.toISOString(),
      checks: checks ? withoutVerdict(checks) : null,
      dataset,
      models: models.map(({ kind, metrics, history, bestEpoch, fit }) => ({
        kind,
        bestEpoch,
        history,
        ...(fit ? { fit } : {}),
        metrics,
        ...(occlusion[kind] ? { occlusion: occlusion[kind] } : {}),
      })),
    },
    null,
    2,
  );
}

/**
 * A few lines for the terminal: accuracy ± CI against the baselines, the confusion matrix as a
 * table, and where the report is.
 */
export function terminalSummary(
  models: ModelResult[],
  reportPath?: string,
  checks?: ValidityChecks,
): string {
  const lines: string[] = [...verdictSummary(checks?.verdict ?? null), ""];
  lines.push("verdict, per model:", ...verdictLines(models, checks), "");
  for (const { kind, metrics: m } of models) {
    const gender = m.confounds.genderOnly;
    lines.push(
      `${kind}: accuracy ${pct(m.accuracy)} (95 % CI ${pct(m.ci95[0])}–${
        pct(m.ci95[1])
      }, n = ${m.n})${m.folds ? `, folds ${pct(m.folds.mean)} ± ${pct(m.folds.std)}` : ""}`,
      `  majority '${m.majorityBaseline.label}' ${pct(m.majorityBaseline.accuracy)}: ${
        m.beatsMajority.significant ? "beaten" : "NOT beaten"
      } (${pValue(m.beatsMajority)}); chance ${pct(m.chance)}: ${
        m.beatsChance.significant ? "beaten" : "NOT beaten"
      } (${pValue(m.beatsChance)})`,
    );
    if (gender.accuracy !== null && gender.modelBeatsIt) {
      lines.push(
        `  gender-only rule ${pct(gender.accuracy)} (fit on ${gender.fitOn}): ${
          gender.modelBeatsIt.significant ? "beaten" : "NOT beaten"
        } (${pValue(gender.modelBeatsIt)}); macro-F1 ${m.macroF1.toFixed(3)}`,
      );
    } else {
      lines.push(`  macro-F1 ${m.macroF1.toFixed(3)}`);
    }
    const { labels, counts } = m.confusion;
    const width = Math.max(18, ...labels.map((l) => l.length));
    const cellWidth = Math.max(5, ...labels.map((l) => Math.min(l.length, 12)));
    lines.push(
      `  ${"actual \\ predicted".padEnd(width)}  ${
        labels.map((l) => l.slice(0, 12).padStart(cellWidth)).join(" ")
      }`,
      ...labels.map((label, i) =>
        `  ${label.padEnd(width)}  ${
          counts[i]!.map((c) => String(c).padStart(cellWidth)).join(" ")
        }`
      ),
    );
  }
  if (reportPath) lines.push(`report: ${reportPath}`);
  return lines.join("\n");
}
