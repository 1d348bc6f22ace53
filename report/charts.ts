/**
 * The report's charts: Vega-Lite specs, compiled and rendered headless by Vega to SVG, then
 * rasterised by sharp. Vega does the layout, scales and axes; nothing is drawn by hand.
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import sharp from "sharp";
import type { Metrics } from "../stages/evaluate.ts";
import type { ValidityChecks } from "../stages/validity.ts";

/** One epoch of training, as the training curves need it. */
export interface EpochPoint {
  epoch: number;
  loss: number;
  accuracy: number;
  /** null or absent without validation data. */
  valLoss?: number | null;
  valAccuracy?: number | null;
}

/** One trained model's results, as the charts need them. */
export interface ModelResult {
  kind: string;
  metrics: Metrics;
  history: EpochPoint[];
  /** Epoch whose weights were kept. */
  bestEpoch: number;
  /** A probe's fit instead of epochs: each penalty's inner cross-validation, and the chosen. */
  fit?: PenaltyFit;
}

/** What `penaltySpec` draws: the penalties tried, their inner-CV scores, the one kept. */
export interface PenaltyFit {
  l2: number;
  cv: { l2: number; loss: number; accuracy: number }[];
}

export interface RenderedChart {
  svg: string;
  png: Uint8Array;
}

export interface RenderOptions {
  /**
   * Pixels per Vega unit in the PNG: 2 gives sharp text on high-density screens.
   * @default 2
   */
  scale?: number;
}

/** The look every chart shares: the system's sans-serif, which librsvg and browsers both have. */
const CONFIG = {
  font: "DejaVu Sans, Liberation Sans, Arial, sans-serif",
  background: "white",
  title: { fontSize: 14, anchor: "start" as const },
  axis: { labelFontSize: 12, titleFontSize: 12 },
  legend: { labelFontSize: 12, titleFontSize: 12 },
  view: { stroke: null },
};

/** Renders a Vega-Lite spec to SVG (Vega's headless renderer) and PNG (sharp/librsvg). */
export async function renderChart(
  spec: TopLevelSpec,
  options: RenderOptions = {},
): Promise<RenderedChart> {
  const { scale = 2 } = options;
  if (!(scale > 0 && scale <= 8)) throw new RangeError(`'scale' must be in (0, 8]: got ${scale}`);
  const compiled = compile({ config: CONFIG, ...spec } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    const density = 72 * scale;
    // Vega's headless renderer only estimates text widths, so its canvas can carry blank
    // margins: trim them to the ink and give every chart the same small border.
    const trimmed = await sharp(new TextEncoder().encode(svg), { density })
      .flatten({ background: "white" })
      .trim({ background: "white", threshold: 1 })
      .toBuffer();
    const border = Math.round(8 * scale);
    const png = await sharp(trimmed)
      .extend({ top: border, bottom: border, left: border, right: border, background: "white" })
      .png()
      .toBuffer();
    return { svg, png: new Uint8Array(png) };
  } finally {
    view.finalize();
  }
}

/** Confusion matrix heatmap: colour by row share (recall per class), text by count. */
export function confusionSpec(kind: string, metrics: Metrics): TopLevelSpec {
  const { labels, counts, rowNormalised } = metrics.confusion;
  const values = labels.flatMap((actual, i) =>
    labels.map((predicted, j) => ({
      actual,
      predicted,
      count: counts[i]![j]!,
      share: rowNormalised[i]![j]!,
    }))
  );
  // Cells wide enough for level column labels where they fit; slanted labels where they don't.
  const longest = Math.max(...labels.map((l) => l.length));
  const cell = Math.max(50, Math.min(80, longest * 7.5));
  const side = Math.min(480, labels.length * cell);
  const labelAngle = side / labels.length >= longest * 7 ? 0 : -35;
  const base = {
    x: {
      field: "predicted",
      type: "nominal",
      sort: labels,
      title: "predicted",
      axis: { labelAngle, orient: "top", labelLimit: 240 },
    },
    y: {
      field: "actual",
      type: "nominal",
      sort: labels,
      title: "actual",
      axis: { labelLimit: 240 },
    },
  } as const;
  return {
    title: `Confusion matrix: ${kind} (colour: share of the row)`,
    data: { values },
    width: side,
    height: side,
    layer: [
      {
        mark: "rect",
        encoding: {
          ...base,
          color: {
            field: "share",
            type: "quantitative",
            scale: { scheme: "blues", domain: [0, 1] },
            legend: { format: ".0%", title: "row share" },
          },
        },
      },
      {
        mark: { type: "text", fontSize: 13 },
        encoding: {
          ...base,
          text: { field: "count", type: "quantitative" },
          color: {
            condition: { test: "datum.share > 0.5", value: "white" },
            value: "black",
          },
        },
      },
    ],
  };
}

