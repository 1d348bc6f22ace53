/**
 * A model replica for data-parallel CNN training (`TrainOptions.workers` > 1): its own tfjs
 * wasm engine on its own thread. Each step it takes the current weights and its share of the
 * batch, and returns the gradients of that share; the main thread adds them to its own share's
 * and applies the one Adam update, so every replica holds the same weights each step.
 */
/// <reference lib="deno.worker" />
import { initEngine, tf } from "../engine.ts";
import { buildCnn } from "../cnn.ts";
import { shardGradients } from "./shard.ts";

/** Messages the main thread sends. */
export type ReplicaRequest =
  | { kind: "init"; classes: number }
  | {
    kind: "step";
    /** The trainable weights, in `model.trainableWeights` order. */
    weights: Float32Array[];
    xs: Float32Array;
    xsShape: number[];
    ys: Float32Array;
    ysShape: number[];
    /** Faces in the whole batch: gradients are of the share's loss sum over this. */
    batchSize: number;
  };

/** Messages a replica sends back. */
export type ReplicaReply =
  | { kind: "ready" }
  | {
    kind: "gradients";
    gradients: Float32Array[];
    lossSum: number;
    correct: number;
    /** Time the step took here, for the split of later batches. */
    ms: number;
  }
  | { kind: "error"; message: string };

let model: tf.LayersModel | undefined;

function reply(message: ReplicaReply, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

self.onmessage = async (event: MessageEvent<ReplicaRequest>) => {
  const request = event.data;
  const started = performance.now();
  try {
    if (request.kind === "init") {
      await initEngine();
      model = buildCnn(request.classes);
      reply({ kind: "ready" });
      return;
    }
    if (!model) throw new Error("replica got a step before init");
    const replica = model;
    replica.trainableWeights.forEach((weight, i) => {
      const values = tf.tensor(request.weights[i]!, weight.shape as number[]);
      weight.write(values);
      values.dispose();
    });
    const result = tf.tidy(() =>
      shardGradients(
        replica,
        tf.tensor(request.xs, request.xsShape),
        tf.tensor(request.ys, request.ysShape),
        request.batchSize,
      )
    );
    const gradients = result.gradients.map((g) => g.dataSync() as Float32Array);
    tf.dispose(result.gradients);
    reply(
      {
        kind: "gradients",
        gradients,
        lossSum: result.lossSum,
        correct: result.correct,
        ms: performance.now() - started,
      },
      gradients.map((g) => g.buffer as ArrayBuffer),
    );
  } catch (error) {
    reply({ kind: "error", message: (error as Error).stack ?? String(error) });
  }
};
