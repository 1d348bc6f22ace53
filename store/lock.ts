/**
 * One run at a time per data dir: a lock file holding the owner's pid. A lock left by a run
 * that died (its pid is gone, or a zombie nobody reaped) is taken over, so a crash never
 * blocks the next run; the temp files such a run left beside the manifest are swept when the
 * lock is taken.
 */
import { dirname, join } from "node:path";
import { tempWriter } from "../core/files.ts";

export class DataDirLock {
  private constructor(readonly path: string) {}

  static async acquire(path: string): Promise<DataDirLock> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await Deno.writeTextFile(path, String(Deno.pid), { createNew: true });
        await removeDeadWritersTemps(dirname(path));
        return new DataDirLock(path);
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        const owner = Number((await Deno.readTextFile(path).catch(() => "")).trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== Deno.pid && processAlive(owner)) {
          throw new Deno.errors.Busy(
            `another facefield run (pid ${owner}) is using this data dir; wait for it or stop it`,
          );
        }
        await Deno.remove(path).catch(() => {});
      }
    }
    throw new Deno.errors.Busy(`could not take the lock ${path}`);
  }

  releaseSync(): void {
    try {
      Deno.removeSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

/**
 * Removes the temp files that runs killed mid-write (SIGKILL, power loss) left in the data dir
 * beside the manifest: their writer is gone, and the file they were replacing is whole. Only
 * the lock's holder writes there, so a live writer's temp is never touched.
 */
async function removeDeadWritersTemps(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) {
    const writer = tempWriter(entry.name);
    if (entry.isFile && writer !== undefined && writer !== Deno.pid && !processAlive(writer)) {
      await Deno.remove(join(dir, entry.name)).catch(() => {});
    }
  }
}

/**
 * Whether `pid` is a running process. A zombie (state Z: exited, not yet reaped, as under a
 * PID 1 that never reaps) or a dead one (X) holds no lock, and neither does a pid that is gone.
 * Reads the state from `/proc/<pid>/stat`; where there is no /proc, a pid counts as alive.
 */
export function processAlive(pid: number): boolean {
  // Without /proc there is no cheap, side-effect-free check: count the owner as alive.
  if (Deno.build.os !== "linux") return true;
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return false;
  }
  return !/^[ZX]$/.test(processState(stat) ?? "X");
}

/**
 * The state letter of a `/proc/<pid>/stat` line: the field after the command name, which sits
 * in parentheses and may itself hold spaces and parentheses, so it is found after the last ')'.
 */
export function processState(stat: string): string | undefined {
  const end = stat.lastIndexOf(")");
  if (end < 0) return undefined;
  return stat.slice(end + 1).trim().split(/\s+/)[0];
}
