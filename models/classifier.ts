/**
 * The common face classifier: what a trained model needs besides its weights (classes,
 * preprocessing, data summary, history), prediction from crops or descriptors, and saving
 * and loading in the tfjs layers format (model.json + weights.bin) plus metadata.json.
 */
import sharp from "sharp";
import { join } from "node:path";
import { tf } from "./engine.ts";
import type { RgbImage, SplitName } from "../core/types.ts";
import type { FaceNetworkName } from "./faces/face_networks.ts";
// Registers the tuned model's layers, so that loadClassifier can read a saved one.
import "./tuned_layers.ts";

/**
 * The linear probes on the face, each a model kind: on face-api's 128-d descriptor
 * (`descriptor`, which the face stage always computes), on the embeddings of the shipped
 * face networks it computes on request (`faceres`, `mobilefacenet`), and on the face's shape
 * (`landmarks`: the 68 landmarks in the face's own frame, which carry its proportions,
 * expression and pose and none of its pixels).
 */
export type FaceProbeKind = "descriptor" | "faceres" | "mobilefacenet" | "landmarks";

export const FACE_PROBE_KINDS: readonly FaceProbeKind[] = [
  "descriptor",
  "faceres",
  "mobilefacenet",
  "landmarks",
];

/**
 * Every linear probe: the face probes, and `context`, a probe on the photo with the face
 * masked (what the masked-photo baseline sees), which reads no face at all.
 */
export type ProbeKind = FaceProbeKind | "context";

export const PROBE_KINDS: readonly ProbeKind[] = [...FACE_PROBE_KINDS, "context"];

/**
 * `cnn` learns from the crop, `embedding` is a head on face-api's 128-d descriptor, each probe
 * kind is a linear probe on one embedding (or on the masked photo), `mobilefacenet-tuned`
 * fine-tunes mobilefacenet's last block with the probe's head on top, `ensemble` averages the
 * probabilities of the face probes a run trains, and `portrait` averages them with `context`'s.
 */
export type ModelKind =
  | "cnn"
  | "embedding"
  | ProbeKind
  | "mobilefacenet-tuned"
  | ComposedKind;

/** The kinds composed of other kinds' models, trained on nothing of their own. */
export type ComposedKind = "ensemble" | "portrait";

export const COMPOSED_KINDS: readonly ComposedKind[] = ["ensemble", "portrait"];

/** Every model kind, in the order a run trains them (the composed last: they read the others). */
export const MODEL_KINDS: readonly ModelKind[] = [
  "cnn",
  "embedding",
  ...PROBE_KINDS,
  "mobilefacenet-tuned",
  ...COMPOSED_KINDS,
];

export function isComposed(kind: string): kind is ComposedKind {
  return (COMPOSED_KINDS as readonly string[]).includes(kind);
}

/** Whether a kind reads the photo around the face (the masked photo), not only the face. */
export function readsContext(kind: string): boolean {
  return kind === "context" || kind === "portrait";
}

/** The face probes `ensemble` averages, where a run trains them. */
export function ensembleMembers(kinds: readonly ModelKind[]): FaceProbeKind[] {
  return FACE_PROBE_KINDS.filter((kind) => kinds.includes(kind));
}

/**
 * The kinds a composed kind averages, among those a run trains: the face probes, and for
 * `portrait` the masked photo's probe too.
 */
export function membersOf(kind: ComposedKind, kinds: readonly ModelKind[]): ProbeKind[] {
  const faces = ensembleMembers(kinds);
  return kind === "portrait" && kinds.includes("context") ? [...faces, "context"] : faces;
}

