/**
 * The docs name only what exists: every `deno task NAME` in README.md, CHANGELOG.md,
 * ARCHITECTURE.md and docs/*.md is a task of deno.json, every `deno run … main.ts NAME` a command
 * of commands/mod.ts, and every `--flag` written after either on the same line is an option of
 * that command (or of the pipeline, whose options the benches take too).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { commands } from "../commands/mod.ts";

const ROOT = join(import.meta.dirname!, "..");

async function docs(): Promise<[string, string][]> {
  const files: [string, string][] = [];
  for (const name of ["README.md", "CHANGELOG.md", "ARCHITECTURE.md"]) {
    files.push([name, await Deno.readTextFile(join(ROOT, name))]);
  }
  for await (const entry of Deno.readDir(join(ROOT, "docs"))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      files.push([`docs/${entry.name}`, await Deno.readTextFile(join(ROOT, "docs", entry.name))]);
    }
  }
  return files;
}

/** The command a task runs (`deno run … main.ts NAME`), where it runs one. */
function commandOf(task: string): string | undefined {
  return /main\.ts\s+(\S+)/.exec(task)?.[1];
}

Deno.test("the docs name only tasks and flags that exist", async () => {
  const tasks: Record<string, string> =
    JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const loaded = await Promise.all(commands.map((entry) => entry.load()));
  const options = new Map(loaded.map((c) => [c.name, new Set(Object.keys(c.options))]));
  const pipelineFlags = options.get("pipeline") ?? new Set<string>();
  const wrong: string[] = [];
  let checked = 0;
  for (const [file, text] of await docs()) {
    for (const [lineIndex, line] of text.split("\n").entries()) {
      const named = [
        ...[...line.matchAll(/deno task ([\w:-]+)([^`\n|]*)/g)].map(([, task, rest]) => ({
          task: task!,
          rest: rest!,
          command: task! in tasks ? commandOf(tasks[task!]!) : undefined,
        })),
        // `main.ts --help` is the top-level help, not a command.
        ...[...line.matchAll(/deno run [^`\n|]*?main\.ts ([\w:][\w:-]*)([^`\n|]*)/g)].map((
          [, command, rest],
        ) => ({ task: undefined, rest: rest!, command: command! })),
      ];
      for (const { task, rest, command } of named) {
        checked++;
        const where = `${file}:${lineIndex + 1}`;
        if (task !== undefined && !(task in tasks)) {
          wrong.push(`${where}: no task '${task}'`);
          continue;
        }
        if (task === undefined && !options.has(command!)) {
          wrong.push(`${where}: no command '${command}'`);
          continue;
        }
        const known = command ? options.get(command) : undefined;
        if (!known) continue;
        // Flags up to a comment or a pipe into another program.
        const args = rest.split(/\s#|\s\|/)[0]!;
        for (const flag of args.matchAll(/(?:^|\s)--([a-z][\w-]*)/g)) {
          const name = flag[1]!;
          if (name === "help" || known.has(name) || pipelineFlags.has(name)) continue;
          wrong.push(`${where}: '${task ?? command}' has no option --${name}`);
        }
      }
    }
  }
  assert.deepEqual(wrong, []);
  assert.ok(checked >= 10, `only ${checked} commands named: is the pattern still right?`);
});
