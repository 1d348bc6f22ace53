/**
 * The evaluation report: `metrics.json` (every number, machine-readable), `report.html` (one
 * self-contained page that opens offline), the charts and face montages as PNGs, and a short
 * terminal summary. Headline numbers come with their interval and the baselines, always.
 */
import { Buffer } from "node:buffer";
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
import type { Metrics, RankedFace, SignificanceTest } from "../stages/evaluate.ts";
import type { SplitName } from "../core/types.ts";
import { REPORT_FILES } from "../store/paths.ts";
import type { BaselineResult, Demographics, ValidityChecks } from "../stages/validity.ts";
import { verdictLines, verdictSection, verdictSummary } from "./verdict.ts";
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

const TILE = 96;
const CAPTION = 30;
const ROW_LABEL = 140;
const GAP = 6;
/** Montages are drawn at twice their CSS size, so faces and text stay sharp when zoomed. */
const MONTAGE_SCALE = 2;

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const pct = (value: number | null, digits = 1) =>
  value === null || !Number.isFinite(value) ? "n/a" : `${(value * 100).toFixed(digits)} %`;

function pValue(test: SignificanceTest): string {
  return test.pValue < 0.001 ? "p < 0.001" : `p = ${test.pValue.toFixed(3)}`;
}

/** Safe in a file name: kinds and class labels come from config and data. */
function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "x";
}

async function faceTile(crop: Uint8Array | undefined, side: number): Promise<Buffer> {
  if (crop) {
    try {
      return await sharp(crop).resize(side, side, { fit: "cover" }).png().toBuffer();
    } catch {
      // An unreadable crop is shown as a blank tile rather than failing the whole report.
    }
  }
  return await sharp({
    create: { width: side, height: side, channels: 3, background: "#ddd" },
  }).png().toBuffer();
}

/**
 * The seed study's figure for one class: its most confident true positives, false negatives and
 * false positives, one row each, with the confidence under every face.
 */
export async function montage(
  kind: string,
  lists: Metrics["topK"][number],
  faces: Map<string, Uint8Array>,
): Promise<Uint8Array> {
  // Captions must fit under a tile and hints beside it; librsvg does not wrap or clip text.
  const short = (label: string, max: number) =>
    label.length > max ? `${label.slice(0, max - 1)}…` : label;
  const rows: [string, string[], RankedFace[], (f: RankedFace) => string][] = [
    ["true positives", ["right, most sure"], lists.truePositives, () => "right"],
    [
      "false negatives",
      [`is ${short(lists.label, 17)},`, "called as below"],
      lists.falseNegatives,
      (f) => short(f.predicted, 16),
    ],
    [
      "false positives",
      [`called ${short(lists.label, 13)},`, "is as below"],
      lists.falsePositives,
      (f) => short(f.actual, 16),
    ],
  ];
  const columns = Math.max(1, ...rows.map(([, , list]) => list.length));
  const title = 34;
  const width = ROW_LABEL + columns * (TILE + GAP) + GAP;
  const rowHeight = TILE + CAPTION + GAP;
  const height = title + rows.length * rowHeight;
  const text: string[] = [
    `<text x="${GAP}" y="22" font-size="16" font-weight="bold">${
      escapeXml(`${kind}: '${short(lists.label, 40)}'`)
    }</text>`,
  ];
  const composites: sharp.OverlayOptions[] = [];
  for (const [r, [name, hints, list, caption]] of rows.entries()) {
    const top = title + r * rowHeight;
    text.push(
      `<text x="${GAP}" y="${top + TILE / 2 - 6}" font-size="13" font-weight="bold">${name}</text>`,
      ...hints.map((hint, h) =>
        `<text x="${GAP}" y="${top + TILE / 2 + 10 + h * 14}" font-size="11" fill="#555">${
          escapeXml(hint)
        }</text>`
      ),
    );
    if (list.length === 0) {
      text.push(
        `<text x="${ROW_LABEL}" y="${top + TILE / 2}" font-size="12" fill="#888">none</text>`,
      );
    }
    for (const [c, face] of list.entries()) {
      const left = ROW_LABEL + c * (TILE + GAP);
      composites.push({
        input: await faceTile(faces.get(face.id), TILE * MONTAGE_SCALE),
        left: left * MONTAGE_SCALE,
        top: top * MONTAGE_SCALE,
      });
      text.push(
        `<text x="${left + TILE / 2}" y="${top + TILE + 13}" font-size="10" text-anchor="middle">${
          escapeXml(caption(face))
        }</text>`,
        `<text x="${left + TILE / 2}" y="${
          top + TILE + 26
        }" font-size="10" fill="#666" text-anchor="middle">${
          escapeXml(`${pct(face.confidence, 0)} · ${face.id}`)
        }</text>`,
      );
    }
  }
  const [pixelWidth, pixelHeight] = [width * MONTAGE_SCALE, height * MONTAGE_SCALE];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${pixelWidth}" height="${pixelHeight}"
viewBox="0 0 ${width} ${height}">
<g font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">${text.join("\n")}</g></svg>`;
  const png = await sharp({
    create: { width: pixelWidth, height: pixelHeight, channels: 3, background: "white" },
  })
    .composite([{ input: Buffer.from(svg), left: 0, top: 0 }, ...composites])
    .png()
    .toBuffer();
  return new Uint8Array(png);
}