/**
 * The kinds a run trains when none are named: the seed's two (cnn, embedding), the probes on
 * face-api's descriptor, on mobilefacenet and on the face's landmarks, and their ensemble. On
 * congress dev (5-fold, the same three partitions for all, seeds 42–44): ensemble 70.0–72.0 %
 * (mean 70.8), mobilefacenet probe 63.0–68.5 % (65.7), descriptor probe 64.5–66.0 % (65.0),
 * landmarks probe 64.5–65.0 % (64.7); without the landmarks the ensemble scored 68.8 %, and in
 * an offline study of 8 dev partitions adding them raised it from 66.8 to 69.6 %, on all 8.
 * faceres scored lowest at three times the cost per face, so it is opt-in; mobilefacenet-tuned
 * is opt-in too: on congress dev it scored 62.0 % beside the probe's 62.5 % in the same run (the
 * probe then trained by epochs), at ten times the training time. `context` and `portrait` read
 * the photo around the face, which is not what a face model is for, so a user asks for them:
 * on the same dev partitions portrait scored 69.5–72.0 % (71.0) and context 64.0–65.0 %.
 */
export const DEFAULT_MODEL_KINDS: readonly ModelKind[] = [
  "cnn",
  "embedding",
  "descriptor",
  "mobilefacenet",
  "landmarks",
  "ensemble",
];

/** The face-stage network outputs the given model kinds read, each once. */
export function networksFor(kinds: readonly ModelKind[]): FaceNetworkName[] {
  const networks = kinds.flatMap((kind): FaceNetworkName[] =>
    kind === "mobilefacenet-tuned"
      ? ["mobilefacenet-trunk"]
      : kind === "faceres" || kind === "mobilefacenet" || kind === "context" ||
          kind === "landmarks"
      ? [kind]
      : []
  );
  return [...new Set(networks)];
}

export const MODEL_FORMAT = "facefield-model/1";

/** One face to classify: its crop (PNG bytes) and its face descriptor. */
export interface FaceInput {
  /** The aligned crop: encoded (PNG) bytes, or pixels already decoded once for the run. */
  crop: Uint8Array | RgbImage;
  descriptor: ArrayLike<number>;
  /** Embeddings of the shipped face networks, by name, for the probe kinds. */
  embeddings?: Record<string, ArrayLike<number>>;
}

/** One training epoch, 1-based. Validation figures are null without validation data. */
export interface EpochStats {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  seconds: number;
}

/** How a face becomes the model's input. */
export type Preprocessing =
  | {
    /** The face crop, resized to size×size, grayscale (1) or RGB (3), bytes scaled to [0, 1]. */
    input: "crop";
    size: number;
    channels: 1 | 3;
    scale: number;
    resize: "sharp fill (lanczos3)";
  }
  | {
    /**
     * The face stage's descriptor (face-api recognition net), or with `network` that shipped
     * network's embedding; `l2` scales each to length √n (unit variance per value on average).
     */
    input: "descriptor";
    length: number;
    network?: FaceNetworkName;
    normalise?: "l2";
  };

export interface DataSummary {
  /** Faces per split, then per class. */
  counts: Record<SplitName, Record<string, number>>;
  /** Distinct people (identities) among the faces. */
  identities: number;
  /** k of k-fold cross-validation, and the test fold this model held out; else null. */
  folds: number | null;
  testFold: number | null;
  /** Where the faces came from (sources files, page origins), no personal data. */
  sources: string[];
}

export interface ModelMetadata {
  format: typeof MODEL_FORMAT;
  kind: ModelKind;
  /** Class names, in the order of the model's output units. */
  classes: string[];
  /** Input shape without the batch dimension. */
  inputShape: number[];
  preprocessing: Preprocessing;
  data: DataSummary;
  history: EpochStats[];
  /** 1-based epoch whose weights the model holds (best validation accuracy). */
  bestEpoch: number;
  createdAt: string;
  /** tfjs version and backend that trained it. */
  engine: string;
  /** For a probe: how it was fitted instead of by epochs (models/training/probe_fit.ts). */
  fit?: ModelFit;
  /** For an ensemble: its members' metadata (models/ensemble.ts). */
  members?: ModelMetadata[];
}

/**
 * What the face stage must compute for a model: the descriptor (for a model on descriptors)
 * and the shipped networks' embeddings it reads, its members' included.
 */
