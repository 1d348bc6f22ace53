/**
 * Training: up to `epochs` epochs of Adam on shuffled (and, for the CNN, augmented) batches
 * from the FaceStore, early stopping on validation accuracy, and the best epoch's weights
 * restored at the end, as the seed kept its best checkpoint.
 */
import { tf } from "../engine.ts";
import type { FaceFilter, FaceStore } from "../dataset.ts";
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
  type Preprocessing,
  PROBE_KINDS,
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
import { evaluateFaces } from "./evaluate_faces.ts";
import { type BatchStep, startTrainer } from "./trainers.ts";

export { evaluateFaces };

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
   * Fit a probe kind on the probe thread (probe_thread.ts), leaving this thread free to train
   * another kind meanwhile: start a probe's `trainClassifier` without awaiting it, then train
   * the next. The fitted probe is the same either way.
   * @default true
   */
  probeThread?: boolean;
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
    return await trainedProbe(kind, store, [trainFilter, valFilter], testFold, options);
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
async function trainedProbe(
  kind: ModelKind,
  store: FaceStore,
  filters: FaceFilter[],
  testFold: number | undefined,
  { sources, balancedClasses = false, probeThread = true }: TrainOptions,
): Promise<TrainResult> {
  const preprocessing = preprocessingOf(kind);
  const { model, history, fit } = await fitProbe(store, filters, preprocessing, {
    balanced: balancedClasses,
    offThread: probeThread,
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
