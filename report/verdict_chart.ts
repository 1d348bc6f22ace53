/**
 * The verdict's one chart: where the accuracy comes from. Chance, then what the estimated
 * demographics add, then the photo, then the face, each bar with its 95 % interval on the same
 * held-out faces; beside them the same on sources never seen in training.
 */
import type { TopLevelSpec } from "vega-lite";
import type { Verdict } from "../stages/verdict.ts";

interface Bar {
  what: string;
  part: "random split" | "sources it never saw";
  step: "chance" | "demographics" | "photo" | "face" | "model";
  accuracy: number;
  lo: number | null;
  hi: number | null;
}

const COLOURS = {
  domain: ["chance", "demographics", "photo", "face", "model"],
  range: ["#bab0ac", "#f58518", "#e45756", "#4c78a8", "#72b7b2"],
};

/** The bars, top to bottom. */
function barsOf(verdict: Verdict): Bar[] {
  const bars: Bar[] = verdict.ladder.map((rung) => ({
    what: rung.label,
    part: "random split",
    step: rung.key,
    accuracy: rung.accuracy,
    lo: rung.ci95?.[0] ?? null,
    hi: rung.ci95?.[1] ?? null,
  }));
  const unseen = verdict.unseenSources;
  if (unseen) {
    const add = (what: string, step: Bar["step"], accuracy: number | null) => {
      if (accuracy !== null) {
        bars.push({ what, part: "sources it never saw", step, accuracy, lo: null, hi: null });
      }
    };
    add("new sources: no face", "photo", unseen.noFaceBalancedAccuracy);
    bars.push({
      what: `new sources: ${unseen.model}`,
      part: "sources it never saw",
      step: "model",
      accuracy: unseen.balancedAccuracy,
      lo: unseen.ci95[0],
      hi: unseen.ci95[1],
    });
    // The face model the face's test on new sources rests on, where it is another.
    const evidence = unseen.faceModels.find((m) =>
      m.model === unseen.faceEvidence?.model && m.model !== unseen.model
    );
    if (evidence) add(`new sources: ${evidence.model}`, "model", evidence.balancedAccuracy);
  }
  return bars;
}

/** The ladder as horizontal bars with intervals and labels, and a dashed line at chance. */
export function verdictSpec(verdict: Verdict): TopLevelSpec {
  const bars = barsOf(verdict);
  const y = {
    field: "what",
    type: "nominal",
    sort: bars.map((b) => b.what),
    title: null,
    axis: { labelLimit: 280 },
  } as const;
  const x = { type: "quantitative", scale: { domain: [0, 1] } } as const;
  return {
    title: {
      text: "Where the accuracy comes from (95 % intervals; dashed: chance)",
      subtitle: `held-out faces: ${verdict.ladder.at(-1)?.n ?? 0}` +
        (verdict.unseenSources ? `; on new sources: ${verdict.unseenSources.n}` : ""),
    },
    width: 420,
    height: { step: 28 },
    layer: [
      {
        data: { values: bars },
        mark: { type: "bar", height: 18 },
        encoding: {
          y,
          x: { ...x, field: "accuracy", axis: { format: ".0%" }, title: "accuracy" },
          color: { field: "step", type: "nominal", scale: COLOURS, legend: null },
          opacity: {
            field: "part",
            type: "ordinal",
            scale: { domain: ["random split", "sources it never saw"], range: [1, 0.6] },
            legend: null,
          },
        },
      },
      {
        data: { values: bars.filter((b) => b.lo !== null) },
        mark: { type: "rule", strokeWidth: 2, color: "#222" },
        encoding: { y, x: { ...x, field: "lo" }, x2: { field: "hi" } },
      },
      {
        data: { values: bars },
        mark: { type: "text", align: "left", dx: 4, dy: -10, fontSize: 11 },
        encoding: {
          y,
          x: { ...x, field: "accuracy" },
          text: { field: "accuracy", type: "quantitative", format: ".1%" },
        },
      },
      {
        data: { values: [{ chance: verdict.chance }] },
        mark: { type: "rule", strokeDash: [4, 4], color: "#666" },
        encoding: { x: { ...x, field: "chance" } },
      },
    ],
    // Layers with their own data are valid Vega-Lite that the types reject.
  } as unknown as TopLevelSpec;
}