export function inputsOf(metadata: ModelMetadata): {
  /** Whether a member reads the face's crop (a CNN); a model made only of probes does not. */
  crop: boolean;
  describe: boolean;
  networks: FaceNetworkName[];
} {
  const all = [metadata, ...(metadata.members ?? [])];
  const networks = all.flatMap(({ preprocessing }) =>
    preprocessing.input === "descriptor" && preprocessing.network ? [preprocessing.network] : []
  );
  return {
    crop: all.some(({ preprocessing }) => preprocessing.input === "crop"),
    describe: all.some(({ preprocessing }) => preprocessing.input === "descriptor"),
    networks: [...new Set(networks)],
  };
}

/** A fit without epochs: the method, its chosen penalty and the cross-validation behind it. */
export interface ModelFit {
  method: string;
  /** The chosen L2 penalty (mean cross-entropy + l2/2 · Σ weight²). */
  l2: number;
  /** Each penalty's mean log loss and accuracy in the inner cross-validation. */
  cv: { l2: number; loss: number; accuracy: number }[];
  /** Faces it was fitted on. */
  faces: number;
}

export interface Classifier {
  metadata: ModelMetadata;
  /** Per face, probabilities in `metadata.classes` order. */
  predict(faces: FaceInput[]): Promise<Float32Array[]>;
  dispose(): void;
}

/** A classifier file set that cannot be loaded; the message says which check failed. */
export class ModelLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelLoadError";
  }
}

/** Whether a crop is already decoded pixels rather than encoded bytes or a path. */
export function isRgbImage(crop: Uint8Array | string | RgbImage): crop is RgbImage {
  return typeof crop === "object" && !(crop instanceof Uint8Array);
}

/**
 * Decodes a crop (PNG bytes or a file path) once, to RGB pixels at its own size: what a run
 * keeps per face, so training, evaluation and the report resample it without decoding again.
 */
