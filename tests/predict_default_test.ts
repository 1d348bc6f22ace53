import assert from "node:assert/strict";
import { join } from "node:path";
import { bestModelDir } from "../pipeline/predictor.ts";

Deno.test("bestModelDir() picks the model with the best test accuracy, else the cnn", async () => {
  const data = await Deno.makeTempDir();
  assert.equal(await bestModelDir(data), undefined, "no models, no answer");
  for (const kind of ["cnn", "embedding"]) {
    await Deno.mkdir(join(data, "models", kind), { recursive: true });
  }
  assert.equal(await bestModelDir(data), join(data, "models", "cnn"), "without a report: the cnn");
  await Deno.mkdir(join(data, "report"));
  const metrics = (cnn: number, embedding: number) =>
    JSON.stringify({
      models: [
        { kind: "cnn", metrics: { accuracy: cnn } },
        { kind: "embedding", metrics: { accuracy: embedding } },
      ],
    });
  await Deno.writeTextFile(join(data, "report", "metrics.json"), metrics(0.5, 0.65));
  assert.equal(await bestModelDir(data), join(data, "models", "embedding"));
  await Deno.writeTextFile(join(data, "report", "metrics.json"), metrics(0.7, 0.65));
  assert.equal(await bestModelDir(data), join(data, "models", "cnn"));
  await Deno.remove(join(data, "models", "cnn"), { recursive: true });
  assert.equal(
    await bestModelDir(data),
    join(data, "models", "embedding"),
    "a deleted model is skipped",
  );
});
