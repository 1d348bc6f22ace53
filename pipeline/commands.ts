import type { Command } from "./cli.ts";

/** Every subcommand, in the order `--help` lists them. Each lives in its own module. */
export const commands: Command[] = [];
