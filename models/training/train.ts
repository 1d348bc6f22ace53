/**
 * Training: up to `epochs` epochs of Adam on shuffled (and, for the CNN, augmented) batches
 * from the FaceStore, early stopping on validation accuracy, and the best epoch's weights
 * restored at the end, as the seed kept its best checkpoint.
 */
import { tf } from "../engine.ts";
import type { FaceFilter, FaceStore, StoredFace } from "../dataset.ts";
import {
  type EpochStats,
  isComposed,
  LayersClassifier,
  MODEL_FORMAT,
  MODEL_KINDS,
  type ModelFit,
  type ModelKind,
  type ModelMetadata,
  networksFor,
  predictSamples,
  type Preprocessing,
  PROBE_KINDS,
  scaledPixels,
} from "../classifier.ts";
import { fitProbe } from "./probe_fit.ts";
import { buildCnn, CNN_PREPROCESSING } from "../cnn.ts";
import {
  buildEmbeddingHead,
  DESCRIPTOR_LENGTH,
  EMBEDDING_PREPROCESSING,
  probePreprocessing,
} from "../embedding.ts";
import { buildTunedMobileFaceNet, TUNED_INPUT_LENGTH, TUNED_NETWORK } from "../finetune.ts";
import type { AugmentOptions } from "../augment.ts";
import type { ReplicaReply, ReplicaRequest } from "./replica_worker.ts";
import { shardGradients } from "./shard.ts";
import { Replica, ShareBalancer } from "./replicas.ts";
import { nativeEngine } from "../native/onnx_runtime.ts";
import { NativeCnnTrainer } from "../native/cnn_training.ts";

/** Training's defaults, read by the pipeline's options too, so the two can never differ. */
export const TRAIN_DEFAULTS = {
  epochs: 100,
  patience: 20,
  batchSize: 32,
  learningRate: 0.001,
} as const;

export interface TrainOptions {
  /**
   * Most epochs to train.
   * @default 100
   */
  epochs?: number;
  /**
   * Epochs without a better validation accuracy (ties: lower validation loss) before
   * training stops.
   * @default 20
   */
  patience?: number;
  /**
   * Faces per batch (the seed's Keras batch size).
   * @default 32
   */
  batchSize?: number;
  /**
   * Adam's learning rate (Keras' default).
   * @default 0.001
   */
  learningRate?: number;
  /**
   * Vary the CNN's crops on the fly (flip, rotation, zoom, brightness); true for defaults.
   * The embedding model takes descriptors and ignores it.
   * @default true
   */
  augment?: boolean | AugmentOptions;
  /**
   * Seed for weight initialisation, shuffling and augmentation draws (dropout stays random).
   * @default 0
   */
  seed?: number;
  /** Called after every epoch, with an estimate of the time left if no early stop comes. */
  onEpoch?: (stats: EpochStats & { etaSeconds: number }) => void;
  /**
   * With k-fold splits: the fold held out as test. Validation is then the other folds' `val`
   * faces, training the rest. Without it, the `train` and `val` splits are used.
   * @default undefined
   */
  testFold?: number;
  /**
   * Weigh the classes alike in a probe's fit (`LogisticOptions.balanced`), for a training set
   * that leaves a class outnumbered, as a held-out source does. The epoch-trained kinds (cnn,
   * embedding) do not read it.
   * @default false
   */
  balancedClasses?: boolean;
  /**
   * Threads that train the CNN together: each batch is split between the main thread and
   * `workers − 1` replica workers, whose gradients are summed into one Adam update (the same
   * update as one thread on the whole batch, up to float rounding). On the native engine each
   * thread runs a one-thread ONNX Runtime session (2 threads ~1.8× faster than 1; ORT's own
   * intra-op threads gain ~1.15×, and are the fallback where no worker starts); on wasm each
   * its own tfjs (~1.5×; bench:train). Only the CNN uses them; the embedding head is too small
   * to gain.
   * @default 2 where the machine has 2 or more cores, else 1
   */
  workers?: number;
  /**
   * What trains the CNN: `native` is ONNX Runtime's CPU library (models/native/: on one
   * thread the whole training step as one graph, on more data-parallel), used where it loads and
   * `FACEFIELD_ENGINE=wasm` does not ask otherwise; `wasm` is tfjs with our gradient kernels
   * (`workers` its replica threads). Where the native engine cannot load, training falls back
   * to wasm and the metadata's `engine` says why. The other kinds always train on tfjs.
   * @default "native"
   */
  engine?: "native" | "wasm";
  /**
   * Where the data came from, recorded in the metadata (e.g. the sources file name).
   * @default the page origins in the store
   */
  sources?: string[];
}

