import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { terminalSummary, writeReport } from "../report/report.ts";
import { montage } from "../report/montage.ts";
import { confusionSpec, headlineSpec, renderChart } from "../report/charts.ts";
import {
  SAMPLE_CLASSES,
  SAMPLE_DATASET,
  sampleCrops,
  sampleModels,
} from "./testdata/eval/sample_run.ts";

const models = sampleModels();
const crops = await sampleCrops(models);
const dir = await Deno.makeTempDir({ prefix: "facefield-report-" });
/** One report for the file tests: writing it takes seconds. */
const written = writeReport(dir, {
  models,
  faces: crops,
  dataset: SAMPLE_DATASET,
  generatedAt: new Date("2025-01-02T03:04:05Z"),
});
// A failure surfaces in the tests that await it, not as an unhandled rejection.
written.catch(() => {});

Deno.test("writeReport() writes metrics.json, report.html and every PNG", async () => {
  const files = await written;
  assert.equal(files.html, join(dir, "report.html"));
  assert.equal(files.metricsJson, join(dir, "metrics.json"));
  // accuracy chart + per model: confusion, training, distribution, one montage per class.
  assert.equal(files.pngs.length, 1 + models.length * (3 + SAMPLE_CLASSES.length));
  for (const png of files.pngs) {
    const { format, width = 0, height = 0 } = await sharp(png).metadata();
    assert.equal(format, "png", png);
    assert.ok(width > 100 && height > 100, `${png} is ${width}×${height}`);
    assert.ok(png.startsWith(dir));
  }
  const names = files.pngs.map((p) => p.slice(dir.length + 1));
  assert.ok(names.includes("confusion-cnn.png") && names.includes("training-embedding.png"));
  assert.ok(names.includes("faces-embedding-b-med-co-b.png"), "labels become safe file names");

  const saved = JSON.parse(await Deno.readTextFile(files.metricsJson));
  assert.equal(saved.generatedAt, "2025-01-02T03:04:05.000Z");
  assert.deepEqual(saved.dataset, SAMPLE_DATASET);
  assert.deepEqual(
    saved.models.map((m: { kind: string }) => m.kind),
    models.map((m) => m.kind),
  );
  for (const [i, model] of models.entries()) {
    assert.deepEqual(saved.models[i].metrics, JSON.parse(JSON.stringify(model.metrics)));
    assert.deepEqual(saved.models[i].history, model.history);
    assert.equal(saved.models[i].bestEpoch, model.bestEpoch);
  }
});

Deno.test("report.html is self-contained, escaped and leads with the honest numbers", async () => {
  // The last test to read the report removes it.
  try {
    const files = await written;
    const html = await Deno.readTextFile(files.html);
    assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i, "no remote src/href");
    assert.doesNotMatch(html, /url\(\s*["']?(https?:)?\/\//i, "no remote CSS url()");
    assert.doesNotMatch(html, /<script|<link/i, "nothing to load or run");
    const sources = [...html.matchAll(/<img src="([^"]*)"/g)].map((m) => m[1]!);
    assert.equal(sources.length, files.pngs.length, "every PNG is embedded once");
    for (const src of sources) assert.match(src, /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);

    assert.ok(!html.includes("<b>med"), "labels are escaped");
    assert.ok(html.includes("&#60;b&#62;med &#38; co&#60;/b&#62;"));

    const [cnn, embedding] = models;
    const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
    for (const model of [cnn!, embedding!]) {
      const m = model.metrics;
      assert.ok(html.includes(`<p class="big">${pct(m.accuracy)}</p>`));
      assert.ok(html.includes(`95 % CI ${pct(m.ci95[0])} – ${pct(m.ci95[1])}`));
    }
    // The order people read in: verdict, headline, charts, per class, faces, checks, provenance.
    const order = [
      "Verdict",
      "How good is it?",
      "Confusion and class distribution",
      "Per class",
      "Training",
      "Faces the models",
      "Is it the face, or the photo?",
      "Confound check",
      "Data and provenance",
    ].map((heading) => html.indexOf(`<h2>${heading}`));
    assert.ok(order.every((at) => at > 0), `missing section: ${order}`);
    assert.deepEqual(order, [...order].sort((a, b) => a - b));
    assert.ok(html.includes("no_face") && html.includes("sample faculty pages"));
    assert.match(html, /chosen on the training faces/);
    // A report made without the validity checks says so rather than staying silent.
    assert.match(html, /validity checks were not run/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("terminalSummary() shows accuracy ± CI against baselines and the confusion table", () => {
  const text = terminalSummary(models, "/data/report/report.html");
  const m = models[0]!.metrics;
  const pct = (v: number) => `${(v * 100).toFixed(1)} %`;
  assert.ok(text.includes(`cnn: accuracy ${pct(m.accuracy)} (95 % CI ${pct(m.ci95[0])}`));
  assert.ok(
    text.includes(`majority '${m.majorityBaseline.label}' ${pct(m.majorityBaseline.accuracy)}`),
  );
  assert.match(text, /chance 33\.3 %/);
  assert.match(text, /gender-only rule .* \(fit on train\)/);
  for (const [i, label] of m.confusion.labels.entries()) {
    const row = text.split("\n").find((line) => line.trimStart().startsWith(label));
    assert.ok(row, `no confusion row for ${label}`);
    const cells = row.slice(row.indexOf(label) + label.length).trim().split(/\s+/).map(Number);
    assert.deepEqual(cells, m.confusion.counts[i]);
  }
  assert.ok(text.endsWith("report: /data/report/report.html"));
});

Deno.test("renderChart() gives an SVG with its text and a PNG of the same chart", async () => {
  const chart = await renderChart(confusionSpec("cnn", models[0]!.metrics));
  assert.match(chart.svg, /<text[^>]*>Confusion matrix: cnn/);
  const { width = 0, height = 0 } = await sharp(chart.png).metadata();
  assert.ok(width > 200 && height > 200);
  // Not blank: the heatmap puts ink on the page.
  const stats = await sharp(chart.png).stats();
  assert.ok(stats.channels[0]!.stdev > 20, "the chart has content");
  assert.throws(() => headlineSpec([]), RangeError);
});

Deno.test("montage() shows a grey tile for a face without a crop", async () => {
  const lists = models[1]!.metrics.topK[0]!;
  const png = await montage("embedding", lists, new Map());
  const { width = 0, height = 0 } = await sharp(png).metadata();
  assert.ok(width > 300 && height > 300, `${width}×${height}`);
});
