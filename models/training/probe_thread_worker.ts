/** The probe fit thread (probe_thread.ts): answers each fit it is sent, in turn. */
/// <reference lib="deno.worker" />
import { fitRequest, type ProbeFitRequest } from "./probe_fit_request.ts";

self.onmessage = (event: MessageEvent<ProbeFitRequest>) => {
  self.postMessage(fitRequest(event.data));
};
