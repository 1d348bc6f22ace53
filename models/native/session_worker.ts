/**
 * The session thread of `session_host.ts`: loads ONNX Runtime, opens cached graphs as sessions
 * (with the options the caller would have used) and runs them. Requests are served in order.
 */
/// <reference lib="deno.worker" />
import {
  createSession,
  nativeEngine,
  type OrtModule,
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

let cpuKeyReady: Promise<string> | undefined;

/** A short hash of the CPU's model and flags: ORT's optimized graphs hold kernels for it. */
function cpuKey(): Promise<string> {
  cpuKeyReady ??= (async () => {
    let text: string;
    try {
      const first = (await Deno.readTextFile("/proc/cpuinfo")).split("\n\n")[0] ?? "";
      const pick = (field: string) => new RegExp(`^${field}\\s*:(.*)$`, "m").exec(first)?.[1] ?? "";
      text = `${pick("model name")}\n${pick("flags")}`;
    } catch {
      text = `${Deno.build.os} ${Deno.build.arch} ${navigator.hardwareConcurrency}`;
    }
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
    return Array.from(new Uint8Array(digest).subarray(0, 8), (b) => b.toString(16).padStart(2, "0"))
      .join("");
  })();
  return cpuKeyReady;
}

/**
 * A session for the graph at `path`, from the graph as ORT optimized it on this CPU (saved beside
 * it, `<name>-ort-<cpu>.onnx`) with ORT's optimizations skipped: face-api's recognition net opens
 * in about half the time, and its outputs are the same to the bit (checked on random inputs for
 * each face net, and by tests/predict_same_test.ts). Where that file is missing or damaged, the
 * graph opens as usual and ORT writes it for the next one-shot. Only the session thread reads
 * these files: a long run's face workers optimize each graph as they load it (the saved graph
 * ran the face stage a quarter slower on two workers, docs/performance.md).
 */
async function openGraph(
  ort: OrtModule,
  path: string,
  options: SessionOptions,
): Promise<OrtSession> {
  const optimized = path.replace(/\.onnx$/, `-ort-${await cpuKey()}.onnx`);
  try {
    return await createSession(ort, await Deno.readFile(optimized), {
      ...options,
      preOptimized: true,
    });
  } catch {
    // Missing or damaged: written again below.
  }
  const bytes = await Deno.readFile(path);
  const temporary = `${optimized}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    const session = await createSession(ort, bytes, {
      ...options,
      optimizedModelFilePath: temporary,
    });
    await Deno.rename(temporary, optimized).catch(() => {});
    return session;
  } catch {
    return await createSession(ort, bytes, options); // A read-only cache: nothing is written.
  } finally {
    await Deno.remove(temporary).catch(() => {});
  }
}

async function serve(request: HostRequest): Promise<HostReply> {
  if (request.op === "open") {
    const { ort } = await loaded();
    const session = await openGraph(ort, request.path, request.options);
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
