/**
 * `bench:scale`: the data dir's bookkeeping at 10,000 to 100,000 records. A loopback site of
 * generated departments (bench:crawl's, images made on request) is served by a child process;
 * this process runs `pipeline --until images` over it, watched (pipeline/scale_bench.ts), then
 * a no-op rerun, the web app's Overview and Faces pages, `forget` of one person, and faces on a
 * subset in a second data dir. Prints what it measured as lines, then one JSON line.
 */
import { join } from "node:path";
import { cpuUsage } from "node:process";
import { fileURLToPath } from "node:url";
import { type Command, intOption, log, type ParsedValues, stringOption } from "../cli.ts";
import { machineLoad } from "./peer.ts";
import { IMAGE_BACKLOG } from "../../pipeline/run_state.ts";
import { startBenchSite } from "./crawl.ts";
import { createApp } from "../../web/app.ts";
import {
  peakRssMb,
  type StageCurve,
  StallSampler,
  timedForget,
  type WatchedRun,
  watchedRun,
} from "../../pipeline/scale_bench.ts";

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

interface Site {
  sourcesCsv: string;
  close(): Promise<void>;
}

/** The site in a child process, so that its image making is not this process's CPU or RSS. */
async function spawnSite(sources: number, pages: number, perPage: number): Promise<Site> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "bench:scale",
      "--serve-site",
      `--sources=${sources}`,
      `--pages=${pages}`,
      `--per-page=${perPage}`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the bench site stopped before it started");
    text += value;
  }
  const { origin } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { origin: string };
  const rows = Array.from(
    { length: sources },
    (_, s) => `${origin}/dept-${s}/page-1.html,department-${s}`,
  );
  return {
    sourcesCsv: ["url,category", ...rows].join("\n") + "\n",
    close: async () => {
      await child.stdin.close();
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
      await child.status;
    },
  };
}

/** The child's side: serve, say where on one line, stop when the parent closes stdin. */
async function serveSite(values: ParsedValues): Promise<number> {
  const site = await startBenchSite(
    intOption(values, "sources", 1000, { min: 1, max: 100_000 }),
    intOption(values, "pages", 4, { min: 1, max: 100 }),
    intOption(values, "per-page", 25, { min: 1, max: 1000 }),
    { lazyImages: true },
  );
  console.log(JSON.stringify({ origin: site.origin }));
  for await (const _ of Deno.stdin.readable) {
    // Nothing comes; the stream ends when the bench is done.
  }
  await site.close();
  return 0;
}

/**
 * One page of the web app in this process: its first answer from a new app (its view of the
 * data dir read afresh: "cold") and its second ("warm"), ms. The first app of the process also
 * loads the web app's modules; `warmUp` pays that (with one Overview) before the pages.
 */
export async function warmUp(dataDir: string): Promise<number> {
  const started = performance.now();
  const { app } = await createApp({ dataDir });
  await (await app.fetch(new Request("http://127.0.0.1/", { headers: { host: "127.0.0.1" } })))
    .text();
  return Math.round(performance.now() - started);
}

/**
 * `pageTimes`' figures are wall times; `cold_cpu_ms` and `warm_cpu_ms` are this process's CPU
 * time (user + system) over the same answers, which a busy shared machine inflates far less.
 */
export async function pageTimes(dataDir: string, path: string) {
  const { app } = await createApp({ dataDir });
  const times: number[] = [];
  const cpu: number[] = [];
  let status = 0;
  for (let i = 0; i < 2; i++) {
    const started = performance.now();
    const cpuBefore = cpuUsage();
    const response = await app.fetch(
      new Request(`http://127.0.0.1${path}`, { headers: { host: "127.0.0.1" } }),
    );
    await response.text();
    times.push(Math.round(performance.now() - started));
    const used = cpuUsage(cpuBefore);
    cpu.push(Math.round((used.user + used.system) / 1000));
    status = response.status;
  }
  return {
    path,
    status,
    cold_ms: times[0]!,
    warm_ms: times[1]!,
    cold_cpu_ms: cpu[0]!,
    warm_cpu_ms: cpu[1]!,
  };
}

