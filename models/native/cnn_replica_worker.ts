/**
 * A replica for data-parallel CNN training on the native engine: its own ONNX Runtime session
 * (one intra-op thread) on its own JS thread, since a session's run blocks the thread that
 * calls it. Each step it takes the current weights and its share of the batch, and returns that
 * share's gradients (cnnGradientGraph: already divided by the whole batch's size); the main
 * thread adds them to its own share's and applies the one Adam update.
 */
/// <reference lib="deno.worker" />
import { nativeEngine, type OrtModule, type OrtSession } from "./onnx_runtime.ts";
import {
  gradientSession,
  type GradientShare,
  type ShareGradients,
  shareGradients,
} from "./cnn_gradients.ts";

/** Messages the main thread sends. */
export type NativeReplicaRequest =
  | { kind: "init"; classes: number }
  | ({ kind: "step" } & GradientShare);

/** Messages a replica sends back. */
export type NativeReplicaReply =
  | { kind: "ready" }
  | ({
    kind: "gradients";
    /** Time the step took here, for the split of later batches. */
    ms: number;
  } & ShareGradients)
  | { kind: "error"; message: string };

let replica: { ort: OrtModule; session: OrtSession; classes: number } | undefined;

function reply(message: NativeReplicaReply, transfer: Transferable[] = []): void {
  self.postMessage(message, transfer);
}

async function start(classes: number): Promise<void> {
  const native = await nativeEngine();
  if (!native.ok) throw new Error(native.reason);
  replica = { ort: native.ort, session: await gradientSession(native.ort, classes), classes };
}

self.onmessage = async (event: MessageEvent<NativeReplicaRequest>) => {
  const request = event.data;
  const started = performance.now();
  try {
    if (request.kind === "init") {
      await start(request.classes);
      reply({ kind: "ready" });
      return;
    }
    if (!replica) throw new Error("native replica got a step before init");
    const { ort, session, classes } = replica;
    const share = await shareGradients(ort, session, classes, request);
    reply(
      { kind: "gradients", ms: performance.now() - started, ...share },
      [...share.gradients, share.probabilities].map((g) => g.buffer as ArrayBuffer),
    );
  } catch (error) {
    reply({ kind: "error", message: (error as Error).stack ?? String(error) });
  }
};
