import type { Command } from "./cli.ts";
import { forgetCommand } from "./forget.ts";
import { benchCrawlCommand } from "./bench_crawl.ts";
import { cropCommand } from "./crop.ts";
import { benchFacesCommand } from "./bench_faces.ts";

/** Every subcommand, in the order `--help` lists them. Each lives in its own module. */
export const commands: Command[] = [
  cropCommand,
  forgetCommand,
  benchCrawlCommand,
  benchFacesCommand,
];