export async function decodeRgb(crop: Uint8Array | string): Promise<RgbImage> {
  const { data, info } = await sharp(crop).removeAlpha().toColourspace("srgb").raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decodeRgb: got ${info.channels} channels`);
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
  };
}

/** A sharp pipeline over a crop, whether encoded, a path, or decoded pixels. */
function cropImage(crop: Uint8Array | string | RgbImage): sharp.Sharp {
  return isRgbImage(crop)
    ? sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } })
    : sharp(crop);
}

/**
 * A crop (PNG bytes, a file path, or decoded pixels) as `size`×`size`×`channels` uint8 pixels.
 */
export async function decodeCrop(
  crop: Uint8Array | string | RgbImage,
  size: number,
  channels: 1 | 3,
): Promise<Uint8Array> {
  const image = cropImage(crop).removeAlpha().resize(size, size, { fit: "fill" });
  const { data, info } = await (channels === 1 ? image.toColourspace("b-w") : image.toColourspace(
    "srgb",
  )).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== channels || data.length !== size * size * channels) {
    throw new Error(`decodeCrop: got ${info.channels} channels, expected ${channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** Crops as one flat float array, bytes times `scale`, checked against the model's input. */
export function scaledPixels(
  samples: readonly (Uint8Array | Float32Array)[],
  pixels: number,
  scale: number,
): Float32Array {
  const values = new Float32Array(samples.length * pixels);
  samples.forEach((sample, i) => {
    if (sample.length !== pixels) {
      throw new RangeError(`crop has ${sample.length} values, the model takes ${pixels}`);
    }
    const offset = i * pixels;
    for (let j = 0; j < pixels; j++) values[offset + j] = sample[j]! * scale;
  });
  return values;
}

/**
 * Makes one input batch tensor from per-face samples (uint8 pixels for crops, floats for
 * descriptors): the one place where examples turn into a tensor.
 */
export function inputBatch(
  preprocessing: Preprocessing,
  samples: readonly (Uint8Array | Float32Array)[],
): tf.Tensor {
  if (preprocessing.input === "descriptor") {
    const { length } = preprocessing;
    const values = new Float32Array(samples.length * length);
    samples.forEach((sample, i) => {
      if (sample.length !== length) {
        throw new RangeError(`descriptor has ${sample.length} values, the model takes ${length}`);
      }
      values.set(sample, i * length);
      if (preprocessing.normalise === "l2") {
        const norm = Math.hypot(...sample) || 1;
        const factor = Math.sqrt(length) / norm;
        for (let j = i * length; j < (i + 1) * length; j++) values[j]! *= factor;
      }
    });
    return tf.tensor2d(values, [samples.length, length]);
  }
  const { size, channels, scale } = preprocessing;
  const values = scaledPixels(samples, size * size * channels, scale);
  return tf.tensor4d(values, [samples.length, size, size, channels]);
}

/** Turns faces into the model's samples, following its preprocessing. */
export async function facesToSamples(
  preprocessing: Preprocessing,
  faces: readonly FaceInput[],
): Promise<(Uint8Array | Float32Array)[]> {
  if (preprocessing.input === "descriptor") {
    const { network } = preprocessing;
    return faces.map((face) => {
      if (network === undefined) return Float32Array.from(face.descriptor);
      const embedding = face.embeddings?.[network];
      if (!embedding) throw new RangeError(`the face has no ${network} embedding to classify`);
      return Float32Array.from(embedding);
    });
  }
  const { size, channels } = preprocessing;
  return await Promise.all(faces.map((face) => decodeCrop(face.crop, size, channels)));
}

/** Class probabilities of a model for preprocessed samples, one tidy batch, no tensor kept. */
export function predictSamples(
  model: tf.LayersModel,
  preprocessing: Preprocessing,
  samples: readonly (Uint8Array | Float32Array)[],
): Float32Array[] {
  if (samples.length === 0) return [];
  const probabilities = tf.tidy(() => {
    const output = model.predict(inputBatch(preprocessing, samples));
    return (Array.isArray(output) ? output[0]! : output).dataSync() as Float32Array;
  });
  const classes = probabilities.length / samples.length;
  return samples.map((_, i) => probabilities.slice(i * classes, (i + 1) * classes));
}

/** A classifier backed by a tfjs layers model. */
export class LayersClassifier implements Classifier {
  constructor(readonly model: tf.LayersModel, readonly metadata: ModelMetadata) {}

  async predict(faces: FaceInput[], batchSize = 64): Promise<Float32Array[]> {
    const results: Float32Array[] = [];
    for (let start = 0; start < faces.length; start += batchSize) {
      const samples = await facesToSamples(
        this.metadata.preprocessing,
        faces.slice(start, start + batchSize),
      );
      results.push(...this.predictSamples(samples));
    }
    return results;
  }

  /** Probabilities for samples already preprocessed (uint8 crops or descriptors). */
  predictSamples(samples: readonly (Uint8Array | Float32Array)[]): Float32Array[] {
    return predictSamples(this.model, this.metadata.preprocessing, samples);
  }

  dispose(): void {
    this.model.dispose();
  }
}

const MODEL_JSON = "model.json";
const WEIGHTS_BIN = "weights.bin";
const METADATA_JSON = "metadata.json";

/**
 * Saves a classifier to `dir`: model.json + weights.bin (the tfjs layers format, loadable by
 * `tf.loadLayersModel`) and metadata.json, written last so its presence marks a complete save.
 */
export async function saveClassifier(classifier: Classifier, dir: string): Promise<void> {
  if (!(classifier instanceof LayersClassifier)) {
    throw new TypeError("saveClassifier: only tfjs layers classifiers can be saved");
  }
  await Deno.mkdir(dir, { recursive: true });
  await Deno.remove(join(dir, METADATA_JSON)).catch(() => {});
  await classifier.model.save(tf.io.withSaveHandler(async (artifacts) => {
    const weightData = tf.io.CompositeArrayBuffer.join(artifacts.weightData);
    const modelJson = {
      format: artifacts.format ?? "layers-model",
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
    };
    await Deno.writeFile(join(dir, WEIGHTS_BIN), new Uint8Array(weightData));
    await Deno.writeTextFile(join(dir, MODEL_JSON), JSON.stringify(modelJson));
    return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
  }));
  await Deno.writeTextFile(
    join(dir, METADATA_JSON),
    JSON.stringify(classifier.metadata, null, 2) + "\n",
  );
}

async function readOrFail(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ModelLoadError(`${what} is missing: ${path}`);
    }
    throw error;
  }
}

