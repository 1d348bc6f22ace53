/**
 * The session thread of `session_host.ts`: loads ONNX Runtime, opens cached graphs as sessions
 * (with the options the caller would have used) and runs them. Requests are served in order.
 */
/// <reference lib="deno.worker" />
import {
  createSession,
  nativeEngine,
  type OrtSession,
  type SessionOptions,
} from "./onnx_runtime.ts";

/** A first run on zeros of this shape, right after the session opens. */
export interface WarmUp {
  /** The input's dimensions, batch first. */
  dims: number[];
  /** The outputs the real runs fetch. @default all */
  fetches?: string[];
}

/** A float32 tensor as it crosses threads. */
export interface WireTensor {
  data: Float32Array;
  dims: number[];
}

export type HostRequest =
  | { op: "open"; id: number; path: string; options: SessionOptions; warmUp?: WarmUp }
  | {
    op: "run";
    id: number;
    session: number;
    feeds: Record<string, WireTensor>;
    fetches?: string[];
  };

export type HostReply =
  | { id: number; outputs?: Record<string, WireTensor> }
  | { id: number; error: string };

const sessions = new Map<number, OrtSession>();

async function run(
  session: OrtSession,
  feeds: Record<string, WireTensor>,
  fetches: string[] | undefined,
): Promise<Record<string, WireTensor>> {
  const { ort } = await loaded();
  const inputs = Object.fromEntries(
    Object.entries(feeds).map(([name, { data, dims }]) => [
      name,
      new ort.Tensor("float32", data, dims),
    ]),
  );
  const outputs = fetches ? await session.run(inputs, fetches) : await session.run(inputs);
  const wire: Record<string, WireTensor> = {};
  for (const [name, output] of Object.entries(outputs)) {
    wire[name] = { data: new Float32Array(output.data as Float32Array), dims: [...output.dims] };
    output.dispose();
  }
  return wire;
}

async function loaded() {
  const engine = await nativeEngine();
  if (!engine.ok) throw new Error(engine.reason);
  return engine;
}

async function serve(request: HostRequest): Promise<HostReply> {
  if (request.op === "open") {
    const { ort } = await loaded();
    const session = await createSession(ort, await Deno.readFile(request.path), request.options);
    sessions.set(request.id, session);
    if (request.warmUp) {
      const { dims, fetches } = request.warmUp;
      const size = dims.reduce((a, b) => a * b, 1);
      const input = session.inputNames[0]!;
      await run(session, { [input]: { data: new Float32Array(size), dims } }, fetches);
    }
    return { id: request.id };
  }
  const session = sessions.get(request.session);
  if (!session) throw new Error(`no session ${request.session}`);
  return { id: request.id, outputs: await run(session, request.feeds, request.fetches) };
}

// ONNX Runtime loads as soon as the thread starts, before the first graph is asked for.
let queue: Promise<unknown> = nativeEngine();

self.onmessage = (event: MessageEvent<HostRequest>) => {
  const request = event.data;
  queue = queue.then(() =>
    serve(request).then(
      (reply) => self.postMessage(reply),
      (error) => self.postMessage({ id: request.id, error: (error as Error).message }),
    )
  );
};
