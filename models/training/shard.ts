import { tf } from "../engine.ts";

/**
 * The gradients of one share of a batch: of the share's summed cross-entropy divided by the
 * whole batch's size, so the shares' gradients add up to the batch-mean gradient that
 * `trainOnBatch` takes. In `model.trainableWeights` order, with the share's loss sum and
 * correct count. Dropout is on, as in training.
 */
export function shardGradients(
  model: tf.LayersModel,
  xs: tf.Tensor,
  ys: tf.Tensor,
  batchSize: number,
): { gradients: tf.Tensor[]; lossSum: number; correct: number } {
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  let lossSum = 0;
  let correct = 0;
  const { value, grads } = tf.variableGrads(() => {
    const predictions = model.apply(xs, { training: true }) as tf.Tensor;
    const losses = tf.metrics.categoricalCrossentropy(ys, predictions);
    correct = tf.sum(tf.metrics.categoricalAccuracy(ys, predictions)).dataSync()[0]!;
    const sum = tf.sum(losses);
    lossSum = sum.dataSync()[0]!;
    return tf.div(sum, batchSize) as tf.Scalar;
  }, variables);
  value.dispose();
  return { gradients: variables.map((variable) => grads[variable.name]!), lossSum, correct };
}
