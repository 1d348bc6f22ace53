/**
 * Training: up to `epochs` epochs of Adam on shuffled (and, for the CNN, augmented) batches
 * from the FaceStore, early stopping on validation accuracy, and the best epoch's weights
 * restored at the end, as the seed kept its best checkpoint.
 */
import { tf } from "./engine.ts";
import type { FaceFilter, FaceStore, StoredFace } from "../pipeline/batches.ts";
import {
  type EpochStats,
  LayersClassifier,
  MODEL_FORMAT,
  type ModelKind,
  type ModelMetadata,
  predictSamples,
  type Preprocessing,
} from "./classifier.ts";
import { buildCnn, CNN_PREPROCESSING } from "./cnn.ts";
import { buildEmbeddingHead, EMBEDDING_PREPROCESSING } from "./embedding.ts";
import type { AugmentOptions } from "./augment.ts";

export interface TrainOptions {
  /**
   * Most epochs to train.
   * @default 100
   */
  epochs?: number;
  /**
   * Epochs without a better validation accuracy (ties: lower validation loss) before
   * training stops.
   * @default 15
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

/** Mean cross-entropy and accuracy of the model on faces, batch by batch, no tensors kept. */
export function evaluateFaces(
  model: tf.LayersModel,
  store: FaceStore,
  faces: readonly StoredFace[],
  preprocessing: Preprocessing,
  classes: readonly string[],
  batchSize = 128,
): { loss: number; accuracy: number } | null {
  const classIndex = new Map(classes.map((name, i) => [name, i]));
  let loss = 0;
  let correct = 0;
  let counted = 0;
  for (let start = 0; start < faces.length; start += batchSize) {
    const batch = faces.slice(start, start + batchSize).filter((f) => classIndex.has(f.category));
    const probabilities = predictSamples(
      model,
      preprocessing,
      batch.map((face) => store.sample(face, preprocessing)),
    );
    batch.forEach((face, i) => {
      const p = probabilities[i]!;
      const label = classIndex.get(face.category)!;
      loss -= Math.log(Math.max(p[label]!, 1e-7));
      let argmax = 0;
      for (let c = 1; c < p.length; c++) if (p[c]! > p[argmax]!) argmax = c;
      if (argmax === label) correct++;
      counted++;
    });
  }
  return counted === 0 ? null : { loss: loss / counted, accuracy: correct / counted };
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
  const {
    epochs = 100,
    patience = 15,
    batchSize = 32,
    learningRate = 0.001,
    augment = true,
    seed = 0,
    onEpoch,
    testFold,
    sources,
  } = options;
  positiveInteger("epochs", epochs);
  positiveInteger("patience", patience);
  positiveInteger("batchSize", batchSize);
  if (!(learningRate > 0 && Number.isFinite(learningRate))) {
    throw new RangeError(`Cannot train as 'learningRate' must be positive: got ${learningRate}`);
  }
  if (kind !== "cnn" && kind !== "embedding") {
    throw new TypeError(`Cannot train as model kind '${kind}' is unknown: use cnn or embedding`);
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
  const classes = store.classes;
  if (classes.length < 2) {
    throw new RangeError(
      `Cannot train a classifier on ${classes.length} class(es): need 2 or more`,
    );
  }
  const trainFilter: FaceFilter = testFold === undefined
    ? { split: "train" }
    : { testFold, role: "train" };
  const valFilter: FaceFilter = testFold === undefined
    ? { split: "val" }
    : { testFold, role: "val" };
  const trainCount = store.select(trainFilter).length;
  if (trainCount === 0) throw new RangeError("Cannot train: no faces in the training split");
  const valFaces = store.select(valFilter);

  const preprocessing = kind === "cnn" ? CNN_PREPROCESSING : EMBEDDING_PREPROCESSING;
  const model = kind === "cnn" ? buildCnn(classes.length, { seed }) : buildEmbeddingHead(
    classes.length,
    { seed },
  );
  model.compile({
    optimizer: tf.train.adam(learningRate),
    loss: "categoricalCrossentropy",
    metrics: ["accuracy"],
  });
  const trainData = store.dataset({
    filter: trainFilter,
    preprocessing,
    classes,
    batchSize,
    shuffle: true,
    seed,
    augment: kind === "cnn" ? augment : false,
  });

  const history: EpochStats[] = [];
  let bestEpoch = 0;
  let best = { accuracy: -1, loss: Infinity };
  let bestWeights: Float32Array[] | undefined;
  const started = performance.now();
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const epochStart = performance.now();
      let lossSum = 0;
      let accuracySum = 0;
      let seen = 0;
      const iterator = await trainData.iterator();
      for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
        const { xs, ys } = next.value;
        try {
          const [loss, accuracy] = await model.trainOnBatch(xs, ys) as number[];
          const size = xs.shape[0]!;
          lossSum += loss! * size;
          accuracySum += accuracy! * size;
          seen += size;
        } finally {
          tf.dispose([xs, ys]);
        }
      }
      const val = evaluateFaces(model, store, valFaces, preprocessing, classes);
      const stats: EpochStats = {
        epoch,
        loss: lossSum / seen,
        accuracy: accuracySum / seen,
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
        bestWeights = model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
      }
      const perEpoch = (performance.now() - started) / 1000 / epoch;
      onEpoch?.({ ...stats, etaSeconds: perEpoch * (epochs - epoch) });
      if (epoch - bestEpoch >= patience) break;
    }
    if (bestWeights && bestEpoch !== history.length) {
      const shapes = model.getWeights().map((w) => w.shape);
      const restored = bestWeights.map((values, i) => tf.tensor(values, shapes[i]));
      model.setWeights(restored);
      tf.dispose(restored);
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    // The model does not own an optimizer passed as an object, so it would outlive dispose().
    model.optimizer.dispose();
  }
  const provenance = store.provenance();
  const metadata: ModelMetadata = {
    format: MODEL_FORMAT,
    kind,
    classes,
    inputShape: model.inputs[0]!.shape.slice(1) as number[],
    preprocessing,
    data: {
      counts: store.counts(testFold ?? null),
      identities: provenance.identities,
      folds,
      testFold: testFold ?? null,
      sources: sources ?? provenance.sources,
    },
    history,
    bestEpoch,
    createdAt: new Date().toISOString(),
    engine: `tfjs ${tf.version.tfjs} ${tf.getBackend()}`,
  };
  return { classifier: new LayersClassifier(model, metadata), history, bestEpoch };
}
