/**
 * CPU per cluster operation in this process: each NATS call a worker made per image (host slot
 * create/get/delete, the duplicate check, the object-store info and put of a 25 KB image, the
 * result's publish), and the publish of a result with a 25 KB image inline as a worker now sends
 * it; 400 times, 16 at once, against a fresh nats-server on a loopback port.
 * For docs/performance.md: it shows how much of a worker's CPU per image the calls explain.
 *
 *   deno run -A commands/dev/nats_op_costs.ts
 */
import process from "node:process";
import { connectCluster, parseClusterUrl } from "../../pipeline/cluster/connection.ts";
import { encodeJson, openCluster, toBase64 } from "../../pipeline/cluster/layout.ts";

const cpuMs = () => (process.cpuUsage().user + process.cpuUsage().system) / 1000;
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const port = (listener.addr as Deno.NetAddr).port;
listener.close();
const storeDir = await Deno.makeTempDir({ prefix: "facefield-nats-costs-" });
const server = new Deno.Command("nats-server", {
  args: ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)],
  stdout: "null",
  stderr: "null",
}).spawn();
await new Promise((resolve) => setTimeout(resolve, 800));
const nc = await connectCluster(parseClusterUrl(`nats://127.0.0.1:${port}`), {
  name: "costs",
  log: () => {},
});
const cluster = await openCluster(nc);
const [count, atOnce] = [400, 16];
const image = new Uint8Array(25000).map((_, i) => (i * 7919) % 251);
const run = crypto.randomUUID().slice(0, 8);

async function cost(name: string, op: (i: number) => Promise<unknown>) {
  const [cpu, wall] = [cpuMs(), performance.now()];
  for (let i = 0; i < count; i += atOnce) {
    await Promise.all(Array.from({ length: atOnce }, (_, j) => op(i + j)));
  }
  const perOp = (value: number) => (value / count).toFixed(3);
  console.log(
    `${name.padEnd(26)} ${perOp(cpuMs() - cpu)} ms CPU, ${perOp(performance.now() - wall)} ms wall`,
  );
}

try {
  await cost("hosts kv.create (slot)", (i) => cluster.hosts.create(`slot.${run}.${i}`, "o"));
  await cost("hosts kv.get (turn)", (i) => cluster.hosts.get(`next.${run}.${i % 20}`));
  await cost("hosts kv.delete (slot)", (i) => cluster.hosts.delete(`slot.${run}.${i}`));
  await cost("results.get (duplicate?)", (i) => cluster.results.get(`r.${run}.${i}`));
  await cost("blobs.info", (i) => cluster.blobs.info(`img.${run}.${i}`));
  await cost(
    "blobs.putBlob 25 KB",
    (i) => cluster.blobs.putBlob({ name: `img.${run}.${i}` }, image.map((v) => v ^ (i & 255))),
  );
  await cost("publish result, 25 KB inline", (i) =>
    cluster.js.publish(
      `$KV.facefield-results.inline.${run}.${i}`,
      encodeJson({ pad: "a".repeat(900), i, inline: { image: toBase64(image) } }),
      { msgID: `inline-${run}-${i}`, expect: { lastSubjectSequence: 0 } },
    ));
  await cost("publish result 1 KB", (i) =>
    cluster.js.publish(
      `$KV.facefield-results.r.${run}.${i}`,
      encodeJson({ pad: "a".repeat(900), i }),
      { msgID: `${run}-${i}` },
    ));
} finally {
  await nc.close();
  server.kill("SIGKILL");
  await server.status;
  await Deno.remove(storeDir, { recursive: true });
}
