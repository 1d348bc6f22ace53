/**
 * `crop` of a small folder runs its face nets on its own thread with ONNX Runtime's threads on
 * every core (pipeline/crop_folder.ts, ONE_THREAD_MAX_FILES); with --workers it starts a pool.
 * Both write the same crops, byte for byte.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { cropCommand } from "../commands/crop.ts";
import { setSessionThreads } from "../models/native/onnx_runtime.ts";

const fixtures = new URL("./testdata/faces/", import.meta.url).pathname;

function crop(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: cropCommand.options, strict: true });
  return cropCommand.run(values, positionals);
}

async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  for await (const entry of Deno.readDir(dir)) {
    files.set(entry.name, await Deno.readFile(join(dir, entry.name)));
  }
  return files;
}

Deno.test("setSessionThreads takes 1 to 64 threads only", () => {
  assert.throws(() => setSessionThreads(0), RangeError);
  assert.throws(() => setSessionThreads(1.5), RangeError);
  assert.throws(() => setSessionThreads(65), RangeError);
});

Deno.test({
  name: "crop on its own thread (ORT on every core) writes what two workers write",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const input = join(dir, "in");
      await Deno.mkdir(input);
      for (const file of ["group.jpg", "portrait.jpg", "rgba.png", "exif_rotated.jpg"]) {
        await Deno.copyFile(join(fixtures, file), join(input, file));
      }
      // The default first: this process's sessions then compute on every core.
      assert.equal(await crop(["-i", input, "-o", join(dir, "here"), "-q"]), 0);
      assert.equal(await crop(["-i", input, "-o", join(dir, "pool"), "-q", "--workers", "2"]), 0);
      const here = await filesOf(join(dir, "here"));
      const pool = await filesOf(join(dir, "pool"));
      assert.ok(here.size >= 3, `only ${here.size} crops`);
      assert.deepEqual([...here.keys()].sort(), [...pool.keys()].sort());
      for (const [name, bytes] of here) assert.deepEqual(bytes, pool.get(name), name);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
