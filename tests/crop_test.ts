import assert from "node:assert/strict";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { UserError } from "../core/errors.ts";
import { cropCommand } from "../commands/crop.ts";

const fixtures = new URL("./testdata/faces/", import.meta.url).pathname;

/** Runs the command as main.ts would, with its own option parser. */
function crop(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: cropCommand.options, strict: true });
  return cropCommand.run(values, positionals);
}

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

async function folderWith(files: string[]): Promise<string> {
  const dir = await Deno.makeTempDir();
  const input = join(dir, "in");
  await Deno.mkdir(input);
  for (const file of files) await Deno.copyFile(join(fixtures, file), join(input, file));
  await Deno.mkdir(join(input, "subfolder"));
  return dir;
}

Deno.test({
  name: "crop writes one crop per face image and copies the rest to the reject folder",
  async fn() {
    const inputs = ["group.jpg", "not_an_image.jpg", "portrait.jpg", "rgba.png", "tiny.png"];
    const dir = await folderWith(inputs);
    try {
      const code = await crop([
        "-i",
        join(dir, "in"),
        "-o",
        join(dir, "out"),
        "-r",
        join(dir, "rejects"),
        "-w",
        "96",
        "-H",
        "128",
        "--workers",
        "0",
        "-q",
      ]);
      assert.equal(code, 0);
      assert.deepEqual(await names(join(dir, "out")), ["group.jpg", "portrait.jpg", "rgba.png"]);
      assert.deepEqual(await names(join(dir, "rejects")), ["not_an_image.jpg", "tiny.png"]);
      // Copied, not moved: the input folder is untouched.
      assert.deepEqual(await names(join(dir, "in")), [...inputs, "subfolder"].sort());
      for (const file of ["group.jpg", "portrait.jpg", "rgba.png"]) {
        const { width, height, format } = await sharp(join(dir, "out", file)).metadata();
        assert.deepEqual([width, height], [96, 128], file);
        assert.equal(format, file.endsWith(".png") ? "png" : "jpeg");
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "crop --move moves rejected files",
  async fn() {
    const dir = await folderWith(["tiny.png", "truncated.jpg"]);
    try {
      const args = ["-i", join(dir, "in"), "-o", join(dir, "out"), "-r", join(dir, "rej")];
      assert.equal(await crop([...args, "--move", "--workers", "0", "-q"]), 0);
      assert.deepEqual(await names(join(dir, "out")), []);
      assert.deepEqual(await names(join(dir, "rej")), ["tiny.png", "truncated.jpg"]);
      assert.deepEqual(await names(join(dir, "in")), ["subfolder"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("crop fails with a usage error on bad arguments or an unreadable folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string[], number][] = [
      [["-o", dir], 2],
      [["-i", dir, "-o", dir], 2],
      [["-i", dir, "-o", join(dir, "o"), "--facePercent", "0"], 2],
      [["-i", dir, "-o", join(dir, "o"), "--detector", "haar"], 2],
      [["-i", dir, "-o", join(dir, "o"), "-w", "12.5"], 2],
      [["-i", join(dir, "absent"), "-o", join(dir, "o")], 1],
    ];
    for (const [args, exitCode] of cases) {
      await assert.rejects(crop(args), (error) => {
        assert.ok(error instanceof UserError, String(error));
        assert.equal(error.exitCode, exitCode, args.join(" "));
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
