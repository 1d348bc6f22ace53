/**
 * The state's costs on an existing data dir, without crawling it: opening the manifest, the web
 * app's Overview and Faces pages, and `forget` of one person (which removes them: use a copy).
 * bench:scale measures the same after its own crawl; this is for a data dir made otherwise (a
 * bench stopped mid-way, `synthetic_store.ts`).
 *
 *   deno run -A commands/dev/state_timings.ts --data /tmp/copy-of-a-data-dir
 */
import { parseArgs } from "node:util";
import { Manifest } from "../../store/manifest.ts";
import { dataPaths } from "../../store/paths.ts";
import { peakRssMb, StallSampler, timedForget } from "../../pipeline/scale_bench.ts";
import { pageTimes, warmUp } from "../bench/scale.ts";

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { data: { type: "string" } } });
  if (!values.data) {
    console.error("usage: state_timings.ts --data DIR");
    Deno.exit(2);
  }
  const dataDir = values.data;
  const stall = new StallSampler();
  const started = performance.now();
  const manifest = await Manifest.open(dataPaths(dataDir).manifest);
  const openMs = Math.round(performance.now() - started);
  const openStall = stall.stop().longestStallMs;
  const records = manifest.size;
  manifest.close();
  const webStartMs = await warmUp(dataDir);
  const overview = await pageTimes(dataDir, "/");
  const faces = await pageTimes(dataDir, "/faces");
  const forgot = await timedForget(dataDir);
  console.log(JSON.stringify({
    records,
    manifest_open_ms: openMs,
    manifest_open_longest_stall_ms: openStall,
    web_start_ms: webStartMs,
    overview_page: overview,
    faces_page: faces,
    forget_s: forgot.seconds,
    forget_records: forgot.records,
    peak_rss_mb: peakRssMb(),
    load_average: Deno.loadavg(),
  }));
}
