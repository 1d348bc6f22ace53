/**
 * The probe kinds' training: multinomial logistic regression fitted to convergence
 * (models/logistic.ts), its L2 penalty chosen by cross-validation inside the training and
 * validation faces together, grouped by person, then written into the probe's layers
 * (models/embedding.ts) so that saving, loading and predict are those of every other kind.
 *
 * Why not epochs of Adam with early stopping, as the other kinds train: a probe's worth on a
 * few hundred faces is its penalty, and early stopping on a validation split of 16–80 faces
 * picks an epoch by chance. On congress dev (5-fold) the Adam-trained mobilefacenet probe
 * scored 55.5–61.5 % on three splits; fitted this way, 66 % on one of them.
 */
import { tf } from "../engine.ts";
import type { EpochStats, ModelFit, Preprocessing } from "../classifier.ts";
import { inputBatch } from "../classifier.ts";
import type { FaceFilter, FaceStore, StoredFace } from "../dataset.ts";
import { buildLinearProbe } from "../embedding.ts";
import type { LogisticRegression } from "../logistic.ts";
import { fitCvOffThread } from "./probe_thread.ts";

export interface FittedProbe {
  model: tf.LayersModel;
  history: EpochStats[];
  fit: ModelFit;
}

/** The faces' model inputs as plain rows, through the same preprocessing as prediction. */
function inputRows(
  store: FaceStore,
  faces: readonly StoredFace[],
  preprocessing: Preprocessing,
): Float32Array[] {
  if (faces.length === 0) return [];
  const values = tf.tidy(() =>
    inputBatch(preprocessing, faces.map((face) => store.sample(face, preprocessing)))
      .dataSync() as Float32Array
  );
  const length = values.length / faces.length;
  return faces.map((_, i) => values.subarray(i * length, (i + 1) * length));
}

/**
 * Fits a probe of `preprocessing`'s embedding on the faces of `filters` (training and
 * validation): the penalty by inner cross-validation, then one fit on them all. The fit runs on
 * the probe thread (probe_thread.ts) unless `offThread` is false, so this thread is free to train
 * another kind meanwhile; the answer is the same.
 */
export async function fitProbe(
  store: FaceStore,
  filters: readonly FaceFilter[],
  preprocessing: Preprocessing,
  options: { balanced?: boolean; offThread?: boolean } = {},
): Promise<FittedProbe> {
  const started = performance.now();
  const classes = store.classes;
  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const faces = filters.flatMap((filter) => store.select(filter))
    .filter((face) => classIndex.has(face.category));
  const rows = inputRows(store, faces, preprocessing);
  const labels = faces.map((face) => classIndex.get(face.category)!);
  const { model: fitted, scores } = await fitCvOffThread(
    rows.map((row) => row.slice()),
    labels,
    classes.length,
    { groups: faces.map((face) => face.identity), balanced: options.balanced ?? false },
    options.offThread ?? true,
  );
  const model = buildLinearProbe(classes.length, rows[0]!.length);
  setProbeWeights(model, fitted);
  const chosen = scores.find((score) => score.l2 === fitted.l2);
  const training = trainingFit(fitted, rows, labels);
  const history: EpochStats[] = [{
    epoch: 1,
    loss: training.loss,
    accuracy: training.accuracy,
    valLoss: chosen?.loss ?? null,
    valAccuracy: chosen?.accuracy ?? null,
    seconds: (performance.now() - started) / 1000,
  }];
  return {
    model,
    history,
    fit: {
      method: "logistic regression, L-BFGS, L2 penalty by inner cross-validation",
      l2: fitted.l2,
      cv: scores,
      faces: faces.length,
    },
  };
}

/** Mean cross-entropy and accuracy of the fit on its own faces. */
function trainingFit(model: LogisticRegression, rows: Float32Array[], labels: number[]) {
  let loss = 0;
  let correct = 0;
  model.predict(rows).forEach((p, i) => {
    loss -= Math.log(Math.max(p[labels[i]!]!, 1e-15));
    if (p.indexOf(Math.max(...p)) === labels[i]) correct++;
  });
  return { loss: loss / rows.length, accuracy: correct / rows.length };
}

/**
 * Writes a fitted regression into the probe's layers: the standardisation folded into the
 * dense layer, the batch normalisation left as the identity (mean 0, variance 1 − ε).
 */
function setProbeWeights(model: tf.LayersModel, fitted: LogisticRegression): void {
  const [norm, dense] = model.layers;
  const epsilon = (norm!.getConfig().epsilon as number | undefined) ?? 1e-3;
  const length = fitted.features;
  const { kernel, bias } = fitted.affine();
  const weights = [
    tf.ones([length]),
    tf.zeros([length]),
    tf.zeros([length]),
    tf.fill([length], 1 - epsilon),
  ];
  norm!.setWeights(weights);
  const denseWeights = [
    tf.tensor2d(kernel, [length, fitted.classes]),
    tf.tensor1d(bias),
  ];
  dense!.setWeights(denseWeights);
  tf.dispose([...weights, ...denseWeights]);
}
