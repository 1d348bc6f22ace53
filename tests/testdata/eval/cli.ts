/**
 * Runs `predict` or `bench:predict` the way main.ts does, for tests written before main.ts
 * listed them: parse the command's options, run it, one exit point for CliError.
 */
import { parseArgs } from "node:util";
import { CliError } from "../../../pipeline/cli.ts";
import { benchPredictCommand, predictCommand } from "../../../pipeline/predict.ts";

const [name, ...rest] = Deno.args;
const command = [predictCommand, benchPredictCommand].find((c) => c.name === name);
try {
  if (!command) throw new CliError(`unknown command '${name}'`, 2);
  const parsed = parseArgs({
    args: rest,
    options: command.options,
    allowPositionals: command.allowPositionals ?? false,
    strict: true,
  });
  Deno.exitCode = await command.run(parsed.values, parsed.positionals);
} catch (error) {
  if (!(error instanceof CliError)) throw error;
  console.error(`facefield: ${error.message}`);
  Deno.exitCode = error.exitCode;
}
