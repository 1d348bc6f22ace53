/**
 * A worker thread for the checks' linear fits (pipeline/checks_fits.ts): it keeps the data it
 * was sent once and answers one fit at a time.
 */
/// <reference lib="deno.worker" />
import {
  type FitsReply,
  type FitsRequest,
  type LinearFitData,
  runLinearFit,
} from "./checks_fits.ts";

let data: LinearFitData | null = null;

self.onmessage = (event: MessageEvent<FitsRequest>) => {
  const request = event.data;
  if (request.kind === "data") {
    data = request.data;
    return;
  }
  let reply: FitsReply;
  try {
    if (!data) throw new Error("a fit came before its data");
    reply = { kind: "answer", answer: runLinearFit(data, request.task) };
  } catch (error) {
    reply = {
      kind: "error",
      message: error instanceof Error ? error.stack ?? error.message : String(error),
    };
  }
  self.postMessage(reply);
};
