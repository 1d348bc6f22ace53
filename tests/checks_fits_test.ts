/** The checks' linear fits in worker threads: the same answers as in this thread. */
import assert from "node:assert/strict";
import type { SplitRecord } from "../core/types.ts";
import { seededUniform } from "../core/statistics.ts";
import {
  type LinearFitAnswer,
  type LinearFitData,
  linearFitTasks,
} from "../pipeline/checks_fits.ts";
import { runLinearFits } from "../pipeline/checks_fits_pool.ts";

/** 120 faces in 2 classes, 3 folds and 4 sources; the descriptor and the statistics carry the class. */
function data(): LinearFitData {
  const random = seededUniform(4);
  const n = 120;
  const label = (i: number) => i % 2;
  const records = Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    category: `c${label(i)}`,
    identity: `p${i}`,
    fold: i % 3,
    split: "train",
    faceAngle: 0,
  })) as unknown as SplitRecord[];
  const vector = (length: number, i: number, signal: number) =>
    Array.from({ length }, (_, j) => random() + (j === 0 ? signal * label(i) : 0));
  return {
    classes: ["c0", "c1"],
    records,
    faces: records.map((r, i) => ({
      id: r.id,
      descriptor: Float32Array.from(vector(8, i, 1)),
      embeddings: {},
    })),
    rows: records.map((r, i) => ({
      id: r.id,
      person: r.identity,
      label: label(i),
      group: r.fold!,
      features: {
        "image-statistics": vector(5, i, 0.8),
        "masked-face": vector(30, i, 0),
        "blurred-face": vector(12, i, 0),
      },
    })),
    runs: [["s0", "s1"], ["s2", "s3"]],
    sources: new Map(records.map((r, i) => [r.id, `s${i % 4}`])),
  };
}

const withoutTime = (answers: LinearFitAnswer[]) => answers.map(({ seconds: _, ...a }) => a);

Deno.test("runLinearFits(): two worker threads give the answers this thread gives", async () => {
  const input = data();
  const tasks = linearFitTasks(["image-statistics", "masked-face", "blurred-face"], "both");
  assert.deepEqual(tasks.map((t) => t.kind === "ladder" ? t.on : t.key), [
    "unseen",
    "random",
    "masked-face",
    "blurred-face",
    "image-statistics",
  ]);
  const here = await runLinearFits(input, tasks, 0);
  const threads = await runLinearFits(input, tasks, 2);
  assert.deepEqual(withoutTime(threads), withoutTime(here));
  const statistics = here.find((a) => a.kind === "baseline" && a.key === "image-statistics")!;
  assert.equal(statistics.kind === "baseline" && statistics.predictions.size, 120);
  const unseen = here.find((a) => a.kind === "ladder" && a.on === "unseen")!;
  // Every face is in a held-out source's run, and the descriptor carries the class there too.
  assert.equal(unseen.kind === "ladder" && unseen.predictions!.actual.size, 120);
  const withFace = unseen.kind === "ladder" ? unseen.predictions!.withFace : new Map();
  const right = [...withFace].filter(([id, p]) => p === Number(id.slice(1)) % 2).length;
  assert.ok(right / 120 > 0.8, `the face's stack got ${right} of 120 right`);
  assert.deepEqual(linearFitTasks(["image-statistics"], "none"), [
    { kind: "baseline", key: "image-statistics" },
  ]);
});
