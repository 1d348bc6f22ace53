/**
 * `predict`: classifies the faces in images piped on stdin (one image) or named by the lines of
 * a text stream (file paths or http(s) URLs, answered as each line arrives), and
 * `bench:predict`: cold start and warm per-face figures.
 */
import { join } from "node:path";
import { type Command, fail, intOption, log, type ParsedValues, stringOption } from "./cli.ts";
import { HttpClient } from "./http.ts";
import { sniffImageType } from "../stages/download_images.ts";
import { type Classifier, loadClassifier, ModelLoadError } from "../models/classifier.ts";
import {
  describeWholeImage,
  DETECTOR_NAMES,
  type DetectorName,
  emptyTimings,
  type ExtractedFace,
  extractFaces,
  FaceInputError,
  type FaceTimings,
  loadFaceModels,
} from "../models/faces.ts";
import { initEngine } from "../models/engine.ts";
import type { Box } from "./types.ts";

/** The data dirs searched, in order, when neither `--model` nor `--data` is given. */
export const DEFAULT_DATA_DIRS = ["facefield-data", "facefield-demo"];

/**
 * The data dir's model that evaluated best (highest test accuracy in its report's metrics.json);
 * without a report, its cnn, else its embedding model.
 */
export async function bestModelDir(dataDir: string): Promise<string | undefined> {
  const isDir = (path: string) => Deno.stat(path).then((s) => s.isDirectory, () => false);
  const kinds: { kind: string; accuracy: number }[] = [];
  try {
    const report = JSON.parse(await Deno.readTextFile(join(dataDir, "report", "metrics.json")));
    for (const model of report.models ?? []) {
      const accuracy = model?.metrics?.folds?.mean ?? model?.metrics?.accuracy;
      if (typeof model?.kind === "string" && typeof accuracy === "number") {
        kinds.push({ kind: model.kind, accuracy });
      }
    }
  } catch {
    // No report yet: fall back to the fixed order below.
  }
  kinds.sort((a, b) => b.accuracy - a.accuracy);
  for (const kind of [...kinds.map((k) => k.kind), "cnn", "embedding"]) {
    const dir = join(dataDir, "models", kind);
    if (await isDir(dir)) return dir;
  }
  return undefined;
}

/** Largest image accepted from a file, a URL or stdin. */
const MAX_IMAGE_BYTES = 50 * 1024 * 1024;

/** One line of output: a face, a whole image, no face, or an input that failed. */
export type PredictionLine =
  | {
    input: string;
    result: "face" | "whole_image";
    /** 1-based index of the face in the image, largest first. */
    face: number;
    faces: number;
    box: Box;
    /** Detector score; 0 for the whole image. */
    score: number;
    label: string;
    probability: number;
    /** Class → probability, most likely first (top k with `--top`). */
    probabilities: Record<string, number>;
  }
  | { input: string; result: "no_face"; reason: string }
  | { input: string; error: string };

/** An input that cannot be predicted; `message` starts with a code (`not_an_image: …`). */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

export interface PredictorOptions {
  /**
   * Classify the whole image (its centre square) when no face is found.
   * @default false
   */
  wholeImage?: boolean;
  /**
   * Classes listed per face, most likely first.
   * @default all classes
   */
  top?: number;
  /**
   * Face detector.
   * @default "auto"
   */
  detector?: DetectorName;
  /** Adds the milliseconds spent per part of the face work. */
  timings?: FaceTimings;
}

const round = (value: number, digits: number) => Number(value.toFixed(digits));

/** Turns image bytes into result lines with a loaded classifier. */
export class Predictor {
  readonly #classifier: Classifier;
  readonly #wholeImage: boolean;
  readonly #top: number;
  readonly #detector: DetectorName;
  readonly #timings: FaceTimings | undefined;
  /** Milliseconds spent in the classifier, summed. */
  classifyMs = 0;

  constructor(classifier: Classifier, options: PredictorOptions = {}) {
    const classes = classifier.metadata.classes.length;
    const { wholeImage = false, top = classes, detector = "auto", timings } = options;
    if (!Number.isInteger(top) || top < 1) {
      throw new RangeError(`'top' must be a positive integer: got ${top}`);
    }
    if (!DETECTOR_NAMES.includes(detector)) {
      throw new RangeError(
        `'detector' must be one of ${DETECTOR_NAMES.join(", ")}: got ${detector}`,
      );
    }
    this.#classifier = classifier;
    this.#wholeImage = wholeImage;
    this.#top = Math.min(top, classes);
    this.#detector = detector;
    this.#timings = timings;
  }

