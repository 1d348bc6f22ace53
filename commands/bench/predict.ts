/** `bench:predict`: cold start (process start to first answer) and warm per-face figures. */
import { parse } from "csv-parse/sync";
import { missingShared, sharedPath } from "../../core/shared_data.ts";
import { type Command, intOption, type ParsedValues } from "../cli.ts";
import { demoImagePaths } from "../../models/faces/package_files.ts";
import { emptyTimings, type FaceTimings, loadFaceModels } from "../../models/faces/faces.ts";
import { initEngine } from "../../models/engine.ts";
import { DEFAULT_DATA_DIRS, Predictor } from "../../pipeline/predictor.ts";
import { openClassifier, resolveModelDir } from "../predict_run.ts";
import { machineLoad } from "./peer.ts";

function stats(samples: number[]): { median: number; p90: number; mean: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return {
    median: at(0.5),
    p90: at(0.9),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
  };
}

/** Wall time of a fresh `main.ts predict` process on one image, and its own cold-start line. */
async function coldStartRun(modelDir: string, image: string): Promise<string> {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "predict", "--model", modelDir, "--verbose", image],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
  const { code, stderr } = await child.output();
  const wall = performance.now() - started;
  const text = new TextDecoder().decode(stderr);
  if (text.includes("unknown command 'predict'")) {
    return "skipped: main.ts does not list the predict command yet";
  }
  if (code !== 0) {
    return `cold run failed (exit ${code}): ${text.trim().split("\n").at(-1) ?? ""}`;
  }
  const line = text.split("\n").find((l) => l.startsWith("cold start:")) ?? "";
  return `fresh process, one image: ${wall.toFixed(0)} ms wall; ${line}`;
}

/**
 * Portraits, as predict mostly sees them: the first 30 congress dev portraits where ../shared
 * has them, else face-api's six demo photos (group photos: many small faces, so the detector
 * falls back to SSD and dominates the per-face time).
 */
async function defaultImages(): Promise<{ images: string[]; label: string }> {
  if (!missingShared("data/congress/people.csv")) {
    const rows = parse(await Deno.readTextFile(sharedPath("data/congress/people.csv")), {
      columns: true,
    }) as { image: string; set: string }[];
    const images = rows.filter((row) => row.set === "dev").slice(0, 30)
      .map((row) => sharedPath(`data/congress/${row.image}`));
    return { images, label: "congress dev portraits" };
  }
  return { images: demoImagePaths(), label: "face-api demo photos" };
}

async function runBench(values: ParsedValues, positionals: string[]): Promise<number> {
  const runs = intOption(values, "runs", 5, { min: 1, max: 1000 });
  const modelDir = await resolveModelDir(values);
  const { images, label } = positionals.length
    ? { images: positionals, label: "named images" }
    : await defaultImages();
  const commandStart = performance.now();
  await initEngine();
  const classifier = await openClassifier(modelDir);
  await loadFaceModels();
  const loaded = performance.now();
  const timings = emptyTimings();
  const predictor = new Predictor(classifier, { timings, wholeImage: true });
  const files = await Promise.all(images.map((path) => Deno.readFile(path)));
  try {
    let started = performance.now();
    await predictor.predict(images[0]!, files[0]!);
    const firstMs = performance.now() - started;
    for (const key of Object.keys(timings) as (keyof FaceTimings)[]) timings[key] = 0;
    predictor.classifyMs = 0;
    const perFace: number[] = [];
    let faces = 0;
    for (let run = 0; run < runs; run++) {
      for (const [i, bytes] of files.entries()) {
        started = performance.now();
        const lines = await predictor.predict(images[i]!, bytes);
        const ms = performance.now() - started;
        faces += lines.length;
        perFace.push(ms / Math.max(1, lines.length));
      }
    }
    const s = stats(perFace);
    const parts = Object.entries(timings).map(([k, v]) => `${k} ${(v / faces).toFixed(1)}`);
    console.log(
      [
        `bench:predict on ${classifier.metadata.kind} model ${modelDir}, ${images.length} ${label} × ${runs} runs, ${faces} faces`,
        `cold start in this process: ${loaded.toFixed(0)} ms from process start to models loaded ` +
        `(module loading ${commandStart.toFixed(0)} ms, engine + model + face nets ${
          (loaded - commandStart).toFixed(0)
        } ms); first image ${firstMs.toFixed(0)} ms`,
        `warm, per face: median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms, mean ${
          s.mean.toFixed(1)
        } ms (all faces of an image found and classified, divided by their number)`,
        `  of which per face (ms): ${parts.join(", ")}, classify ${
          (predictor.classifyMs / faces).toFixed(1)
        }`,
        `cold start, ${values["skip-cold"] ? "skipped" : await coldStartRun(modelDir, images[0]!)}`,
        machineLoad().warning ?? `load average ${machineLoad().load_average.join(" ")}: idle`,
      ].join("\n"),
    );
    return 0;
  } finally {
    classifier.dispose();
  }
}

export const benchPredictCommand: Command = {
  name: "bench:predict",
  summary: "measure predict: cold start and warm time per face",
  usage: `
usage: deno task bench:predict [--model DIR] [--runs N] [IMAGE…]

Loads the model and face nets, predicts every image once to warm up, then N times more, and
prints the cold start (process start to models loaded, and a fresh 'main.ts predict' process
on one image end to end) and the warm time per face (median, p90, mean, and its parts).
Images default to the first 30 congress dev portraits (../shared), else face-api's six demo
photos in node_modules (group photos).

options:
  --model DIR   model folder (default: the best model of ${DEFAULT_DATA_DIRS.join(" or ")})
  --runs N      warm passes over the images (default 5)
  --skip-cold   do not start a fresh process for the cold start
`,
  options: {
    model: { type: "string" },
    runs: { type: "string" },
    "skip-cold": { type: "boolean" },
  },
  allowPositionals: true,
  run: runBench,
};
