/** `deno task pipeline`: its options, the embedded demo, and the hand-off to `runPipeline`. */
import { type Observable, of } from "rxjs";
import { type Command, type ParsedValues, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { startDemoSite } from "../pipeline/demo_site.ts";
import { SourcesFormatError } from "../stages/read_sources.ts";
import { ImageListFormatError } from "../stages/read_image_list.ts";
import { runPipeline } from "../pipeline/run.ts";
import {
  PIPELINE_OPTIONS,
  pipelineFlagSpec,
  type PipelineOptions,
  pipelineOptionsFromFlags,
  pipelineOptionsHelp,
} from "../pipeline/options.ts";
import { formatSummary } from "../report/summary.ts";
import { clusterDiscovery, discoveredSources, readHomes } from "../pipeline/discover.ts";
import type { HttpClient } from "../net/http.ts";
import { categoryRules } from "./discover.ts";
import {
  connectCoordinator,
  type Coordinator,
  jobSettingsFor,
} from "../pipeline/cluster/coordinator.ts";
import { parseClusterUrl } from "../pipeline/cluster/connection.ts";

/**
 * The run's options from its flags, checked by the one table in pipeline/options.ts. Only the
 * demo's own defaults are set here: its data dir, no politeness delay for its own site, its
 * batch size and its folds.
 */
export function pipelineOptionsFrom(
  values: ParsedValues,
): PipelineOptions & { dataDir: string } {
  let flags: Partial<PipelineOptions>;
  try {
    flags = pipelineOptionsFromFlags(values);
  } catch (error) {
    if (error instanceof RangeError) fail(error.message, 2);
    throw error;
  }
  if (flags.sources !== undefined && flags.images !== undefined) {
    fail("--sources and --images cannot both be given: a run crawls pages or reads a list", 2);
  }
  if (values.discover !== undefined && (flags.sources ?? flags.images) !== undefined) {
    fail("--discover finds the sources itself: give it without --sources and --images", 2);
  }
  const demo = flags.sources === undefined && flags.images === undefined &&
    values.discover === undefined;
  return {
    ...flags,
    dataDir: flags.dataDir ?? (demo ? DEMO_DATA_DIR : PIPELINE_OPTIONS.dataDir.default!),
    // Only the demo sets these: a key left undefined would wipe a caller's own default when
    // spread over it (bench --serve's no-delay site).
    ...(demo && flags.delayMs === undefined ? { delayMs: 0 } : {}),
    // The demo's ~30 training faces make one step an epoch at 32; 8 gives the models four.
    ...(demo && flags.batchSize === undefined ? { batchSize: 8 } : {}),
    // A 70/10/20 split leaves the demo 9 test faces, whose interval spans 19–73 %: one
    // partition showed the planted confound and the next did not. 4 folds score all 44 faces.
    ...(demo && flags.folds === undefined ? { folds: DEMO_FOLDS } : {}),
  };
}

/** The demo's cross-validation folds when no --folds is given. */
const DEMO_FOLDS = 4;

/** Where the demo's run goes when no --data is given. */
const DEMO_DATA_DIR = "facefield-demo";

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

/** With --discover: the sources found from its home pages, streamed into the run's crawl. */
async function discoverHook(values: ParsedValues, coordinator?: Coordinator) {
  const spec = stringOption(values, "discover");
  if (spec === undefined) return undefined;
  const homes = await readHomes([spec]).catch((error) => {
    if (error instanceof RangeError) fail(`--discover: ${error.message}`, 2);
    throw error;
  });
  if (homes.length === 0) fail(`--discover '${spec}' names no home page`, 2);
  const categories = categoryRules(values);
  return (http: HttpClient) =>
    discoveredSources(homes, http, {
      categories,
      // With --cluster, the workers discover too: one job per site.
      sites: coordinator && clusterDiscovery(coordinator),
      onSite: (site) => {
        const sure = site.candidates.filter((c) => c.sure).length;
        console.error(
          `discover ${site.home}: ${sure} sure people pages crawled, ${
            site.candidates.length - sure
          } unsure left out; ${site.pagesFetched} pages fetched`,
        );
      },
    });
}

export const pipelineCommand: Command = {
  name: "pipeline",
  summary: "crawl people pages → faces → split → train → evaluate (no arguments: offline demo)",
  usage: `
usage: deno task pipeline [--sources FILE|-] [--data DIR] [--until STAGE] [options]
       deno task pipeline --discover HOMES [--category NAME=WORDS]… [options]
       deno task pipeline --images LIST.csv [--data DIR] [options]

With no --sources, serves the embedded demo site on 127.0.0.1 and runs on it (data dir
facefield-demo). A sources CSV has the header url,category and optional columns
person_selector,name_selector,image_selector,next_selector; see data/sources.example.csv.
Rerunning with more sources adds to the same data dir and redoes nothing already done.

With --discover, the sources are found first from home pages (an address, or a file of them):
deno task discover's sure rows are crawled as each site's discovery ends, in the same stream.

With --images, no page is crawled: the list's header names an image column (image_url, image,
path, file, url), a category (category, label) and optionally name, source and id; the seed
study's index.csv (id,category,image_url,name) works as it is. Relative paths resolve against
the list's folder; the source is the group a leave-one-source-out check holds out.

${pipelineOptionsHelp()}

The demo (no --sources) uses --data ${DEMO_DATA_DIR}, --delay-ms 0, --batch-size 8 and --folds ${DEMO_FOLDS}
unless given.

Past one machine (the crawl, downloads and faces on 'deno task worker' processes):
  --cluster URL     nats://[user:pass@|token@]host:4222, tls://… for TLS, or env:NAME for a
                    URL in that environment variable
  --tls-ca FILE     CA certificate that signed the NATS server's (implies TLS)
`,
  options: {
    ...pipelineFlagSpec(),
    // Discovery's home pages and category rules (as deno task discover reads them).
    discover: { type: "string" },
    category: { type: "string", multiple: true },
    // The cluster's connection is the command's, not the run's: it picks who crawls.
    cluster: { type: "string" },
    "tls-ca": { type: "string" },
  },
  async run(values) {
    const options = pipelineOptionsFrom(values);
    for (const [flag, path] of [["sources", options.sources], ["images", options.images]]) {
      if (path === undefined || path === "-") continue;
      const info = await Deno.stat(path).catch(() => undefined);
      if (!info?.isFile) {
        const what = info ? "not a file" : "no such file";
        fail(`cannot read the ${flag} file '${path}': ${what} (use '-' for stdin)`, 2);
      }
    }
    const dataInfo = await Deno.stat(options.dataDir).catch(() => undefined);
    if (dataInfo && !dataInfo.isDirectory) {
      fail(`--data '${options.dataDir}' is a file; the data dir must be a folder`, 2);
    }
    let demo: Awaited<ReturnType<typeof startDemoSite>> | undefined;
    let input: Observable<string> | undefined;
    if (options.sources === undefined && options.images === undefined) {
      demo = await startDemoSiteOnStablePort();
      console.error(
        `demo: serving ${demo.people} people on ${demo.url} (no --sources given; data dir ${options.dataDir})`,
      );
      input = of(demo.sourcesCsv);
    }
    const clusterUrl = stringOption(values, "cluster");
    const coordinator = clusterUrl === undefined ? undefined : await connectCoordinator({
      address: parseClusterUrl(clusterUrl, stringOption(values, "tls-ca")),
      settings: jobSettingsFor(options),
      refresh: options.refresh,
    });
    try {
      const sources = await discoverHook(values, coordinator);
      const summary = await runPipeline(options, input, {
        crawler: coordinator?.crawler,
        sources,
      });
      console.log(formatSummary(summary));
      return 0;
    } catch (error) {
      if (error instanceof Deno.errors.Busy) fail(error.message);
      if (error instanceof SourcesFormatError) {
        fail(`${error.message}. See data/sources.example.csv for the format.`, 2);
      }
      if (error instanceof ImageListFormatError) {
        fail(`${error.message}. See deno task pipeline --help for the list's columns.`, 2);
      }
      throw error;
    } finally {
      await coordinator?.close();
      await demo?.close();
    }
  },
};
