/**
 * Debian's nats-server for tests: on a free loopback port, JetStream in a temp folder, stopped
 * (and its folder removed) afterwards. Tests that need it skip visibly when it is absent.
 */

/** The server binary, or undefined when this machine has none. */
export function natsServerBinary(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/usr/bin"])) {
    const path = `${dir}/nats-server`;
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

/** Why a cluster test cannot run here, printed when it is skipped. */
export function natsServerMissing(): string | undefined {
  if (natsServerBinary()) return undefined;
  const why = "nats-server is not installed (Debian: apt-get install nats-server)";
  console.warn(`skipping the cluster tests: ${why}`);
  return why;
}

/** A port nothing listens on right now. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

export interface NatsServer {
  port: number;
  url: string;
  storeDir: string;
  /** Kills the server (its JetStream files stay, as after a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same files. */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  close(): Promise<void>;
}

async function waitForPort(port: number, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const connection = await Deno.connect({ hostname: "127.0.0.1", port });
      connection.close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Starts nats-server with JetStream; `port` defaults to a free one. */
export async function startNatsServer(
  { port = freePort(), extraArgs = [] }: { port?: number; extraArgs?: string[] } = {},
): Promise<NatsServer> {
  const binary = natsServerBinary();
  if (!binary) throw new Error("nats-server is not installed");
  const storeDir = await Deno.makeTempDir({ prefix: "facefield-nats-" });
  let child: Deno.ChildProcess | undefined;
  const start = async () => {
    child = new Deno.Command(binary, {
      args: ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port), ...extraArgs],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port);
  };
  const stop = async () => {
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    child = undefined;
  };
  await start();
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    storeDir,
    stop,
    restart: start,
    async close() {
      await stop();
      await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    },
  };
}
