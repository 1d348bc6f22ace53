/**
 * The seed's "bottleneck" transfer approach on the face network that ships with us: a small
 * head trained on the frozen 128-d descriptor of face-api's recognition net (the face stage
 * computes it once per face, so the frozen base never runs during training).
 */
import { tf } from "./engine.ts";
import type { Preprocessing } from "./classifier.ts";
import { type FaceNetworkName, networkLength } from "./faces/face_networks.ts";

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

/**
 * A face stage output as a probe's input: a shipped network's embedding as the face stage
 * stored it, L2-scaled; the masked photo (`context`) and the face's shape (`landmarks`) as they
 * are, since the size of their values is information (the probe's fit standardises each).
 */
export function probePreprocessing(network: FaceNetworkName): Preprocessing {
  const length = networkLength(network);
  return network === "context" || network === "landmarks"
    ? { input: "descriptor", length, network }
    : { input: "descriptor", length, network, normalise: "l2" };
}

export interface ProbeOptions {
  /**
   * L2 penalty on the weights: the probe has length × classes weights and a few hundred faces.
   * @default 0.01
   */
  l2?: number;
  /**
   * Seed for the weight initialiser.
   * @default undefined (random)
   */
  seed?: number;
}

/**
 * A linear probe: the embedding standardised per value (a batch-normalisation layer, whose
 * running mean and variance come from the training faces; its scale and shift keep the whole
 * map linear), then one Dense(classes) + softmax: multinomial logistic regression on z-scores,
 * as a probe is usually fitted. Standardising matters: mobilefacenet's embeddings of different people agree to a
 * cosine of 0.9999, so their differences are a hundredth of their length. Not compiled.
 */
export function buildLinearProbe(
  classes: number,
  length: number,
  options: ProbeOptions = {},
): tf.Sequential {
  const { l2 = 0.01, seed } = options;
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(
      `Cannot build a probe as 'classes' must be an integer ≥ 2: got ${classes}`,
    );
  }
  if (!Number.isInteger(length) || length < 1) {
    throw new RangeError(`Cannot build a probe as 'length' must be positive: got ${length}`);
  }
  if (!(l2 >= 0 && Number.isFinite(l2))) {
    throw new RangeError(`Cannot build a probe as 'l2' must be ≥ 0: got ${l2}`);
  }
  const model = tf.sequential({ name: "facefield_probe" });
  // Momentum 0.9: the running statistics settle within a few epochs of a few batches each.
  model.add(tf.layers.batchNormalization({ inputShape: [length], momentum: 0.9 }));
  model.add(tf.layers.dense({
    units: classes,
    activation: "softmax",
    kernelInitializer: tf.initializers.glorotUniform({ seed }),
    kernelRegularizer: l2 > 0 ? tf.regularizers.l2({ l2 }) : undefined,
  }));
  return model;
}
