/**
 * `predict`'s work: classifies the faces in images piped on stdin (one image) or named by the
 * lines of a text stream (file paths or http(s) URLs, answered as each line arrives).
 * `commands/predict.ts` loads it once the session thread has started.
 */
import { detectorOption, intOption, log, type ParsedValues, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { sniffImageType } from "../stages/image_type.ts";
import { type Classifier, inputsOf, ModelLoadError } from "../models/classifier.ts";
import { loadModel } from "../models/ensemble.ts";
import { emptyTimings, prepareFaces, type PrepareOptions } from "../models/faces/faces.ts";
import { join } from "node:path";
import { initEngine } from "../models/engine.ts";
import {
  bestModelDir,
  DEFAULT_DATA_DIRS,
  InputError,
  MAX_IMAGE_BYTES,
  PredictionLine,
  Predictor,
  readInput,
} from "../pipeline/predictor.ts";

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
export async function resolveModelDir(values: ParsedValues): Promise<string> {
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

export async function openClassifier(dir: string): Promise<Classifier> {
  try {
    return await loadModel(dir);
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

const encoder = new TextEncoder();

async function writeLine(text: string): Promise<void> {
  const bytes = encoder.encode(text + "\n");
  let written = 0;
  while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
}

/** What the model in `dir` reads, from its metadata.json; all nets where it cannot be read. */
async function modelInputs(dir: string): Promise<PrepareOptions> {
  try {
    return inputsOf(JSON.parse(await Deno.readTextFile(join(dir, "metadata.json"))));
  } catch {
    return {}; // openClassifier says what is wrong with the folder.
  }
}

/**
 * Opens the model (failing at once where it cannot be used) and starts the face nets the model
 * reads: `ready` settles when they are loaded, while the caller reads its input. With --verbose,
 * says which model and how long the start took.
 */
async function openPredictor(values: ParsedValues, verbose: boolean) {
  const modelDir = await resolveModelDir(values);
  // The face engine's sessions (from the graph cache once built) load beside the classifier:
  // the nets the model reads, from its metadata alone, before tfjs and its weights load.
  const facesReady = prepareFaces(await modelInputs(modelDir));
  facesReady.catch(() => {});
  await initEngine();
  const classifier = await openClassifier(modelDir);
  const ready = Promise.all([facesReady, prepareFaces(inputsOf(classifier.metadata))])
    .then(() => {
      // performance.now() counts from process start: Deno, module loading, the model, the nets.
      if (verbose) {
        const { kind, classes } = classifier.metadata;
        log(`model: ${modelDir} (${kind}, classes ${classes.join(", ")})`);
        log(`cold start: ${performance.now().toFixed(0)} ms from process start to models loaded`);
      }
    });
  ready.catch(() => {});
  const timings = verbose ? emptyTimings() : undefined;
  const predictor = new Predictor(classifier, {
    wholeImage: values["whole-image"] === true,
    top: values.top === undefined ? undefined : intOption(values, "top", 1, { min: 1 }),
    detector: detectorOption(values),
    timings,
  });
  return { classifier, predictor, timings, ready };
}

/** Writes result lines as JSON or as a table (its header before the first line). */
function lineWriter(format: Format) {
  let headerShown = false;
  return async (line: PredictionLine) => {
    if (format === "table" && !headerShown) {
      headerShown = true;
      await writeLine(tableHeader());
    }
    await writeLine(format === "json" ? JSON.stringify(line) : tableRow(line));
  };
}

/**
 * Predicts what stdin or the positionals name: one piped image, or lines of paths and URLs
 * answered as they arrive. One named input fails like a piped image; in a stream, a bad line
 * is reported and skipped. Returns the exit code.
 */
async function predictInputs(
  positionals: string[],
  predictOne: (input: string, bytes: Uint8Array) => Promise<void>,
  emit: (line: PredictionLine) => Promise<void>,
): Promise<number> {
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
        if (!(error instanceof InputError)) throw error;
        // A JSON line too, so a script reading stdout learns why as well as a person.
        await emit({ input: "-", error: error.message });
        return fail(`stdin: ${error.message}`);
      }
      return 0;
    }
  }
  // The HTTP client (node:http, node:tls …) loads only for lines: one piped image needs none.
  const { HttpClient } = await import("../net/http.ts");
  const http = new HttpClient({ maxRetries: 1, timeoutMs: 15000 });
  const single = positionals.length === 1;
  let failed = 0;
  for await (const raw of sniffed ? linesOf(sniffed) : positionals.values()) {
    const input = raw.trim();
    if (input === "" || input.startsWith("#")) continue;
    try {
      await predictOne(input, await readInput(input, http));
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      if (single) {
        await emit({ input, error: error.message });
        return fail(`${input}: ${error.message}`);
      }
      failed++;
      log(`facefield: ${input}: ${error.message}`);
      await emit({ input, error: error.message });
    }
  }
  return failed ? 1 : 0;
}

export async function runPredict(values: ParsedValues, positionals: string[]): Promise<number> {
  const format = readFormat(values);
  const verbose = values.verbose === true;
  const { classifier, predictor, timings, ready } = await openPredictor(values, verbose);
  const emit = lineWriter(format);
  const predictOne = async (input: string, bytes: Uint8Array) => {
    await ready;
    const started = performance.now();
    const lines = await predictor.predict(input, bytes);
    for (const line of lines) await emit(line);
    if (verbose) {
      log(`${input}: ${lines.length} line(s) in ${(performance.now() - started).toFixed(0)} ms`);
    }
  };
  try {
    return await predictInputs(positionals, predictOne, emit);
  } finally {
    if (verbose && timings) {
      const parts = Object.entries(timings).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
      log(`face work (ms, summed): ${parts}; classify ${predictor.classifyMs.toFixed(0)}`);
    }
    classifier.dispose();
  }
}