  /** Result lines for one image: one per face, largest first. Throws `InputError` on bad bytes. */
  async predict(input: string, bytes: Uint8Array): Promise<PredictionLine[]> {
    const sniffed = sniffImageType(bytes);
    if (bytes.length === 0) throw new InputError("not_an_image: the input is empty");
    if (sniffed.kind === "unknown") {
      throw new InputError("not_an_image: the bytes match no image format");
    }
    if (sniffed.kind === "unsupported") {
      throw new InputError(`unsupported_format: ${sniffed.format} images cannot be read`);
    }
    let faces: ExtractedFace[];
    let result: "face" | "whole_image" = "face";
    try {
      const extraction = await extractFaces(bytes, {
        allFaces: true,
        detector: this.#detector,
        timings: this.#timings,
      });
      faces = extraction.faces;
      if (faces.length === 0) {
        if (!this.#wholeImage) {
          return [{ input, result: "no_face", reason: extraction.rejection ?? "no_face" }];
        }
        faces = [await describeWholeImage(bytes)];
        result = "whole_image";
      }
    } catch (error) {
      if (error instanceof FaceInputError) throw new InputError(error.message);
      throw error;
    }
    const started = performance.now();
    const probabilities = await this.#classifier.predict(faces);
    this.classifyMs += performance.now() - started;
    const classes = this.#classifier.metadata.classes;
    return faces.map((face, i) => {
      const ranked = [...probabilities[i]!]
        .map((p, c) => [classes[c]!, p] as const)
        .sort((a, b) => b[1] - a[1]);
      const [label, probability] = ranked[0]!;
      return {
        input,
        result,
        face: i + 1,
        faces: faces.length,
        box: {
          x: Math.round(face.box.x),
          y: Math.round(face.box.y),
          width: Math.round(face.box.width),
          height: Math.round(face.box.height),
        },
        score: round(face.score, 4),
        label,
        probability: round(probability, 4),
        probabilities: Object.fromEntries(
          ranked.slice(0, this.#top).map(([name, p]) => [name, round(p, 4)]),
        ),
      };
    });
  }
}

/** Reads the image an input line names: a file path or an http(s) URL. */
export async function readInput(line: string, http: HttpClient): Promise<Uint8Array> {
  if (/^https?:\/\//i.test(line)) {
    const response = await http.get(line, { maxBytes: MAX_IMAGE_BYTES, accept: "image/*" });
    if (!response.ok) throw new InputError(`unreachable: ${response.reason}`);
    return response.body;
  }
  try {
    const info = await Deno.stat(line);
    if (info.isDirectory) throw new InputError("not_a_file: it is a directory");
    if (info.size > MAX_IMAGE_BYTES) {
      throw new InputError(`too_large: ${info.size} bytes > ${MAX_IMAGE_BYTES}`);
    }
    return await Deno.readFile(line);
  } catch (error) {
    if (error instanceof InputError) throw error;
    if (error instanceof Deno.errors.NotFound) throw new InputError("missing_file: no such file");
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new InputError("unreadable: permission denied");
    }
    throw new InputError(`unreadable: ${(error as Error).message}`);
  }
}

/** The start of stdin, read until it can tell an image from a list of lines. */
interface Sniffed {
  head: Uint8Array;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  done: boolean;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/** Reads enough of a stream to sniff it, without waiting for more than a first line. */
async function sniffStream(stream: ReadableStream<Uint8Array>): Promise<Sniffed> {
  const reader = stream.getReader();
  let head: Uint8Array = new Uint8Array(0);
  while (head.length < 16 && !head.includes(0x0a)) {
    const { value, done } = await reader.read();
    if (done) return { head, reader, done: true };
    head = concat(head, value);
  }
  return { head, reader, done: false };
}

/** Whether bytes look like lines of text (paths, URLs) rather than binary data. */
function looksLikeText(bytes: Uint8Array): boolean {
  const sample = bytes.subarray(0, 4096);
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(sample);
  } catch {
    // A chunk may end inside a multi-byte character; only the end may be cut.
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(sample.subarray(0, sample.length - 3));
    } catch {
      return false;
    }
  }
  return !sample.some((b) => b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d));
}

/** Whether stdin holds one image (rather than lines naming images). */
function isImage(head: Uint8Array): boolean {
  const sniffed = sniffImageType(head);
  if (sniffed.kind === "sharp" || sniffed.kind === "svg") return true;
  // "BM…" is a BMP or a line of text starting with BM; only binary bytes make it an image.
  return !looksLikeText(head);
}

