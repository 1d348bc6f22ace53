/**
 * The gradients of a batch on several threads at once (data parallelism, as the wasm replicas
 * do it in models/training/train.ts): the batch split in contiguous shares by the threads'
 * measured speed, the first share on this thread, one per native replica worker, each through
 * the gradient-only graph on a one-thread session, all from the same weights; their gradients
 * summed. ONNX Runtime scales poorly across intra-op threads on this small CNN (several of its
 * ops run on one thread), and a session's run blocks the JS thread that calls it, so the second
 * core comes from a second JS thread.
 */
import { Replica, ShareBalancer } from "../training/replicas.ts";
import type { NativeReplicaReply, NativeReplicaRequest } from "./cnn_replica_worker.ts";
import { gradientSession, type ShareGradients, shareGradients } from "./cnn_gradients.ts";
import type { OrtModule, OrtSession } from "./onnx_runtime.ts";
import { CNN_GRAPH_SIZES } from "./cnn_graph.ts";

type NativeReplica = Replica<NativeReplicaRequest, NativeReplicaReply>;

/** One share's place in the batch: faces [start, end). */
interface Share {
  start: number;
  end: number;
}

/** A share of a batch, cut from its flat arrays. */
function cut(
  { images, labels, mask }: { images: Float32Array; labels: Float32Array; mask: Float32Array },
  { start, end }: Share,
  classes: number,
) {
  const { input, dense } = CNN_GRAPH_SIZES;
  const pixels = input * input;
  return {
    images: images.slice(start * pixels, end * pixels),
    labels: labels.slice(start * classes, end * classes),
    mask: mask.slice(start * dense, end * dense),
  };
}

/** Sums `parts` into the first, in place. */
function addInto(target: Float32Array[], parts: readonly Float32Array[]): void {
  target.forEach((values, i) => {
    const part = parts[i]!;
    for (let j = 0; j < values.length; j++) values[j]! += part[j]!;
  });
}

/** This thread's session and the replicas, splitting each batch between them. */
export class DataParallelGradients {
  readonly #ort: OrtModule;
  readonly #session: OrtSession;
  readonly #replicas: NativeReplica[];
  readonly #classes: number;
  readonly #balancer: ShareBalancer;

  private constructor(
    ort: OrtModule,
    session: OrtSession,
    replicas: NativeReplica[],
    classes: number,
  ) {
    this.#ort = ort;
    this.#session = session;
    this.#replicas = replicas;
    this.#classes = classes;
    this.#balancer = new ShareBalancer(replicas.length + 1);
  }

  /**
   * This thread's session and `replicas` native replica workers, or why not: a worker that
   * cannot start (no worker threads here, ONNX Runtime failing to load inside one) leaves the
   * others out; none started is a reason, and the caller trains another way.
   */
  static async start(
    ort: OrtModule,
    classes: number,
    replicas: number,
  ): Promise<DataParallelGradients | string> {
    const reasons: string[] = [];
    const started = await Promise.all(Array.from({ length: replicas }, async () => {
      let replica: NativeReplica | undefined;
      try {
        replica = new Replica(
          new URL("./cnn_replica_worker.ts", import.meta.url),
          "native training replica",
        );
        await replica.request({ kind: "init", classes });
        return replica;
      } catch (error) {
        replica?.terminate();
        reasons.push((error as Error).message.split("\n")[0]!);
        return null;
      }
    }));
    const workers = started.filter((replica): replica is NativeReplica => replica !== null);
    if (workers.length === 0) return `no native replica worker started: ${reasons[0]}`;
    try {
      return new DataParallelGradients(ort, await gradientSession(ort, classes), workers, classes);
    } catch (error) {
      for (const worker of workers) worker.terminate();
      return `the gradient graph did not build: ${(error as Error).message}`;
    }
  }

  /** Threads computing each batch: this one and the replicas. */
  get threads(): number {
    return this.#replicas.length + 1;
  }

  /**
   * The whole batch's mean-loss gradients at `weights` (ONNX layouts), its loss sum and
   * predictions. `meanwhile` runs on this thread after its own share, while the replicas may
   * still be busy, and counts as its time.
   */
  async gradients(
    weights: readonly Float32Array[],
    batch: { images: Float32Array; labels: Float32Array; mask: Float32Array },
    meanwhile: () => void = () => {},
  ): Promise<ShareGradients> {
    const faces = batch.labels.length / this.#classes;
    const counts = this.#balancer.split(faces);
    const shares = counts.map((count, i) => {
      const start = counts.slice(0, i).reduce((a, b) => a + b, 0);
      return { start, end: start + count };
    });
    // The replicas' shares go first, so they compute while this thread does its own.
    const replies = this.#replicas.flatMap((replica, k) => {
      const share = shares[k + 1]!;
      if (share.end <= share.start) return [];
      const part = cut(batch, share, this.#classes);
      return [
        replica.request(
          { kind: "step", weights: weights as Float32Array[], batchFaces: faces, ...part },
          [part.images.buffer, part.labels.buffer, part.mask.buffer],
        ).then((reply) => ({ reply, thread: k + 1, share })),
      ];
    });
    const started = performance.now();
    const own = shares[0]!.end > 0
      ? await shareGradients(this.#ort, this.#session, this.#classes, {
        weights,
        batchFaces: faces,
        ...cut(batch, shares[0]!, this.#classes),
      })
      : null;
    meanwhile();
    this.#balancer.record(0, shares[0]!.end, performance.now() - started);
    return this.#summed(own, await Promise.all(replies), faces);
  }

  /** The shares' gradients and loss summed, their predictions in the batch's order. */
  #summed(
    own: ShareGradients | null,
    replies: { reply: NativeReplicaReply; thread: number; share: Share }[],
    faces: number,
  ): ShareGradients {
    const probabilities = new Float32Array(faces * this.#classes);
    let gradients = own?.gradients ?? null;
    let lossSum = own?.lossSum ?? 0;
    if (own) probabilities.set(own.probabilities, 0);
    for (const { reply, thread, share } of replies) {
      if (reply.kind !== "gradients") throw new Error(`native replica answered ${reply.kind}`);
      this.#balancer.record(thread, share.end - share.start, reply.ms);
      if (gradients) addInto(gradients, reply.gradients);
      else gradients = reply.gradients;
      lossSum += reply.lossSum;
      probabilities.set(reply.probabilities, share.start * this.#classes);
    }
    return { gradients: gradients!, lossSum, probabilities };
  }

  /** Stops the replicas and frees this thread's session. */
  async release(): Promise<void> {
    for (const replica of this.#replicas) replica.terminate();
    await this.#session.release();
  }
}
