/**
 * A second thread that opens cached ONNX graphs and runs them: a one-shot command (`predict`)
 * starts it first thing, so that ONNX Runtime's loading, each session's build (synchronous in
 * onnxruntime-node: it holds the thread that calls it, about 0.2–0.4 s for face-api's recognition
 * net) and each session's first run (its allocations) happen on the other core while this thread
 * loads tfjs, sharp and the model and reads stdin. The sessions, their options and their inputs
 * are the ones this thread would have used, so the outputs are the same.
 *
 * Only graphs already in the graph cache open there; a graph to build from weights is built here
 * as before (and cached for the next process). This module imports nothing heavy: the worker
 * loads ONNX Runtime itself.
 */
import type { OrtModule, OrtSession, OrtTensor, SessionOptions } from "./onnx_runtime.ts";
import type { HostReply, HostRequest, WarmUp, WireTensor } from "./session_worker.ts";

export type { WarmUp };

/** A session's outputs by name, as ORT gives them. */
export type GraphOutputs = Awaited<ReturnType<OrtSession["run"]>>;

/** What a session is to its callers: it runs feeds to outputs. ORT's own sessions are one. */
export interface GraphSession {
  run(feeds: Record<string, OrtTensor>): Promise<GraphOutputs>;
  run(feeds: Record<string, OrtTensor>, fetches: readonly string[]): Promise<GraphOutputs>;
}

interface Pending {
  resolve(reply: HostReply): void;
  reject(error: Error): void;
}

/** A graph the session thread opens: which file, how, and its first run. */
export interface GraphOpen {
  path: string;
  options: SessionOptions;
  warmUp?: WarmUp;
}

/** The session thread and the sessions opened on it. */
export class SessionHost {
  readonly #worker: Worker;
  readonly #pending = new Map<number, Pending>();
  /** Each graph's session id on the thread (undefined where it failed), by file and options. */
  readonly #opened = new Map<string, Promise<number | undefined>>();
  /** The graphs this process asked for, in order, for the next process to open first. */
  readonly used: GraphOpen[] = [];
  #nextId = 0;
  #broken: Error | undefined;

  constructor() {
    this.#worker = new Worker(new URL("./session_worker.ts", import.meta.url), {
      type: "module",
    });
    this.#worker.onmessage = (event: MessageEvent<HostReply>) => {
      const pending = this.#pending.get(event.data.id);
      this.#pending.delete(event.data.id);
      pending?.resolve(event.data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(new Error(`session worker crashed: ${event.message}`));
    };
  }

  #fail(error: Error): void {
    this.#broken ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }

  #ask(request: HostRequest): Promise<HostReply> {
    if (this.#broken) return Promise.reject(this.#broken);
    return new Promise((resolve, reject) => {
      this.#pending.set(request.id, { resolve, reject });
      this.#worker.postMessage(request);
    });
  }

  /**
   * A session for the graph file at `path`, opened (and run once on zeros, where `warmUp` says
   * how) on the session thread; undefined where it cannot open it (the caller then opens or
   * rebuilds the graph itself).
   */
  async open(
    ort: OrtModule,
    path: string,
    options: SessionOptions,
    warmUp?: WarmUp,
  ): Promise<GraphSession | undefined> {
    this.used.push({ path, options, warmUp });
    const id = await this.preopen({ path, options, warmUp });
    return id === undefined ? undefined : new RemoteSession(ort, this, id);
  }

  /**
   * Starts opening a graph before anyone asks for it (what the last process used): a later
   * `open` of the same file with the same options gets the same session. Its session id, or
   * undefined where it cannot be opened.
   */
  preopen({ path, options, warmUp }: GraphOpen): Promise<number | undefined> {
    const key = JSON.stringify([path, options]);
    let opened = this.#opened.get(key);
    if (!opened) {
      const id = this.#nextId++;
      opened = this.#ask({ op: "open", id, path, options, warmUp }).then(
        (reply) => "error" in reply ? undefined : id,
        () => undefined,
      );
      this.#opened.set(key, opened);
    }
    return opened;
  }

  /** Runs session `session`'s graph on the session thread. */
  async run(
    session: number,
    feeds: Record<string, WireTensor>,
    fetches: readonly string[] | undefined,
  ): Promise<Record<string, WireTensor>> {
    const reply = await this.#ask({
      op: "run",
      id: this.#nextId++,
      session,
      feeds,
      fetches: fetches ? [...fetches] : undefined,
    });
    if ("error" in reply) throw new Error(reply.error);
    return reply.outputs ?? {};
  }

  /** Stops the thread; runs still pending fail. */
  close(): void {
    this.#worker.terminate();
    this.#fail(new Error("the session host is closed"));
  }
}

/** A session that lives on the session thread: feeds are copied there, outputs back. */
class RemoteSession implements GraphSession {
  constructor(
    readonly ort: OrtModule,
    readonly host: SessionHost,
    readonly id: number,
  ) {}

  async run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<GraphOutputs> {
    const wire: Record<string, WireTensor> = {};
    for (const [name, tensor] of Object.entries(feeds)) {
      if (tensor.type !== "float32") throw new TypeError(`${name}: only float32 feeds travel`);
      wire[name] = { data: tensor.data as Float32Array, dims: [...tensor.dims] };
    }
    const outputs = await this.host.run(this.id, wire, fetches);
    return Object.fromEntries(
      Object.entries(outputs).map((
        [name, { data, dims }],
      ) => [name, new this.ort.Tensor("float32", data, dims)]),
    );
  }
}

let host: SessionHost | undefined;
let manifest: { path: string; read: string } | undefined;

/**
 * Starts the session thread for this process; later cached graphs open there. For one-shot
 * commands: a long run's face workers keep their sessions on their own threads.
 *
 * `manifestPath` names a small JSON file that lists the graphs the last process opened there:
 * they start opening at once, before this thread has loaded the modules that ask for them (most
 * of a one-shot's first half second); `stopSessionHost` writes this process's list. A graph the
 * list names that this process does not use costs the other core only.
 */
export function startSessionHost(manifestPath?: string): SessionHost {
  if (host) return host;
  host = new SessionHost();
  if (manifestPath !== undefined) {
    let read = "";
    try {
      read = Deno.readTextFileSync(manifestPath);
      const opens = JSON.parse(read) as GraphOpen[];
      for (const open of Array.isArray(opens) ? opens : []) {
        if (typeof open?.path === "string" && open.path.endsWith(".onnx")) host.preopen(open);
      }
    } catch {
      // No list yet, or a damaged one: written again at the end.
    }
    manifest = { path: manifestPath, read };
  }
  return host;
}

/** The session thread, where one was started. */
export function sessionHost(): SessionHost | undefined {
  return host;
}

/** Stops the session thread, where one was started, and writes the list of graphs it opened. */
export function stopSessionHost(): void {
  if (host && manifest && host.used.length > 0) {
    const text = JSON.stringify(host.used);
    if (text !== manifest.read) {
      const temporary = `${manifest.path}.${Deno.pid}.tmp`;
      try {
        Deno.writeTextFileSync(temporary, text);
        Deno.renameSync(temporary, manifest.path);
      } catch {
        // A read-only cache: the next process opens its graphs as they are asked for.
      }
    }
  }
  host?.close();
  host = undefined;
  manifest = undefined;
}
