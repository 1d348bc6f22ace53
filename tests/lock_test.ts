import assert from "node:assert/strict";
import { join } from "node:path";
import { DataDirLock, processAlive, processState } from "../store/lock.ts";

const linux = Deno.build.os === "linux";

Deno.test("processState() reads the state after the last ')' of /proc/<pid>/stat", () => {
  assert.equal(processState("1234 (deno) S 1 1234 1234 0 -1"), "S");
  assert.equal(processState("77 (a) b (c)) Z 1 77 77 0"), "Z", "a name with ') ' in it");
  assert.equal(processState("garbage"), undefined);
});

Deno.test({
  name: "DataDirLock takes over a lock whose owner is a zombie, gone, or not a pid",
  ignore: !linux,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = join(dir, ".lock");
    // `sh` forks a short sleep and then becomes a long one, which never waits for it: the short
    // one stays a zombie (state Z) once it exits, as a run does under a PID 1 that never reaps.
    const parent = new Deno.Command("sh", {
      args: ["-c", "sleep 0.1 & echo $!; exec sleep 5"],
      stdout: "piped",
    }).spawn();
    try {
      const reader = parent.stdout.getReader();
      const { value } = await reader.read();
      reader.releaseLock();
      const zombie = Number(new TextDecoder().decode(value).trim());
      assert.ok(zombie > 0);
      let state: string | undefined;
      for (let tries = 0; tries < 100 && state !== "Z"; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        state = processState(await Deno.readTextFile(`/proc/${zombie}/stat`));
      }
      assert.equal(state, "Z", "the child became a zombie");
      assert.equal(processAlive(zombie), false);
      assert.equal(processAlive(parent.pid), true, "its sleeping parent is alive");

      await Deno.writeTextFile(path, String(zombie));
      const taken = await DataDirLock.acquire(path);
      assert.equal(await Deno.readTextFile(path), String(Deno.pid));
      taken.releaseSync();

      await Deno.writeTextFile(path, String(parent.pid));
      await assert.rejects(() => DataDirLock.acquire(path), Deno.errors.Busy, "a live owner");
    } finally {
      parent.kill();
      await parent.status;
      await parent.stdout.cancel().catch(() => {});
    }
    // The parent is gone now, and reaped: its lock is free to take.
    assert.equal(processAlive(parent.pid), false);
    const afterExit = await DataDirLock.acquire(path);
    afterExit.releaseSync();
    await Deno.writeTextFile(path, "not a pid");
    (await DataDirLock.acquire(path)).releaseSync();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "DataDirLock sweeps the temp files of writers that died, and keeps a live writer's",
  ignore: !linux,
  async fn() {
    const dir = await Deno.makeTempDir();
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    assert.equal(processAlive(gone.pid), false);
    const live = new Deno.Command("sleep", { args: ["5"] }).spawn();
    try {
      const dead = join(dir, `index.csv.${gone.pid}.0123abcd.tmp`);
      const alive = join(dir, `index.csv.${live.pid}.89abcdef.tmp`);
      const other = join(dir, "notes.tmp");
      for (const path of [dead, alive, other]) await Deno.writeTextFile(path, "x");
      const lock = await DataDirLock.acquire(join(dir, ".lock"));
      const left = [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
      assert.deepEqual(left, [".lock", `index.csv.${live.pid}.89abcdef.tmp`, "notes.tmp"]);
      lock.releaseSync();
    } finally {
      live.kill();
      await live.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