export interface TrainResult {
  classifier: LayersClassifier;
  history: EpochStats[];
  /** 1-based epoch whose weights the classifier holds. */
  bestEpoch: number;
}

function positiveInteger(name: string, value: number, min = 1): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`Cannot train as '${name}' must be an integer ≥ ${min}: got ${value}`);
  }
}

/** Whether validation figures beat the best so far: higher accuracy, or equal and lower loss. */
export function isBetter(
  candidate: { accuracy: number; loss: number },
  best: { accuracy: number; loss: number },
): boolean {
  return candidate.accuracy > best.accuracy ||
    (candidate.accuracy === best.accuracy && candidate.loss < best.loss);
}

/** Running sums of cross-entropy and correct answers over scored faces. */
class FaceScores {
  loss = 0;
  correct = 0;
  counted = 0;

  /** Adds one face's probabilities against its label's index. */
  add(p: ArrayLike<number>, label: number): void {
    this.loss -= Math.log(Math.max(p[label]!, 1e-7));
    let argmax = 0;
    for (let c = 1; c < p.length; c++) if (p[c]! > p[argmax]!) argmax = c;
    if (argmax === label) this.correct++;
    this.counted++;
  }

  /** The mean loss and accuracy, or null when no face counted. */
  result(): { loss: number; accuracy: number } | null {
    return this.counted === 0
      ? null
      : { loss: this.loss / this.counted, accuracy: this.correct / this.counted };
  }
}

/** The faces in batches of `batchSize`, those of a class outside `classes` left out. */
function labelledBatches(
  faces: readonly StoredFace[],
  classes: readonly string[],
  batchSize: number,
): { batch: StoredFace[]; labels: number[] }[] {
  const classIndex = new Map(classes.map((name, i) => [name, i]));
  const batches = [];
  for (let start = 0; start < faces.length; start += batchSize) {
    const batch = faces.slice(start, start + batchSize).filter((f) => classIndex.has(f.category));
    if (batch.length > 0) {
      batches.push({ batch, labels: batch.map((face) => classIndex.get(face.category)!) });
    }
  }
  return batches;
}

/** Mean cross-entropy and accuracy of the model on faces, batch by batch, no tensors kept. */
export function evaluateFaces(
  model: tf.LayersModel,
  store: FaceStore,
  faces: readonly StoredFace[],
  preprocessing: Preprocessing,
  classes: readonly string[],
  batchSize = 128,
): { loss: number; accuracy: number } | null {
  const scores = new FaceScores();
  for (const { batch, labels } of labelledBatches(faces, classes, batchSize)) {
    const probabilities = predictSamples(
      model,
      preprocessing,
      batch.map((face) => store.sample(face, preprocessing)),
    );
    labels.forEach((label, i) => scores.add(probabilities[i]!, label));
  }
  return scores.result();
}

/** A tfjs replica (replica_worker.ts). */
type TfjsReplica = Replica<ReplicaRequest, ReplicaReply>;

/**
 * One synchronous data-parallel step: the batch split in contiguous shares, the first on this
 * thread and one per replica, all from the same weights; their gradients summed and applied
 * once by the model's optimizer. `meanwhile` runs on this thread after its own share, while the
 * replicas may still be busy. Returns the batch's loss sum and correct count.
 */