/** Training curves: loss on the left, training and validation accuracy on the right. */
export function trainingCurvesSpec(kind: string, history: EpochPoint[], bestEpoch: number) {
  const lossValues = history.flatMap((h) => [
    { epoch: h.epoch, series: "training", value: h.loss },
    ...(h.valLoss == null ? [] : [{ epoch: h.epoch, series: "validation", value: h.valLoss }]),
  ]);
  const accuracyValues = history.flatMap((h) => [
    { epoch: h.epoch, series: "training", value: h.accuracy },
    ...(h.valAccuracy == null
      ? []
      : [{ epoch: h.epoch, series: "validation", value: h.valAccuracy }]),
  ]);
  const panel = (title: string, values: object[], format: string) => ({
    title,
    width: 300,
    height: 200,
    data: { values },
    layer: [
      {
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "epoch", type: "quantitative", axis: { tickMinStep: 1 } },
          y: {
            field: "value",
            type: "quantitative",
            title: null,
            axis: { format },
            scale: { zero: false },
          },
          color: {
            field: "series",
            type: "nominal",
            scale: { domain: ["training", "validation"], range: ["#4c78a8", "#f58518"] },
            title: null,
          },
        },
      },
      {
        data: { values: [{ epoch: bestEpoch }] },
        mark: { type: "rule", strokeDash: [4, 4], color: "#666" },
        encoding: { x: { field: "epoch", type: "quantitative" } },
      },
    ],
  });
  return {
    title: `Training: ${kind} (dashed: the epoch kept)`,
    hconcat: [panel("loss", lossValues, ".2f"), panel("accuracy", accuracyValues, ".0%")],
    resolve: { scale: { color: "shared" } },
  } as TopLevelSpec;
}

/**
 * A fitted probe's "training curve": inner cross-validation log loss and accuracy against the
 * L2 penalty (log scale), dashed at the penalty kept. Left of it the probe learns too little,
 * right of it it learns the training faces.
 */
export function penaltySpec(kind: string, fit: PenaltyFit): TopLevelSpec {
  const panel = (title: string, field: "loss" | "accuracy", format: string) => ({
    title,
    width: 300,
    height: 200,
    layer: [
      {
        data: { values: fit.cv },
        mark: { type: "line", point: true, color: "#f58518" },
        encoding: {
          x: { field: "l2", type: "quantitative", scale: { type: "log" }, title: "L2 penalty" },
          y: {
            field,
            type: "quantitative",
            title: null,
            axis: { format },
            scale: { zero: false },
          },
        },
      },
      {
        data: { values: [{ l2: fit.l2 }] },
        mark: { type: "rule", strokeDash: [4, 4], color: "#666" },
        encoding: { x: { field: "l2", type: "quantitative" } },
      },
    ],
  });
  return {
    title: `Fit: ${kind}, inner cross-validation on the training faces (dashed: the penalty kept)`,
    hconcat: [panel("log loss", "loss", ".2f"), panel("accuracy", "accuracy", ".0%")],
  } as TopLevelSpec;
}

/** Each model's accuracy with its 95 % interval, against chance, majority and the gender rule. */
export function headlineSpec(models: ModelResult[]): TopLevelSpec {
  const first = models[0]?.metrics;
  if (!first) throw new RangeError("Cannot draw the headline chart without a model");
  const rows = models.map((m) => ({
    what: `model: ${m.kind}`,
    accuracy: m.metrics.accuracy,
    lo: m.metrics.ci95[0],
    hi: m.metrics.ci95[1],
    kind: "model",
  }));
  const baselines = [
    { what: "chance", accuracy: first.chance, kind: "baseline" },
    {
      what: `always '${first.majorityBaseline.label}'`,
      accuracy: first.majorityBaseline.accuracy,
      kind: "baseline",
    },
    ...(first.confounds.genderOnly.accuracy === null ? [] : [{
      what: `gender only (fit on ${first.confounds.genderOnly.fitOn})`,
      accuracy: first.confounds.genderOnly.accuracy,
      kind: "baseline",
    }]),
  ];
  const order = [...rows, ...baselines].map((r) => r.what);
  const y = {
    field: "what",
    type: "nominal",
    sort: order,
    title: null,
    axis: { labelLimit: 320 },
  } as const;
  return {
    title: "Test accuracy with 95 % interval, against the baselines",
    width: 520,
    height: { step: 30 },
    data: { values: [...rows, ...baselines] },
    layer: [
      {
        transform: [{ filter: "datum.kind === 'model'" }],
        mark: { type: "rule", strokeWidth: 2, color: "#4c78a8" },
        encoding: {
          y,
          x: { field: "lo", type: "quantitative" },
          x2: { field: "hi" },
        },
      },
      {
        mark: { type: "point", filled: true, size: 90 },
        encoding: {
          y,
          x: {
            field: "accuracy",
            type: "quantitative",
            axis: { format: ".0%" },
            title: "accuracy",
            scale: { domain: [0, 1] },
          },
          color: {
            field: "kind",
            type: "nominal",
            scale: { domain: ["model", "baseline"], range: ["#4c78a8", "#999"] },
            legend: null,
          },
          tooltip: [{ field: "accuracy", format: ".1%" }],
        },
      },
      {
        mark: { type: "text", align: "left", dx: 8, dy: -9, fontSize: 11 },
        encoding: {
          y,
          x: { field: "accuracy", type: "quantitative" },
          text: { field: "accuracy", type: "quantitative", format: ".1%" },
        },
      },
    ],
  } as TopLevelSpec;
}

