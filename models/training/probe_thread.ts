/**
 * The probes' penalty search and fit (`LogisticRegression.fitCv`) on a worker thread
 * (probe_thread_worker.ts), so a probe fits while this thread trains an epoch-trained kind:
 * the probes and the embedding head are each one thread's work, and one after the other they
 * left the second core idle. One worker, started on the first fit and stopped when no fit is
 * waiting, takes the fits in the order they were asked for. The answer is the same as on this
 * thread: the same code on the same rows, in float64.
 */
import { type CvOptions, type CvScore, LogisticRegression } from "../logistic.ts";
import { fitRequest, type ProbeFitReply, type ProbeFitRequest } from "./probe_fit_request.ts";

let worker: Worker | null = null;
let nextId = 0;
const waiting = new Map<
  number,
  { resolve: (reply: ProbeFitReply) => void; reject: (error: Error) => void }
>();

function stopIfIdle(): void {
  if (waiting.size > 0 || !worker) return;
  worker.terminate();
  worker = null;
}

function startWorker(): Worker {
  const started = new Worker(new URL("./probe_thread_worker.ts", import.meta.url).href, {
    type: "module",
  });
  started.onmessage = (event: MessageEvent<ProbeFitReply>) => {
    const pending = waiting.get(event.data.id);
    waiting.delete(event.data.id);
    pending?.resolve(event.data);
    stopIfIdle();
  };
  started.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    const failed = [...waiting.values()];
    waiting.clear();
    started.terminate();
    if (worker === started) worker = null;
    for (const pending of failed) {
      pending.reject(new Error(`the probe fit thread crashed: ${event.message}`));
    }
  };
  return started;
}

/**
 * `LogisticRegression.fitCv` on the probe thread; with `offThread` false (or where no worker
 * starts), on this one. Either way the same model and scores.
 */
export async function fitCvOffThread(
  rows: Float32Array[],
  labels: number[],
  classes: number,
  options: Omit<CvOptions, "outOfFold"> = {},
  offThread = true,
): Promise<{ model: LogisticRegression; scores: CvScore[] }> {
  const request: ProbeFitRequest = { id: nextId++, rows, labels, classes, options };
  let reply: ProbeFitReply;
  if (offThread && typeof Worker !== "undefined") {
    try {
      worker ??= startWorker();
    } catch {
      worker = null;
    }
  }
  if (offThread && worker) {
    const thread = worker;
    reply = await new Promise<ProbeFitReply>((resolve, reject) => {
      waiting.set(request.id, { resolve, reject });
      thread.postMessage(request);
    });
  } else {
    reply = fitRequest(request);
  }
  if (reply.kind === "error") throw new Error(`a probe fit failed: ${reply.message}`);
  const { means, scales, weights, l2 } = reply.model;
  return {
    model: new LogisticRegression(classes, means, scales, weights, l2),
    scores: reply.scores,
  };
}
