/**
 * `bench:faces`: milliseconds per image of the face stage's work (decode, detect, align, crop,
 * descriptor), alone and with worker threads, beside autocrop's Haar detect+crop timed in the
 * same run by the peer script when Debian's OpenCV is installed.
 */
import { parse } from "csv-parse/sync";
import { extname, join } from "node:path";
import { FaceWorkerPool } from "../../models/faces/worker_pool.ts";
import {
  emptyTimings,
  extractFaces,
  type FaceExtraction,
  type FaceOptions,
  loadFaceModels,
} from "../../models/faces/faces.ts";
import { type Command, detectorOption, intOption, log, stringOption } from "../cli.ts";
import { checkFaceNetwork, type FaceNetworkName } from "../../models/faces/face_networks.ts";
import { fail } from "../../core/errors.ts";
import { machineLoad, peerEnvironment } from "./peer.ts";
import { exists } from "../../core/files.ts";
import { faceApiPackageDir } from "../../models/faces/package_files.ts";
import { sharedPath } from "../../core/shared_data.ts";

const IMAGE_EXTENSIONS = new Set([".jpg", ".jpeg", ".png", ".gif", ".webp"]);
const CONGRESS = sharedPath("data/congress");
const PEER_SCRIPT = sharedPath("bench/haar_autocrop.py");
const PEER_PYTHON = "/usr/bin/python3";

/** Congress dev images when ../shared has them, else face-api's demo photos. */
async function defaultImages(): Promise<{ label: string; files: string[] }> {
  const peopleCsv = join(CONGRESS, "people.csv");
  if (await exists(peopleCsv)) {
    const rows = parse(await Deno.readTextFile(peopleCsv), { columns: true, trim: true }) as {
      image: string;
      set: string;
    }[];
    const files = rows.filter((row) => row.set === "dev").map((row) => join(CONGRESS, row.image));
    return { label: "congress set=dev", files };
  }
  const demo = join(faceApiPackageDir(), "demo");
  return { label: "face-api demo", files: await imagesIn(demo) };
}

async function imagesIn(dir: string): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && IMAGE_EXTENSIONS.has(extname(entry.name).toLowerCase())) {
      files.push(join(dir, entry.name));
    }
  }
  return files.sort();
}

interface PeerFigure {
  peer: string;
  images: number;
  faces_found: number;
  ms_per_image: number;
}

/** Runs autocrop's Haar detect+crop on the same files; undefined (and why) when it cannot. */
async function runPeer(files: string[]): Promise<PeerFigure | string> {
  if (!(await exists(PEER_SCRIPT))) return `peer script absent: ${PEER_SCRIPT}`;
  try {
    const { code, stdout, stderr } = await new Deno.Command(PEER_PYTHON, {
      args: [PEER_SCRIPT, ...files],
      env: peerEnvironment(),
      clearEnv: true,
    }).output();
    const text = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
    if (code !== 0) {
      return `peer script failed (${code}): ${new TextDecoder().decode(stderr).trim().slice(-300)}`;
    }
    return JSON.parse(text) as PeerFigure;
  } catch (error) {
    return `peer script could not run: ${(error as Error).message}`;
  }
}

const round = (value: number) => Math.round(value * 10) / 10;

/** The images to time: a folder's, or the default set; at most `limit`. */
async function benchImages(dir: string | undefined, limit: number) {
  let images: { label: string; files: string[] };
  if (dir !== undefined) {
    const files = await imagesIn(dir).catch((error) =>
      fail(`cannot read folder '${dir}': ${(error as Error).message}`)
    );
    images = { label: dir, files };
  } else {
    images = await defaultImages();
  }
  const files = images.files.slice(0, limit);
  if (files.length === 0) fail(`no images in ${images.label}`);
  return { label: images.label, files };
}

/** Milliseconds per image on this thread, each part timed, after one warm-up image. */
async function timeOneThread(bytes: Uint8Array[], options: FaceOptions) {
  await loadFaceModels();
  await extractFaces(bytes[0]!, options); // warm-up: wasm kernels and SSD's first call
  const timings = emptyTimings();
  const detectors: Record<string, number> = {};
  let found = 0;
  const started = performance.now();
  for (const image of bytes) {
    const result = await extractFaces(image, { ...options, timings }).catch(() => undefined);
    if (result?.faces.length) found++;
    if (result) detectors[result.detector] = (detectors[result.detector] ?? 0) + 1;
  }
  return { ms: (performance.now() - started) / bytes.length, found, timings, detectors };
}

/** Milliseconds per image with `workers` worker threads, after one warm-up image each. */
async function timePool(
  bytes: Uint8Array[],
  workers: number,
  options: FaceOptions,
) {
  const pool = new FaceWorkerPool({ workers });
  try {
    await Promise.all(
      Array.from({ length: workers }, () => pool.extractFaces(bytes[0]!, options)),
    );
    const started = performance.now();
    const results = await Promise.all(
      bytes.map((image) =>
        pool.extractFaces(image, options).catch((): FaceExtraction | undefined => undefined)
      ),
    );
    const ms = (performance.now() - started) / bytes.length;
    return { ms, found: results.filter((r) => r?.faces.length).length };
  } finally {
    pool.close();
  }
}

