/**
 * The measuring half of `bench:scale`: runs the pipeline in this process over a loopback site
 * (served by another process, so its work is not counted), and watches it: each stage's
 * records/s in 10 % buckets of its items, the process's peak RSS, and the longest event-loop
 * stall (a timer's drift). Then a no-op rerun's wall time and `forget` of one person.
 */
import { cpuUsage } from "node:process";
import { of } from "rxjs";
import { forget } from "../store/forget.ts";
import { Manifest } from "../store/manifest.ts";
import { dataPaths } from "../store/paths.ts";
import type { RunState } from "./run_state.ts";
import { runPipeline } from "./run.ts";

/** One stage's rate over its items: records/s in each tenth, from the first item to the last. */
export interface StageCurve {
  stage: string;
  items: number;
  seconds: number;
  /** Ten rates (records/s), one per 10 % of the stage's items; null where a tenth took no time. */
  bucketsPerS: (number | null)[];
  /** The last tenth's rate over the first's; the target is ≥ 0.8. */
  lastOverFirst: number | null;
}

/** What one watched run gave. */
export interface WatchedRun {
  wallS: number;
  /** CPU seconds of this process (all its threads, the face workers too) over the run. */
  cpuS: number;
  curves: StageCurve[];
  /** The longest the event loop was held (a 10 ms timer's most lateness), ms. */
  longestStallMs: number;
  /** When the longest stall ended, seconds since the run began. */
  longestStallAtS: number;
  /** How many times the event loop was held over 100 ms. */
  stallsOver100Ms: number;
  /** The most records that waited for the images stage at once (the crawl's backpressure). */
  mostWaitingForImages: number;
  /** The process's resident peak so far (VmHWM), MB; null where /proc is not there. */
  peakRssMb: number | null;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/** The process's peak resident set so far (Linux VmHWM), in MB. */
export function peakRssMb(): number | null {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return match ? round(Number(match[1]) / 1024) : null;
  } catch {
    return null;
  }
}

/** Ten buckets of an ascending list of item times (ms). */
export function curveOf(stage: string, times: number[]): StageCurve {
  const n = times.length;
  const bucketsPerS: (number | null)[] = [];
  for (let k = 1; k <= 10 && n > 0; k++) {
    const from = Math.floor(((k - 1) * (n - 1)) / 10);
    const to = Math.floor((k * (n - 1)) / 10);
    const ms = times[to]! - times[from]!;
    bucketsPerS.push(ms > 0 ? round(((to - from) * 1000) / ms) : null);
  }
  const first = bucketsPerS[0], last = bucketsPerS[bucketsPerS.length - 1];
  return {
    stage,
    items: n,
    seconds: n > 1 ? round((times[n - 1]! - times[0]!) / 1000, 2) : 0,
    bucketsPerS,
    lastOverFirst: first && last ? round(last / first, 2) : null,
  };
}

/** A timer that notes how late it fires: the event loop's longest stall while it runs. */
export class StallSampler {
  readonly #periodMs: number;
  readonly #started = performance.now();
  #last = performance.now();
  #worst = 0;
  #worstAt = 0;
  #over100 = 0;
  readonly #log = Deno.env.get("FACEFIELD_STALL_LOG") === "1";
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(periodMs = 10) {
    this.#periodMs = periodMs;
    this.#timer = setInterval(() => this.#tick(), periodMs);
  }

  #tick(): void {
    const now = performance.now();
    const late = now - this.#last - this.#periodMs;
    // FACEFIELD_STALL_LOG=1: each stall over 50 ms on stderr, to line up with --trace-gc.
    if (late > 50 && this.#log) {
      const at = ((now - this.#started) / 1000).toFixed(2);
      console.error(`stall ${Math.round(late)} ms at ${at} s (performance.now ${Math.round(now)})`);
    }
    if (late > 100) this.#over100++;
    if (late > this.#worst) {
      this.#worst = late;
      this.#worstAt = now - this.#started;
    }
    this.#last = now;
  }

  /** Stops; gives the longest stall (ms) and when it ended (s since the start). */
  stop(): { longestStallMs: number; longestStallAtS: number; stallsOver100Ms: number } {
    this.#tick();
    clearInterval(this.#timer);
    return {
      longestStallMs: round(this.#worst),
      longestStallAtS: round(this.#worstAt / 1000),
      stallsOver100Ms: this.#over100,
    };
  }
}

/**
 * Notes the time of every record each stage writes to the manifest (kept or dropped: a stage's
 * cost is per record either way), and of every page, by wrapping the run's own calls.
 */
function recordTimes(times: Map<string, number[]>) {
  const note = (label: string, by = 1) => {
    const list = times.get(label) ?? [];
    const now = performance.now();
    for (let i = 0; i < by; i++) list.push(now);
    times.set(label, list);
  };
  return (state: RunState) => {
    const add = state.progress.add.bind(state.progress);
    state.progress.add = (label: string, by = 1) => {
      if (label === "pages") note(label, by);
      add(label, by);
    };
    const record = state.manifest.record.bind(state.manifest);
    state.manifest.record = (outcome, stage) => {
      note(stage);
      record(outcome, stage);
    };
  };
}

export interface ScaleRunOptions {
  dataDir: string;
  sourcesCsv: string;
  until: "images" | "faces";
  /** @default 16 */
  concurrency?: number;
  /** @default 8 */
  perHost?: number;
  /** @default IMAGE_BACKLOG (2000) */
  imageBacklog?: number;
}

/** Runs the pipeline once in this process, watched. */
export async function watchedRun(options: ScaleRunOptions): Promise<WatchedRun> {
  const times = new Map<string, number[]>();
  const sampler = new StallSampler();
  const started = performance.now();
  const cpuBefore = cpuUsage();
  let stall: ReturnType<StallSampler["stop"]>;
  let backlog: RunState["backlog"] | undefined;
  const watch = recordTimes(times);
  try {
    await runPipeline(
      {
        dataDir: options.dataDir,
        until: options.until,
        delayMs: 0,
        perHost: options.perHost ?? 8,
        concurrency: options.concurrency ?? 16,
        allowPrivate: true,
        contact: "bench-scale@127.0.0.1",
      },
      of(options.sourcesCsv),
      {
        imageBacklog: options.imageBacklog,
        onState: (state) => {
          backlog = state.backlog;
          watch(state);
        },
      },
    );
  } finally {
    stall = sampler.stop();
  }
  const order = ["pages", "people", "images", "faces"];
  const cpu = cpuUsage(cpuBefore);
  return {
    wallS: round((performance.now() - started) / 1000, 2),
    cpuS: round((cpu.user + cpu.system) / 1e6, 2),
    curves: order.filter((stage) => times.has(stage)).map((stage) =>
      curveOf(stage, times.get(stage)!)
    ),
    ...stall,
    mostWaitingForImages: backlog?.most ?? 0,
    peakRssMb: peakRssMb(),
  };
}

/** `forget` of one person (the record in the middle of the manifest), timed. */
export async function timedForget(
  dataDir: string,
): Promise<{ seconds: number; cpuSeconds: number; records: number }> {
  const manifest = await Manifest.open(dataPaths(dataDir).manifest);
  const rows = manifest.rows();
  manifest.close();
  const middle = rows[Math.floor(rows.length / 2)];
  if (!middle) return { seconds: 0, cpuSeconds: 0, records: 0 };
  const started = performance.now();
  const cpuBefore = cpuUsage();
  const result = await forget({ dataDir, ids: [middle.id] });
  const cpu = cpuUsage(cpuBefore);
  return {
    seconds: round((performance.now() - started) / 1000, 2),
    cpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
    records: result.records,
  };
}
