import assert from "node:assert/strict";
import { join } from "node:path";
import { from } from "rxjs";
import { initEngine } from "../models/engine.ts";
import { collectFaces } from "../pipeline/batches.ts";
import { resolvePipelineOptions } from "../pipeline/options.ts";
import { bestOnValidation, trainModels } from "../pipeline/train_run.ts";
import type { EpochStats, LayersClassifier } from "../models/classifier.ts";
import { trainClassifier } from "../models/training/train.ts";
import { splitFaces, syntheticFaces } from "./testdata/synthetic/faces.ts";

await initEngine();

const epoch = (valAccuracy: number, valLoss: number): EpochStats => ({
  epoch: 1,
  loss: 1,
  accuracy: 0.5,
  valAccuracy,
  valLoss,
  seconds: 1,
});

Deno.test("bestOnValidation() keeps the best validation accuracy, then the lower loss, then the first", () => {
  const models = [
    { name: "a", history: [epoch(0.6, 0.5), epoch(0.7, 0.6)], bestEpoch: 2 },
    { name: "b", history: [epoch(0.8, 0.4)], bestEpoch: 1 },
    { name: "c", history: [epoch(0.8, 0.3)], bestEpoch: 1 },
    { name: "d", history: [epoch(0.9, 0.2), epoch(0.5, 0.9)], bestEpoch: 2 },
    { name: "e", history: [epoch(0.8, 0.3)], bestEpoch: 1 },
  ];
  // d's kept epoch is its second (0.5), not its best-looking first.
  assert.equal(bestOnValidation(models).name, "c");
  assert.equal(bestOnValidation(models.slice(0, 2)).name, "b");
});

/** Synthetic faces (24 a class, no crops) dealt into 3 folds, and their FaceStore. */
async function foldedFaces(dir: string, seed: number) {
  const records = await splitFaces(
    await syntheticFaces(dir, { perClass: 24, crops: false, seed }),
    { folds: 3 },
  );
  return { records, store: await collectFaces(from(records), { crops: false }) };
}

Deno.test({
  name: "trainModels() with folds keeps the best fold's model for predict and trains no other",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_train_run_" });
    try {
      const { records, store } = await foldedFaces(dir, 4);
      const saved: string[] = [];
      const modelsDir = join(dir, "models");
      const trained = await trainModels(
        {
          store,
          records,
          classes: ["biology", "history", "physics"],
          modelsDir,
          onSaved: (path) => saved.push(path),
        },
        resolvePipelineOptions({ models: ["embedding"], folds: 3, epochs: 4 }),
      );
      assert.deepEqual(trained.map((m) => m.fold), [0, 1, 2]);
      const kept = bestOnValidation(trained);
      const final = JSON.parse(
        await Deno.readTextFile(join(modelsDir, "embedding", "metadata.json")),
      );
      const keptMetadata = JSON.parse(await Deno.readTextFile(join(kept.dir, "metadata.json")));
      assert.deepEqual(final, keptMetadata);
      assert.equal(final.data.testFold, kept.fold);
      assert.deepEqual(
        await Deno.readFile(join(modelsDir, "embedding", "weights.bin")),
        await Deno.readFile(join(kept.dir, "weights.bin")),
      );
      assert.equal(saved.length, 4, "three fold models and predict's copy, nothing trained again");
      for (const model of trained) model.classifier.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "trainModels() fits the probes beside the embedding head: the options' order, and each probe as fitted alone",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield_train_run_" });
    try {
      const { records, store } = await foldedFaces(dir, 7);
      const trained = await trainModels(
        {
          store,
          records,
          classes: ["biology", "history", "physics"],
          modelsDir: join(dir, "models"),
        },
        resolvePipelineOptions({
          models: ["descriptor", "embedding"],
          folds: 3,
          epochs: 3,
        }),
      );
      assert.deepEqual(
        trained.map((m) => `${m.kind} ${m.fold}`),
        [
          "descriptor 0",
          "descriptor 1",
          "descriptor 2",
          "embedding 0",
          "embedding 1",
          "embedding 2",
        ],
      );
      for (const model of trained.filter((m) => m.kind === "descriptor")) {
        const alone = await trainClassifier("descriptor", store, {
          testFold: model.fold!,
          probeThread: false,
        });
        const weights = (c: typeof alone.classifier) =>
          (c as LayersClassifier).model.getWeights().map((w) => [...w.dataSync()]);
        assert.deepEqual(weights(model.classifier as LayersClassifier), weights(alone.classifier));
        assert.equal(model.classifier.metadata.fit?.l2, alone.classifier.metadata.fit?.l2);
        alone.classifier.dispose();
      }
      for (const model of trained) model.classifier.dispose();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