async function dataParallelStep(
  model: tf.LayersModel,
  replicas: readonly TfjsReplica[],
  balancer: ShareBalancer,
  xs: tf.Tensor,
  ys: tf.Tensor,
  meanwhile: () => void = () => {},
): Promise<{ lossSum: number; correct: number }> {
  const size = xs.shape[0]!;
  const counts = balancer.split(size);
  const starts = counts.map((_, i) => counts.slice(0, i).reduce((a, b) => a + b, 0));
  const weights = model.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
  const xsData = xs.dataSync() as Float32Array;
  const ysData = ys.dataSync() as Float32Array;
  const xRow = xsData.length / size;
  const yRow = ysData.length / size;
  const replies = replicas.flatMap((replica, k) => {
    const start = starts[k + 1]!;
    const end = start + counts[k + 1]!;
    if (start >= end) return [];
    const shareXs = xsData.slice(start * xRow, end * xRow);
    const shareYs = ysData.slice(start * yRow, end * yRow);
    return [
      replica.request({
        kind: "step",
        weights,
        xs: shareXs,
        xsShape: [end - start, ...xs.shape.slice(1)],
        ys: shareYs,
        ysShape: [end - start, ...ys.shape.slice(1)],
        batchSize: size,
      }, [shareXs.buffer as ArrayBuffer, shareYs.buffer as ArrayBuffer]).then((reply) => ({
        reply,
        thread: k + 1,
        faces: end - start,
      })),
    ];
  });
  const ownStart = performance.now();
  const own = counts[0]! > 0
    ? tf.tidy(() => shardGradients(model, xs.slice(0, counts[0]!), ys.slice(0, counts[0]!), size))
    : null;
  // This thread's chores while the replicas compute count as its time, so the balancer
  // hands it that much less of the batch.
  meanwhile();
  balancer.record(0, counts[0]!, performance.now() - ownStart);
  let lossSum = own?.lossSum ?? 0;
  let correct = own?.correct ?? 0;
  const others: Extract<ReplicaReply, { kind: "gradients" }>[] = [];
  try {
    for (const { reply, thread, faces } of await Promise.all(replies)) {
      if (reply.kind !== "gradients") throw new Error(`replica answered ${reply.kind} to a step`);
      balancer.record(thread, faces, reply.ms);
      lossSum += reply.lossSum;
      correct += reply.correct;
      others.push(reply);
    }
  } catch (error) {
    tf.dispose(own?.gradients ?? []);
    throw error;
  }
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const summed = tf.tidy(() =>
    Object.fromEntries(variables.map((variable, i) => {
      const parts = [
        ...(own ? [own.gradients[i]!] : []),
        ...others.map((reply) => tf.tensor(reply.gradients[i]!, variable.shape)),
      ];
      return [variable.name, parts.length === 1 ? parts[0]!.clone() : tf.addN(parts)];
    }))
  );
  model.optimizer.applyGradients(summed);
  tf.dispose([own?.gradients ?? [], Object.values(summed)]);
  return { lossSum, correct };
}

/**
 * Starts `count` replica workers for a CNN over `classes` classes. A replica that cannot start
 * (no worker threads here, say) is left out: training goes on with the threads that did.
 */
async function startReplicas(count: number, classes: number): Promise<TfjsReplica[]> {
  const started = await Promise.all(Array.from({ length: count }, async () => {
    let replica: TfjsReplica | undefined;
    try {
      replica = new Replica(new URL("./replica_worker.ts", import.meta.url), "training replica");
      await replica.request({ kind: "init", classes });
      return replica;
    } catch {
      replica?.terminate();
      return null;
    }
  }));
  return started.filter((replica): replica is TfjsReplica => replica !== null);
}

/**
 * Trains a `cnn` (64×64 grayscale crops) or `embedding` (128-d descriptors) classifier on
 * the store's faces and returns it with its per-epoch history and best epoch.
 *
 * @example
 * ```ts
 * const { classifier, bestEpoch } = await trainClassifier("embedding", store, {
 *   onEpoch: (s) => log(`epoch ${s.epoch}: val ${s.valAccuracy}`),
 * });
 * await saveClassifier(classifier, "data/models/embedding");
 * ```
 */
