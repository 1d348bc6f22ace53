import assert from "node:assert/strict";
import {
  PIPELINE_OPTIONS,
  pipelineFlagSpec,
  pipelineOptionsFromFlags,
  pipelineOptionsHelp,
  resolvePipelineOptions,
} from "../pipeline/options.ts";
import { TRAIN_DEFAULTS } from "../models/training/train.ts";
import { FACE_DEFAULTS } from "../models/faces/faces.ts";

Deno.test("resolvePipelineOptions() takes its defaults from the training and face modules", () => {
  const resolved = resolvePipelineOptions({});
  assert.equal(resolved.patience, TRAIN_DEFAULTS.patience);
  assert.equal(resolved.epochs, TRAIN_DEFAULTS.epochs);
  assert.equal(resolved.batchSize, TRAIN_DEFAULTS.batchSize);
  assert.equal(resolved.size, FACE_DEFAULTS.size);
  assert.equal(resolved.facePercent, FACE_DEFAULTS.facePercent);
  assert.equal(resolved.detector, FACE_DEFAULTS.detector);
  assert.equal(resolved.dataDir, "facefield-data");
  assert.equal(resolved.folds, undefined);
});

Deno.test("the command line and the library resolve to the same options", () => {
  const flags = pipelineOptionsFromFlags({ epochs: "7", ratios: "60/20/20", models: "cnn" });
  const viaCli = resolvePipelineOptions(flags);
  const viaApi = resolvePipelineOptions({
    epochs: 7,
    ratios: { train: 0.6, val: 0.2, test: 0.2 },
    models: ["cnn"],
  });
  assert.deepEqual(viaCli, viaApi);
});

Deno.test("a bad value is one RangeError that names the flag or the key", () => {
  assert.throws(() => pipelineOptionsFromFlags({ epochs: "0" }), /--epochs must be an integer/);
  assert.throws(() => resolvePipelineOptions({ epochs: 0 }), /'epochs' must be an integer/);
  assert.throws(() => pipelineOptionsFromFlags({ detector: "haar" }), /--detector must be one of/);
  assert.throws(() => pipelineOptionsFromFlags({ ratios: "70/10" }), /--ratios/);
  assert.throws(() => pipelineOptionsFromFlags({ ratios: "0/10/20" }), /positive train and test/);
  assert.throws(() => pipelineOptionsFromFlags({ models: "cnn,vgg" }), /--models takes/);
  assert.throws(() => resolvePipelineOptions({ until: "train2" as "train" }), /'until'/);
});

Deno.test("--help shows every flag with the default the run really uses", () => {
  const help = pipelineOptionsHelp();
  const spec = pipelineFlagSpec();
  for (const def of Object.values(PIPELINE_OPTIONS)) {
    assert.ok(help.includes(`--${def.flag}`), def.flag);
    assert.ok(spec[def.flag], def.flag);
  }
  assert.match(help, new RegExp(`--patience N .*\\(default ${TRAIN_DEFAULTS.patience}\\)`));
  assert.equal(spec.refresh?.type, "boolean");
  assert.equal(spec.epochs?.type, "string");
});
