/**
 * `runPipeline`: one run, as a wiring of named parts.
 *
 * sources → fetch pages → parse people → download images → faces → split → dataset → train →
 * evaluate. Records from earlier runs re-enter the same stream ahead of new ones; the caches
 * (images by sha256, faces by sha256 + settings) and the manifest make that cheap, so adding a
 * sources file redoes nothing that is done.
 */
import { filter, lastValueFrom, map, type Observable, share, tap } from "rxjs";
import {
  type FaceRecord,
  type ImageRecord,
  isOk,
  type SplitName,
  type SplitRecord,
} from "../core/types.ts";
import { fail } from "../core/errors.ts";
import { engineInfo, initEngine } from "../models/engine.ts";
import type { FaceStore } from "../models/dataset.ts";
import { HttpClient, userAgentFor } from "../net/http.ts";
import { BrowserRenderer } from "../net/browser.ts";
import { droppedByReason, type RunSummary } from "../report/summary.ts";
import { detectFaces } from "../stages/detect_faces.ts";
import { assignSplit, inSeedOrder } from "../stages/split.ts";
import { collectFaces } from "./batches.ts";
import { allPeople, cachedImage, crawledPeople, downloadedImages } from "./crawl.ts";
import { type Crawler, type CrawlerFactory, localCrawler } from "./crawler.ts";
import { listedPeople } from "./image_list.ts";
import { evaluateModels } from "./evaluate_run.ts";
import {
  type PipelineOptions,
  type ResolvedPipelineOptions,
  resolvePipelineOptions,
} from "./options.ts";
import { type RunResult, RunState } from "./run_state.ts";
import { trainModels } from "./train_run.ts";
import { runNetworks } from "./checks.ts";
import { runSettingsOf, writeDataDirDatasheet } from "./datasheet.ts";

export type { RunResult, RunSummary };
export type { StageTime } from "./run_state.ts";
export { type PipelineOptions, UNTIL_STAGES, type UntilStage } from "./options.ts";

/** What a caller may put in place of this process's own parts. */
export interface RunHooks {
  /**
   * Who crawls and downloads, e.g. NATS workers (`pipeline/cluster/`).
   * @default localCrawler: this process, with the run's options
   */
  crawler?: CrawlerFactory;
  /**
   * The sources file's text made with the run's own HTTP client, in place of `sourceInput`:
   * discovery (`pipeline/discover.ts`) streaming its rows into the crawl.
   */
  sources?: (http: HttpClient) => Observable<string>;
  /** With `images`: the list's columns and the folder its relative paths start from. */
  imageList?: Parameters<typeof listedPeople>[3];
  /**
   * Most records waiting for the images stage before the crawl waits (tests make it small).
   * @default IMAGE_BACKLOG (2000)
   */
  imageBacklog?: number;
  /** Called once the run's state is open (bench:scale watches its counts and records). */
  onState?: (state: RunState) => void;
}

/** Drains a stream for its side effects (the manifest), up to its end. */
async function drain<T>(stream: Observable<T>): Promise<void> {
  await lastValueFrom(stream, { defaultValue: undefined });
}

/** Images to accepted face records; every outcome reaches the manifest. */
function acceptedFaces(
  images$: Observable<ImageRecord>,
  options: ResolvedPipelineOptions,
  state: RunState,
): Observable<FaceRecord> {
  const { detector, size, facePercent } = options;
  // The shipped networks run only for the models and checks that read them.
  const networks = runNetworks(options.models);
  return images$.pipe(
    detectFaces({ cacheDir: state.paths.faceCache, detector, size, facePercent, networks }),
    tap((outcome) => state.manifest.record(outcome, "faces")),
    filter(isOk),
    map((outcome) => outcome.record),
    tap(() => state.progress.add("faces")),
  );
}

/** Faces to split records, earlier assignments kept, drained into the dataset. */
async function splitIntoDataset(
  faces$: Observable<FaceRecord>,
  options: ResolvedPipelineOptions,
  state: RunState,
): Promise<{ records: SplitRecord[]; store: FaceStore }> {
  // Earlier runs' assignments, read a page at a time: they never move.
  const previous = [];
  for await (const row of state.manifest.eachRow()) {
    if (!row.split || !row.sha256) continue;
    previous.push({
      id: row.id,
      sha256: row.sha256,
      category: row.category,
      split: row.split as SplitName,
      fold: row.fold === "" ? null : Number(row.fold),
      identity: row.identity || row.id,
    });
  }
  const records: SplitRecord[] = [];
  const split$ = faces$.pipe(
    inSeedOrder(String(options.seed)),
    assignSplit({
      ratios: options.ratios,
      folds: options.folds,
      previous,
      seed: String(options.seed),
    }),
    tap((outcome) => state.manifest.record(outcome, "split")),
    filter(isOk),
    map((outcome) => outcome.record),
    tap((record) => {
      state.progress.add("split");
      records.push(record);
    }),
    share(),
  );
  const store = await collectFaces(split$, {});
  state.progress.stop();
  await state.manifest.flush();
  return { records, store };
}

