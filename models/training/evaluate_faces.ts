/**
 * Scoring faces during training: running sums of cross-entropy and correct answers, the faces
 * cut in labelled batches, and a model's mean loss and accuracy on them (validation epochs).
 */
import { tf } from "../engine.ts";
import type { FaceStore, StoredFace } from "../dataset.ts";
import { predictSamples, type Preprocessing } from "../classifier.ts";

/** Running sums of cross-entropy and correct answers over scored faces. */
export class FaceScores {
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
export function labelledBatches(
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
