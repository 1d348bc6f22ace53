/**
 * The state's costs on an existing data dir, without crawling it: opening the manifest (and its
 * longest event-loop stall), the web app's Overview and Faces pages, and `forget` of one person
 * (which removes them: use a copy). bench:scale measures the same after its own crawl; this is
 * for a data dir made otherwise (a bench stopped mid-way, or `--make N`: N synthetic records as
 * a crawl through images leaves them, 100 a source, 25 a page, one in ten failed, an index.csv).
 *
 *   deno run -A commands/dev/state_timings.ts --make 100000 --data /tmp/state100k
 *   deno run -A commands/dev/state_timings.ts --data /tmp/copy-of-a-data-dir
 */
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { sha256Hex } from "../../core/ids.ts";
import { Manifest, MANIFEST_COLUMNS, writeManifestCsv } from "../../store/manifest.ts";
import type { PageLogRow } from "../../store/page_log.ts";
import { dataPaths } from "../../store/paths.ts";
import {
  inTransaction,
  openStateDb,
  PAGE_COLUMNS,
  PAGE_UPSERT,
  pageKey,
  RECORD_UPSERT,
  toDb,
} from "../../store/state_db.ts";
import { peakRssMb, StallSampler, timedForget } from "../../pipeline/scale_bench.ts";
import { pageTimes, warmUp } from "../bench/scale.ts";

/** `records` synthetic records and their page log in a new state.db, and its index.csv. */
export function makeState(dataDir: string, records: number): void {
  const db = openStateDb(dataPaths(dataDir).state);
  const record = db.prepare(RECORD_UPSERT);
  const page = db.prepare(PAGE_UPSERT);
  const at = new Date().toISOString();
  inTransaction(db, () => {
    for (let i = 0; i < records; i++) {
      const source = Math.floor(i / 100);
      const origin = `http://127.0.0.1:9/dept-${source}`;
      const failed = i % 10 === 0;
      const row: Record<string, string> = {
        id: sha256Hex(`synthetic-state-${i}`).slice(0, 8),
        category: `department-${source}`,
        image_url: `${origin}/img/${i}.jpg`,
        name: `Synthetic Person ${i}`,
        role: "Professor",
        page_url: `${origin}/page-${Math.floor((i % 100) / 25) + 1}.html`,
        status: failed ? "failed" : "ok",
        stage: "images",
        reason: failed ? "http_404: GET" : "",
        sha256: failed ? "" : sha256Hex(`synthetic-image-${i}`),
        format: failed ? "" : "jpeg",
        width: failed ? "" : "225",
        height: failed ? "" : "275",
        bytes: failed ? "" : String(3000 + (i % 997)),
        updated_at: at,
      };
      record.run(...MANIFEST_COLUMNS.map((c) => toDb(row[c] ?? "")));
      if (i % 25 !== 0) continue;
      const logged: PageLogRow = {
        source_url: `${origin}/page-1.html`,
        page_url: row.page_url!,
        category: row.category!,
        status: "ok",
        reason: "",
        people: "25",
        fetched_at: at,
      };
      page.run(toDb(pageKey(logged)), ...PAGE_COLUMNS.map((c) => toDb(logged[c])));
    }
  });
  writeManifestCsv(db, dataPaths(dataDir).manifest);
  db.close();
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { data: { type: "string" }, make: { type: "string" } },
  });
  if (!values.data) {
    console.error("usage: state_timings.ts [--make N] --data DIR");
    Deno.exit(2);
  }
  const dataDir = values.data;
  if (values.make) makeState(dataDir, Number(values.make));
  const stall = new StallSampler();
  const started = performance.now();
  const cpuBefore = cpuUsage();
  const manifest = await Manifest.open(dataPaths(dataDir).manifest);
  const openMs = Math.round(performance.now() - started);
  const openCpu = cpuUsage(cpuBefore);
  const openStall = stall.stop().longestStallMs;
  const records = manifest.size;
  manifest.close();
  // The floor under the stall: the same timer with nothing to do, on this machine, now.
  const idle = new StallSampler();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const idleStall = idle.stop().longestStallMs;
  const webStartMs = await warmUp(dataDir);
  const overview = await pageTimes(dataDir, "/");
  const faces = await pageTimes(dataDir, "/faces");
  const deepFaces = await pageTimes(dataDir, "/faces?status=ok&page=400");
  const forgot = await timedForget(dataDir);
  console.log(JSON.stringify({
    records,
    manifest_open_ms: openMs,
    manifest_open_cpu_ms: Math.round((openCpu.user + openCpu.system) / 1000),
    manifest_open_longest_stall_ms: openStall,
    idle_longest_stall_ms: idleStall,
    web_start_ms: webStartMs,
    overview_page: overview,
    faces_page: faces,
    faces_page_deep: deepFaces,
    forget_s: forgot.seconds,
    forget_cpu_s: forgot.cpuSeconds,
    forget_records: forgot.records,
    peak_rss_mb: peakRssMb(),
    load_average: Deno.loadavg(),
  }));
}