export const benchFacesCommand: Command = {
  name: "bench:faces",
  summary: "time the face stage (detect, align, crop, descriptor) against autocrop's Haar cascade",
  usage: `
usage: deno task bench:faces [DIR] [--workers N] [--limit N] [--detector NAME] [--networks LIST]

Times the face work per image on DIR's images (default: the 200 congress dev images in
../shared/data/congress, else face-api's demo photos): once on one thread with each part timed,
once with N worker threads (the figure a pipeline run gets). When ../shared/bench/haar_autocrop.py
and Debian's python3-opencv are present it times autocrop's Haar detect+crop on the same files
before and after, and prints the ratio. Prints one JSON line on stdout.

  --workers N      worker threads for the throughput figure (default: number of cores)
  --limit N        use the first N images only
  --detector NAME  auto | tiny | ssd (default auto)
  --networks LIST  also embed with shipped networks (faceres,mobilefacenet); their time is the
                   part 'networks', the face-api descriptor's the part 'descriptor'
`,
  options: {
    workers: { type: "string" },
    limit: { type: "string" },
    detector: { type: "string" },
    networks: { type: "string" },
  },
  allowPositionals: true,
  async run(values, positionals) {
    const workers = intOption(values, "workers", navigator.hardwareConcurrency, {
      min: 1,
      max: 64,
    });
    const limit = intOption(values, "limit", Number.MAX_SAFE_INTEGER, { min: 1 });
    const detector = detectorOption(values);
    if (positionals.length > 1) fail("bench:faces takes at most one folder", 2);
    const images = await benchImages(positionals[0], limit);
    const files = images.files;
    const bytes = await Promise.all(files.map((file) => Deno.readFile(file)));
    let networks: FaceNetworkName[];
    try {
      networks = (stringOption(values, "networks") ?? "").split(",").filter(Boolean)
        .map((name) => checkFaceNetwork(name.trim(), "--networks"));
    } catch (error) {
      fail((error as Error).message, 2);
    }
    const options: FaceOptions = { detector, networks };

    log(`bench:faces: ${files.length} images from ${images.label}; autocrop (Haar) first`);
    const peerBefore = await runPeer(files);
    log("bench:faces: one thread, each part timed");
    const single = await timeOneThread(bytes, options);
    const { ms: oneThread, found, timings, detectors } = single;
    log(`bench:faces: ${workers} worker threads`);
    const { ms: pooled, found: pooledFound } = await timePool(bytes, workers, options);
    // What `deno task crop` does: the same work without the descriptor.
    log("bench:faces: crop only (no descriptor), one thread and workers");
    const cropOne = (await timeOneThread(bytes, { ...options, describe: false })).ms;
    const cropPooled = (await timePool(bytes, workers, { ...options, describe: false })).ms;

    log("bench:faces: autocrop (Haar) again");
    const peerAfter = await runPeer(files);
    const peers = [peerBefore, peerAfter].filter((p): p is PeerFigure => typeof p !== "string");
    const peerMs = peers.length
      ? peers.reduce((sum, p) => sum + p.ms_per_image, 0) / peers.length
      : undefined;
    const parts = Object.fromEntries(
      Object.entries(timings).map(([part, ms]) => [part, round(ms / files.length)]),
    );
    const figure = {
      bench: "faces",
      images: files.length,
      source: images.label,
      detector,
      networks,
      workers,
      cores: navigator.hardwareConcurrency,
      ms_per_image: round(pooled),
      ms_per_image_one_thread: round(oneThread),
      parts_ms_per_image: parts,
      faces_found: pooledFound,
      faces_found_one_thread: found,
      detector_used: detectors,
      autocrop: peers.length
        ? {
          ms_per_image: round(peerMs!),
          runs_ms: peers.map((p) => p.ms_per_image),
          faces_found: peers[0]!.faces_found,
        }
        : { unavailable: String(peerBefore) },
      ratio_vs_autocrop: peerMs ? Math.round((pooled / peerMs) * 100) / 100 : null,
      ratio_one_thread_vs_autocrop: peerMs ? Math.round((oneThread / peerMs) * 100) / 100 : null,
      crop_ms_per_image: round(cropPooled),
      crop_ms_per_image_one_thread: round(cropOne),
      crop_ratio_vs_autocrop: peerMs ? Math.round((cropPooled / peerMs) * 100) / 100 : null,
      crop_ratio_one_thread_vs_autocrop: peerMs ? Math.round((cropOne / peerMs) * 100) / 100 : null,
      yunet: "not measured: OpenCV 4.6's FaceDetectorYN needs a YuNet .onnx model, and no Debian " +
        "or npm package ships one",
      ...machineLoad(),
    };
    console.log(JSON.stringify(figure));
    return 0;
  },
};
