/**
 * A deterministic evaluation to report on: two models over 90 scored test faces of three
 * classes (one label with markup, to check escaping), genders, grayscale photos, training
 * history, and face crops cut from face-api's demo photos.
 */
import sharp from "sharp";
import { computeMetrics, type ScoredFace } from "../../../stages/evaluate.ts";
import type { DatasetSummary, ModelResult } from "../../../report/report.ts";
import { demoImagePaths } from "../../../models/faces/package_files.ts";

export const SAMPLE_CLASSES = ["computer science", "law", "<b>med & co</b>"];

/** Park–Miller: the same faces on every run without a seeded-random dependency. */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 48271) % 2147483647) / 2147483647;
}

function scoredFaces(skill: number, seed: number): ScoredFace[] {
  const next = random(seed);
  return Array.from({ length: 90 }, (_, i) => {
    const actual = i % 3;
    const raw = SAMPLE_CLASSES.map((_, c) => next() + (c === actual ? skill : 0));
    const total = raw.reduce((a, b) => a + b, 0);
    return {
      id: (0x10000000 + i * 7919).toString(16),
      category: SAMPLE_CLASSES[actual]!,
      probabilities: raw.map((r) => r / total),
      gender: (i % 5 < 2 ? "female" : "male") as "male" | "female",
      grayscale: i % 9 === 0,
    };
  });
}

export function sampleModels(): ModelResult[] {
  const genderFit = Array.from({ length: 30 }, (_, i) => ({
    gender: (i % 2 ? "male" : "female") as "male" | "female",
    category: SAMPLE_CLASSES[i % 3]!,
  }));
  return (["cnn", "embedding"] as const).map((kind, m) => {
    const faces = scoredFaces(m === 0 ? 0.15 : 0.45, 7 + m);
    const history = Array.from({ length: 12 }, (_, e) => ({
      epoch: e + 1,
      loss: 1.1 / (1 + e * 0.3),
      accuracy: 0.34 + e * 0.04,
      valLoss: 1.05 - e * 0.02,
      valAccuracy: m === 0 ? 0.33 + e * 0.01 : 0.36 + e * 0.025,
      seconds: 1,
    }));
    return {
      kind,
      metrics: computeMetrics(faces, SAMPLE_CLASSES, {
        trainDistribution: { "computer science": 70, law: 66, "<b>med & co</b>": 64 },
        genderFit,
      }),
      history,
      bestEpoch: m === 0 ? 7 : 11,
    };
  });
}

/** A crop per face id: the demo photos, squared, in turn. */
export async function sampleCrops(models: ModelResult[]): Promise<Map<string, Uint8Array>> {
  const photos = await Promise.all(
    demoImagePaths().map(async (path) =>
      new Uint8Array(await sharp(path).resize(128, 128, { fit: "cover" }).png().toBuffer())
    ),
  );
  const ids = new Set(
    models.flatMap((m) =>
      m.metrics.topK.flatMap((t) => [...t.truePositives, ...t.falseNegatives, ...t.falsePositives])
    ).map((f) => f.id),
  );
  return new Map([...ids].map((id, i) => [id, photos[i % photos.length]!]));
}

export const SAMPLE_DATASET: DatasetSummary = {
  name: "sample faculty pages",
  splits: {
    train: { "computer science": 70, law: 66, "<b>med & co</b>": 64 },
    val: { "computer science": 10, law: 9, "<b>med & co</b>": 9 },
    test: { "computer science": 30, law: 30, "<b>med & co</b>": 30 },
  },
  dropped: { no_face: 12, http_404: 3, face_too_small: 2 },
  provenance: { sources: "sources.csv", detector: "auto", "face settings": "3f2a9c1b0d4e" },
};
