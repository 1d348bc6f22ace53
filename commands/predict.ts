/**
 * `predict`: classifies the faces in images piped on stdin (one image) or named by the lines of
 * a text stream (file paths or http(s) URLs, answered as each line arrives).
 *
 * This module is what `main.ts` loads to run it, and it loads almost nothing: it starts the
 * session thread (models/native/session_host.ts) first, so that ONNX Runtime and the face nets'
 * sessions load on the other core while this thread loads tfjs, sharp and the model
 * (`predict_run.ts`, imported only then) and reads stdin.
 */
import { join } from "node:path";
import type { Command, ParsedValues } from "./cli.ts";
import { DETECTOR_NAMES } from "../models/faces/face_defaults.ts";
import { graphCacheDir } from "../models/native/graph_cache.ts";
import { startSessionHost, stopSessionHost } from "../models/native/session_host.ts";

/** `pipeline/predictor.ts`'s DEFAULT_DATA_DIRS, spelt out so that --help loads none of it. */
export const DEFAULT_DATA_DIRS_TEXT = "facefield-data, facefield-demo";

/**
 * Imports a module by a specifier Deno cannot follow ahead of time (as commands/mod.ts does):
 * `deno run` would otherwise prepare predict_run.ts's whole graph before the thread starts.
 */
function load(specifier: string): Promise<unknown> {
  return import(new URL(specifier, import.meta.url).href);
}

/**
 * CPU seconds of this process's busiest threads by name (Linux: /proc/self/task), for
 * `--verbose`: on an idle machine the main thread's is about the wall time, as long as the
 * session thread's (`worker-…`) is smaller. Empty where /proc cannot be read.
 */
function threadCpu(): string {
  try {
    const threads: [string, number][] = [];
    for (const task of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(`/proc/self/task/${task.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      threads.push([name, (Number(fields[11]) + Number(fields[12])) / 100]);
    }
    return threads.filter(([, cpu]) => cpu >= 0.05).sort((a, b) => b[1] - a[1])
      .map(([name, cpu]) => `${name} ${cpu.toFixed(2)}`).join(", ");
  } catch {
    return "";
  }
}

async function runPredict(values: ParsedValues, positionals: string[]): Promise<number> {
  // Only cached graphs open on the session thread; with no cache or no ONNX Runtime, no thread.
  const cacheDir = graphCacheDir();
  if (cacheDir !== undefined && Deno.env.get("FACEFIELD_ENGINE") !== "wasm") {
    // The graphs the last predict opened start opening now (see startSessionHost).
    startSessionHost(join(cacheDir, "predict-sessions.json"));
  }
  try {
    const work = (await load("./predict_run.ts")) as typeof import("./predict_run.ts");
    return await work.runPredict(values, positionals);
  } finally {
    if (values.verbose === true) {
      const threads = threadCpu();
      if (threads) console.error(`CPU s by thread (the main one is "deno"): ${threads}`);
    }
    stopSessionHost();
  }
}

export const predictCommand: Command = {
  name: "predict",
  summary: "predict the group of the faces in piped images, files or URLs (one JSON line each)",
  usage: `
usage: deno task predict [options] < photo.jpg          one image on stdin (any format)
       find photos -name '*.jpg' | deno task predict    lines of file paths or http(s) URLs
       deno task predict [options] FILE…                 files named on the command line

Prints one line per face, largest first, as soon as each input is read:
  {"input":"a.jpg","result":"face","face":1,"faces":1,"box":{"x":…,"y":…,"width":…,"height":…},
   "score":0.99,"label":"cs","probability":0.71,"probabilities":{"cs":0.71,"law":0.29}}
An image without a face gives {"input":…,"result":"no_face","reason":"no_face"} unless
--whole-image is set; then its centre square is classified ("result":"whole_image").
stdin is read as one image when its first bytes are an image's magic number, else as lines.

Bad input (not an image, a missing file, an unreachable URL, over 10 MiB or 40 million pixels,
SVG): one image or one named file gives {"input":…,"error":"…"} on stdout, a message on stderr
and exit code 1; in a stream the line gives
{"input":…,"error":"not_an_image: …"}, the stream goes on, and the exit code is 1 at the end.
A missing or incompatible model folder always fails at once.

options:
  --model DIR        trained model folder (model.json, weights.bin, metadata.json)
  --data DIR         without --model: this data dir's model with the best cross-validated
                     accuracy (after a run on one split, the ensemble, else the first face model
                     it has: never chosen by the test faces); default: the first of
                     ${DEFAULT_DATA_DIRS_TEXT} that has one
  --whole-image      classify the whole image when no face is found
  --format F         json (default) or table (for people)
  --top K            list only the K most likely classes per face (default all)
  --detector D       face detector: ${DETECTOR_NAMES.join(", ")} (default auto)
  --verbose          cold start, per-input timings and CPU by thread on stderr
`,
  options: {
    model: { type: "string" },
    data: { type: "string" },
    "whole-image": { type: "boolean" },
    format: { type: "string" },
    top: { type: "string" },
    detector: { type: "string" },
    verbose: { type: "boolean" },
  },
  allowPositionals: true,
  run: runPredict,
};