/** What the report's provenance section shows of the run's settings. */
function provenance(options: ResolvedPipelineOptions, engine: string) {
  const { ratios } = options;
  return {
    "data dir": options.dataDir,
    sources: options.sources ?? "embedded demo",
    detector: options.detector,
    "crop size": options.size,
    "face percent": options.facePercent,
    ratios: `${ratios.train}/${ratios.val}/${ratios.test}`,
    folds: options.folds ?? "none",
    epochs: options.epochs,
    patience: options.patience,
    "batch size": options.batchSize,
    seed: options.seed,
    engine,
  };
}

/** The categories to train on, sorted; fewer than two is a configuration error. */
function trainingClasses(records: SplitRecord[]): string[] {
  const classes = [...new Set(records.map((r) => r.category))].sort();
  if (classes.length < 2) {
    fail(
      `training needs at least 2 categories with faces; this data dir has ${classes.length}. ` +
        `Add sources, or stop earlier with --until split.`,
    );
  }
  return classes;
}

/** The run's crawler: the hook's (e.g. NATS workers), or this process with its own clients. */
function runCrawler(
  options: ResolvedPipelineOptions,
  state: RunState,
  hooks: RunHooks,
  clients: { http: HttpClient; browser: BrowserRenderer },
): Crawler {
  const factory = hooks.crawler ?? localCrawler({
    ...clients,
    concurrency: options.concurrency,
    revalidate: options.refresh,
  });
  return factory({
    paths: state.paths,
    lookup: cachedImage(state),
    ready: (signal) => state.backlog.ready(signal),
  });
}

/** Trains every model the options ask for; each saved model is noted in the run's state. */
async function trainRun(
  dataset: { records: SplitRecord[]; store: FaceStore },
  classes: string[],
  options: ResolvedPipelineOptions,
  state: RunState,
) {
  await initEngine();
  return await state.timed("train", dataset.records.length, () =>
    trainModels({
      ...dataset,
      classes,
      modelsDir: state.paths.models,
      onSaved: (dir) => state.models.push(dir),
      events: state.events,
    }, options));
}

/** The source row of each crawled page (pages.csv), by page URL. */
function sourceOfPages(state: RunState): Map<string, string> {
  return new Map(
    state.pageLog.rows().filter((row) => row.page_url).map((row) => [row.page_url, row.source_url]),
  );
}

/** Evaluates the trained models and writes the report, with the run's provenance. */
async function evaluateRun(
  trained: Awaited<ReturnType<typeof trainRun>>,
  { records, store }: { records: SplitRecord[]; store: FaceStore },
  classes: string[],
  options: ResolvedPipelineOptions,
  state: RunState,
) {
  const { epochs, patience, batchSize, seed } = options;
  const dropped = droppedByReason(await state.manifest.rowsYielding());
  return await state.timed("evaluate", records.length, () =>
    evaluateModels({
      trained,
      records,
      out: options.out ?? state.paths.reports,
      classes,
      facePercent: options.facePercent,
      dataName: options.dataDir,
      store,
      sourceOfPage: sourceOfPages(state),
      training: { epochs, patience, batchSize, seed },
      occlusion: { perClass: options.occlusionFaces },
      dropped,
      provenance: provenance(
        options,
        trained[0]?.classifier.metadata.engine ?? engineInfo().backend,
      ),
    }));
}

/** Runs the pipeline once, up to `until`. Per-record failures land in the manifest, not here. */
export async function runPipeline(
  pipelineOptions: PipelineOptions,
  sourceInput?: Observable<Uint8Array | string>,
  hooks: RunHooks = {},
): Promise<RunResult> {
  const options = resolvePipelineOptions(pipelineOptions);
  const state = await RunState.open(options.dataDir, options.until, hooks.imageBacklog);
  hooks.onState?.(state);
  const http = new HttpClient({
    perHostConcurrency: options.perHost,
    politenessDelayMs: options.delayMs,
    allowPrivate: options.allowPrivate,
    userAgent: userAgentFor(options.contact),
    cache: state.httpCache,
  });
  // One Chromium for the run, started only if a page needs it.
  const browser = new BrowserRenderer(http);
  try {
    const crawler = runCrawler(options, state, hooks, { http, browser });
    // People from a labelled image list (`--images`), or from the crawl of the sources.
    const newPeople$ = options.images !== undefined
      ? listedPeople(options, state, sourceInput, hooks.imageList)
      : crawledPeople(options, state, crawler, hooks.sources?.(http) ?? sourceInput);
    const people$ = allPeople(options, state, newPeople$);
    const images$ = downloadedImages(people$, state, crawler);
    if (options.until === "images") return await drain(images$).then(() => state.summary());

    const faces$ = acceptedFaces(images$, options, state);
    if (options.until === "faces") return await drain(faces$).then(() => state.summary());

    const dataset = await splitIntoDataset(faces$, options, state);
    if (options.until === "split") return await state.summary();

    const classes = trainingClasses(dataset.records);
    const trained = await trainRun(dataset, classes, options, state);
    if (options.until === "train") return await state.summary();

    const evaluation = await evaluateRun(trained, dataset, classes, options, state);
    for (const model of trained) model.classifier.dispose();
    return await state.summary({
      report: evaluation.reportPath,
      terminalReport: evaluation.terminalSummary,
    });
  } finally {
    // index.csv as of the run's end, written without holding the event loop.
    await state.manifest.flush();
    await writeDataDirDatasheet(state.paths, state.manifest, runSettingsOf(options));
    state.close();
    await browser.close();
  }
}