export async function trainClassifier(
  kind: ModelKind,
  store: FaceStore,
  options: TrainOptions = {},
): Promise<TrainResult> {
  const settings = checkTrainOptions(kind, store, options);
  const { epochs, patience, batchSize, seed, testFold } = settings;
  const classes = store.classes;
  const { trainFilter, valFilter } = splitFilters(testFold);
  if (store.select(trainFilter).length === 0) {
    throw new RangeError("Cannot train: no faces in the training split");
  }
  if ((PROBE_KINDS as readonly ModelKind[]).includes(kind)) {
    return trainedProbe(kind, store, [trainFilter, valFilter], testFold, options);
  }
  const valFaces = store.select(valFilter);
  const preprocessing = preprocessingOf(kind);
  const model = await compiledModel(kind, store, trainFilter, seed, settings.learningRate);
  const trainData = store.dataset({
    filter: trainFilter,
    preprocessing,
    classes,
    batchSize,
    shuffle: true,
    seed,
    augment: kind === "cnn" ? settings.augment : false,
  });
  const trainer = await startTrainer(kind, model, classes.length, settings);

  const history: EpochStats[] = [];
  let bestEpoch = 0;
  let best = { accuracy: -1, loss: Infinity };
  let bestWeights: Float32Array[] | undefined;
  const started = performance.now();
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const epochStart = performance.now();
      const sums = await trainOneEpoch(trainData, trainer.step);
      const val = await trainer.evaluate(store, valFaces, preprocessing, classes);
      const stats: EpochStats = {
        epoch,
        loss: sums.loss / sums.seen,
        accuracy: sums.correct / sums.seen,
        valLoss: val?.loss ?? null,
        valAccuracy: val?.accuracy ?? null,
        seconds: (performance.now() - epochStart) / 1000,
      };
      history.push(stats);
      // Validation sets are small, so accuracy often ties: then the lower loss wins. Without
      // validation faces the last epoch counts as best: there is nothing to select on.
      if (!val || isBetter(val, best)) {
        best = val ?? best;
        bestEpoch = epoch;
        bestWeights = trainer.weights();
      }
      const perEpoch = (performance.now() - started) / 1000 / epoch;
      options.onEpoch?.({ ...stats, etaSeconds: perEpoch * (epochs - epoch) });
      if (epoch - bestEpoch >= patience) break;
    }
    if (bestWeights && (trainer.holdsWeights || bestEpoch !== history.length)) {
      restoreWeights(model, bestWeights);
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    await trainer.close();
    // The model does not own an optimizer passed as an object, so it would outlive dispose().
    model.optimizer.dispose();
  }
  const metadata = trainedMetadata(kind, model, store, {
    preprocessing,
    history,
    bestEpoch,
    testFold,
    sources: options.sources,
    engine: trainer.engine,
  });
  return { classifier: new LayersClassifier(model, metadata), history, bestEpoch };
}

/** A probe kind, fitted on the training and validation faces (probe_fit.ts), with metadata. */
function trainedProbe(
  kind: ModelKind,
  store: FaceStore,
  filters: FaceFilter[],
  testFold: number | undefined,
  { sources, balancedClasses = false }: TrainOptions,
): TrainResult {
  const preprocessing = preprocessingOf(kind);
  const { model, history, fit } = fitProbe(store, filters, preprocessing, {
    balanced: balancedClasses,
  });
  const metadata = trainedMetadata(kind, model, store, {
    preprocessing,
    history,
    bestEpoch: 1,
    testFold,
    sources,
    engine: "L-BFGS in TypeScript (float64), 1 thread",
    fit,
  });
  return { classifier: new LayersClassifier(model, metadata), history, bestEpoch: 1 };
}

/** Which faces train and which validate: the splits, or the roles around a test fold. */
function splitFilters(
  testFold: number | undefined,
): { trainFilter: FaceFilter; valFilter: FaceFilter } {
  return testFold === undefined
    ? { trainFilter: { split: "train" }, valFilter: { split: "val" } }
    : { trainFilter: { testFold, role: "train" }, valFilter: { testFold, role: "val" } };
}

