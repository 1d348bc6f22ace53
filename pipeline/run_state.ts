/**
 * What one run holds open in its data dir: the lock, the manifest, the page log, the removal
 * list and the live progress line, plus the counts the end summary needs. Opened once by
 * `runPipeline`, closed in its `finally`; a run stopped by a signal keeps what it finished.
 */
import process from "node:process";
import { DataDirLock } from "../store/lock.ts";
import { Manifest, type ManifestRow } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { type DataPaths, dataPaths } from "../store/paths.ts";
import { RemovedList } from "../store/removed.ts";
import { HttpCacheStore } from "../store/http_cache.ts";
import { RunEventLog } from "../store/run_events.ts";
import { type RunSummary, summarise } from "../report/summary.ts";
import { Progress } from "./progress.ts";
import { Backlog } from "./backlog.ts";

/**
 * Most records that wait for the images stage before the crawl waits for it: some 8 s of
 * downloads at loopback speed, so the downloads never run dry, and a few MB of records.
 */
export const IMAGE_BACKLOG = 2000;

/** One stage's figures: streamed stages from their items' times, train and evaluate timed whole. */
export interface StageTime {
  stage: string;
  items: number;
  /** Seconds from the stage's first item to its last (or its whole run, for a phase). */
  seconds: number;
  /** When the stage's last item passed, seconds since the run began. */
  doneAtS: number;
  itemsPerS: number | null;
  /**
   * For a phase (train, evaluate): the process's CPU seconds in it, user and system, every
   * thread's (a machine shared with other work moves the wall time, not this).
   */
  cpuSeconds?: number;
}

/** The process's CPU seconds so far, user and system, every thread's. */
export function processCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** The end-of-run summary, plus the time each stage took. */
export interface RunResult extends RunSummary {
  stages: StageTime[];
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

export class RunState {
  readonly #startedAt = performance.now();
  readonly #phases: StageTime[] = [];
  /** Source rows that were invalid, and sources skipped because an earlier run crawled them. */
  readonly sources = { invalid: 0, skipped: 0 };
  readonly pages = { ok: 0, failed: 0 };
  /** Folders of the models this run saved. */
  readonly models: string[] = [];
  readonly progress = new Progress(["pages", "people", "images", "faces", "split"]);
  /**
   * Earlier runs' rows on their way from the people stage to the images stage, so a resumed
   * record is read from state.db once, not once per stage.
   */
  readonly resumed = new Map<string, ManifestRow>();
  /** Records between the people and images stages; the crawl waits while it is full. */
  readonly backlog: Backlog;
  readonly #onSignal = () => {
    this.progress.stop();
    this.manifest.flushSync();
    this.httpCache.flushSync();
    this.lock.releaseSync();
    console.error("facefield: stopped; finished records are in the manifest, rerun to resume");
    Deno.exit(130);
  };

  private constructor(
    readonly paths: DataPaths,
    readonly lock: DataDirLock,
    readonly manifest: Manifest,
    readonly pageLog: PageLog,
    readonly removed: RemovedList,
    /** Validators of what earlier runs fetched: a refresh of an unchanged site moves headers only. */
    readonly httpCache: HttpCacheStore,
    /** The run's progress for `deno task serve`: start, training epochs, end (no names). */
    readonly events: RunEventLog,
    backlog: number,
  ) {
    this.backlog = new Backlog(backlog);
    Deno.addSignalListener("SIGINT", this.#onSignal);
    Deno.addSignalListener("SIGTERM", this.#onSignal);
  }

  /** Takes the data dir's lock (one run at a time) and opens its files. */
  static async open(dataDir: string, until: string, backlog = IMAGE_BACKLOG): Promise<RunState> {
    const paths = dataPaths(dataDir);
    await Deno.mkdir(paths.root, { recursive: true });
    const lock = await DataDirLock.acquire(paths.lock);
    try {
      return new RunState(
        paths,
        lock,
        await Manifest.open(paths.manifest),
        await PageLog.open(paths.pages),
        await RemovedList.open(paths.removed),
        await HttpCacheStore.open(paths),
        RunEventLog.start(paths.runEvents, until),
        backlog,
      );
    } catch (error) {
      lock.releaseSync();
      throw error;
    }
  }

  /** Runs a whole phase (train, evaluate) and keeps its time, counting `items` for it. */
  async timed<T>(stage: string, items: number, work: () => Promise<T>): Promise<T> {
    const start = performance.now();
    const cpu = processCpuSeconds();
    const result = await work();
    const seconds = (performance.now() - start) / 1000;
    this.#phases.push({
      stage,
      items,
      seconds: round(seconds),
      doneAtS: round((performance.now() - this.#startedAt) / 1000),
      itemsPerS: seconds > 0 ? round(items / seconds) : null,
      cpuSeconds: round(processCpuSeconds() - cpu, 1),
    });
    return result;
  }

  /** Every stage's figures so far, in the order of the stream. */
  stageTimes(): StageTime[] {
    const streamed = this.progress.timings().map(({ label, items, firstS, lastS }) => ({
      stage: label,
      items,
      seconds: round(lastS - firstS),
      doneAtS: round(lastS),
      itemsPerS: lastS > firstS ? round(items / (lastS - firstS)) : null,
    }));
    return [...streamed, ...this.#phases];
  }

  /** The end-of-run summary, with the manifest committed first (index.csv follows in `close`). */
  async summary(extra: Pick<RunSummary, "report" | "terminalReport"> = {}): Promise<RunResult> {
    this.progress.stop();
    const summary = summarise(this.manifest.path, await this.manifest.statusRows(), {
      dataDir: this.paths.root,
      invalidSources: this.sources.invalid,
      skippedSources: this.sources.skipped,
      pages: this.pages,
      models: this.models,
      ...extra,
    });
    return { ...summary, stages: this.stageTimes() };
  }

  /** Flushes the manifest and frees the lock; the signal handlers go. */
  close(): void {
    Deno.removeSignalListener("SIGINT", this.#onSignal);
    Deno.removeSignalListener("SIGTERM", this.#onSignal);
    this.progress.stop();
    this.manifest.flushSync();
    this.httpCache.flushSync();
    this.events.append({ type: "run_finished" });
    this.lock.releaseSync();
  }
}
