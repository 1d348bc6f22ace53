/**
 * A process whose face-api graphs all come from a warm graph cache still finds faces: tfjs
 * holds the work copy's tensors there too, so it must start though no weight loads into it.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const fixtures = new URL("./testdata/faces/", import.meta.url).pathname;
const main = new URL("../main.ts", import.meta.url).pathname;

async function facesStage(dataDir: string, list: string, cacheDir: string): Promise<string[]> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "pipeline", "--images", list, "--data", dataDir, "--until", "faces"],
    env: { FACEFIELD_CACHE_DIR: cacheDir },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr).slice(-2000));
  const rows = (await Deno.readTextFile(join(dataDir, "index.csv"))).trim().split("\n").slice(1);
  return rows.map((row) => row.split(",").slice(6, 9).join(","));
}

Deno.test({
  name: "faces are found the same with a cold and a warm graph cache",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "facefield-warm-cache-" });
    try {
      const list = join(dir, "list.csv");
      const images = ["portrait.jpg", "group.jpg", "exif_rotated.jpg"];
      await Deno.writeTextFile(
        list,
        "image,label\n" + images.map((f, i) => `${join(fixtures, f)},${"ab"[i % 2]}`).join("\n"),
      );
      const cache = join(dir, "graphs");
      const cold = await facesStage(join(dir, "cold"), list, cache);
      const warm = await facesStage(join(dir, "warm"), list, cache);
      assert.ok(cold.every((row) => !row.includes("face_failed")), cold.join("\n"));
      assert.deepEqual(warm, cold, "a warm graph cache changes what the faces stage finds");
      assert.equal(warm.filter((row) => row.startsWith("ok,faces")).length, 3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
