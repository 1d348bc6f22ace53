/** The seed study's small CNN, layer for layer (Keras, 2019). */
import { tf } from "./engine.ts";
import type { Preprocessing } from "./classifier.ts";

export const CNN_INPUT_SIZE = 64;

/** Grayscale 64×64 crops, bytes scaled to [0, 1], as the seed's `rescale=1./255`. */
export const CNN_PREPROCESSING: Preprocessing = {
  input: "crop",
  size: CNN_INPUT_SIZE,
  channels: 1,
  scale: 1 / 255,
  resize: "sharp fill (lanczos3)",
};

export interface CnnOptions {
  /**
   * Seed for the weight initialisers, so a run can be repeated.
   * @default undefined (random)
   */
  seed?: number;
}

/**
 * Builds the seed's CNN for `classes` classes: 64×64×1 input; three blocks of
 * Conv(32, 3×3, valid) + ReLU + MaxPool(2); Dense(64) + ReLU; Dropout(0.5);
 * Dense(classes) + softmax. 92,868 parameters for 4 classes. Not compiled.
 */
export function buildCnn(classes: number, options: CnnOptions = {}): tf.Sequential {
  if (!Number.isInteger(classes) || classes < 2) {
    throw new RangeError(
      `Cannot build the CNN as 'classes' must be an integer ≥ 2: got ${classes}`,
    );
  }
  const { seed } = options;
  let layerSeed = seed;
  const init = () =>
    tf.initializers.glorotUniform({ seed: layerSeed === undefined ? undefined : layerSeed++ });
  const model = tf.sequential({ name: "facefield_cnn" });
  for (let block = 0; block < 3; block++) {
    model.add(tf.layers.conv2d({
      ...(block === 0 ? { inputShape: [CNN_INPUT_SIZE, CNN_INPUT_SIZE, 1] } : {}),
      filters: 32,
      kernelSize: 3,
      padding: "valid",
      activation: "relu",
      kernelInitializer: init(),
    }));
    model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  }
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 64, activation: "relu", kernelInitializer: init() }));
  model.add(tf.layers.dropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: classes, activation: "softmax", kernelInitializer: init() }));
  return model;
}
