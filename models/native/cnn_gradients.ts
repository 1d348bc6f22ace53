/**
 * One share of a batch through the gradient-only graph (cnnGradientGraph) on a one-thread
 * session: what the main thread and each native replica worker run in a data-parallel step.
 */
import {
  CNN_GRAPH_SIZES,
  CNN_WEIGHT_NAMES,
  cnnGradientGraph,
  cnnWeightShapes,
} from "./cnn_graph.ts";
import { createSession, type OrtModule, type OrtSession, type OrtTensor } from "./onnx_runtime.ts";

/** A share of a batch, and the weights it is computed at. */
export interface GradientShare {
  /** In CNN_WEIGHT_NAMES order and ONNX's layouts. */
  weights: readonly Float32Array[];
  /** [n, 64, 64, 1] */
  images: Float32Array;
  /** [n, classes] one-hot */
  labels: Float32Array;
  /** [n, 64] */
  mask: Float32Array;
  /** Faces in the whole batch the share is part of. */
  batchFaces: number;
}

/** What a share gives back: its part of the batch's mean-loss gradients, loss sum, predictions. */
export interface ShareGradients {
  gradients: Float32Array[];
  lossSum: number;
  probabilities: Float32Array;
}

/**
 * A session of the gradient graph with one intra-op thread: its parallelism is the threads
 * that each run one.
 */
export function gradientSession(ort: OrtModule, classes: number): Promise<OrtSession> {
  return createSession(ort, cnnGradientGraph(classes), { threads: 1 });
}

/** A copy that owns its buffer alone (ONNX Runtime's outputs may share one), to post or keep. */
function own(values: Float32Array): Float32Array {
  return values.byteLength === values.buffer.byteLength ? values : values.slice();
}

/** Runs one share (of at least one face) through the gradient graph. */
export async function shareGradients(
  ort: OrtModule,
  session: OrtSession,
  classes: number,
  share: GradientShare,
): Promise<ShareGradients> {
  const { input, dense } = CNN_GRAPH_SIZES;
  const faces = share.labels.length / classes;
  const shapes = cnnWeightShapes(classes);
  const Tensor = ort.Tensor;
  const feeds: Record<string, OrtTensor> = {
    images: new Tensor("float32", share.images, [faces, input, input, 1]),
    labels: new Tensor("float32", share.labels, [faces, classes]),
    dropout_mask: new Tensor("float32", share.mask, [faces, dense]),
    batch_faces: new Tensor("float32", Float32Array.of(share.batchFaces), []),
  };
  CNN_WEIGHT_NAMES.forEach((name, i) => {
    feeds[name] = new Tensor("float32", share.weights[i]!, shapes[i]!);
  });
  const results = await session.run(feeds);
  const data = (name: string) => results[name]!.data as Float32Array;
  return {
    gradients: CNN_WEIGHT_NAMES.map((name) => own(data(`${name}_gradient`))),
    lossSum: data("loss_sum")[0]!,
    probabilities: own(data("probabilities")),
  };
}
