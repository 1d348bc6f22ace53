import assert from "node:assert/strict";
import { join } from "node:path";
import { bestModelDir } from "../pipeline/predictor.ts";

/** A report's metrics.json: each kind's accuracy, cross-validated or on one split. */
const metrics = (accuracies: Record<string, number>, folds: boolean) =>
  JSON.stringify({
    models: Object.entries(accuracies).map(([kind, accuracy]) => ({
      kind,
      metrics: folds ? { accuracy, folds: { mean: accuracy, perFold: [] } } : { accuracy },
    })),
  });

Deno.test("bestModelDir() ranks by cross-validated accuracy, never by one split's test faces", async () => {
  const data = await Deno.makeTempDir();
  assert.equal(await bestModelDir(data), undefined, "no models, no answer");
  for (const kind of ["cnn", "embedding", "descriptor", "portrait"]) {
    await Deno.mkdir(join(data, "models", kind), { recursive: true });
  }
  const models = (kind: string) => join(data, "models", kind);
  assert.equal(await bestModelDir(data), models("descriptor"), "without a report: the fixed order");
  await Deno.mkdir(join(data, "report"));
  const write = (text: string) => Deno.writeTextFile(join(data, "report", "metrics.json"), text);

  await write(metrics({ cnn: 0.7, embedding: 0.5, descriptor: 0.6, portrait: 0.9 }, true));
  assert.equal(await bestModelDir(data), models("portrait"), "the best mean over the folds");
  await write(metrics({ cnn: 0.7, embedding: 0.5, descriptor: 0.6, portrait: 0.65 }, true));
  assert.equal(await bestModelDir(data), models("cnn"));
  // One split: its test accuracy picks nothing; the face models' order does.
  await write(metrics({ cnn: 0.9, embedding: 0.5, descriptor: 0.6, portrait: 0.95 }, false));
  assert.equal(await bestModelDir(data), models("descriptor"));
  await Deno.remove(models("descriptor"), { recursive: true });
  assert.equal(await bestModelDir(data), models("embedding"), "a deleted model is skipped");
  await Deno.remove(models("embedding"), { recursive: true });
  await Deno.remove(models("cnn"), { recursive: true });
  assert.equal(await bestModelDir(data), models("portrait"), "a photo model only when alone");
  await Deno.remove(data, { recursive: true });
});