async function readRest(sniffed: Sniffed): Promise<Uint8Array> {
  const chunks = [sniffed.head];
  let size = sniffed.head.length;
  while (!sniffed.done) {
    const { value, done } = await sniffed.reader.read();
    if (done) break;
    size += value.length;
    if (size > MAX_IMAGE_BYTES) {
      throw new InputError(`too_large: more than ${MAX_IMAGE_BYTES} bytes on stdin`);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Yields the lines of a stream as they arrive, the sniffed head first. */
async function* linesOf(sniffed: Sniffed): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = decoder.decode(sniffed.head, { stream: true });
  let done = sniffed.done;
  while (true) {
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      yield pending.slice(0, newline).replace(/\r$/, "");
      pending = pending.slice(newline + 1);
    }
    if (done) break;
    const chunk = await sniffed.reader.read();
    if (chunk.done) {
      pending += decoder.decode();
      done = true;
    } else {
      pending += decoder.decode(chunk.value, { stream: true });
    }
  }
  if (pending.trim()) yield pending.replace(/\r$/, "");
}

type Format = "json" | "table";

const percent = (p: number) => `${(p * 100).toFixed(1)} %`;

function tableHeader(): string {
  return `${"input".padEnd(30)} ${"face".padEnd(5)} ${"box x,y w×h".padEnd(20)} ${
    "label".padEnd(16)
  } ${"p".padStart(7)}  others`;
}

/** A line for people: long inputs keep their end, where the file name is. */
function tableRow(line: PredictionLine): string {
  const input = line.input.length > 30 ? `…${line.input.slice(-29)}` : line.input.padEnd(30);
  if ("error" in line) return `${input} error: ${line.error}`;
  if (line.result === "no_face") return `${input} no face (${line.reason})`;
  const box = `${line.box.x},${line.box.y} ${line.box.width}×${line.box.height}`;
  const others = Object.entries(line.probabilities)
    .filter(([label]) => label !== line.label)
    .map(([label, p]) => `${label} ${percent(p)}`)
    .join(", ");
  const face = line.result === "whole_image" ? "whole" : `${line.face}/${line.faces}`;
  return `${input} ${face.padEnd(5)} ${box.padEnd(20)} ${line.label.padEnd(16)} ${
    percent(line.probability).padStart(7)
  }  ${others}`;
}

/** Where the model is: `--model`, else the first default folder that exists. */
async function resolveModelDir(values: ParsedValues): Promise<string> {
  const given = stringOption(values, "model");
  if (given !== undefined) return given;
  const dataDir = stringOption(values, "data");
  for (const dir of dataDir === undefined ? DEFAULT_DATA_DIRS : [dataDir]) {
    const best = await bestModelDir(dir);
    if (best) return best;
  }
  return fail(
    `no trained model in ${dataDir ?? DEFAULT_DATA_DIRS.join(" or ")}: train one with ` +
      "'deno task pipeline' or pass --model DIR",
  );
}

async function openClassifier(dir: string): Promise<Classifier> {
  try {
    return await loadClassifier(dir);
  } catch (error) {
    if (!(error instanceof ModelLoadError)) throw error;
    if (error.message.startsWith("model folder not found")) {
      return fail(
        `no model folder at '${dir}': train one with 'deno task pipeline' or pass --model DIR`,
      );
    }
    return fail(`the model in '${dir}' cannot be used: ${error.message}`);
  }
}

function readFormat(values: ParsedValues): Format {
  const format = stringOption(values, "format", "json");
  if (format !== "json" && format !== "table") {
    fail(`--format must be json or table: got '${format}'`, 2);
  }
  return format;
}

function readDetector(values: ParsedValues): DetectorName {
  const detector = stringOption(values, "detector", "auto");
  if (!(DETECTOR_NAMES as readonly string[]).includes(detector)) {
    fail(`--detector must be one of ${DETECTOR_NAMES.join(", ")}: got '${detector}'`, 2);
  }
  return detector as DetectorName;
}

const encoder = new TextEncoder();

async function writeLine(text: string): Promise<void> {
  const bytes = encoder.encode(text + "\n");
  let written = 0;
  while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
}

async function runPredict(values: ParsedValues, positionals: string[]): Promise<number> {
  const format = readFormat(values);
  const detector = readDetector(values);
  const top = values.top === undefined ? undefined : intOption(values, "top", 1, { min: 1 });
  const verbose = values.verbose === true;
  const modelDir = await resolveModelDir(values);

  await initEngine();
  const classifier = await openClassifier(modelDir);
  await loadFaceModels();
  // performance.now() counts from process start: Deno, module loading, tfjs and both models.
  const coldStartMs = performance.now();
  if (verbose) {
    log(
      `model: ${modelDir} (${classifier.metadata.kind}, classes ${
        classifier.metadata.classes.join(", ")
      })`,
    );
    log(`cold start: ${coldStartMs.toFixed(0)} ms from process start to models loaded`);
  }
  const timings = verbose ? emptyTimings() : undefined;
  const predictor = new Predictor(classifier, {
    wholeImage: values["whole-image"] === true,
    top,
    detector,
    timings,
  });
  const http = new HttpClient({ maxRetries: 1, timeoutMs: 15000 });
  let headerShown = false;
  const emit = async (line: PredictionLine) => {
    if (format === "table" && !headerShown) {
      headerShown = true;
      await writeLine(tableHeader());
    }
    await writeLine(format === "json" ? JSON.stringify(line) : tableRow(line));
  };
  const predictOne = async (input: string, bytes: Uint8Array) => {
    const started = performance.now();
    const lines = await predictor.predict(input, bytes);
    for (const line of lines) await emit(line);
    if (verbose) {
      log(`${input}: ${lines.length} line(s) in ${(performance.now() - started).toFixed(0)} ms`);
    }
  };

  try {
    if (positionals.length === 0 && Deno.stdin.isTerminal()) {
      return fail(
        "no input: pipe an image (predict < photo.jpg) or lines of paths/URLs, or name files",
        2,
      );
    }
    let sniffed: Sniffed | undefined;
    if (positionals.length === 0) {
      sniffed = await sniffStream(Deno.stdin.readable);
      if (sniffed.head.length === 0) return fail("no input: stdin is empty", 2);
      if (isImage(sniffed.head)) {
        try {
          await predictOne("-", await readRest(sniffed));
        } catch (error) {
          if (error instanceof InputError) return fail(`stdin: ${error.message}`);
          throw error;
        }
        return 0;
      }
    }
    // One named input fails like a piped image; in a stream, a bad line is reported and skipped.
    const single = positionals.length === 1;
    const inputs = sniffed ? linesOf(sniffed) : positionals.values();
    let failed = 0;
    for await (const raw of inputs) {
      const input = raw.trim();
      if (input === "" || input.startsWith("#")) continue;
      try {
        await predictOne(input, await readInput(input, http));
      } catch (error) {
        if (!(error instanceof InputError)) throw error;
        if (single) return fail(`${input}: ${error.message}`);
        failed++;
        log(`facefield: ${input}: ${error.message}`);
        await emit({ input, error: error.message });
      }
    }
    return failed ? 1 : 0;
  } finally {
    if (verbose && timings) {
      log(
        `face work (ms, summed): ${
          Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ")
        }; classify ${predictor.classifyMs.toFixed(0)}`,
      );
    }
    classifier.dispose();
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

Bad input (not an image, a missing file, an unreachable URL): one image or one named file fails
with a message on stderr and exit code 1; in a stream the line gives
{"input":…,"error":"not_an_image: …"}, the stream goes on, and the exit code is 1 at the end.
A missing or incompatible model folder always fails at once.

options:
  --model DIR        trained model folder (model.json, weights.bin, metadata.json)
  --data DIR         without --model: the model of this data dir that evaluated best
                     (default: the first of ${DEFAULT_DATA_DIRS.join(", ")} that has one)
  --whole-image      classify the whole image when no face is found
  --format F         json (default) or table (for people)
  --top K            list only the K most likely classes per face (default all)
  --detector D       face detector: ${DETECTOR_NAMES.join(", ")} (default auto)
  --verbose          cold start and per-input timings on stderr
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

/** The face-api demo photos that ship in node_modules: the bench's default images. */
export function demoImagePaths(): string[] {
  const dir = join(faceApiDemoDir());
  return [1, 2, 3, 4, 5, 6].map((i) => join(dir, `sample${i}.jpg`));
}

function faceApiDemoDir(): string {
  const url = import.meta.resolve("@vladmandic/face-api/package.json");
  return join(new URL(".", url).pathname, "demo");
}

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
  const main = new URL("../main.ts", import.meta.url).pathname;
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

async function runBench(values: ParsedValues, positionals: string[]): Promise<number> {
  const runs = intOption(values, "runs", 5, { min: 1, max: 1000 });
  const modelDir = await resolveModelDir(values);
  const images = positionals.length ? positionals : demoImagePaths();
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
        `bench:predict on ${classifier.metadata.kind} model ${modelDir}, ${images.length} images × ${runs} runs, ${faces} faces`,
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
Images default to face-api's six demo photos in node_modules.

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
