/**
 * A data dir for the web app's tests, with no training: the synthetic records of
 * `buildSyntheticDataDir`, a long source URL (the kind that broke the phone layout), and a
 * metrics.json built here with `computeMetrics` on made-up answers, with or without a verdict,
 * and a verdict chart PNG.
 */
import { join } from "node:path";
import sharp from "sharp";
import { computeMetrics, type ScoredFace } from "../stages/evaluate.ts";
import type { Verdict } from "../stages/verdict.ts";
import { Manifest } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { dataPaths } from "../store/paths.ts";
import { buildSyntheticDataDir, SYNTHETIC_CATEGORIES } from "../commands/bench/serve_data.ts";

export const LONG_SOURCE =
  "https://www.a-rather-long-university-name.example.org/faculty-of-humanities/departments/" +
  "history-and-philosophy-of-science/people/academic-staff?page=1&sort=surname";

/** A verdict as the lead's run writes it (shape of stages/verdict.ts). */
export function sampleVerdict(): Verdict {
  return {
    conclusion: "photo",
    alsoNoFace: false,
    headline: "The photo, not the face, tells the groups apart in this data set.",
    why: "A model that sees no face comes within 2 points of the face model (62 % against 64 %).",
    model: "ensemble",
    modelRule: "the best cross-validated face model",
    chance: 0.25,
    ladder: [
      { key: "chance", label: "chance", accuracy: 0.25, ci95: null, n: 0 },
      { key: "demographics", label: "+ demographics", accuracy: 0.41, ci95: [0.3, 0.52], n: 80 },
      { key: "photo", label: "+ the photo", accuracy: 0.62, ci95: [0.51, 0.72], n: 80 },
      { key: "face", label: "+ the face", accuracy: 0.64, ci95: [0.53, 0.74], n: 80 },
    ],
    faceAdds: null,
    explainedBy: { demographics: 0.4, photo: 0.55 },
    unseenSources: null,
    facesNeeded: null,
    tests: [],
    evidence: { lines: [], perModel: [] },
  };
}

export interface FixtureOptions {
  /** metrics.json's `verdict`: an object, the older lines of text, or left out. */
  verdict?: Verdict | string[];
  /** Write the confusion matrix's ids (runs before them have none). @default true */
  ids?: boolean;
  /** Draw report/verdict.png. @default true */
  chart?: boolean;
}

/**
 * The data dir; each face of the split is "scored" by a made-up model whose answer is a fixed
 * function of its index, so every confusion cell has some faces and some cells none.
 */
export async function webappDataDir(options: FixtureOptions = {}): Promise<{
  root: string;
  faces: string[];
  rejected: string[];
}> {
  const { ids = true, chart = true } = options;
  const root = await Deno.makeTempDir({ prefix: "facefield-webapp-" });
  const built = await buildSyntheticDataDir(root, { faces: 40, rejected: 2 });
  const paths = dataPaths(root);
  const pageLog = await PageLog.open(paths.pages);
  pageLog.record({
    source_url: LONG_SOURCE,
    page_url: LONG_SOURCE,
    category: "history",
    status: "ok",
    reason: "",
    people: "0",
  });
  pageLog.recordComplete(LONG_SOURCE, "history");
  // The history people come from the long URL: in the funnel and in the source filter.
  const manifest = await Manifest.open(paths.manifest);
  for (const row of manifest.rows()) {
    if (row.category === "history") manifest.set({ ...row, page_url: LONG_SOURCE });
  }
  manifest.flushSync();
  const rows = manifest.rows();
  const classes = [...SYNTHETIC_CATEGORIES];
  // Every face of the split, as a cross-validated run scores them all.
  const scored: ScoredFace[] = rows.filter((row) => row.status === "ok").map((row, i) => {
    const guess = i % 3 === 0
      ? (classes.indexOf(row.category) + 1) % 4
      : classes.indexOf(row.category);
    return {
      id: row.id,
      category: row.category,
      probabilities: classes.map((_, c) => (c === guess ? 0.7 : 0.1)),
      grayscale: false,
      fold: i % 4,
    };
  });
  const metrics = computeMetrics(scored, classes, { permutations: 50 });
  if (!ids) delete metrics.confusion.ids;
  const report = {
    ...(options.verdict === undefined ? {} : { verdict: options.verdict }),
    generatedAt: "2026-12-07T16:51:00.000Z",
    checks: null,
    dataset: {
      name: root,
      splits: {},
      folds: 4,
      provenance: { sources: "/somewhere/uni-sources.csv", folds: 4 },
    },
    models: [{ kind: "cnn", bestEpoch: 3, history: [], metrics }],
  };
  await Deno.mkdir(paths.reports, { recursive: true });
  await Deno.writeTextFile(join(paths.reports, "metrics.json"), JSON.stringify(report));
  await Deno.writeTextFile(
    join(paths.reports, "report.html"),
    "<!doctype html><html><head><title>r</title></head><body><h1>facefield evaluation</h1></body></html>",
  );
  if (chart) {
    const png = await sharp({
      create: { width: 900, height: 300, channels: 3, background: "#8ab" },
    }).png().toBuffer();
    await Deno.writeFile(join(paths.reports, "verdict.png"), png);
  }
  return { root, ...built };
}