/** The options with their defaults, checked against the store before anything is built. */
function checkTrainOptions(kind: ModelKind, store: FaceStore, options: TrainOptions) {
  const {
    epochs = TRAIN_DEFAULTS.epochs,
    patience = TRAIN_DEFAULTS.patience,
    batchSize = TRAIN_DEFAULTS.batchSize,
    learningRate = TRAIN_DEFAULTS.learningRate,
    augment = true,
    seed = 0,
    testFold,
    workers = Math.min(2, navigator.hardwareConcurrency || 1),
    engine = "native",
  } = options;
  if (engine !== "native" && engine !== "wasm") {
    throw new TypeError(`Cannot train as 'engine' must be "native" or "wasm": got ${engine}`);
  }
  positiveInteger("epochs", epochs);
  positiveInteger("workers", workers);
  positiveInteger("patience", patience);
  positiveInteger("batchSize", batchSize);
  if (!(learningRate > 0 && Number.isFinite(learningRate))) {
    throw new RangeError(`Cannot train as 'learningRate' must be positive: got ${learningRate}`);
  }
  if (!MODEL_KINDS.includes(kind)) {
    throw new TypeError(
      `Cannot train as model kind '${kind}' is unknown: use ${MODEL_KINDS.join(", ")}`,
    );
  }
  if (isComposed(kind)) {
    throw new TypeError(
      `Cannot train the ${kind} on its own: it averages models trained on the same faces ` +
        "(composeEnsembles in pipeline/train_run.ts)",
    );
  }
  const folds = store.folds;
  if (testFold !== undefined && (folds === null || !(testFold >= 0 && testFold < folds))) {
    throw new RangeError(
      `Cannot train on test fold ${testFold}: the faces carry ${folds ?? "no"} folds`,
    );
  }
  if (
    kind === "cnn" && tf.getBackend() === "wasm" && !tf.getKernel("Conv2DBackpropFilter", "wasm")
  ) {
    throw new Error(
      "the wasm backend lacks the Conv2DBackpropFilter kernel the CNN needs to learn; " +
        "use initEngine({ backend: 'cpu' }) or an engine that registers it",
    );
  }
  if (store.classes.length < 2) {
    throw new RangeError(
      `Cannot train a classifier on ${store.classes.length} class(es): need 2 or more`,
    );
  }
  return { epochs, patience, batchSize, learningRate, augment, seed, testFold, workers, engine };
}

/** How a face becomes the input of a model of `kind`. */
export function preprocessingOf(kind: ModelKind): Preprocessing {
  if (kind === "cnn") return CNN_PREPROCESSING;
  if (kind === "embedding") return EMBEDDING_PREPROCESSING;
  if (kind === "mobilefacenet-tuned") {
    return { input: "descriptor", length: TUNED_INPUT_LENGTH, network: TUNED_NETWORK };
  }
  if (kind === "descriptor") {
    return { input: "descriptor", length: DESCRIPTOR_LENGTH, normalise: "l2" };
  }
  if (isComposed(kind)) {
    throw new TypeError(`the ${kind} has no input of its own: it averages its members'`);
  }
  return probePreprocessing(networksFor([kind])[0]!);
}

/**
 * A fresh model of `kind` for the store's classes, compiled as the seed compiled it: Adam,
 * cross-entropy. The tuned model fixes its standardisation on the training faces.
 */
