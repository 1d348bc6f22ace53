/**
 * Floating-point work of training a layers model, counted from its layer shapes, so a
 * benchmark can print achieved GFLOP/s beside images per second.
 */
import { tf } from "./engine.ts";

/** Multiply-adds of one example through one layer, forward; 0 for layers without weights. */
export function layerMultiplyAdds(layer: tf.layers.Layer): number {
  const single = (shape: tf.Shape | tf.Shape[]) =>
    (Array.isArray(shape[0]) ? shape[0] : shape) as (number | null)[];
  const inShape = single(layer.inboundNodes[0]?.inputShapes ?? []);
  const outShape = single(layer.outputShape);
  const cells = (shape: (number | null)[]) =>
    shape.slice(1, -1).reduce((a: number, b) => a * (b ?? 1), 1);
  const depth = (shape: (number | null)[]) => shape.at(-1) ?? 0;
  const className = layer.getClassName();
  if (className === "Conv2D" || className === "DepthwiseConv2D") {
    const kernel = layer.getWeights()[0]!.shape;
    return cells(outShape) * kernel[0]! * kernel[1]! * kernel[2]! * kernel[3]!;
  }
  if (className === "Dense" || className === "FacefieldPointwise") {
    return cells(inShape) * depth(inShape) * depth(outShape);
  }
  if (className === "FacefieldGlobalDepthwise") return cells(inShape) * depth(inShape);
  return 0;
}

/** Where the work of one training example goes, in multiply-adds. */
export interface TrainingWork {
  /** The forward pass. */
  forward: number;
  /** The gradients with respect to the weights (as many multiply-adds as forward). */
  weightGradients: number;
  /**
   * The gradients with respect to each layer's input, for every weighted layer but the first
   * (nothing asks for the gradient of the data).
   */
  inputGradients: number;
  /** All three, as floating-point operations (a multiply-add is two). */
  flops: number;
}

/**
 * The multiply-adds of one training example through `model` (forward, weight gradients, input
 * gradients), from its convolutional, dense and tuned layers; activations, pooling, biases and
 * the optimizer's update are left out (a few per cent of the total in these models).
 */
export function trainingWork(model: tf.LayersModel): TrainingWork {
  const perLayer = model.layers.map(layerMultiplyAdds);
  const forward = perLayer.reduce((a, b) => a + b, 0);
  const first = perLayer.findIndex((work) => work > 0);
  const inputGradients = forward - (first >= 0 ? perLayer[first]! : 0);
  return {
    forward,
    weightGradients: forward,
    inputGradients,
    flops: 2 * (2 * forward + inputGradients),
  };
}
