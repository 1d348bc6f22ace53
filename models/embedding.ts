/**
 * The seed's "bottleneck" transfer approach on the face network that ships with us: a small
 * head trained on the frozen 128-d descriptor of face-api's recognition net (the face stage
 * computes it once per face, so the frozen base never runs during training).
 */
import { tf } from "./engine.ts";
import type { Preprocessing } from "./classifier.ts";

export const DESCRIPTOR_LENGTH = 128;

export const EMBEDDING_PREPROCESSING: Preprocessing = {
  input: "descriptor",
  length: DESCRIPTOR_LENGTH,
};

export interface EmbeddingOptions {
  /**
   * Units of the hidden layer.
   * @default 128
   */
  hiddenUnits?: number;
  /**
   * Dropout rate after the hidden layer.
   * @default 0.5
   */
  dropout?: number;
  /**
   * Seed for the weight initialisers.
   * @default undefined (random)
   */
  seed?: number;
}

/** Builds Dense(128) + ReLU, Dropout, Dense(classes) + softmax on a descriptor. Not compiled. */
export function buildEmbeddingHead(classes: number, options: EmbeddingOptions = {}): tf.Sequential {
  const { hiddenUnits = 128, dropout = 0.5, seed } = options;
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(
      `Cannot build the head as 'classes' must be an integer ≥ 2: got ${classes}`,
    );
  }
  if (!Number.isInteger(hiddenUnits) || hiddenUnits < 1) {
    throw new RangeError(`'hiddenUnits' must be a positive integer: got ${hiddenUnits}`);
  }
  if (!(dropout >= 0 && dropout < 1)) {
    throw new RangeError(`'dropout' must be in [0, 1): got ${dropout}`);
  }
  const init = (offset: number) =>
    tf.initializers.glorotUniform({ seed: seed === undefined ? undefined : seed + offset });
  const model = tf.sequential({ name: "facefield_embedding" });
  model.add(tf.layers.dense({
    inputShape: [DESCRIPTOR_LENGTH],
    units: hiddenUnits,
    activation: "relu",
    kernelInitializer: init(0),
  }));
  model.add(tf.layers.dropout({ rate: dropout }));
  model.add(tf.layers.dense({ units: classes, activation: "softmax", kernelInitializer: init(1) }));
  return model;
}
