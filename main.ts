/**
 * facefield's command line: parses arguments and hands off to pipeline/.
 *
 * deno run -A main.ts <command> [options]; see `deno task` for the shortcuts.
 */
import { parseArgs } from "node:util";
import { UserError } from "./core/errors.ts";
import type { Command } from "./commands/cli.ts";
import { commands } from "./commands/mod.ts";

function helpText(command: Command): string {
  const lines = [`facefield ${command.name}: ${command.summary}`, "", command.usage.trim(), ""];
  return lines.join("\n");
}

function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    "facefield: a portrait dataset and group classifier from organisations' people pages",
    "",
    "usage: deno task <command> [options]      (or: deno run -A main.ts <command> …)",
    "",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Each command takes --help.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(topHelp());
    return name === undefined ? 2 : 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    throw new UserError(
      `unknown command '${name}'. Commands: ${commands.map((c) => c.name).join(", ")}`,
      2,
    );
  }
  // Only this command's module, and so only its dependencies, is loaded.
  const command = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(helpText(command));
    return 0;
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: command.options,
      allowPositionals: command.allowPositionals ?? false,
      strict: true,
    });
  } catch (error) {
    throw new UserError(
      `${(error as Error).message}\nRun 'deno task ${command.name} --help' for usage.`,
      2,
    );
  }
  return await command.run(parsed.values, parsed.positionals);
}

try {
  Deno.exitCode = await main(Deno.args);
} catch (error) {
  if (error instanceof UserError) {
    console.error(`facefield: ${error.message}`);
    Deno.exitCode = error.exitCode;
  } else {
    console.error("facefield: internal error (please report it):", error);
    Deno.exitCode = 70;
  }
}
