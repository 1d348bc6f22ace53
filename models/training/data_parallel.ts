/**
 * Data-parallel training on tfjs: replica workers (replica_worker.ts) that each take a share of
 * a batch from the same weights, their gradients summed and applied once on this thread.
 */
import { tf } from "../engine.ts";
import type { ReplicaReply, ReplicaRequest } from "./replica_worker.ts";
import { shardGradients } from "./shard.ts";
import { Replica, ShareBalancer } from "./replicas.ts";

/** A tfjs replica (replica_worker.ts). */
export type TfjsReplica = Replica<ReplicaRequest, ReplicaReply>;

/**
 * One synchronous data-parallel step: the batch split in contiguous shares, the first on this
 * thread and one per replica, all from the same weights; their gradients summed and applied
 * once by the model's optimizer. `meanwhile` runs on this thread after its own share, while the
 * replicas may still be busy. Returns the batch's loss sum and correct count.
 */
export async function dataParallelStep(
  model: tf.LayersModel,
  replicas: readonly TfjsReplica[],
  balancer: ShareBalancer,
  xs: tf.Tensor,
  ys: tf.Tensor,
  meanwhile: () => void = () => {},
): Promise<{ lossSum: number; correct: number }> {
  const size = xs.shape[0]!;
  const counts = balancer.split(size);
  const starts = counts.map((_, i) => counts.slice(0, i).reduce((a, b) => a + b, 0));
  const weights = model.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
  const xsData = xs.dataSync() as Float32Array;
  const ysData = ys.dataSync() as Float32Array;
  const xRow = xsData.length / size;
  const yRow = ysData.length / size;
  const replies = replicas.flatMap((replica, k) => {
    const start = starts[k + 1]!;
    const end = start + counts[k + 1]!;
    if (start >= end) return [];
    const shareXs = xsData.slice(start * xRow, end * xRow);
    const shareYs = ysData.slice(start * yRow, end * yRow);
    return [
      replica.request({
        kind: "step",
        weights,
        xs: shareXs,
        xsShape: [end - start, ...xs.shape.slice(1)],
        ys: shareYs,
        ysShape: [end - start, ...ys.shape.slice(1)],
        batchSize: size,
      }, [shareXs.buffer as ArrayBuffer, shareYs.buffer as ArrayBuffer]).then((reply) => ({
        reply,
        thread: k + 1,
        faces: end - start,
      })),
    ];
  });
  const ownStart = performance.now();
  const own = counts[0]! > 0
    ? tf.tidy(() => shardGradients(model, xs.slice(0, counts[0]!), ys.slice(0, counts[0]!), size))
    : null;
  // This thread's chores while the replicas compute count as its time, so the balancer
  // hands it that much less of the batch.
  meanwhile();
  balancer.record(0, counts[0]!, performance.now() - ownStart);
  let lossSum = own?.lossSum ?? 0;
  let correct = own?.correct ?? 0;
  const others: Extract<ReplicaReply, { kind: "gradients" }>[] = [];
  try {
    for (const { reply, thread, faces } of await Promise.all(replies)) {
      if (reply.kind !== "gradients") throw new Error(`replica answered ${reply.kind} to a step`);
      balancer.record(thread, faces, reply.ms);
      lossSum += reply.lossSum;
      correct += reply.correct;
      others.push(reply);
    }
  } catch (error) {
    tf.dispose(own?.gradients ?? []);
    throw error;
  }
  const variables = model.trainableWeights.map((weight) => weight.read() as tf.Variable);
  const summed = tf.tidy(() =>
    Object.fromEntries(variables.map((variable, i) => {
      const parts = [
        ...(own ? [own.gradients[i]!] : []),
        ...others.map((reply) => tf.tensor(reply.gradients[i]!, variable.shape)),
      ];
      return [variable.name, parts.length === 1 ? parts[0]!.clone() : tf.addN(parts)];
    }))
  );
  model.optimizer.applyGradients(summed);
  tf.dispose([own?.gradients ?? [], Object.values(summed)]);
  return { lossSum, correct };
}

/**
 * Starts `count` replica workers for a CNN over `classes` classes. A replica that cannot start
 * (no worker threads here, say) is left out: training goes on with the threads that did.
 */
export async function startReplicas(count: number, classes: number): Promise<TfjsReplica[]> {
  const started = await Promise.all(Array.from({ length: count }, async () => {
    let replica: TfjsReplica | undefined;
    try {
      replica = new Replica(new URL("./replica_worker.ts", import.meta.url), "training replica");
      await replica.request({ kind: "init", classes });
      return replica;
    } catch {
      replica?.terminate();
      return null;
    }
  }));
  return started.filter((replica): replica is TfjsReplica => replica !== null);
}
