/**
 * commands/mod.ts lists each command's name and summary without loading its module: each entry
 * must match the module it loads, and main.ts must answer `--help` and unknown commands from the
 * list alone.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { commands } from "../commands/mod.ts";

const MAIN = join(import.meta.dirname!, "..", "main.ts");

async function runMain(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, out: text(stdout), err: text(stderr) };
}

Deno.test("each entry of commands/mod.ts loads the command it names, with its summary", async () => {
  assert.ok(commands.length >= 10);
  assert.equal(new Set(commands.map((c) => c.name)).size, commands.length, "names are unique");
  for (const entry of commands) {
    const command = await entry.load();
    assert.equal(command.name, entry.name);
    assert.equal(command.summary, entry.summary, `summary of ${entry.name}`);
    assert.equal(typeof command.run, "function");
  }
});

Deno.test("main.ts --help lists every command; an unknown one exits 2 naming them", async () => {
  const help = await runMain("--help");
  assert.equal(help.code, 0);
  for (const entry of commands) assert.ok(help.out.includes(`  ${entry.name} `), entry.name);
  const unknown = await runMain("no-such-command");
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command 'no-such-command'\. Commands: pipeline, /);
  const cropHelp = await runMain("crop", "--help");
  assert.equal(cropHelp.code, 0);
  assert.match(cropHelp.out, /^facefield crop: autocrop/);
  const badFlag = await runMain("crop", "--no-such-flag");
  assert.equal(badFlag.code, 2);
  assert.match(badFlag.err, /Run 'deno task crop --help' for usage/);
});
