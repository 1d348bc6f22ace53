/**
 * A network namespace for one bench worker, whose every connection out takes a fixed extra
 * round trip: what `tc qdisc add dev … netem delay` would give, built from parts this kernel
 * has (it lacks netem, fq and cake). Needs root and `ip` (iproute2).
 *
 * The worker runs inside the namespace and dials 127.0.0.1 as it would on one machine. A relay
 * inside (commands/bench/delayed_relay.ts) listens on those loopback ports, holds each chunk half
 * the latency each way, and forwards over a veth pair to a relay outside, which hands the bytes
 * to the real servers on the host's 127.0.0.1. Nothing leaves this machine: the veth pair's two
 * addresses (10.x.y.1 and .2) exist only between the namespace and the host.
 */
import { fileURLToPath } from "node:url";

const RELAY = fileURLToPath(new URL("./delayed_relay.ts", import.meta.url));

/** A worker's namespace: how to run a command inside it, the relays' pids, and its teardown. */
export interface DelayedNamespace {
  name: string;
  /** `ip netns exec NAME command …`: the same pid as the command, so its CPU is counted. */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  relayPids: number[];
  close(): Promise<void>;
}

async function ip(...args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" })
    .output();
  if (code !== 0) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(stderr).trim()}`);
  }
}

async function startRelayProcess(prefix: string[], args: string[]): Promise<Deno.ChildProcess> {
  const [command, ...rest] = [...prefix, Deno.execPath(), "run", "-A", RELAY, ...args];
  const child = new Deno.Command(command!, {
    args: rest,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("relaying")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the delay relay exited before it listened: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return child;
}

/**
 * Namespace number `index` (1–250) of this process, with `latencyMs` added to each round trip
 * to the host's loopback `ports`.
 */
export async function delayedNamespace(
  index: number,
  ports: number[],
  latencyMs: number,
): Promise<DelayedNamespace> {
  // Per process, so two benches on one machine never share a name or a subnet.
  const tag = Deno.pid % 10000;
  const name = `facefield-bench-${Deno.pid}-${index}`;
  const outside = `ffb${tag}h${index}`;
  const inside = `ffb${tag}n${index}`;
  const subnet = `10.${64 + (Deno.pid % 128)}.${index}`;
  const relays: Deno.ChildProcess[] = [];
  const close = async () => {
    for (const relay of relays) {
      try {
        relay.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await relay.status;
    }
    // Deleting the namespace deletes the veth pair with it.
    await ip("netns", "del", name).catch(() => {});
  };
  try {
    await ip("netns", "add", name);
    await ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", name);
    await ip("addr", "add", `${subnet}.1/30`, "dev", outside);
    await ip("link", "set", outside, "up");
    await ip("-n", name, "addr", "add", `${subnet}.2/30`, "dev", inside);
    await ip("-n", name, "link", "set", inside, "up");
    await ip("-n", name, "link", "set", "lo", "up");
    const portList = ports.join(",");
    relays.push(
      await startRelayProcess([], [
        "--listen",
        `${subnet}.1`,
        "--to",
        "127.0.0.1",
        "--ports",
        portList,
        "--delay-ms",
        "0",
      ]),
    );
    relays.push(
      await startRelayProcess(["ip", "netns", "exec", name], [
        "--listen",
        "127.0.0.1",
        "--to",
        `${subnet}.1`,
        "--ports",
        portList,
        "--delay-ms",
        String(latencyMs / 2),
      ]),
    );
  } catch (error) {
    await close();
    throw error;
  }
  return {
    name,
    wrap: (command, args) => ({ command: "ip", args: ["netns", "exec", name, command, ...args] }),
    relayPids: relays.map((relay) => relay.pid),
    close,
  };
}
