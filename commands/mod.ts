/**
 * Every subcommand, in the order `--help` lists them: its name and summary here, its module
 * (and so its dependencies: tfjs, ONNX Runtime, sharp, vega, playwright, NATS …) loaded only when
 * it runs. tests/commands_test.ts checks that each entry matches the module it loads.
 */
import type { Command } from "./cli.ts";

/** A subcommand as `--help` lists it; `load()` imports its module. */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/**
 * Imports a command module by a specifier Deno cannot follow ahead of time: a literal
 * `import("./x.ts")` makes `deno run` prepare every command's whole dependency graph (all of
 * node_modules' packages) before main.ts starts. `typeof import()` keeps `deno check` on them.
 */
function load(specifier: string): Promise<unknown> {
  return import(new URL(specifier, import.meta.url).href);
}

export const commands: CommandEntry[] = [
  {
    name: "pipeline",
    summary: "crawl people pages → faces → split → train → evaluate (no arguments: offline demo)",
    load: async () =>
      ((await load("./pipeline.ts")) as typeof import("./pipeline.ts")).pipelineCommand,
  },
  {
    name: "discover",
    summary: "home pages → their sites' people pages → a sources CSV for the pipeline",
    load: async () =>
      ((await load("./discover.ts")) as typeof import("./discover.ts")).discoverCommand,
  },
  {
    name: "predict",
    summary: "predict the group of the faces in piped images, files or URLs (one JSON line each)",
    load: async () =>
      ((await load("./predict.ts")) as typeof import("./predict.ts")).predictCommand,
  },
  {
    name: "crop",
    summary: "autocrop for a folder: one aligned face crop per image, the rest to a reject folder",
    load: async () => ((await load("./crop.ts")) as typeof import("./crop.ts")).cropCommand,
  },
  {
    name: "forget",
    summary: "remove a person from the data dir: records, images, crops, models and reports",
    load: async () => ((await load("./forget.ts")) as typeof import("./forget.ts")).forgetCommand,
  },
  {
    name: "export",
    summary:
      "copy the data set to a folder as imagefolder, hf, parquet or webdataset, with its datasheet",
    load: async () => ((await load("./export.ts")) as typeof import("./export.ts")).exportCommand,
  },
  {
    name: "worker",
    summary: "work a cluster run's jobs: fetch pages, download images, find faces (NATS)",
    load: async () => ((await load("./worker.ts")) as typeof import("./worker.ts")).workerCommand,
  },
  {
    name: "serve",
    summary:
      "look at a data dir in the browser: funnel, faces, report, try the model, remove a person",
    load: async () => ((await load("./serve.ts")) as typeof import("./serve.ts")).serveCommand,
  },
  {
    name: "bench:crawl",
    summary: "time the crawl (sources → pages → people → images) against a loopback site",
    load: async () =>
      ((await load("./bench/crawl.ts")) as typeof import("./bench/crawl.ts")).benchCrawlCommand,
  },
  {
    name: "bench:scale",
    summary: "the data dir's bookkeeping at 100,000 records: rate over time, RSS, stalls, rerun",
    load: async () =>
      ((await load("./bench/scale.ts")) as typeof import("./bench/scale.ts")).benchScaleCommand,
  },
  {
    name: "bench:cluster",
    summary: "crawl + download throughput alone and with 1, 2, 4 NATS workers on a many-host site",
    load: async () =>
      ((await load("./bench/cluster.ts")) as typeof import("./bench/cluster.ts"))
        .benchClusterCommand,
  },
  {
    name: "bench:faces",
    summary:
      "time the face stage (detect, align, crop, descriptor) against autocrop's Haar cascade",
    load: async () =>
      ((await load("./bench/faces.ts")) as typeof import("./bench/faces.ts")).benchFacesCommand,
  },
  {
    name: "bench:train",
    summary: "measure CNN training throughput: our engine vs tfjs cpu vs PyTorch",
    load: async () =>
      ((await load("./bench/train.ts")) as typeof import("./bench/train.ts")).benchTrainCommand,
  },
  {
    name: "bench:predict",
    summary: "measure predict: cold start and warm time per face",
    load: async () =>
      ((await load("./bench/predict.ts")) as typeof import("./bench/predict.ts"))
        .benchPredictCommand,
  },
  {
    name: "bench",
    summary: "the whole stream on any CSV of labelled images, as one JSON summary",
    load: async () =>
      ((await load("./bench/people.ts")) as typeof import("./bench/people.ts")).benchPeopleCommand,
  },
  {
    name: "bench:congress",
    summary: "the whole pipeline on ../shared/data/congress (party from official portraits)",
    load: async () =>
      ((await load("./bench/congress.ts")) as typeof import("./bench/congress.ts"))
        .benchCongressCommand,
  },
  {
    name: "bench:serve",
    summary: "time the web app in Chromium: the faces grid of 2,000 faces, the predict round trip",
    load: async () =>
      ((await load("./bench/serve.ts")) as typeof import("./bench/serve.ts")).benchServeCommand,
  },
  {
    name: "bench:discover",
    summary: "discovery on a generated loopback university: recall, false sure rows, hints, pages",
    load: async () =>
      ((await load("./bench/discover.ts")) as typeof import("./bench/discover.ts"))
        .benchDiscoverCommand,
  },
  {
    name: "bench:startup",
    summary: "one-shot predict and crop as whole processes, beside autocrop's Haar script",
    load: async () =>
      ((await load("./bench/startup.ts")) as typeof import("./bench/startup.ts"))
        .benchStartupCommand,
  },
  {
    name: "bench:verdict",
    summary: "how often the verdict is right, on sites whose truth is planted",
    load: async () =>
      ((await load("./bench/verdict.ts")) as typeof import("./bench/verdict.ts"))
        .benchVerdictCommand,
  },
  {
    name: "bench:seedlike",
    summary: "the seed study's shape: 873 congress portraits as 57 sources in 4 random categories",
    load: async () =>
      ((await load("./bench/seedlike.ts")) as typeof import("./bench/seedlike.ts"))
        .benchSeedlikeCommand,
  },
];
