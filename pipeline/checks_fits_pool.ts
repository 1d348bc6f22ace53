/**
 * The checks' linear fits (pipeline/checks_fits.ts) on worker threads
 * (pipeline/checks_fits_worker.ts), each taking the next fit when it is done with one.
 */
import {
  type FitsReply,
  type FitsRequest,
  type LinearFitAnswer,
  type LinearFitData,
  type LinearFitTask,
  runLinearFit,
} from "./checks_fits.ts";

/** One worker thread taking one fit at a time. */
function startWorker(data: LinearFitData) {
  const worker = new Worker(new URL("./checks_fits_worker.ts", import.meta.url).href, {
    type: "module",
  });
  let pending: { resolve: (a: LinearFitAnswer) => void; reject: (e: Error) => void } | null = null;
  const settle = (outcome: LinearFitAnswer | Error) => {
    const waiting = pending;
    pending = null;
    if (outcome instanceof Error) waiting?.reject(outcome);
    else waiting?.resolve(outcome);
  };
  worker.onmessage = (event: MessageEvent<FitsReply>) =>
    settle(
      event.data.kind === "answer"
        ? event.data.answer
        : new Error(`a checks' fit failed: ${event.data.message}`),
    );
  worker.onerror = (event: ErrorEvent) => {
    event.preventDefault();
    settle(new Error(`a checks' fits worker crashed: ${event.message}`));
  };
  worker.postMessage({ kind: "data", data } satisfies FitsRequest);
  return {
    run: (task: LinearFitTask) =>
      new Promise<LinearFitAnswer>((resolve, reject) => {
        pending = { resolve, reject };
        worker.postMessage({ kind: "task", task } satisfies FitsRequest);
      }),
    stop: () => worker.terminate(),
  };
}

/**
 * Runs `tasks` on `threads` worker threads, each taking the next fit when it is done with
 * one; with 0 threads, in this one (the same answers). Gives the answers in the tasks' order.
 */
export async function runLinearFits(
  data: LinearFitData,
  tasks: readonly LinearFitTask[],
  threads: number,
): Promise<LinearFitAnswer[]> {
  if (threads <= 0) return tasks.map((task) => runLinearFit(data, task));
  const workers = Array.from({ length: Math.min(threads, tasks.length) }, () => startWorker(data));
  const answers: LinearFitAnswer[] = new Array(tasks.length);
  let next = 0;
  try {
    await Promise.all(workers.map(async (worker) => {
      while (next < tasks.length) {
        const i = next++;
        answers[i] = await worker.run(tasks[i]!);
      }
    }));
  } finally {
    for (const worker of workers) worker.stop();
  }
  return answers;
}
