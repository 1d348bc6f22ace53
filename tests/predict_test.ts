/**
 * predict's contract, end to end: the real CLI in a child process, a small model trained in the
 * test on face-api's demo faces, images on stdin, lines of paths and URLs (a loopback server),
 * and every kind of bad input.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { demoImagePaths } from "../models/faces/package_files.ts";
import { type PredictionLine } from "../pipeline/predictor.ts";
import { makeTinyModel, TINY_CLASSES } from "./testdata/eval/tiny_model.ts";

const root = new URL("..", import.meta.url).pathname;
const work = await Deno.makeTempDir({ prefix: "facefield-predict-" });
const modelDir = join(work, "model");
await makeTinyModel(modelDir);
const [withFaces, secondPhoto] = demoImagePaths();
const noisePath = join(work, "noise.png");
await sharp({
  create: {
    width: 160,
    height: 160,
    channels: 3,
    background: "#808080",
    noise: { type: "gaussian", mean: 128, sigma: 40 },
  },
}).png().toFile(noisePath);
const textPath = join(work, "notes.txt");
await Deno.writeTextFile(textPath, "not an image\n");

function cli(args: string[], stdin: "piped" | "null" = "null") {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: root,
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

interface Run {
  code: number;
  lines: PredictionLine[];
  stdout: string;
  stderr: string;
}

async function run(args: string[], input?: Uint8Array | string): Promise<Run> {
  const child = cli(args, input === undefined ? "null" : "piped").spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
      await writer.close();
    } catch (error) {
      // A command that fails before reading its input closes the pipe first.
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
    }
  }
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout);
  const lines = text.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  return { code, lines, stdout: text, stderr: new TextDecoder().decode(stderr) };
}

function assertFaceLine(line: PredictionLine, input: string) {
  assert.ok("result" in line && line.result === "face", JSON.stringify(line));
  assert.equal(line.input, input);
  assert.deepEqual(Object.keys(line.probabilities).sort(), [...TINY_CLASSES].sort());
  const values = Object.values(line.probabilities);
  assert.ok(Math.abs(values.reduce((a, b) => a + b, 0) - 1) < 1e-3, "probabilities sum to 1");
  assert.equal(line.probability, Math.max(...values));
  assert.equal(line.label, Object.entries(line.probabilities)[0]![0], "most likely first");
  assert.ok(line.box.width > 0 && line.box.height > 0);
}

/** A loopback server: /face.jpg is a photo, everything else 404. */
function serve() {
  const photo = Deno.readFileSync(secondPhoto!);
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      new URL(request.url).pathname === "/face.jpg"
        ? new Response(photo, { headers: { "content-type": "image/jpeg" } })
        : new Response("gone", { status: 404 }),
  );
}