/** The seed study's table as a chart: faces per class, real against predicted. */
export function distributionSpec(kind: string, metrics: Metrics): TopLevelSpec {
  const step = 80;
  const longest = Math.max(...metrics.distribution.map((d) => d.label.length));
  const values = metrics.distribution.flatMap((d) => [
    { label: d.label, series: "real", count: d.real },
    { label: d.label, series: "predicted", count: d.predicted },
  ]);
  return {
    title: `Class distribution: ${kind}, real against predicted`,
    data: { values },
    width: { step, for: "position" },
    height: 180,
    mark: "bar",
    encoding: {
      x: {
        field: "label",
        type: "nominal",
        title: null,
        sort: metrics.confusion.labels,
        axis: { labelAngle: longest * 7 > step ? -30 : 0, labelLimit: 240 },
      },
      xOffset: { field: "series", sort: ["real", "predicted"] },
      y: { field: "count", type: "quantitative", title: "faces" },
      color: {
        field: "series",
        type: "nominal",
        sort: ["real", "predicted"],
        scale: { range: ["#9ecae9", "#4c78a8"] },
        title: null,
      },
    },
  } as TopLevelSpec;
}

const NO_FACE_LABELS: Record<string, string> = {
  "image-statistics": "image statistics",
  "masked-face": "photo with the face masked",
  "blurred-face": "heavily blurred face",
  demographics: "estimated age, gender and ethnicity",
  "head-pose": "the head's pose",
};

/** One bar of the checks chart: an accuracy with its 95 % interval. */
interface CheckRow {
  what: string;
  accuracy: number;
  lo: number;
  hi: number;
  kind: "model" | "baseline";
}

/**
 * Is it the face, or the photo? Each model on the random split and on sources it never saw,
 * beside the baselines that never see a face, each with its 95 % interval and chance marked.
 */
export function checksSpec(models: ModelResult[], checks: ValidityChecks): TopLevelSpec {
  const first = models[0]?.metrics;
  if (!first) throw new RangeError("Cannot draw the checks chart without a model");
  return {
    title: "Face models against what sees no face (95 % intervals; the line is chance)",
    width: 520,
    height: { step: 30 },
    layer: checksLayers(checksRows(models, checks), first.chance),
    // Layers with their own data (the chance line) are valid Vega-Lite that the types reject.
  } as unknown as TopLevelSpec;
}

/** The chart's rows, top to bottom: each model, its leave-one-source-out scores, the baselines. */
function checksRows(models: ModelResult[], checks: ValidityChecks): CheckRow[] {
  return [
    ...models.flatMap((m): CheckRow[] => [
      {
        what: `${m.kind}: random split`,
        accuracy: m.metrics.accuracy,
        lo: m.metrics.ci95[0],
        hi: m.metrics.ci95[1],
        kind: "model",
      },
      ...checks.loso.filter((l) => l.kind === m.kind && l.score).map((l): CheckRow => ({
        what: `${m.kind}: leave-one-source-out`,
        accuracy: l.score!.accuracy,
        lo: l.score!.ci95[0],
        hi: l.score!.ci95[1],
        kind: "model",
      })),
    ]),
    ...checks.baselines.map((b): CheckRow => ({
      what: `no face: ${NO_FACE_LABELS[b.key] ?? b.key}`,
      accuracy: b.score.accuracy,
      lo: b.score.ci95[0],
      hi: b.score.ci95[1],
      kind: "baseline",
    })),
  ];
}

/** The interval rules, the accuracy points and their labels, and the dashed chance line. */
function checksLayers(rows: CheckRow[], chance: number): unknown[] {
  const y = {
    field: "what",
    type: "nominal",
    sort: rows.map((r) => r.what),
    title: null,
    axis: { labelLimit: 320 },
  } as const;
  const x = { type: "quantitative", scale: { domain: [0, 1] } } as const;
  return [
    {
      data: { values: rows },
      mark: { type: "rule", strokeWidth: 2 },
      encoding: {
        y,
        x: { ...x, field: "lo" },
        x2: { field: "hi" },
        color: {
          field: "kind",
          type: "nominal",
          scale: { domain: ["model", "baseline"], range: ["#4c78a8", "#e45756"] },
          legend: null,
        },
      },
    },
    {
      data: { values: rows },
      mark: { type: "point", filled: true, size: 90 },
      encoding: {
        y,
        x: { ...x, field: "accuracy", axis: { format: ".0%" }, title: "accuracy" },
        color: { field: "kind", type: "nominal", legend: null },
      },
    },
    {
      data: { values: rows },
      mark: { type: "text", align: "left", dx: 8, dy: -9, fontSize: 11 },
      encoding: {
        y,
        x: { ...x, field: "accuracy" },
        text: { field: "accuracy", type: "quantitative", format: ".1%" },
      },
    },
    {
      data: { values: [{ chance }] },
      mark: { type: "rule", strokeDash: [4, 4], color: "#666" },
      encoding: { x: { ...x, field: "chance" } },
    },
  ];
}
