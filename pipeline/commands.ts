import type { Command } from "./cli.ts";
import { forgetCommand } from "./forget.ts";
import { pipelineCommand } from "./pipeline_command.ts";
import { benchPredictCommand, predictCommand } from "./predict.ts";
import { benchTrainCommand } from "./bench_train.ts";
import { benchCongressCommand } from "./bench_congress.ts";
import { benchCrawlCommand } from "./bench_crawl.ts";
import { cropCommand } from "./crop.ts";
import { benchFacesCommand } from "./bench_faces.ts";

/** Every subcommand, in the order `--help` lists them. Each lives in its own module. */
export const commands: Command[] = [
  pipelineCommand,
  predictCommand,
  cropCommand,
  forgetCommand,
  benchCrawlCommand,
  benchFacesCommand,
  benchTrainCommand,
  benchPredictCommand,
  benchCongressCommand,
];