/** A loopback port nobody listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

Deno.test("predict reads one image from stdin and prints one JSON line per face", async () => {
  const { code, lines, stderr } = await run(
    ["predict", "--model", modelDir],
    await Deno.readFile(withFaces!),
  );
  assert.equal(code, 0, stderr);
  assert.ok(lines.length >= 1);
  for (const [i, line] of lines.entries()) {
    assertFaceLine(line, "-");
    assert.ok("face" in line && line.face === i + 1 && line.faces === lines.length);
  }
  const areas = lines.map((l) => ("box" in l ? l.box.width * l.box.height : 0));
  assert.deepEqual(areas, [...areas].sort((a, b) => b - a), "largest face first");
});

Deno.test("predict streams lines of paths and URLs, reporting bad lines and going on", async () => {
  const server = serve();
  const base = `http://127.0.0.1:${server.addr.port}`;
  const dead = `http://127.0.0.1:${closedPort()}/face.jpg`;
  try {
    const child = cli(["predict", "--model", modelDir], "piped").spawn();
    const writer = child.stdin.getWriter();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    // The first answer must come while stdin is still open: a `tail -f` pipe streams.
    await writer.write(new TextEncoder().encode(`${withFaces}\n`));
    let early = "";
    while (!early.includes("\n")) {
      const { value, done } = await reader.read();
      assert.ok(!done, "stdout ended before the first line was answered");
      early += value;
    }
    const rest = [
      "",
      `${base}/face.jpg`,
      join(work, "missing.jpg"),
      textPath,
      `${base}/missing.jpg`,
      dead,
      noisePath,
      "",
    ].join("\n");
    await writer.write(new TextEncoder().encode(rest));
    await writer.close();
    let text = early;
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const { code } = await child.status;
    const lines: PredictionLine[] = text.trim().split("\n").map((l) => JSON.parse(l));
    const byInput = (input: string) => lines.filter((l) => l.input === input);

    assert.equal(code, 1, "a stream with bad lines ends with exit code 1");
    assertFaceLine(JSON.parse(early.split("\n")[0]!), withFaces!);
    for (const line of byInput(`${base}/face.jpg`)) assertFaceLine(line, `${base}/face.jpg`);
    assert.ok(byInput(`${base}/face.jpg`).length >= 1);
    const error = (input: string) => {
      const [line] = byInput(input);
      assert.ok(line && "error" in line, `no error line for ${input}`);
      return line.error;
    };
    assert.match(error(join(work, "missing.jpg")), /^missing_file: /);
    assert.match(error(textPath), /^not_an_image: /);
    assert.match(error(`${base}/missing.jpg`), /^unreachable: http_404/);
    assert.match(error(dead), /^unreachable: /);
    const [noFace] = byInput(noisePath);
    assert.ok(noFace && "result" in noFace && noFace.result === "no_face", JSON.stringify(noFace));
    // Results keep the order of the input lines.
    const order = [...new Set(lines.map((l) => l.input))];
    assert.deepEqual(order, [
      withFaces,
      `${base}/face.jpg`,
      join(work, "missing.jpg"),
      textPath,
      `${base}/missing.jpg`,
      dead,
      noisePath,
    ]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("predict --whole-image classifies a faceless image; --format table --top 1 is for people", async () => {
  const whole = await run(
    ["predict", "--model", modelDir, "--whole-image"],
    await Deno.readFile(noisePath),
  );
  assert.equal(whole.code, 0, whole.stderr);
  assert.equal(whole.lines.length, 1);
  const [line] = whole.lines;
  assert.ok(line && "result" in line && line.result === "whole_image", JSON.stringify(line));
  assert.deepEqual(line.box, { x: 0, y: 0, width: 160, height: 160 });

  const table = await run([
    "predict",
    "--model",
    modelDir,
    "--format",
    "table",
    "--top",
    "1",
    withFaces!,
  ]);
  assert.equal(table.code, 0, table.stderr);
  const [header, ...rows] = table.stdout.trim().split("\n");
  assert.match(header!, /^input\s+face\s+box/);
  assert.ok(rows.length >= 1);
  for (const row of rows) {
    assert.match(row, /\d+\/\d+\s+\d+,\d+ \d+×\d+\s+(left|right)\s+\d+\.\d %\s*$/, row);
  }
});

Deno.test("predict fails with a specific message, on stderr and as a JSON line, on one bad input", async () => {
  const random = crypto.getRandomValues(new Uint8Array(4096));
  random[0] = 0;
  const bigJunk = new Uint8Array(11 * 1024 * 1024);
  bigJunk.set(random);
  const pixelBomb = await Deno.readFile(
    new URL("./testdata/serve/too_many_pixels.png", import.meta.url),
  );
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>\n';
  const cases: [string[], Uint8Array | string | undefined, RegExp][] = [
    [["predict", "--model", modelDir], random, /stdin: not_an_image: /],
    [["predict", "--model", modelDir, join(work, "missing.jpg")], undefined, /missing_file: /],
    [["predict", "--model", modelDir, textPath], undefined, /not_an_image: /],
    [["predict", "--model", modelDir], await Deno.readFile(noisePath), /^$/],
    // The web app's limits, with its reasons: 10 MiB, 40 million pixels, no SVG.
    [["predict", "--model", modelDir], bigJunk, /stdin: too_large: /],
    [["predict", "--model", modelDir], pixelBomb, /stdin: too_many_pixels: /],
    [["predict", "--model", modelDir], svg, /stdin: unsupported_format: svg/],
  ];
  for (const [args, input, message] of cases) {
    const { code, stderr, lines } = await run(args, input);
    if (message.source === "^$") {
      // No face is an answer, not an error.
      assert.equal(code, 0, stderr);
      assert.ok(lines[0] && "result" in lines[0] && lines[0].result === "no_face");
      continue;
    }
    assert.equal(code, 1, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, message);
    // The same reason as one JSON line on stdout, for a script that reads only stdout.
    assert.equal(lines.length, 1, `one error line: ${args.join(" ")}`);
    const [line] = lines;
    assert.ok(line && "error" in line, JSON.stringify(line));
    assert.match(`${line.input === "-" ? "stdin: " : ""}${line.error}`, message);
  }
});

Deno.test("predict refuses a missing or incompatible model folder", async () => {
  const photo = await Deno.readFile(withFaces!);
  const missing = await run(["predict", "--model", join(work, "no-model")], photo);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no model folder at '.*no-model': train one/);

  const broken = join(work, "old-model");
  await Deno.mkdir(broken);
  for (const file of ["model.json", "weights.bin"]) {
    await Deno.copyFile(join(modelDir, file), join(broken, file));
  }
  const metadata = JSON.parse(await Deno.readTextFile(join(modelDir, "metadata.json")));
  await Deno.writeTextFile(
    join(broken, "metadata.json"),
    JSON.stringify({ ...metadata, format: "facefield-model/0" }),
  );
  const old = await run(["predict", "--model", broken], photo);
  assert.equal(old.code, 1);
  assert.match(old.stderr, /the model in '.*old-model' cannot be used: .*format/);

  const usage = await run(["predict", "--model", modelDir, "--format", "xml"], photo);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--format must be json or table/);
});
