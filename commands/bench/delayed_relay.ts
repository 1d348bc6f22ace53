/**
 * A TCP relay that holds every chunk for a fixed time in each direction: the latency a
 * `tc qdisc … netem delay` would add, for kernels without netem (this machine's has none).
 * `bench:cluster --netns-latency-ms` runs one inside each worker's network namespace.
 *
 * Each direction keeps its own queue in arrival order, so bytes never reorder; a chunk leaves
 * `delayMs` after it arrived, whatever the chunks before it did.
 *
 * Run on its own (what the bench does inside a namespace):
 * ```sh
 * deno run -A commands/bench/delayed_relay.ts --listen 127.0.0.1 --to 10.77.1.1 \
 *   --ports 4222,8001 --delay-ms 25
 * ```
 */
import { parseArgs } from "node:util";

/** Where a relay listens, where it forwards, and how long each chunk waits on the way. */
export interface RelaySettings {
  listen: string;
  to: string;
  /**
   * Each port is listened on at `listen` and forwarded to the same port at `to`; a pair
   * `[listenPort, toPort]` forwards to another port (`0` listens on any free one).
   */
  ports: (number | [number, number])[];
  /** Held in each direction: a round trip through the relay gains twice this. */
  delayMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Copies `from` into `to`, each chunk `delayMs` after it arrived; half-closes `to` at the end. */
async function copyDelayed(from: Deno.Conn, to: Deno.Conn, delayMs: number): Promise<void> {
  const queue: { at: number; bytes: Uint8Array }[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const reading = (async () => {
    try {
      for await (const bytes of from.readable) {
        queue.push({ at: performance.now() + delayMs, bytes });
        wake?.();
      }
    } finally {
      ended = true;
      wake?.();
    }
  })();
  const writer = to.writable.getWriter();
  try {
    for (;;) {
      const next = queue.shift();
      if (next === undefined) {
        if (ended) break;
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
        continue;
      }
      const wait = next.at - performance.now();
      if (wait > 0) await sleep(wait);
      await writer.write(next.bytes);
    }
    writer.releaseLock();
    await to.closeWrite().catch(() => {});
  } finally {
    await reading.catch(() => {});
  }
}

/** One accepted connection, relayed both ways until both sides have finished. */
async function relayConnection(inbound: Deno.Conn, to: string, port: number, delayMs: number) {
  let outbound: Deno.Conn;
  try {
    outbound = await Deno.connect({ hostname: to, port });
  } catch {
    inbound.close();
    return;
  }
  await Promise.allSettled([
    copyDelayed(inbound, outbound, delayMs),
    copyDelayed(outbound, inbound, delayMs),
  ]);
  for (const conn of [inbound, outbound]) {
    try {
      conn.close();
    } catch {
      // Already closed by its stream.
    }
  }
}

/** Starts the relay; `close` stops listening (connections in flight end with their peers). */
export function startRelay(settings: RelaySettings): { ports: number[]; close(): void } {
  const routes = settings.ports.map((port) => typeof port === "number" ? [port, port] : port);
  const listeners = routes.map(([port]) => Deno.listen({ hostname: settings.listen, port }));
  listeners.forEach((listener, i) => {
    const port = routes[i]![1]!;
    (async () => {
      for await (const inbound of listener) {
        inbound.setNoDelay(true);
        relayConnection(inbound, settings.to, port, settings.delayMs).catch(() => {});
      }
    })().catch(() => {});
  });
  return {
    ports: listeners.map((listener) => listener.addr.port),
    close() {
      for (const listener of listeners) listener.close();
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      listen: { type: "string" },
      to: { type: "string" },
      ports: { type: "string" },
      "delay-ms": { type: "string" },
    },
  });
  const ports = (values.ports ?? "").split(",").filter(Boolean).map(Number);
  const delayMs = Number(values["delay-ms"] ?? "0");
  if (!values.listen || !values.to || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
    console.error("usage: delayed_relay.ts --listen HOST --to HOST --ports P,… --delay-ms MS");
    Deno.exit(2);
  }
  startRelay({ listen: values.listen, to: values.to, ports, delayMs });
  // The bench waits for this line before it starts the worker behind the relay.
  console.log("relaying");
}
