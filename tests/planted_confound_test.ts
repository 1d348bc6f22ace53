/**
 * The measure of the validity checks: on photos whose faces carry no signal and whose sources
 * differ in style, the face model scores well on the random split, and the report must say
 * why: leave-one-source-out falls to chance, a style baseline matches the model, and the
 * verdict names the style.
 */
import assert from "node:assert/strict";
import { from } from "rxjs";
import { join } from "node:path";
import { exists } from "../core/files.ts";
import { initEngine } from "../models/engine.ts";
import { collectFaces } from "../pipeline/batches.ts";
import { trainClassifier } from "../models/training/train.ts";
import { evaluateModels, type TrainedModel } from "../pipeline/evaluate_run.ts";
import { IMAGE_STATISTIC_NAMES } from "../models/style_features.ts";
import { splitFaces } from "./testdata/synthetic/faces.ts";
import {
  PLANTED_SOURCES,
  plantedFaces,
  type PlantedSource,
  plantedSourceUrl,
} from "./testdata/synthetic/planted.ts";

const EPOCHS = 20;
/** Small batches: 36 training faces make only two steps an epoch at the default 32. */
const BATCH = 8;

Deno.test({
  name:
    "a planted photo-style confound is caught: LOSO at chance, a style baseline as good, the verdict names it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await initEngine();
    const dir = await Deno.makeTempDir({ prefix: "facefield_planted_" });
    try {
      const records = await splitFaces(await plantedFaces(dir), { folds: 4, seed: "planted" });
      assert.equal(records.length, 48, "every planted face is split");
      assert.equal(new Set(records.map((r) => r.identity)).size, 24, "two photos per person");
      const store = await collectFaces(from(records), {});
      const trained: TrainedModel[] = [];
      for (let fold = 0; fold < 4; fold++) {
        const result = await trainClassifier("cnn", store, {
          epochs: EPOCHS,
          patience: EPOCHS,
          batchSize: BATCH,
          seed: 3,
          testFold: fold,
        });
        trained.push({ kind: "cnn", fold, dir: join(dir, `cnn-${fold}`), ...result });
      }
      const sourceOfPage = new Map(
        (Object.keys(PLANTED_SOURCES) as PlantedSource[]).map((
          s,
        ) => [plantedSourceUrl(s), plantedSourceUrl(s)]),
      );
      const out = join(dir, "report");
      const evaluation = await evaluateModels({
        trained,
        records,
        classes: ["alpha", "beta"],
        out,
        store,
        sourceOfPage,
        training: { epochs: EPOCHS, patience: EPOCHS, batchSize: BATCH, seed: 3 },
      });
      for (const model of trained) model.classifier.dispose();

      const cnn = evaluation.metrics.get("cnn")!;
      const checks = evaluation.checks!;
      const loso = checks.loso.find((l) => l.kind === "cnn")!;
      const stats = checks.baselines.find((b) => b.key === "image-statistics")!;
      const masked = checks.baselines.find((b) => b.key === "masked-face")!;
      const figures = `random ${cnn.accuracy}, loso ${loso.score?.accuracy}, ` +
        `stats ${stats.score.accuracy}, masked ${masked.score.accuracy}`;
      console.log(`planted confound: ${figures}`);
      console.log(evaluation.terminalSummary.split("\n").slice(0, 9).join("\n"));

      // The face model scores well on the random split: it learned the style.
      assert.ok(cnn.accuracy >= 0.7 && cnn.beatsChance.significant, figures);
      assert.equal(checks.groupedBy, "source row");
      assert.equal(checks.sources.length, 4);
      // Leave-one-source-out falls to chance.
      assert.ok(loso.possible && loso.score, JSON.stringify(loso));
      assert.equal(loso.perSource.length, 4);
      assert.equal(loso.score.beatsChance.significant, false, figures);
      assert.ok(loso.score.accuracy <= 0.65, figures);
      // A model that sees no face matches the face model.
      assert.ok(stats.score.accuracy >= 0.9, figures);
      assert.equal(stats.versus.cnn!.close, true, figures);
      assert.equal(stats.versus.cnn!.modelBeatsIt.significant, false);
      assert.ok(masked.score.accuracy >= 0.75, figures);
      // The verdict names the style, first in metrics.json, report.html and the terminal.
      const metrics = JSON.parse(await Deno.readTextFile(join(out, "metrics.json")));
      assert.equal(Object.keys(metrics)[0], "verdict");
      // One structured answer: the photo, with every figure it rests on.
      assert.equal(metrics.verdict.conclusion, "photo", metrics.verdict.why);
      assert.equal(metrics.verdict.model, "cnn");
      assert.match(metrics.verdict.headline, /reads the photo, not the face/);
      assert.ok(metrics.verdict.faceAdds.holmP >= 0.05, JSON.stringify(metrics.verdict.faceAdds));
      assert.deepEqual(
        metrics.verdict.ladder.map((r: { key: string }) => r.key),
        ["chance", "demographics", "photo", "face"].filter((k) =>
          k !== "demographics" || metrics.verdict.ladder.some((r: { key: string }) => r.key === k)
        ),
      );
      assert.equal(metrics.checks.verdict, undefined, "the verdict stands first, once");
      // Each model's detail stays, folded under the answer.
      const verdict = (metrics.verdict.evidence.perModel as string[]).join("\n");
      assert.match(verdict, /does not beat: .*image statistics/);
      assert.match(verdict, new RegExp(`comes close: .*(${IMAGE_STATISTIC_NAMES.join("|")})`));
      assert.match(verdict, /leave-one-source-out\): [\d.]+ % .*NOT above chance/);
      assert.match(
        verdict,
        /explains most of its accuracy: (image statistics|the photo with the face masked|the source)/,
      );
      assert.match(evaluation.terminalSummary.split("\n")[0]!, /^verdict \(the photo\): No:/);
      const html = await Deno.readTextFile(join(out, "report.html"));
      assert.ok(html.indexOf("Verdict") < html.indexOf("How good is it?"));
      assert.ok(html.indexOf('class="answer"') < html.indexOf("How good is it?"));
      assert.ok(await exists(join(out, "verdict.png")), "the verdict's chart is drawn");
      assert.ok(html.includes("comes close"));
      assert.ok((await Deno.stat(join(out, "checks.png"))).size > 1000, "the checks' chart");
      // The terminal leads with the answer in two lines, then each model's detail.
      const terminal = evaluation.terminalSummary.split("\n");
      assert.match(terminal[0]!, /^verdict \(the photo\): /);
      assert.match(terminal[1]!, /^ {2}The cnn model scores/);
      assert.equal(terminal[3], "verdict, per model:");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
