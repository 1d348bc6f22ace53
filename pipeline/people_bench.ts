/**
 * The benchmark for any labelled portraits: a CSV of images (paths or URLs) and labels runs
 * through the whole stream, either as an image list or served as a loopback people site (one
 * paginated listing per label and group), and comes back as one JSON summary: per stage its
 * time and items/s, per model its accuracy with CI and every baseline and check metrics.json
 * holds, the process's peak RSS and the report's path. `bench:congress` is one use of it.
 */
// @ts-types="@types/escape-html"
import escapeHtml from "escape-html";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { lastValueFrom, of, toArray } from "rxjs";
import type { PersonRecord } from "../core/types.ts";
import { readImageList, type ReadImageListOptions } from "../stages/read_image_list.ts";
import type { PipelineOptions } from "./options.ts";
import { runPipeline, type RunResult } from "./run.ts";
import { processCpuSeconds } from "./run_state.ts";

export interface PeopleBenchOptions {
  /** The labelled CSV's text. */
  csv: string;
  /** Folder relative image paths resolve against (the CSV's folder). */
  baseDir: string;
  /** Header names of the image, label, group (source), name and id columns. */
  columns: ReadImageListOptions["columns"];
  /**
   * Serve the images as a loopback people site and crawl it, instead of reading the list.
   * @default false
   */
  serve?: boolean;
  /**
   * People per listing page when serving.
   * @default 60
   */
  perPage?: number;
  /**
   * Port of the served site; a fixed one keeps image URLs, and so record ids, across reruns.
   * @default 0
   */
  port?: number;
  /** The run's options (data dir, models, folds, …). */
  pipeline: PipelineOptions;
}

/** One model kind's figures from metrics.json. */
export interface ModelFigures {
  kind: string;
  accuracy: number | null;
  ci95: unknown;
  n: number | null;
  chance: number | null;
  /** Every figure metrics.json gives the model beside its own accuracy: baselines, checks. */
  baselines: Record<string, unknown>;
}

export interface PeopleBenchSummary {
  bench: "people";
  mode: "image list" | "served site";
  people: number;
  wall_s: number;
  /** The process's CPU seconds (user and system, every thread's) from the start to the end. */
  cpu_s: number;
  stages: RunResult["stages"];
  models: ModelFigures[];
  /** What metrics.json holds beside the dataset and the models (a run's checks, its verdict). */
  checks: Record<string, unknown>;
  peak_rss_mb: number | null;
  report: string | null;
  byStatus: Record<string, number>;
}

/** The listing path of one label and group; the group level only when the CSV has groups. */
function listingPath(person: PersonRecord, grouped: boolean): string {
  const label = encodeURIComponent(person.category);
  return grouped ? `/${label}/${encodeURIComponent(person.pageUrl || "none")}` : `/${label}`;
}

/**
 * Serves people as card-grid listings on 127.0.0.1, one per label (and group), `perPage` a
 * page linked by rel=next. Local images are served under `/img/` by file name (by index where
 * two share a name); URLs stay as they are.
 */
export function servePeopleSite(people: PersonRecord[], perPage = 60, port = 0) {
  if (!Number.isInteger(perPage) || perPage < 1) {
    throw new RangeError(
      `Cannot serve people as 'perPage' must be >= 1: current value is ${perPage}`,
    );
  }
  const grouped = people.some((person) =>
    person.pageUrl !== "" && !/^https?:/.test(person.pageUrl)
  );
  const local = people.filter((person) => person.imageUrl.startsWith("file:"));
  const names = local.map((person) => person.imageUrl.split("/").pop()!);
  const unique = new Set(names).size === names.length;
  const files = new Map<string, string>();
  const src = new Map<string, string>();
  local.forEach((person, i) => {
    const served = unique ? names[i]! : `${i}-${names[i]}`;
    files.set(served, fileURLToPath(person.imageUrl));
    src.set(person.id, `/img/${encodeURIComponent(served)}`);
  });
  const listings = Map.groupBy(people, (person) => listingPath(person, grouped));
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname.startsWith("/img/")) {
      const path = files.get(decodeURIComponent(url.pathname.slice(5)));
      const bytes = path ? await Deno.readFile(path).catch(() => null) : null;
      return bytes ? new Response(bytes) : new Response("not found", { status: 404 });
    }
    const listing = listings.get(url.pathname);
    if (!listing) return new Response("not found", { status: 404 });
    const page = Number(url.searchParams.get("page") ?? "1");
    const slice = listing.slice((page - 1) * perPage, page * perPage);
    const next = page * perPage < listing.length
      ? `<a rel="next" href="${url.pathname}?page=${page + 1}">Next ›</a>`
      : "";
    const cards = slice.map((person) =>
      `<div class="member"><img src="${
        escapeHtml(src.get(person.id) ?? person.imageUrl)
      }" alt="" width="225" height="275"><h3>${escapeHtml(person.name)}</h3></div>`
    ).join("\n");
    const title = escapeHtml(listing[0]!.category);
    const html = `<!doctype html><html><head><title>${title} members</title></head><body>
<header><img src="/logo.png" alt="logo" class="logo" width="120" height="40"></header>
<main><h1>Members: ${title}</h1><div class="grid">${cards}</div><nav>${next}</nav></main></body></html>`;
    return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  const origin = `http://127.0.0.1:${server.addr.port}`;
  const sourcesCsv = "url,category\n" +
    [...listings].map(([path, listing]) => `${origin}${path},${listing[0]!.category}`).join("\n") +
    "\n";
  return { origin, sourcesCsv, close: () => server.shutdown() };
}

