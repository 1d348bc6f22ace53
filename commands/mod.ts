import type { Command } from "./cli.ts";
import { forgetCommand } from "./forget.ts";
import { pipelineCommand } from "./pipeline.ts";
import { benchPredictCommand } from "./bench/predict.ts";
import { predictCommand } from "./predict.ts";
import { benchTrainCommand } from "./bench/train.ts";
import { benchCongressCommand } from "./bench/congress.ts";
import { benchPeopleCommand } from "./bench/people.ts";
import { benchCrawlCommand } from "./bench/crawl.ts";
import { benchScaleCommand } from "./bench/scale.ts";
import { benchClusterCommand } from "./bench/cluster.ts";
import { cropCommand } from "./crop.ts";
import { serveCommand } from "./serve.ts";
import { benchFacesCommand } from "./bench/faces.ts";
import { workerCommand } from "./worker.ts";
import { benchServeCommand } from "./bench/serve.ts";
import { exportCommand } from "./export.ts";
import { discoverCommand } from "./discover.ts";
import { benchDiscoverCommand } from "./bench/discover.ts";
import { benchVerdictCommand } from "./bench/verdict.ts";

/** Every subcommand, in the order `--help` lists them. Each lives in its own module. */
export const commands: Command[] = [
  pipelineCommand,
  discoverCommand,
  predictCommand,
  cropCommand,
  forgetCommand,
  exportCommand,
  workerCommand,
  serveCommand,
  benchCrawlCommand,
  benchScaleCommand,
  benchClusterCommand,
  benchFacesCommand,
  benchTrainCommand,
  benchPredictCommand,
  benchPeopleCommand,
  benchCongressCommand,
  benchServeCommand,
  benchDiscoverCommand,
  benchVerdictCommand,
];