function curveLines(curves: StageCurve[]): string[] {
  return curves.map((c) =>
    `  ${c.stage.padEnd(7)} ${String(c.items).padStart(7)} items in ${c.seconds} s; ` +
    `records/s per 10 %: ${c.bucketsPerS.map((r) => r ?? "-").join(" ")}; ` +
    `last/first ${c.lastOverFirst ?? "-"}`
  );
}

function runLines(title: string, run: WatchedRun): string[] {
  return [
    `${title}: ${run.wallS} s wall, peak RSS ${run.peakRssMb ?? "?"} MB, longest event-loop ` +
    `stall ${run.longestStallMs} ms (at ${run.longestStallAtS} s), ${run.stallsOver100Ms} over ` +
    `100 ms; at most ${run.mostWaitingForImages} records waited for images; ${run.cpuS} s CPU`,
    ...curveLines(run.curves),
  ];
}

interface ScaleSettings {
  sources: number;
  pages: number;
  perPage: number;
  faces: number;
  concurrency: number;
  perHost: number;
  imageBacklog: number;
  dataDir: string | undefined;
}

function readSettings(values: ParsedValues): ScaleSettings {
  return {
    sources: intOption(values, "sources", 1000, { min: 1, max: 100_000 }),
    pages: intOption(values, "pages", 4, { min: 1, max: 100 }),
    perPage: intOption(values, "per-page", 25, { min: 1, max: 1000 }),
    faces: intOption(values, "faces", 10_000, { min: 0, max: 1_000_000 }),
    concurrency: intOption(values, "concurrency", 16, { min: 1, max: 256 }),
    perHost: intOption(values, "per-host", 8, { min: 1, max: 64 }),
    imageBacklog: intOption(values, "image-backlog", IMAGE_BACKLOG, { min: 1, max: 10_000_000 }),
    dataDir: stringOption(values, "data"),
  };
}

/** Long because it is the bench's script: each phase in order, each printed as it ends. */
async function bench(settings: ScaleSettings): Promise<number> {
  const { sources, pages, perPage, faces } = settings;
  const perSource = pages * perPage;
  const dataDir = settings.dataDir ??
    await Deno.makeTempDir({ prefix: "facefield-bench-scale-" });
  const facesDir = join(dataDir, "faces-subset");
  log(`bench:scale: ${sources} sources × ${perSource} people into ${dataDir}`);
  const site = await spawnSite(sources, pages, perPage);
  // What a timer's lateness is on this machine with nothing of ours to do: the floor under
  // every stall figure below (a busy shared machine alone makes 100 ms and more).
  const idle = new StallSampler();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const idleStallMs = idle.stop().longestStallMs;
  console.log(`idle event loop (3 s, nothing to do): longest stall ${idleStallMs} ms`);
  const run = {
    concurrency: settings.concurrency,
    perHost: settings.perHost,
    imageBacklog: settings.imageBacklog,
  };
  try {
    const images = await watchedRun({
      dataDir,
      sourcesCsv: site.sourcesCsv,
      until: "images",
      ...run,
    });
    for (const line of runLines("pipeline --until images", images)) console.log(line);
    const noop = await watchedRun({
      dataDir,
      sourcesCsv: site.sourcesCsv,
      until: "images",
      ...run,
    });
    console.log(
      `no-op rerun: ${noop.wallS} s wall, longest stall ${noop.longestStallMs} ms, ` +
        `${noop.stallsOver100Ms} over 100 ms`,
    );
    const webStartMs = await warmUp(dataDir);
    const overview = await pageTimes(dataDir, "/");
    const facesPage = await pageTimes(dataDir, "/faces");
    // A page deep in a filtered grid: SQLite counts and skips, the app reads 120 rows.
    const deepFaces = await pageTimes(dataDir, "/faces?status=ok&page=400");
    const pageLine = (what: "ms" | "cpu") =>
      [["Overview", overview], ["Faces", facesPage], ["Faces page 400 of the ok ones", deepFaces]]
        .map(([name, t]) => {
          const times = t as typeof overview;
          return what === "ms"
            ? `${name} ${times.cold_ms} ms (then ${times.warm_ms} ms)`
            : `${name} ${times.cold_cpu_ms} ms (then ${times.warm_cpu_ms} ms)`;
        }).join(", ");
    console.log(`web app: ${pageLine("ms")}; its start-up before them ${webStartMs} ms`);
    console.log(`web app, CPU time of the same answers: ${pageLine("cpu")}`);
    const forgot = await timedForget(dataDir);
    console.log(
      `forget of one person: ${forgot.seconds} s (${forgot.records} records), ` +
        `${forgot.cpuSeconds} s CPU`,
    );
    // Faces on the first sources that hold `faces` records, in a data dir of their own.
    const subset = Math.min(sources, Math.ceil(faces / perSource));
    const facesRun = faces === 0 ? undefined : await watchedRun({
      dataDir: facesDir,
      sourcesCsv: site.sourcesCsv.split("\n").slice(0, subset + 1).join("\n") + "\n",
      until: "faces",
      ...run,
    });
    if (facesRun) {
      for (const line of runLines(`faces on ${subset * perSource} records`, facesRun)) {
        console.log(line);
      }
    }
    console.log(JSON.stringify({
      bench: "scale",
      ...machineLoad(),
      records: sources * perSource,
      idle_longest_stall_ms: idleStallMs,
      web_start_ms: webStartMs,
      images,
      noop_rerun_s: noop.wallS,
      noop_longest_stall_ms: noop.longestStallMs,
      noop_stalls_over_100_ms: noop.stallsOver100Ms,
      forget_s: forgot.seconds,
      forget_cpu_s: forgot.cpuSeconds,
      overview_page: overview,
      faces_page: facesPage,
      faces_page_deep: deepFaces,
      faces: facesRun ?? null,
      peak_rss_mb: peakRssMb(),
      settings: {
        sources,
        pages,
        per_page: perPage,
        faces,
        concurrency: settings.concurrency,
        per_host: settings.perHost,
        image_backlog: settings.imageBacklog,
        delay_ms: 0,
      },
    }));
    return 0;
  } finally {
    await site.close();
    if (settings.dataDir === undefined) await Deno.remove(dataDir, { recursive: true });
  }
}

