/**
 * One run at a time per data dir: a lock file holding the owner's pid. A lock left by a run
 * that died (its pid is gone) is taken over, so a crash never blocks the next run.
 */
export class DataDirLock {
  private constructor(readonly path: string) {}

  static async acquire(path: string): Promise<DataDirLock> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await Deno.writeTextFile(path, String(Deno.pid), { createNew: true });
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

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return Deno.build.os !== "linux";
  }
}