function verdict(test: SignificanceTest, what: string): string {
  return test.significant
    ? `<span class="yes">beats ${escapeXml(what)} (${pValue(test)})</span>`
    : `<span class="no">does not beat ${escapeXml(what)} significantly (${pValue(test)})</span>`;
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

function table(head: string[], rows: (string | number)[][], className = ""): string {
  const cell = (tag: string) => (value: string | number) => `<${tag}>${value}</${tag}>`;
  return `<table class="${className}"><thead><tr>${head.map(cell("th")).join("")}</tr></thead>
<tbody>${rows.map((r) => `<tr>${r.map(cell("td")).join("")}</tr>`).join("\n")}</tbody></table>`;
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

function confoundSection(models: ModelResult[]): string {
  const rows = models.map((model) => {
    const c = model.metrics.confounds;
    const rule = Object.entries(c.genderOnly.rule).map(([g, label]) =>
      `${g} → ${escapeXml(label)}`
    ).join(", ") || "n/a";
    return [
      escapeXml(model.kind),
      pct(model.metrics.accuracy),
      `${pct(c.genderOnly.accuracy)} (${rule}; n = ${c.genderOnly.n})`,
      `${pct(c.grayscale.accuracy)} (n = ${c.grayscale.n})`,
      `${pct(c.colour.accuracy)} (n = ${c.colour.n})`,
    ];
  });
  const fitOn = models[0]?.metrics.confounds.genderOnly.fitOn;
  const note = fitOn === "test"
    ? `<p class="warn">The gender rule was chosen on the test faces themselves (no training faces
had a predicted gender), so its accuracy is optimistic.</p>`
    : `<p>The gender rule was chosen on the training faces and measured on the test faces.</p>`;
  return `<p>How far does a trivial cue get alone? Gender is predicted by face-api's age/gender
net; the rule maps each gender to one class. If the model is no better than the rule, it may
have learned gender, not the group. Accuracy on black-and-white against colour photos shows
whether photo style carries the label.</p>
${table(["model", "model accuracy", "gender-only rule", "on grayscale", "on colour"], rows)}
${note}`;
}

function checksSection(models: ModelResult[], checks: ValidityChecks | undefined): string {
  if (!checks) {
    return `<p class="warn">The validity checks were not run for this report, so nothing here
says whether the models read faces or photos.</p>`;
  }
  return `${losoPart(checks)}
${baselinesPart(models, checks.baselines)}
${demographicsPart(checks.demographics)}`;
}

/** Leave-one-source-out: each model against its random split, the sources it could not hold out. */
function losoPart(checks: ValidityChecks): string {
  const loso = checks.loso.map((l) => {
    const random = l.randomSplitOnTheseSources;
    return [
      escapeXml(l.kind),
      pct(l.randomSplitAccuracy),
      random ? `${pct(random.accuracy)} (n = ${random.n})` : "n/a",
      l.score
        ? `${pct(l.score.accuracy)} (${pct(l.score.ci95[0])} – ${
          pct(l.score.ci95[1])
        }, n = ${l.score.n}), ${verdict(l.score.beatsChance, "chance")}`
        : `cannot be made: ${escapeXml(l.reason ?? "")}`,
    ];
  });
  const perSource = checks.loso.flatMap((l) =>
    l.perSource.map((s) => [
      escapeXml(l.kind),
      escapeXml(s.source),
      escapeXml(s.category),
      `${s.correct} / ${s.n}`,
      pct(s.accuracy),
    ])
  );
  const notPossible = checks.loso[0]?.notPossible ?? [];
  const cannot = notPossible.length
    ? `<p class="warn">${
      notPossible.map((n) => escapeXml(`Cannot hold out ${n.sources.join(", ")}: ${n.reason}.`))
        .join("<br>")
    }</p>`
    : "";
  return `<p>Is it the face, or the photo? Faces are grouped by ${
    escapeXml(checks.groupedBy)
  } (${checks.sources.length} sources). Leave-one-source-out trains each model again on every
source but one and tests it on the held-out one: a model that learned a site's photo style
instead of faces falls to chance there.</p>
${table(["model", "random split", "random split, these sources", "leave-one-source-out"], loso)}
${cannot}
${
    perSource.length
      ? table(["model", "held-out source", "category", "right", "accuracy"], perSource)
      : ""
  }`;
}

/** The style baselines against each face model on the same faces, and the telling statistics. */
function baselinesPart(models: ModelResult[], baselines: BaselineResult[]): string {
  const baselineRows = baselines.map((b) => [
    escapeXml(b.name),
    `${pct(b.score.accuracy)} (${pct(b.score.ci95[0])} – ${
      pct(b.score.ci95[1])
    }, n = ${b.score.n})`,
    ...models.map((m) => {
      const v = b.versus[m.kind];
      if (!v) return "n/a";
      return `${pct(v.modelAccuracy)} vs ${pct(v.baselineAccuracy)}: ${
        v.modelBeatsIt.significant
          ? `<span class="yes">beaten (McNemar ${pValue(v.modelBeatsIt)})</span>`
          : `<span class="no">not beaten (McNemar ${pValue(v.modelBeatsIt)})</span>`
      }${v.close ? ` <span class="no">close</span>` : ""}`;
    }),
  ]);
  const telling = baselines.find((b) => b.telling)?.telling ?? [];
  return `<p>Style baselines: logistic regressions that never see a face, fitted and tested on the same
split as the face models. A face model that does not beat them may have learned the photos.</p>
${
    table(
      ["baseline sees", "accuracy (95 % CI)", ...models.map((m) => escapeXml(m.kind))],
      baselineRows,
    )
  }
${
    telling.length
      ? `<p>Image statistics that tell the classes apart best (Fisher ratio): ${
        telling.map((t) => `${escapeXml(t.feature)} (${t.separation.toFixed(2)})`).join(", ")
      }.</p>`
      : ""
  }`;
}

/** Accuracy within strata of estimated gender, age and ethnicity, and the matched pairs. */
function demographicsPart(demographics: Demographics | undefined): string {
  if (!demographics) {
    return "<p>No face had an age and gender estimate, so the demographic checks were not made.</p>";
  }
  const strataNames = Object.values(demographics.strata)[0]?.map((s) => s.stratum) ?? [];
  return `<h3>Demographics (estimated by ${
    escapeXml(demographics.estimatedBy)
  }, ${demographics.n} faces)</h3>
<p>Accuracy within each stratum of estimated gender, age and ethnicity: a model that reads only
demographics does well in some strata and at chance within them.</p>
${
    table(
      ["model", ...strataNames.map(escapeXml)],
      Object.entries(demographics.strata).map(([kind, strata]) => [
        escapeXml(kind),
        ...strata.map((s) => s.accuracy === null ? "n/a" : `${pct(s.accuracy)} (n = ${s.n})`),
      ]),
      "num",
    )
  }
<p>Matched pairs (Kosinski 2021): two held-out faces of different classes with the same estimated
gender (and ethnicity, where it was estimated) and ages at most a few years apart, each face in one pair; how often the model gives each
face's own class the higher score.</p>
${
    table(
      ["model", "pairs", "ranked right (95 % CI)"],
      Object.entries(demographics.matchedPairs).map(([kind, m]) => [
        escapeXml(kind),
        m.pairs,
        m.accuracy === null || !m.ci95
          ? "n/a"
          : `${pct(m.accuracy)} (${pct(m.ci95[0])} – ${
            pct(m.ci95[1])
          }), age gap ≤ ${m.maxAgeGap} years`,
      ]),
      "num",
    )
  }`;
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

function imageTag(png: Uint8Array, alt: string, width?: number): string {
  const src = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
  return `<img src="${src}" alt="${escapeXml(alt)}"${width ? ` width="${width}"` : ""}>`;
}

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
