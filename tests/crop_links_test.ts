import assert from "node:assert/strict";
import { join } from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { cropCommand } from "../commands/crop.ts";

const fixtures = new URL("./testdata/faces/", import.meta.url).pathname;
const main = new URL("../main.ts", import.meta.url).pathname;

function crop(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: cropCommand.options, strict: true });
  return cropCommand.run(values, positionals);
}

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

Deno.test({
  name: "crop follows symbolic links to files and reports a link to nothing",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const input = join(dir, "links");
      await Deno.mkdir(input);
      await Deno.symlink(join(fixtures, "portrait.jpg"), join(input, "a.jpg"));
      await Deno.symlink(join(fixtures, "tiny.png"), join(input, "b.png"));
      await Deno.symlink(join(dir, "gone.jpg"), join(input, "broken.jpg"));
      await Deno.symlink(fixtures, join(input, "folder"));
      const rejected: string[] = [];
      const { values } = parseArgs({
        args: ["-i", input, "-o", join(dir, "out"), "-r", join(dir, "rej"), "--workers", "0"],
        options: cropCommand.options,
        strict: true,
      });
      const errors = console.error;
      console.error = (line: string) => rejected.push(line);
      try {
        assert.equal(await cropCommand.run(values, []), 0);
      } finally {
        console.error = errors;
      }
      assert.deepEqual(await names(join(dir, "out")), ["a.jpg"]);
      assert.deepEqual(await names(join(dir, "rej")), ["b.png"], "the broken link has no bytes");
      assert.ok(
        rejected.includes("rejected broken.jpg: unreadable: a symbolic link to nothing"),
        rejected.join("\n"),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function cropPipe(input: Uint8Array) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", main, "crop", "-i", "-", "-o", "-", "-w", "64", "-H", "80"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return { code, stdout, stderr: new TextDecoder().decode(stderr) };
}

Deno.test("crop -i - -o - reads one image on stdin and writes its crop to stdout", async () => {
  const face = await cropPipe(await Deno.readFile(join(fixtures, "portrait.jpg")));
  assert.equal(face.code, 0, face.stderr);
  const { width, height, format } = await sharp(face.stdout).metadata();
  assert.deepEqual([width, height, format], [64, 80, "jpeg"]);

  const none = await cropPipe(await Deno.readFile(join(fixtures, "not_an_image.jpg")));
  assert.equal(none.code, 1);
  assert.equal(none.stdout.length, 0, "nothing on stdout");
  assert.match(none.stderr, /rejected, not_an_image/);

  await assert.rejects(crop(["-i", "-", "-o", "faces"]), /goes with -o -/);
});
