/**
 * `bench:cluster`: the crawl and downloads (pipeline --until images) on a loopback site of many
 * hosts with a fixed latency per request, once on this machine alone and then with 1, 2, 4 …
 * `deno task worker` processes behind a NATS server. One JSON line per run.
 *
 * The latency is what a crawl waits on in the wild; with it, the work is waiting rather than
 * CPU, so workers scale past this machine's cores until the politeness limit (hosts × per-host
 * requests in flight) or the coordinator's and server's CPU stop them.
 */
import { of } from "rxjs";
import { type Command, intOption, log, type ParsedValues, stringOption } from "../cli.ts";
import { fail } from "../../core/errors.ts";
import { type PipelineOptions, type RunHooks, runPipeline } from "../../pipeline/run.ts";
import { connectCoordinator, jobSettingsFor } from "../../pipeline/cluster/coordinator.ts";
import { parseClusterUrl } from "../../pipeline/cluster/connection.ts";
import { Manifest } from "../../store/manifest.ts";
import { dataPaths } from "../../store/paths.ts";
import { benchName, benchPortrait } from "./crawl.ts";
import { type DelayedNamespace, delayedNamespace } from "./delayed_namespace.ts";

/** Second surnames, so that names stay unique (and digit-free, as the extractor wants) past 300. */
const SECOND = ["Adler", "Berger", "Claes", "Dorn", "Eich", "Falk", "Gast", "Holm", "Iser", "Jung"];

function personName(n: number): string {
  return n < 300 ? benchName(n) : `${benchName(n % 300)}-${SECOND[Math.floor(n / 300) % 10]}`;
}

interface ManyHostSite {
  sourcesCsv: string;
  /** The loopback port of each host. */
  ports: number[];
  requests: () => number;
  close(): Promise<void>;
}

/**
 * CPU milliseconds a process has used (user + system), from /proc; undefined off Linux. The
 * clock tick is 100 Hz on every Linux this runs on (`getconf CLK_TCK`).
 */
function cpuMs(pid: number | "self"): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** CPU ms per image of each process group over a run, so the scaling limit can be read off. */
function cpuPerImage(before: Map<string, number[]>, pids: Map<string, number[]>, images: number) {
  const result: Record<string, number> = {};
  for (const [group, list] of pids) {
    const used = list.reduce(
      (sum, pid, i) => sum + ((cpuMs(pid) ?? 0) - (before.get(group)?.[i] ?? 0)),
      0,
    );
    result[group] = Math.round(used / Math.max(1, images) * 100) / 100;
  }
  return result;
}

/** `hosts` servers (one port each), each with a department of `pages` × `perPage` people. */
async function startManyHostSite(
  hosts: number,
  pages: number,
  perPage: number,
  latencyMs: number,
): Promise<ManyHostSite> {
  const total = hosts * pages * perPage;
  const images: Uint8Array<ArrayBuffer>[] = [];
  for (let start = 0; start < total; start += 16) {
    const batch = Array.from({ length: Math.min(16, total - start) }, (_, i) => start + i);
    images.push(...await Promise.all(batch.map(benchPortrait)));
  }
  let requests = 0;
  const servers = Array.from(
    { length: hosts },
    (_, host) =>
      Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
        requests++;
        await new Promise((resolve) => setTimeout(resolve, latencyMs));
        const { pathname } = new URL(request.url);
        const page = /^\/people-(\d+)\.html$/.exec(pathname);
        if (page && Number(page[1]) < pages) {
          const index = Number(page[1]);
          const first = (host * pages + index) * perPage;
          const cards = Array.from({ length: perPage }, (_, i) => first + i).map((n) =>
            `<div class="person"><img src="/img/${n}.jpg" width="225" height="275"><h3>${
              personName(n)
            }</h3></div>`
          ).join("");
          const next = index + 1 < pages
            ? `<a rel="next" href="/people-${index + 1}.html">Next</a>`
            : "";
          return new Response(
            `<!doctype html><html><body><div class="staff">${cards}</div>${next}</body></html>`,
            {
              headers: { "content-type": "text/html; charset=utf-8" },
            },
          );
        }
        const image = images[Number(/^\/img\/(\d+)\.jpg$/.exec(pathname)?.[1] ?? NaN)];
        if (image) return new Response(image, { headers: { "content-type": "image/jpeg" } });
        return new Response("not found", { status: 404 });
      }),
  );
  const rows = servers.map((server, host) =>
    `http://127.0.0.1:${server.addr.port}/people-0.html,dept-${host}`
  );
  return {
    sourcesCsv: ["url,category", ...rows].join("\n") + "\n",
    ports: servers.map((server) => server.addr.port),
    requests: () => requests,
    close: async () => {
      await Promise.all(servers.map((server) => server.shutdown()));
    },
  };
}

