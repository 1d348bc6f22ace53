/**
 * Adam on typed arrays, as tfjs' AdamOptimizer makes each update (and cnnTrainingGraph's Adam
 * nodes): for the data-parallel step, whose gradients arrive summed from several threads and are
 * applied once here, on this thread: 92,868 parameters take well under a millisecond.
 */
import type { AdamSettings } from "./cnn_graph.ts";

/** One parameter tensor and its moments, updated in place. */
export interface AdamSlot {
  weight: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/**
 * Update `step` (1 for the first): moments first, then
 * w − lr · (m / (1 − β1ᵗ)) / (√(v / (1 − β2ᵗ)) + ε). Each value is computed in float64 and
 * stored in float32: tfjs rounds after every op, which differs by an ulp or so.
 */
export function adamUpdate(
  slots: readonly AdamSlot[],
  gradients: readonly Float32Array[],
  step: number,
  settings: AdamSettings = {},
): void {
  const { learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7 } = settings;
  const [c1, c2] = [1 - beta1, 1 - beta2];
  const correction1 = 1 - beta1 ** step;
  const correction2 = 1 - beta2 ** step;
  slots.forEach(({ weight, m, v }, i) => {
    const gradient = gradients[i]!;
    if (gradient.length !== weight.length) {
      throw new RangeError(
        `adamUpdate: gradient ${i} has ${gradient.length} values, not ${weight.length}`,
      );
    }
    for (let j = 0; j < weight.length; j++) {
      const g = gradient[j]!;
      const mNext = m[j]! * beta1 + g * c1;
      const vNext = v[j]! * beta2 + g * g * c2;
      m[j] = mNext;
      v[j] = vNext;
      weight[j] = weight[j]! -
        learningRate * (mNext / correction1) / (Math.sqrt(vNext / correction2) + epsilon);
    }
  });
}