/** The process's peak resident memory in MiB (Linux's VmHWM), or the current RSS elsewhere. */
export function peakRssMb(): number | null {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1]);
    if (Number.isFinite(kb) && kb > 0) return Math.round(kb / 1024);
  } catch {
    // Not Linux: fall through to the current figure.
  }
  return Math.round(Deno.memoryUsage().rss / 2 ** 20);
}

/** Fields of a model's metrics too big or too detailed for a summary line. */
const DETAIL_FIELDS = new Set([
  "accuracy",
  "ci95",
  "n",
  "correct",
  "chance",
  "perClass",
  "confusion",
  "distribution",
  "topK",
]);

/** A model's figures out of metrics.json, whatever checks it carries. */
export function modelFigures(model: Record<string, unknown>): ModelFigures {
  const metrics = (model.metrics ?? {}) as Record<string, unknown>;
  const number = (value: unknown) => typeof value === "number" ? value : null;
  const baselines: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(metrics)) {
    if (!DETAIL_FIELDS.has(key)) baselines[key] = value;
  }
  return {
    kind: String(model.kind),
    accuracy: number(metrics.accuracy),
    ci95: metrics.ci95 ?? null,
    n: number(metrics.n),
    chance: number(metrics.chance),
    baselines,
  };
}

/**
 * The run's options against the bench's own loopback site: no politeness delay and 8 requests
 * at a time unless the user asked otherwise. An option passed as undefined counts as not asked
 * (a spread would let it wipe out the bench's value and bring back the crawl's 100 ms).
 */
export function servedSiteOptions(pipeline: PipelineOptions): PipelineOptions {
  return {
    ...pipeline,
    delayMs: pipeline.delayMs ?? 0,
    perHost: pipeline.perHost ?? 8,
    sources: "-",
    images: undefined,
  };
}

/** Runs the stream on a labelled CSV and returns the benchmark's summary. */
export async function runPeopleBench(options: PeopleBenchOptions): Promise<PeopleBenchSummary> {
  const { csv, baseDir, columns, serve = false, perPage = 60, port = 0 } = options;
  const people = (await lastValueFrom(of(csv).pipe(readImageList({ baseDir, columns }), toArray())))
    .flatMap((item) => item.kind === "person" ? [item.person] : []);
  const started = performance.now();
  const cpuAtStart = processCpuSeconds();
  let result: RunResult;
  if (serve) {
    let site: ReturnType<typeof servePeopleSite>;
    try {
      site = servePeopleSite(people, perPage, port);
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      console.error(`bench: port ${port} is busy; on another port the records get new ids`);
      site = servePeopleSite(people, perPage, 0);
    }
    try {
      result = await runPipeline(servedSiteOptions(options.pipeline), of(site.sourcesCsv));
    } finally {
      await site.close();
    }
  } else {
    result = await runPipeline(
      { ...options.pipeline, images: "-", sources: undefined },
      of(csv),
      { imageList: { baseDir, columns } },
    );
  }
  const wallS = (performance.now() - started) / 1000;
  const metricsPath = result.report ? join(dirname(result.report), "metrics.json") : undefined;
  const metrics = metricsPath
    ? JSON.parse(await Deno.readTextFile(metricsPath)) as Record<string, unknown>
    : {};
  const { models = [], dataset: _dataset, generatedAt: _at, ...checks } = metrics;
  return {
    bench: "people",
    mode: serve ? "served site" : "image list",
    people: people.length,
    wall_s: Math.round(wallS * 10) / 10,
    cpu_s: Math.round((processCpuSeconds() - cpuAtStart) * 10) / 10,
    stages: result.stages,
    models: (models as Record<string, unknown>[]).map(modelFigures),
    checks,
    peak_rss_mb: peakRssMb(),
    report: result.report ?? null,
    byStatus: result.byStatus,
  };
}
