/**
 * What one run holds open in its data dir: the lock, the manifest, the page log, the removal
 * list and the live progress line, plus the counts the end summary needs. Opened once by
 * `runPipeline`, closed in its `finally`; a run stopped by a signal keeps what it finished.
 */
import { DataDirLock } from "../store/lock.ts";
import { Manifest } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { type DataPaths, dataPaths } from "../store/paths.ts";
import { RemovedList } from "../store/removed.ts";
import { HttpCacheStore } from "../store/http_cache.ts";
import { RunEventLog } from "../store/run_events.ts";
import { type RunSummary, summarise } from "../report/summary.ts";
import { Progress } from "./progress.ts";

export class RunState {
  /** Source rows that were invalid, and sources skipped because an earlier run crawled them. */
  readonly sources = { invalid: 0, skipped: 0 };
  readonly pages = { ok: 0, failed: 0 };
  /** Folders of the models this run saved. */
  readonly models: string[] = [];
  readonly progress = new Progress(["pages", "people", "images", "faces", "split"]);
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
  ) {
    Deno.addSignalListener("SIGINT", this.#onSignal);
    Deno.addSignalListener("SIGTERM", this.#onSignal);
  }

  /** Takes the data dir's lock (one run at a time) and opens its files. */
  static async open(dataDir: string, until: string): Promise<RunState> {
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
      );
    } catch (error) {
      lock.releaseSync();
      throw error;
    }
  }

  /** The end-of-run summary, with the manifest flushed first. */
  summary(extra: Pick<RunSummary, "report" | "terminalReport"> = {}): RunSummary {
    this.progress.stop();
    this.manifest.flushSync();
    return summarise(this.manifest, {
      dataDir: this.paths.root,
      invalidSources: this.sources.invalid,
      skippedSources: this.sources.skipped,
      pages: this.pages,
      models: this.models,
      ...extra,
    });
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