/** nats-server with JetStream in a temp folder on a free port; killed and removed by `close`. */
async function startNatsServer() {
  const [port, monitorPort] = [freePort(), freePort()];
  const storeDir = await Deno.makeTempDir({ prefix: "facefield-bench-nats-" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("nats-server", {
      args: [
        ...["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)],
        ...["-m", String(monitorPort)],
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch {
    fail("bench:cluster needs nats-server on PATH (Debian: apt-get install nats-server)");
  }
  for (let tries = 0;; tries++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch (error) {
      if (tries > 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    /** Messages into and out of the server so far, from its monitoring port (loopback). */
    async messages(): Promise<{ in: number; out: number }> {
      const varz = await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json();
      return { in: varz.in_msgs, out: varz.out_msgs };
    },
    async close() {
      child.kill("SIGKILL");
      await child.status;
      await Deno.remove(storeDir, { recursive: true });
    },
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * `count` worker processes, resolved once each has said it is connected; worker `i` runs inside
 * `namespaces[i]` where there is one.
 */
async function startWorkers(
  url: string,
  count: number,
  concurrency: number,
  namespaces: DelayedNamespace[] = [],
) {
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const workers = Array.from({ length: count }, (_, i) => {
    const args = [
      "run",
      "-A",
      // For profiling a worker: FACEFIELD_BENCH_WORKER_FLAGS="--v8-flags=--prof".
      ...(Deno.env.get("FACEFIELD_BENCH_WORKER_FLAGS") ?? "").split(" ").filter(Boolean),
      main,
      "worker",
      "--cluster",
      url,
      "--concurrency",
      String(concurrency),
      "--face-threads",
      "0",
    ];
    const inside = namespaces[i]?.wrap(Deno.execPath(), args) ??
      { command: Deno.execPath(), args };
    return new Deno.Command(inside.command, {
      args: inside.args,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  });
  await Promise.all(workers.map(async (child) => {
    let text = "";
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    while (!text.includes("jobs at once")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`a worker exited before it connected: ${text.slice(-300)}`);
      text += value;
    }
    // Keep reading so the worker never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done);
    })().catch(() => {});
  }));
  return {
    pids: workers.map((child) => child.pid),
    async close() {
      for (const child of workers) child.kill("SIGTERM");
      await Promise.all(workers.map((child) => child.status));
    },
  };
}

async function timedRun(
  options: PipelineOptions & { dataDir: string },
  sourcesCsv: string,
  processes: Map<string, number[]>,
  hooks: RunHooks = {},
) {
  const cpuBefore = new Map(
    [...processes].map(([group, pids]) => [group, pids.map((pid) => cpuMs(pid) ?? 0)]),
  );
  const start = performance.now();
  const summary = await runPipeline(options, of(sourcesCsv), hooks);
  const wall = (performance.now() - start) / 1000;
  const rows = (await Manifest.open(dataPaths(options.dataDir).manifest)).rows();
  const images = rows.filter((row) => row.status === "ok").length;
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    pages: summary.pages.ok,
    failed_pages: summary.pages.failed,
    images,
    dropped: rows.length - images,
    wall_s: round(wall),
    pages_per_s: round(summary.pages.ok / wall),
    images_per_s: round(images / wall),
    cpu_ms_per_image: cpuPerImage(cpuBefore, processes, images),
  };
}

/** What every run of one bench shares: the site's shape, politeness, and the worker counts. */
interface ClusterBenchSettings {
  hosts: number;
  pages: number;
  perPage: number;
  latencyMs: number;
  perHost: number;
  concurrency: number;
  workerCounts: number[];
  /** Each worker in a network namespace of its own, this much added to every round trip; 0: none. */
  netnsLatencyMs: number;
}

function readSettings(values: ParsedValues): ClusterBenchSettings {
  const settings = {
    hosts: intOption(values, "hosts", 24, { min: 1, max: 200 }),
    pages: intOption(values, "pages", 3, { min: 1, max: 20 }),
    perPage: intOption(values, "per-page", 10, { min: 1, max: 100 }),
    latencyMs: intOption(values, "latency-ms", 50, { min: 0, max: 5000 }),
    perHost: intOption(values, "per-host", 2, { min: 1, max: 64 }),
    concurrency: intOption(values, "concurrency", 32, { min: 1, max: 256 }),
    netnsLatencyMs: intOption(values, "netns-latency-ms", 0, { min: 0, max: 5000 }),
  };
  const workerCounts = stringOption(values, "workers", "1,2,4").split(",").map(Number);
  if (workerCounts.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) {
    fail(`--workers takes worker counts from 1 to 64 like 1,2,4: got '${values.workers}'`, 2);
  }
  return { ...settings, workerCounts };
}

/** One bench, its settings as each JSON line repeats them, and the pipeline options of its runs. */
class ClusterBench {
  readonly base: Omit<PipelineOptions, "dataDir">;
  readonly reported: Record<string, number>;

  constructor(readonly settings: ClusterBenchSettings, readonly site: ManyHostSite) {
    const { hosts, pages, perPage, latencyMs, perHost, concurrency, netnsLatencyMs } = settings;
    this.base = { until: "images", perHost, delayMs: 0, concurrency };
    this.reported = {
      hosts,
      pages,
      per_page: perPage,
      latency_ms: latencyMs,
      per_host: perHost,
      concurrency,
      netns_latency_ms: netnsLatencyMs,
    };
  }

  /** The crawl in this process alone: the baseline the cluster runs are read against. */
  async runSingleMachine(): Promise<void> {
    const dataDir = await Deno.makeTempDir({ prefix: "facefield-bench-cluster-" });
    try {
      const result = await timedRun(
        { ...this.base, dataDir },
        this.site.sourcesCsv,
        new Map([["this_process", [Deno.pid]]]),
      );
      this.print("single-machine", 0, result);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  }

  /** The crawl handed to `count` workers behind a fresh nats-server, all torn down after. */
  async runCluster(count: number): Promise<void> {
    const server = await startNatsServer();
    const namespaces = await this.namespacesFor(count, server.port);
    const workers = await startWorkers(server.url, count, this.settings.concurrency, namespaces);
    const dataDir = await Deno.makeTempDir({ prefix: "facefield-bench-cluster-" });
    const options: PipelineOptions & { dataDir: string } = { ...this.base, dataDir };
    const coordinator = await connectCoordinator({
      address: parseClusterUrl(server.url),
      settings: jobSettingsFor(options),
      log: () => {},
    });
    try {
      const before = await server.messages();
      const result = await timedRun(
        options,
        this.site.sourcesCsv,
        new Map([
          ["this_process", [Deno.pid]],
          ["workers", workers.pids],
          ["nats_server", [server.pid]],
          // The delay relays stand in for the network: their CPU is not the cluster's.
          ...(namespaces.length > 0
            ? [["latency_relays", namespaces.flatMap((n) => n.relayPids)] as [string, number[]]]
            : []),
        ]),
        { crawler: coordinator.crawler },
      );
      const after = await server.messages();
      const perImage = (n: number) => Math.round(n / Math.max(1, result.images) * 10) / 10;
      this.print("cluster", count, {
        ...result,
        nats_msgs_per_image: {
          in: perImage(after.in - before.in),
          out: perImage(after.out - before.out),
        },
      });
    } finally {
      await coordinator.close();
      await workers.close();
      for (const namespace of namespaces) await namespace.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  }

  /** One delayed namespace per worker, relaying NATS and every site port; none without the flag. */
  private async namespacesFor(count: number, natsPort: number): Promise<DelayedNamespace[]> {
    const latency = this.settings.netnsLatencyMs;
    if (latency === 0) return [];
    const ports = [natsPort, ...this.site.ports];
    const namespaces: DelayedNamespace[] = [];
    try {
      for (let i = 1; i <= count; i++) namespaces.push(await delayedNamespace(i, ports, latency));
    } catch (error) {
      for (const namespace of namespaces) await namespace.close();
      fail(`--netns-latency-ms needs root and iproute2's ip netns: ${(error as Error).message}`, 2);
    }
    return namespaces;
  }

  private print(
    mode: string,
    workers: number,
    result: Awaited<ReturnType<typeof timedRun>> & Record<string, unknown>,
  ) {
    console.log(
      JSON.stringify({ bench: "cluster", mode, workers, ...result, settings: this.reported }),
    );
  }
}

export const benchClusterCommand: Command = {
  name: "bench:cluster",
  summary: "crawl + download throughput alone and with 1, 2, 4 NATS workers on a many-host site",
  usage: `
usage: deno task bench:cluster [--hosts 24] [--pages 3] [--per-page 10] [--latency-ms 50]
                               [--workers 1,2,4] [--per-host 2] [--concurrency 32]
                               [--netns-latency-ms 0]

Serves generated staff pages on --hosts loopback ports (each port is a host), every request
held --latency-ms, and runs 'pipeline --until images' on them: first in this process alone,
then as a coordinator with each count of 'deno task worker' processes on a fresh nats-server.
"this_process" CPU includes the site's servers, and the coordinator in cluster runs.
Politeness is the same in all runs (--per-host requests in flight per host, no delay); each
worker and the single run work --concurrency records at once (waits for a host's turn
included). One JSON line per run.
--netns-latency-ms N runs each worker in a network namespace of its own whose every round trip
(to NATS and to the site) takes N ms more, through a delay relay (this kernel has no netem);
needs root and iproute2. The relays' CPU is printed apart, as "latency_relays".
Needs nats-server on PATH.`,
  options: {
    hosts: { type: "string" },
    pages: { type: "string" },
    "per-page": { type: "string" },
    "latency-ms": { type: "string" },
    workers: { type: "string" },
    "per-host": { type: "string" },
    concurrency: { type: "string" },
    "netns-latency-ms": { type: "string" },
  },
  async run(values) {
    const settings = readSettings(values);
    const { hosts, pages, perPage, latencyMs } = settings;
    log(`bench:cluster: generating ${hosts * pages * perPage} portraits on ${hosts} hosts…`);
    const site = await startManyHostSite(hosts, pages, perPage, latencyMs);
    const bench = new ClusterBench(settings, site);
    try {
      await bench.runSingleMachine();
      for (const count of settings.workerCounts) await bench.runCluster(count);
    } finally {
      await site.close();
    }
    return 0;
  },
};