export const benchScaleCommand: Command = {
  name: "bench:scale",
  summary: "the data dir's bookkeeping at 100,000 records: rate over time, RSS, stalls, rerun",
  usage: `
usage: deno task bench:scale [--sources 1000] [--pages 4] [--per-page 25] [--faces 10000]
                             [--concurrency 16] [--per-host 8] [--image-backlog 2000]
                             [--data DIR]

Serves generated departments (sources × pages × per-page people, a distinct 225×275 JPEG
each, made on request) on 127.0.0.1 from a child process, and in this process runs
'pipeline --until images --delay-ms 0' over them into a temporary data dir (or --data DIR,
kept). Prints: records/s per stage in 10 % buckets of its items, peak RSS (VmHWM), the longest
event-loop stall (a 10 ms timer's lateness), a no-op rerun's wall time, the web app's Overview
and Faces pages (first and second answer, in process), forget of one person, and then
'--until faces' on the first sources holding --faces records (0 skips it), in a data dir of
their own. The generated images hold no faces: the face stage decodes, detects nothing and
records each rejection, which is its cost per record without the crop and descriptor work.
Ends with one JSON line. For a quick look: --sources 100 (10,000 records) --faces 1000.

  --sources      departments (sources CSV rows)            default 1000
  --pages        pages per department (rel="next")         default 4
  --per-page     people per page                           default 25
  --faces        records the face stage runs on            default 10000
  --concurrency  image downloads in flight                 default 16
  --per-host     requests in flight per host               default 8
  --image-backlog  records waiting for images before the crawl waits   default 2000
  --data DIR     keep the data dir here (must be new)`,
  options: {
    sources: { type: "string" },
    pages: { type: "string" },
    "per-page": { type: "string" },
    faces: { type: "string" },
    concurrency: { type: "string" },
    "per-host": { type: "string" },
    "image-backlog": { type: "string" },
    data: { type: "string" },
    "serve-site": { type: "boolean" },
  },
  async run(values) {
    if (values["serve-site"] === true) return await serveSite(values);
    return await bench(readSettings(values));
  },
};
