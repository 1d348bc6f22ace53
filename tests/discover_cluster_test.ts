/**
 * Discovery on the cluster: a real nats-server on loopback, two workers in this process, and
 * `deno task discover`'s stream with one job per site. The workers' sites equal this process's
 * own discovery, and a second run reuses the results the cluster holds. Skips visibly without
 * nats-server.
 */
import assert from "node:assert/strict";
import { lastValueFrom, toArray } from "rxjs";
import { HttpClient } from "../net/http.ts";
import { connectCoordinator, jobSettingsFor } from "../pipeline/cluster/coordinator.ts";
import { parseClusterUrl } from "../pipeline/cluster/connection.ts";
import type { ClusterTuning } from "../pipeline/cluster/layout.ts";
import { runWorker } from "../pipeline/cluster/worker.ts";
import { clusterDiscovery, discoveredSources } from "../pipeline/discover.ts";
import { startUniversity } from "../pipeline/discover_university.ts";
import { natsServerMissing, startNatsServer } from "./testdata/cluster/nats_server.ts";

const ignore = natsServerMissing() !== undefined;
const TUNING: ClusterTuning = { ackWaitMs: 2000, attempts: 3, leaseTtlMs: 5000 };

Deno.test({
  name: "discover --cluster: workers discover each site as one job, the same as this process",
  ignore,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = await startNatsServer();
    const uni = startUniversity({ units: 8 });
    const controller = new AbortController();
    const logs: string[] = [];
    const url = `nats://127.0.0.1:${server.port}`;
    const workers = [0, 1].map((i) =>
      runWorker({
        address: parseClusterUrl(url),
        concurrency: 4,
        faceThreads: 0,
        tuning: TUNING,
        name: `worker-${i}`,
        log: (line) => logs.push(line),
        signal: controller.signal,
      })
    );
    const coordinator = await connectCoordinator({
      address: parseClusterUrl(url),
      settings: jobSettingsFor({ delayMs: 0, perHost: 4 }),
      tuning: TUNING,
      log: (line) => logs.push(line),
    });
    try {
      const homes = [uni.url, `${uni.url}de/f1/`];
      const run = async (sites?: ReturnType<typeof clusterDiscovery>) => {
        const http = new HttpClient({ allowPrivate: true, politenessDelayMs: 0 });
        const chunks = await lastValueFrom(
          discoveredSources(homes, http, { sites }).pipe(toArray()),
        );
        // Sites end in their own order; compare the rows, not the order of the sites.
        return chunks.join("").split("\n").filter((line) => line.startsWith("http")).sort();
      };
      const local = await run();
      const clustered = await run(clusterDiscovery(coordinator));
      assert.ok(local.length >= 8, local.join("\n"));
      assert.deepEqual(clustered, local);
      assert.equal(coordinator.stats.queued, 2, "one job per site");
      const again = await run(clusterDiscovery(coordinator));
      assert.deepEqual(again, local);
      assert.equal(coordinator.stats.reused, 2, "the second run reads the cluster's results");
    } finally {
      await coordinator.close();
      controller.abort();
      await Promise.all(workers);
      await uni.close();
      await server.close();
    }
  },
});