function parseJson(bytes: Uint8Array, path: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ModelLoadError(`${path} is not valid JSON (${(error as Error).message})`);
  }
}

/** Loads a classifier saved by `saveClassifier`, checking the files agree with each other. */
export async function loadClassifier(dir: string): Promise<Classifier> {
  const info = await Deno.stat(dir).catch(() => undefined);
  if (!info?.isDirectory) throw new ModelLoadError(`model folder not found: ${dir}`);

  const modelPath = join(dir, MODEL_JSON);
  const modelJson = parseJson(await readOrFail(modelPath, "model.json"), modelPath) as
    | tf.io.ModelJSON
    | null;
  if (!modelJson?.modelTopology || !Array.isArray(modelJson.weightsManifest)) {
    throw new ModelLoadError(`${modelPath} is corrupt: no modelTopology or weightsManifest`);
  }
  const metadataPath = join(dir, METADATA_JSON);
  const metadata = parseJson(
    await readOrFail(metadataPath, "metadata.json (the save did not finish?)"),
    metadataPath,
  ) as ModelMetadata | null;
  if (metadata?.format !== MODEL_FORMAT) {
    throw new ModelLoadError(
      `${metadataPath} has format '${metadata?.format}'; this version reads '${MODEL_FORMAT}'`,
    );
  }
  if (!Array.isArray(metadata.classes) || metadata.classes.length < 2) {
    throw new ModelLoadError(`${metadataPath} lists no classes`);
  }

  let model: tf.LayersModel;
  try {
    const artifacts = await tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
      const specs = manifest.flatMap((group) => group.weights);
      const files = await Promise.all(
        manifest.flatMap((group) => group.paths).map((path) => readOrFail(join(dir, path), path)),
      );
      const expected = specs.reduce((sum, spec) => {
        const bytesPerValue = spec.dtype === "float32" || spec.dtype === "int32" ? 4 : 1;
        return sum + spec.shape.reduce((a, b) => a * b, 1) * bytesPerValue;
      }, 0);
      const data = tf.io.CompositeArrayBuffer.join(files.map((f) => f.slice().buffer));
      if (data.byteLength !== expected) {
        throw new ModelLoadError(
          `${WEIGHTS_BIN} holds ${data.byteLength} bytes, model.json describes ${expected}`,
        );
      }
      return [specs, data];
    });
    model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  } catch (error) {
    if (error instanceof ModelLoadError) throw error;
    throw new ModelLoadError(
      `${modelPath} could not be read as a model: ${(error as Error).message}`,
    );
  }

  const outputUnits = model.outputs[0]?.shape.at(-1);
  if (outputUnits !== metadata.classes.length) {
    model.dispose();
    throw new ModelLoadError(
      `class count mismatch: metadata lists ${metadata.classes.length} classes, the model has ${outputUnits} outputs`,
    );
  }
  const inputShape = model.inputs[0]?.shape.slice(1) ?? [];
  if (JSON.stringify(inputShape) !== JSON.stringify(metadata.inputShape)) {
    model.dispose();
    throw new ModelLoadError(
      `input shape mismatch: metadata says [${metadata.inputShape}], the model takes [${inputShape}]`,
    );
  }
  return new LayersClassifier(model, metadata);
}
