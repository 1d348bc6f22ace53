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
import { fail } from "../core/errors.ts";
import { Manifest, type ManifestRow } from "../store/manifest.ts";
import { DataDirLock } from "../store/lock.ts";
import { PageLog } from "../store/page_log.ts";
import { RemovedList } from "../store/removed.ts";
import { RunEventLog } from "../store/run_events.ts";
import { type RunSummary, summarise } from "../report/summary.ts";

export type { RunSummary };
import { Progress } from "./progress.ts";
import { blobPath, type DataPaths, dataPaths } from "../store/paths.ts";
import {
  type FaceRecord,
  type ImageRecord,
  isOk,
  ok,
  type Outcome,
  type PersonRecord,
  type SplitName,
  type SplitRecord,
} from "../core/types.ts";
import { readSources, sourceBytes } from "../stages/read_sources.ts";
import { fetchPages } from "../stages/fetch_pages.ts";
import { HttpClient } from "../net/http.ts";
import { parsePeople } from "../stages/parse_people.ts";
import { downloadImages } from "../stages/download_images.ts";
import { detectFaces } from "../stages/detect_faces.ts";
import { assignSplit } from "../stages/split.ts";
import { evaluateModels, type TrainedModel } from "./evaluate_run.ts";
import { collectFaces } from "./batches.ts";
import { trainClassifier } from "../models/training/train.ts";
import { saveClassifier } from "../models/classifier.ts";
import type { ModelKind } from "../models/classifier.ts";
import type { DetectorName } from "../models/faces/faces.ts";
import { engineInfo, initEngine } from "../models/engine.ts";

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
  const events = RunEventLog.start(paths.runEvents, until);

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
    const trainingIds = JSON.stringify(splitRecords.map((r) => r.id));
    const trainAndSave = async (kind: ModelKind, fold: number | null, dir: string) => {
      const label = fold === null ? kind : `${kind} fold ${fold + 1}/${folds}`;
      console.error(`training ${label} on ${splitRecords.length} faces, ${classes.length} classes`);
      const faces = splitRecords.length;
      events.append({ type: "training", model: label, faces, classes: classes.length, epochs });
      const result = await trainClassifier(kind, store, {
        epochs,
        patience,
        batchSize,
        seed,
        testFold: fold ?? undefined,
        onEpoch: (stats) => {
          events.append({ type: "epoch", model: label, ...stats });
          console.error(
            `  ${label} epoch ${stats.epoch}/${epochs} loss ${stats.loss.toFixed(3)} ` +
              `acc ${stats.accuracy.toFixed(3)} ` +
              `val_acc ${stats.valAccuracy?.toFixed(3) ?? "n/a"} ETA ${
                Math.round(stats.etaSeconds)
              }s`,
          );
        },
      });
      await saveClassifier(result.classifier, dir);
      await Deno.writeTextFile(join(dir, "training_ids.json"), trainingIds);
      modelPaths.push(dir);
      return result;
    };
    for (const kind of models) {
      if (!folds) {
        const dir = join(paths.models, kind);
        trained.push({ kind, fold: null, dir, ...await trainAndSave(kind, null, dir) });
        continue;
      }
      for (let fold = 0; fold < folds; fold++) {
        const dir = join(paths.models, `${kind}-fold${fold}`);
        trained.push({ kind, fold, dir, ...await trainAndSave(kind, fold, dir) });
      }
      // Folds estimate how good the model is; predict needs one model, trained on the
      // ordinary train/validation split like a run without folds.
      (await trainAndSave(kind, null, join(paths.models, kind))).classifier.dispose();
    }
    if (until === "train") return finish();

    const dropped: Record<string, number> = {};
    for (const row of manifest.rows()) {
      if (row.status !== "ok") {
        const code = row.reason.split(":")[0] ?? row.reason;
        dropped[code] = (dropped[code] ?? 0) + 1;
      }
    }
    const evaluation = await evaluateModels({
      trained,
      records: splitRecords,
      out,
      classes,
      facePercent,
      dataName: dataDir,
      dropped,
      provenance: {
        "data dir": dataDir,
        sources: options.sources ?? "embedded demo",
        detector,
        "crop size": size,
        "face percent": facePercent,
        ratios: `${ratios.train}/${ratios.val}/${ratios.test}`,
        folds: folds ?? "none",
        epochs,
        patience,
        "batch size": batchSize,
        seed,
        engine: trained[0]?.classifier.metadata.engine ?? engineInfo().backend,
      },
    });
    for (const model of trained) model.classifier.dispose();
    return finish({ report: evaluation.reportPath, terminalReport: evaluation.terminalSummary });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    manifest.flushSync();
    events.append({ type: "run_finished" });
    lock.releaseSync();
  }
}