async function compiledModel(
  kind: ModelKind,
  store: FaceStore,
  trainFilter: FaceFilter,
  seed: number,
  learningRate: number,
): Promise<tf.LayersModel> {
  const classes = store.classes.length;
  const preprocessing = preprocessingOf(kind);
  const trainingSamples = () =>
    store.select(trainFilter).map((face) => store.sample(face, preprocessing) as Float32Array);
  // The probe kinds are fitted, not trained by epochs (probe_fit.ts), and never get here.
  const model = kind === "cnn"
    ? buildCnn(classes, { seed })
    : kind === "embedding"
    ? buildEmbeddingHead(classes, { seed })
    : await buildTunedMobileFaceNet(classes, { seed, standardiseOn: trainingSamples() });
  model.compile({
    optimizer: tf.train.adam(learningRate),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  return model;
}

/**
 * How one batch trains: returns its loss sum and correct count. A step that computes off this
 * thread calls `meanwhile` once it has let go of the batch, so the next one is made meanwhile.
 */
type BatchStep = (
  xs: tf.Tensor,
  ys: tf.Tensor,
  meanwhile: () => void,
) => Promise<{ lossSum: number; correct: number }>;

/** One pass over the training batches; sums of loss and correct answers, and faces seen. */
async function trainOneEpoch(
  trainData: ReturnType<FaceStore["dataset"]>,
  step: BatchStep,
): Promise<{ loss: number; correct: number; seen: number }> {
  const sums = { loss: 0, correct: 0, seen: 0 };
  const iterator = await trainData.iterator();
  let next = await iterator.next();
  while (!next.done) {
    const { xs, ys } = next.value;
    let upcoming: ReturnType<typeof iterator.next> | undefined;
    try {
      const { lossSum, correct } = await step(xs, ys, () => {
        upcoming = iterator.next();
      });
      sums.loss += lossSum;
      sums.correct += correct;
      sums.seen += xs.shape[0]!;
    } catch (error) {
      const pending = await upcoming;
      if (pending && !pending.done) tf.dispose([pending.value.xs, pending.value.ys]);
      throw error;
    } finally {
      tf.dispose([xs, ys]);
    }
    next = await (upcoming ?? iterator.next());
  }
  return sums;
}

/** What trains a model batch by batch, on whichever engine. */
interface Trainer {
  step: BatchStep;
  /** Mean loss and accuracy of the current weights on faces (null without any). */
  evaluate(
    store: FaceStore,
    faces: readonly StoredFace[],
    preprocessing: Preprocessing,
    classes: readonly string[],
  ): Promise<{ loss: number; accuracy: number } | null>;
  /** The current weights, in `model.getWeights()` order and tfjs' layouts. */
  weights(): Float32Array[];
  /** Whether the weights live outside the tfjs model, which must get them at the end. */
  holdsWeights: boolean;
  /** The engine line of the metadata. */
  engine: string;
  close(): Promise<void>;
}

/** Correct answers in a batch: rows of probabilities against one-hot labels. */
function countCorrect(probabilities: Float32Array, labels: Float32Array, classes: number): number {
  let correct = 0;
  for (let row = 0; row * classes < labels.length; row++) {
    let predicted = 0;
    let actual = 0;
    for (let c = 1; c < classes; c++) {
      if (probabilities[row * classes + c]! > probabilities[row * classes + predicted]!) {
        predicted = c;
      }
      if (labels[row * classes + c]! > labels[row * classes + actual]!) actual = c;
    }
    if (predicted === actual) correct++;
  }
  return correct;
}

/** The CNN on ONNX Runtime: weights and Adam's state live in the native trainer. */
async function nativeTrainer(
  model: tf.LayersModel,
  classes: number,
  settings: { learningRate: number; workers: number },
): Promise<Trainer | string> {
  const native = await nativeEngine();
  if (!native.ok) return native.reason;
  let trainer: NativeCnnTrainer;
  try {
    trainer = await NativeCnnTrainer.create(
      native.ort,
      classes,
      model.getWeights().map((w) => ({ values: w.dataSync() as Float32Array, shape: w.shape })),
      { learningRate: settings.learningRate, threads: settings.workers, parallelism: "data" },
    );
  } catch (error) {
    // A library that loads but cannot build the session (an old binary, say): train on wasm.
    return `ONNX Runtime could not build the training step: ${(error as Error).message}`;
  }
  return {
    step: async (xs, ys, meanwhile) => {
      const labels = ys.dataSync() as Float32Array;
      // The next batch is cut and augmented while the replica workers compute.
      const { loss, probabilities } = await trainer.step(
        xs.dataSync() as Float32Array,
        labels,
        undefined,
        meanwhile,
      );
      return {
        lossSum: loss * xs.shape[0]!,
        correct: countCorrect(probabilities, labels, classes),
      };
    },
    evaluate: async (store, faces, preprocessing, classes) => {
      if (preprocessing.input !== "crop") throw new TypeError("the native CNN takes crops");
      const { size, channels, scale } = preprocessing;
      const scores = new FaceScores();
      for (const { batch, labels } of labelledBatches(faces, classes, 128)) {
        const samples = batch.map((face) => store.sample(face, preprocessing));
        const probabilities = await trainer.predict(
          scaledPixels(samples, size * size * channels, scale),
        );
        const width = classes.length;
        labels.forEach((label, i) =>
          scores.add(probabilities.subarray(i * width, (i + 1) * width), label)
        );
      }
      return scores.result();
    },
    weights: () => trainer.tfjsWeights(),
    holdsWeights: true,
    engine: `onnxruntime-node ${native.version} cpu${threadsLine(trainer.parallelism)} (native)`,
    close: () => trainer.release(),
  };
}

/** How the native trainer's threads share a step, for the engine line. */
function threadsLine({ kind, threads, fallback }: NativeCnnTrainer["parallelism"]): string {
  if (threads === 1) return "";
  if (kind === "data") {
    return `, ${threads} threads (data-parallel: this one and ${threads - 1} replica worker${
      threads > 2 ? "s" : ""
    })`;
  }
  return `, ${threads} intra-op threads${fallback ? ` (data-parallel not used: ${fallback})` : ""}`;
}

/**
 * The trainer for a model of `kind`: the CNN on the native engine where it loads (else on
 * tfjs, saying why in the engine line), over replica workers on wasm when asked for more than
 * one thread; every other kind with tfjs' `trainOnBatch`.
 */
async function startTrainer(
  kind: ModelKind,
  model: tf.LayersModel,
  classes: number,
  settings: { learningRate: number; workers: number; engine: "native" | "wasm" },
): Promise<Trainer> {
  let fallback = "";
  if (kind === "cnn" && settings.engine === "native") {
    const native = await nativeTrainer(model, classes, settings);
    if (typeof native !== "string") return native;
    fallback = ` (native engine not used: ${native})`;
  }
  const replicas = kind === "cnn" && settings.workers > 1 && tf.getBackend() === "wasm"
    ? await startReplicas(settings.workers - 1, classes)
    : [];
  const balancer = new ShareBalancer(replicas.length + 1);
  const threads = replicas.length + 1;
  return {
    step: async (xs, ys, meanwhile) => {
      if (replicas.length > 0) {
        return await dataParallelStep(model, replicas, balancer, xs, ys, meanwhile);
      }
      const [loss, accuracy] = await model.trainOnBatch(xs, ys) as number[];
      const size = xs.shape[0]!;
      return { lossSum: loss! * size, correct: accuracy! * size };
    },
    evaluate: (store, faces, preprocessing, classes) =>
      Promise.resolve(evaluateFaces(model, store, faces, preprocessing, classes)),
    weights: () => model.getWeights().map((w) => w.dataSync().slice() as Float32Array),
    holdsWeights: false,
    engine: `tfjs ${tf.version.tfjs} ${tf.getBackend()}${
      threads > 1 ? `, ${threads} threads` : ""
    }${fallback}`,
    close: () => {
      for (const replica of replicas) replica.terminate();
      return Promise.resolve();
    },
  };
}

/** Puts the best epoch's weights back. */
function restoreWeights(model: tf.LayersModel, weights: Float32Array[]): void {
  const shapes = model.getWeights().map((w) => w.shape);
  const restored = weights.map((values, i) => tf.tensor(values, shapes[i]));
  model.setWeights(restored);
  tf.dispose(restored);
}

/** What a saved model carries besides its weights: classes, input, data, history, engine. */
function trainedMetadata(
  kind: ModelKind,
  model: tf.LayersModel,
  store: FaceStore,
  run: {
    preprocessing: Preprocessing;
    history: EpochStats[];
    bestEpoch: number;
    testFold?: number;
    sources?: string[];
    engine: string;
    fit?: ModelFit;
  },
): ModelMetadata {
  const provenance = store.provenance();
  return {
    format: MODEL_FORMAT,
    kind,
    classes: store.classes,
    inputShape: model.inputs[0]!.shape.slice(1) as number[],
    preprocessing: run.preprocessing,
    data: {
      counts: store.counts(run.testFold ?? null),
      identities: provenance.identities,
      folds: store.folds,
      testFold: run.testFold ?? null,
      sources: run.sources ?? provenance.sources,
    },
    history: run.history,
    bestEpoch: run.bestEpoch,
    createdAt: new Date().toISOString(),
    engine: run.engine,
    ...(run.fit ? { fit: run.fit } : {}),
  };
}
