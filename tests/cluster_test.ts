/**
 * The cluster mode end to end on loopback: a real nats-server (started per test on a free
 * port, JetStream in a temp folder), workers in this process or as `deno task worker`
 * processes, and the coordinator as `runPipeline` with the cluster's crawler.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { of } from "rxjs";
import { type PipelineOptions, runPipeline } from "../pipeline/run.ts";
import { connectCoordinator, jobSettingsFor } from "../pipeline/cluster/coordinator.ts";
import { connectCluster, parseClusterUrl, safeMessage } from "../pipeline/cluster/connection.ts";
import { runWorker, type WorkerOptions, type WorkerStats } from "../pipeline/cluster/worker.ts";
import {
  type ClusterTuning,
  encodeJson,
  hostKey,
  type Job,
  jobMessageId,
  JOBS_STREAM,
  jobSettingsHash,
  jobSubject,
  openCluster,
} from "../pipeline/cluster/layout.ts";
import { Manifest, type ManifestRow } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { dataPaths } from "../store/paths.ts";
import { personId, sha256Hex } from "../core/ids.ts";
import { Buffer } from "node:buffer";
import { UserError } from "../core/errors.ts";
import { startDemoSite } from "../pipeline/demo_site.ts";
import { freePort, natsServerMissing, startNatsServer } from "./testdata/cluster/nats_server.ts";
import { personName, startLatencyProxy, startPeopleSite } from "./testdata/cluster/people_site.ts";
import { jetstreamManager } from "@nats-io/jetstream";
import { HostLeases } from "../pipeline/cluster/host_leases.ts";

const ignore = natsServerMissing() !== undefined;
const SLOW = Deno.env.get("FACEFIELD_SLOW_TESTS") === "1";
/** Short timing so that a dead worker's job comes back within seconds. */
const TUNING: ClusterTuning = { ackWaitMs: 2000, attempts: 3, leaseTtlMs: 5000 };
const MAIN = new URL("../main.ts", import.meta.url).pathname;

interface Workers {
  logs: string[];
  stop(): Promise<WorkerStats[]>;
}

/** `count` workers in this process. */
function startWorkers(url: string, count: number, extra: Partial<WorkerOptions> = {}): Workers {
  const controller = new AbortController();
  const logs: string[] = [];
  const runs = Array.from({ length: count }, (_, i) =>
    runWorker({
      address: parseClusterUrl(url),
      concurrency: 8,
      faceThreads: 0,
      tuning: TUNING,
      name: `worker-${i}`,
      log: (line) => logs.push(line),
      signal: controller.signal,
      ...extra,
    }));
  return {
    logs,
    stop: () => (controller.abort(), Promise.all(runs)),
  };
}

/** One pipeline run whose crawler is the cluster at `url`. */
async function clusterRun(
  url: string,
  options: PipelineOptions,
  sourcesCsv: string,
  tuning = TUNING,
) {
  // The same timing as the workers': whichever connects first creates the queue with it.
  const coordinator = await connectCoordinator({
    address: parseClusterUrl(url),
    settings: jobSettingsFor(options),
    tuning,
    log: () => {},
  });
  try {
    return await runPipeline(options, of(sourcesCsv), { crawler: coordinator.crawler });
  } finally {
    await coordinator.close();
  }
}

async function manifestRows(dataDir: string): Promise<ManifestRow[]> {
  return (await Manifest.open(dataPaths(dataDir).manifest)).rows();
}

/** Rows without their timestamps, by id, for comparing two runs record for record. */
function comparable(rows: ManifestRow[]): Map<string, Omit<ManifestRow, "updated_at">> {
  return new Map(rows.map(({ updated_at: _time, ...row }) => [row.id, row]));
}

function assertNoDuplicateIds(rows: ManifestRow[]) {
  assert.equal(new Set(rows.map((row) => row.id)).size, rows.length);
}

async function tempDir() {
  return await Deno.makeTempDir({ prefix: "facefield-cluster-test-" });
}

Deno.test("parseClusterUrl() takes user/password, token and TLS, and never shows a secret", () => {
  const withUser = parseClusterUrl("nats://crawler:s3cr%40t@10.0.0.5:4333");
  assert.deepEqual(
    { server: withUser.server, user: withUser.user, pass: withUser.pass, tls: withUser.tls },
    { server: "10.0.0.5:4333", user: "crawler", pass: "s3cr@t", tls: false },
  );
  assert.equal(withUser.redacted, "nats://***@10.0.0.5:4333");
  const withToken = parseClusterUrl("tls://t0ken@nats.example.org");
  assert.equal(withToken.token, "t0ken");
  assert.equal(withToken.tls, true);
  assert.equal(withToken.redacted, "tls://***@nats.example.org:4222");
  assert.equal(parseClusterUrl("127.0.0.1:4222").redacted, "nats://127.0.0.1:4222");
  Deno.env.set("FACEFIELD_TEST_CLUSTER", "nats://u:from-env@127.0.0.1:4999");
  assert.equal(parseClusterUrl("env:FACEFIELD_TEST_CLUSTER").pass, "from-env");
  Deno.env.delete("FACEFIELD_TEST_CLUSTER");
  assert.throws(() => parseClusterUrl("env:FACEFIELD_TEST_CLUSTER"), /is not set/);
  assert.equal(
    safeMessage(
      new Error("dial nats://bob:pw@10.0.0.9:4222 for https://uni.example/ada.jpg\nstack"),
    ),
    "dial nats://***@10.0.0.9:4222 for <url>",
  );
  assert.throws(() => parseClusterUrl("http://user:hunter2@host"), (error: Error) => {
    assert.ok(error instanceof UserError);
    assert.doesNotMatch(error.message, /hunter2/);
    return true;
  });
});

Deno.test({
  name: "a worker that cannot reach the server retries with backoff, says so, then connects",
  ignore,
  async fn() {
    const port = freePort();
    const logs: string[] = [];
    const controller = new AbortController();
    const worker = runWorker({
      address: parseClusterUrl(`nats://alice:s3cret@127.0.0.1:${port}`),
      faceThreads: 0,
      tuning: TUNING,
      name: "worker-t",
      log: (line) => logs.push(line),
      signal: controller.signal,
    });
    while (logs.filter((line) => line.includes("cannot reach")).length < 2) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const server = await startNatsServer({ port });
    try {
      while (!logs.some((line) => line.includes("jobs at once"))) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      controller.abort();
      await worker;
      const failures = logs.filter((line) => line.includes("cannot reach"));
      assert.match(
        failures[0]!,
        /nats:\/\/\*\*\*@127\.0\.0\.1:\d+ .*attempt 1, retrying in 0\.5 s/,
      );
      assert.match(failures[1]!, /attempt 2, retrying in 1\.0 s/);
      assert.ok(logs.every((line) => !line.includes("s3cret")), "no log line shows the password");
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "a server with a password takes the right one and refuses a wrong one without echoing it",
  ignore,
  async fn() {
    const server = await startNatsServer({ extraArgs: ["--user", "alice", "--pass", "s3cret"] });
    try {
      const good = await connectCluster(
        parseClusterUrl(`nats://alice:s3cret@127.0.0.1:${server.port}`),
        {
          name: "t",
          log: () => {},
        },
      );
      await good.close();
      await assert.rejects(
        connectCluster(parseClusterUrl(`nats://alice:wrong-pw@127.0.0.1:${server.port}`), {
          name: "t",
          log: () => {},
        }),
        (error: Error) => {
          assert.match(error.message, /refused us/);
          assert.doesNotMatch(error.message, /wrong-pw/);
          return true;
        },
      );
    } finally {
      await server.close();
    }
  },
});

Deno.test({
  name: "duplicate publishes of a job are absorbed by its message id",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const nc = await connectCluster(parseClusterUrl(server.url), { name: "t", log: () => {} });
    try {
      const cluster = await openCluster(nc, TUNING);
      const settings = {
        detector: "auto",
        size: 128,
        facePercent: 50,
        faces: true,
        perHost: 2,
        delayMs: 0,
      } as const;
      const person = {
        id: "0123abcd",
        category: "x",
        imageUrl: "http://127.0.0.1:9/a.png",
        name: "A B",
        pageUrl: "",
      };
      const job: Job = {
        kind: "record",
        key: person.id,
        person,
        settings,
        settingsHash: jobSettingsHash(settings),
        after: 0,
      };
      const first = await cluster.js.publish(jobSubject(job), encodeJson(job), {
        msgID: jobMessageId(job),
      });
      const second = await cluster.js.publish(jobSubject(job), encodeJson(job), {
        msgID: jobMessageId(job),
      });
      assert.equal(first.duplicate, false);
      assert.equal(second.duplicate, true);
      const info = await (await jetstreamManager(nc)).streams.info(JOBS_STREAM);
      assert.equal(info.state.messages, 1);
      // A job for a later revision (a retry of a passing failure) is a new message.
      const retry = await cluster.js.publish(jobSubject(job), encodeJson({ ...job, after: 7 }), {
        msgID: jobMessageId({ ...job, after: 7 }),
      });
      assert.equal(retry.duplicate, false);
    } finally {
      await nc.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "3 workers keep the per-host limit for the whole cluster, and fetch every image once",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 3, peoplePerHost: 20, latencyMs: 50 });
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 3);
    try {
      await clusterRun(
        server.url,
        { dataDir, until: "images", perHost: 2, delayMs: 0 },
        site.sourcesCsv,
      );
      const rows = await manifestRows(dataDir);
      assert.equal(rows.length, site.people);
      assertNoDuplicateIds(rows);
      assert.deepEqual(rows.filter((row) => row.status !== "ok").map((row) => row.reason), []);
      // 3 workers × 8 jobs at once could put 24 requests on one host; the leases allow 2.
      for (const host of site.hosts) {
        assert.ok(host.peakConcurrency() <= 2, `peak ${host.peakConcurrency()}`);
      }
      assert.ok(
        site.hosts.some((host) => host.peakConcurrency() === 2),
        "the limit is used, not just kept",
      );
      assert.equal(site.imageRequests().size, site.people);
      assert.ok([...site.imageRequests().values()].every((count) => count === 1));
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "3 workers keep the politeness delay between two requests to a host for the whole cluster",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 1, peoplePerHost: 8, latencyMs: 0 });
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 3);
    const delayMs = 150;
    try {
      await clusterRun(
        server.url,
        { dataDir, until: "images", perHost: 2, delayMs },
        site.sourcesCsv,
      );
      const times = site.arrivals[0]!;
      const paths = site.paths[0]!;
      // Each worker reads robots.txt once, under a slot like any request.
      const robots = paths.filter((path) => path === "/robots.txt").length;
      assert.ok(robots >= 1 && robots <= 3, `robots.txt read ${robots} times by 3 workers`);
      assert.equal(times.length - robots, 1 + 8, "the page and 8 images");
      const gaps = times.slice(1).map((time, i) => time - times[i]!);
      const shown = `gaps ${gaps.map(Math.round).join(", ")} ms`;
      // Starts are claimed in KV 150 ms apart. Arrival is stamped by this test's own server, and
      // a busy test process stamps a request late, which shortens the next gap by as much; the
      // span of all arrivals cannot shrink so, and two requests at once would still show.
      const span = times.at(-1)! - times[0]!;
      assert.ok(span >= gaps.length * delayMs - 60, `span ${Math.round(span)} ms; ${shown}`);
      assert.ok(Math.min(...gaps) >= delayMs / 5, shown);
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a 429 pauses its host for every worker of the cluster, and the image is fetched after",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 1, peoplePerHost: 6, latencyMs: 0, slowDownOnce: true });
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 3);
    try {
      await clusterRun(
        server.url,
        { dataDir, until: "images", perHost: 1, delayMs: 0 },
        site.sourcesCsv,
      );
      const rows = await manifestRows(dataDir);
      assert.deepEqual(rows.map((row) => row.status), Array(6).fill("ok"));
      const slowDown = site.slowDowns[0]!;
      const after = site.arrivals[0]!.filter((time, i) =>
        time > slowDown && site.paths[0]![i] !== "/robots.txt"
      );
      assert.equal(after.length, 6, "5 other images and the retry, all after the pause");
      // The first pause is 2 s; no worker sent anything to the host inside it.
      assert.ok(
        Math.min(...after) - slowDown >= 1900,
        `next request ${Math.round(Math.min(...after) - slowDown)} ms after the 429`,
      );
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a poisoned record ends with a reason after the delivery limit; the rest of the run is whole",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 1, peoplePerHost: 4, latencyMs: 0 });
    const origin = site.hosts[0]!.origin;
    const poisonId = personId("dept-0", `${origin}/img/2.png`, personName(0, 2));
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 1, {
      tuning: { ...TUNING, attempts: 2 },
      beforeJob: (job) => {
        if (job.key === poisonId) throw new Error("this record crashes its worker");
      },
    });
    try {
      await clusterRun(server.url, { dataDir, until: "images", delayMs: 0 }, site.sourcesCsv, {
        ...TUNING,
        attempts: 2,
      });
      const rows = await manifestRows(dataDir);
      assert.equal(rows.length, 4);
      const poisoned = rows.find((row) => row.id === poisonId)!;
      assert.equal(poisoned.status, "failed");
      assert.equal(
        poisoned.reason,
        "poisoned: no worker finished this job in 2 deliveries; last: this record crashes its worker",
      );
      assert.deepEqual(rows.filter((row) => row.status === "ok").length, 3);
      const [stats] = await workers.stop();
      assert.equal(stats!.failedDeliveries, 2);
      assert.equal(stats!.poisoned, 1);
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a worker of another code version refuses the jobs with a clear reason",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 1, peoplePerHost: 2, latencyMs: 0 });
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 1, {
      tuning: { ...TUNING, attempts: 2 },
      codeVersion: "facefield-cluster-0",
    });
    try {
      await clusterRun(server.url, { dataDir, until: "images", delayMs: 0 }, site.sourcesCsv, {
        ...TUNING,
        attempts: 2,
      });
      const pages = await PageLog.open(dataPaths(dataDir).pages);
      const failed = pages.rows().filter((row) => row.status === "failed");
      assert.equal(failed.length, 1);
      assert.match(
        failed[0]!.reason,
        /^settings_mismatch: the job's settings hash \w+ \(detector auto, crop 128 px/,
      );
      assert.match(failed[0]!.reason, /code facefield-cluster-0\)/);
      assert.equal(site.hosts[0]!.requests.length, 0, "a refused job sends no request");
      assert.ok(workers.logs.some((line) => line.includes("refusing jobs: settings_mismatch")));
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a server restart mid-run loses nothing and does nothing twice in the manifest",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 3, peoplePerHost: 15, latencyMs: 100 });
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 2);
    try {
      const run = clusterRun(server.url, { dataDir, until: "images", delayMs: 0 }, site.sourcesCsv);
      // Restart once the images are flowing, with most still to come.
      while ([...site.imageRequests().values()].length < 5) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await server.stop();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await server.restart();
      await run;
      const rows = await manifestRows(dataDir);
      assert.equal(rows.length, site.people);
      assertNoDuplicateIds(rows);
      assert.deepEqual(rows.filter((row) => row.status !== "ok").map((row) => row.reason), []);
      assert.ok(workers.logs.some((line) => line.includes("lost the NATS server")));
      assert.ok(workers.logs.some((line) => line.includes("reconnected")));
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

/** A `deno task worker` process whose stderr lines are collected as they come. */
function spawnWorker(url: string, index: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "worker",
      "--cluster",
      url,
      "--verbose",
      "--face-threads",
      "0",
      "--concurrency",
      "4",
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      lines.push(...parts);
    }
  })();
  return { child, lines, reading, index };
}

Deno.test({
  name:
    "1 coordinator and 3 worker processes, one killed -9 mid-job: the manifest equals a single-machine run",
  ignore: ignore || !SLOW,
  async fn() {
    const demo = await startDemoSite();
    // Slow responses keep jobs in flight long enough to kill a worker in the middle of one.
    const proxy = startLatencyProxy(demo.url, 150);
    const sourcesCsv = demo.sourcesCsv.replaceAll(demo.url.replace(/\/$/, ""), proxy.origin);
    const single = await tempDir();
    const clustered = await tempDir();
    const server = await startNatsServer();
    // The queue's timing is set by its creator: short, so the killed worker's job returns soon.
    const setup = await connectCluster(parseClusterUrl(server.url), { name: "t", log: () => {} });
    // Longer than TUNING's: on a busy machine a worker's first job (loading the face networks)
    // can outlast 2 s three times over and be poisoned, which is not what this test is about.
    await openCluster(setup, { ...TUNING, ackWaitMs: 6000, attempts: 5 });
    await setup.close();
    const workers = [0, 1, 2].map((i) => spawnWorker(server.url, i));
    try {
      await runPipeline({ dataDir: single, until: "faces", delayMs: 0 }, of(sourcesCsv));
      const run = clusterRun(
        server.url,
        { dataDir: clustered, until: "faces", delayMs: 0 },
        sourcesCsv,
      );
      const victim = workers[0]!;
      while (!victim.lines.some((line) => / job record \w+ started/.test(line))) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      victim.child.kill("SIGKILL");
      await victim.child.status;
      await run;
      const started = victim.lines.flatMap((line) =>
        / job record (\w+) started/.exec(line)?.[1] ?? []
      );
      const finished = new Set(
        victim.lines.flatMap((line) => / job record (\w+) done/.exec(line)?.[1] ?? []),
      );
      const cut = started.filter((id) => !finished.has(id));
      assert.ok(cut.length > 0, "the killed worker was in the middle of a job");

      const singleRows = await manifestRows(single);
      const clusterRows = await manifestRows(clustered);
      assertNoDuplicateIds(clusterRows);
      assert.equal(
        singleRows.length,
        demo.people,
        "every demo listing, each person under both departments",
      );
      assert.deepEqual(comparable(clusterRows), comparable(singleRows));
      // The cut jobs were finished by another worker, ending as the single run ended them.
      for (const id of cut) {
        const single = singleRows.find((row) => row.id === id);
        assert.ok(single, `cut record ${id} is a demo record`);
        assert.equal(clusterRows.find((row) => row.id === id)?.status, single.status);
      }
      // Every face came from the workers: the coordinator's face cache has one settings folder,
      // the one the workers filled, and nothing was computed twice under another name.
      const faceDirs = [...Deno.readDirSync(dataPaths(clustered).faceCache)].map((entry) =>
        entry.name
      );
      assert.equal(faceDirs.length, 1);
    } finally {
      for (const worker of workers) {
        try {
          worker.child.kill("SIGTERM");
        } catch {
          // the killed one is gone already
        }
        await worker.child.status;
        await worker.reading.catch(() => {});
      }
      await server.close();
      await proxy.close();
      await demo.close();
      await Deno.remove(single, { recursive: true });
      await Deno.remove(clustered, { recursive: true });
    }
  },
});

Deno.test({
  name: "a coordinator run again resumes from what the cluster holds and queues no job twice",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 2, peoplePerHost: 5, latencyMs: 0 });
    const first = await tempDir();
    const second = await tempDir();
    const workers = startWorkers(server.url, 1);
    try {
      await clusterRun(
        server.url,
        { dataDir: first, until: "images", delayMs: 0 },
        site.sourcesCsv,
      );
      const requestsAfterFirst = site.hosts.map((host) => host.requests.length);
      // A fresh data dir (a coordinator that lost its disk) gets everything from the cluster.
      const coordinator = await connectCoordinator({
        address: parseClusterUrl(server.url),
        settings: jobSettingsFor({ dataDir: second, until: "images" }),
        log: () => {},
      });
      await runPipeline(
        { dataDir: second, until: "images", delayMs: 0 },
        of(site.sourcesCsv),
        { crawler: coordinator.crawler },
      );
      await coordinator.close();
      assert.deepEqual(coordinator.stats, { queued: 0, reused: 2 + 10 });
      assert.deepEqual(site.hosts.map((host) => host.requests.length), requestsAfterFirst);
      assert.deepEqual(
        comparable(await manifestRows(second)),
        comparable(await manifestRows(first)),
      );
      const images = join(dataPaths(second).imageCache);
      assert.equal([...Deno.readDirSync(images)].length > 0, true);
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(first, { recursive: true });
      await Deno.remove(second, { recursive: true });
    }
  },
});

Deno.test({
  name: "forget --cluster removes the person's record, bytes and page entries from the cluster",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const site = startPeopleSite({ hosts: 1, peoplePerHost: 3, latencyMs: 0 });
    const dataDir = await tempDir();
    const workers = startWorkers(server.url, 1);
    try {
      await clusterRun(server.url, { dataDir, until: "images", delayMs: 0 }, site.sourcesCsv);
      await workers.stop();
      const [gone, kept] = await manifestRows(dataDir);
      const forget = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "forget",
          "--data",
          dataDir,
          "--id",
          gone!.id,
          "--cluster",
          server.url,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(forget.stdout);
      assert.equal(forget.code, 0, new TextDecoder().decode(forget.stderr));
      assert.match(
        stdout,
        /cluster nats:\/\/127\.0\.0\.1:\d+: removed 1 records, 1 images and crops, them from 1 page results/,
      );

      const nc = await connectCluster(parseClusterUrl(server.url), { name: "t", log: () => {} });
      const cluster = await openCluster(nc);
      assert.equal(
        (await cluster.results.get(`record.${gone!.id}`))?.operation ?? "PURGE",
        "PURGE",
      );
      assert.equal((await cluster.results.get(`record.${kept!.id}`))?.operation, "PUT");
      assert.equal((await cluster.blobs.info(`image/${gone!.sha256}`))?.deleted ?? true, true);
      assert.equal(await cluster.blobs.getBlob(`image/${gone!.sha256}`), null);
      // Small images ride in their record's result: the kept one's bytes are still there.
      const keptResult = JSON.parse((await cluster.results.get(`record.${kept!.id}`))!.string());
      assert.equal(
        sha256Hex(Buffer.from(keptResult.inline.image, "base64")),
        kept!.sha256,
      );
      const stream = await (await jetstreamManager(nc)).streams.getMessage(
        "KV_facefield-results",
        { last_by_subj: `$KV.facefield-results.record.${gone!.id}` },
      );
      assert.equal(stream?.data.length ?? 0, 0, "the purge leaves no bytes of the person behind");
      const sources: string[] = [];
      for await (const key of await cluster.results.keys("source.>")) sources.push(key);
      const pages = JSON.parse((await cluster.results.get(sources[0]!))!.string()).pages;
      const listed = pages.flatMap((page: { people: { id: string }[] }) =>
        page.people.map((p) => p.id)
      );
      assert.deepEqual(listed.sort(), (await manifestRows(dataDir)).map((row) => row.id).sort());
      await nc.close();
    } finally {
      await workers.stop();
      await site.close();
      await server.close();
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "host slots: a release wakes another worker's waiter, a waiter here takes it over, a dead worker's expires",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const nc = await connectCluster(parseClusterUrl(server.url), { name: "t", log: () => {} });
    const leases: HostLeases[] = [];
    try {
      const cluster = await openCluster(nc, { ...TUNING, leaseTtlMs: 1000 });
      const gate = (owner: string) => {
        const made = new HostLeases(cluster.hosts, { perHost: 1, delayMs: 0, ttlMs: 1000, owner });
        leases.push(made);
        return made;
      };
      const [a, b] = [gate("a"), gate("b")];
      // Let both watchers start, so that b waits for a's release rather than polling for it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const origin = "http://127.0.0.1:9";
      const releaseA = await a.acquire(origin);
      let bHolds = false;
      const bTurn = b.acquire(origin).then((release) => (bHolds = true, release));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(bHolds, false, "one slot: b waits while a holds it");
      await releaseA();
      await (await bTurn)();
      assert.equal(bHolds, true);

      // A request waiting here takes the slot its predecessor here gives back, with no KV write.
      const slotKey = `slot.${hostKey(origin)}.0`;
      const first = await a.acquire(origin);
      const taken = (await cluster.hosts.get(slotKey))?.revision;
      const second = a.acquire(origin);
      await first();
      await (await second)();
      const after = await cluster.hosts.get(slotKey);
      assert.equal(after?.operation, "DEL", "the last request here gives the slot back");
      assert.equal(after!.revision, taken! + 1, "nothing was written between the two requests");

      // A worker that died holding the slot never gives it back: it expires, and c takes it.
      await cluster.hosts.create(`slot.${hostKey(origin)}.0`, "dead");
      const c = gate("c");
      const started = performance.now();
      await (await c.acquire(origin))();
      const waited = performance.now() - started;
      assert.ok(waited >= 500, `c waited for the expiry (${Math.round(waited)} ms)`);
    } finally {
      for (const made of leases) made.close();
      await nc.close();
      await server.close();
    }
  },
});

Deno.test({
  name: "a job's twin finds its result stored: it is acked as a duplicate and overwrites nothing",
  ignore,
  async fn() {
    const server = await startNatsServer();
    const nc = await connectCluster(parseClusterUrl(server.url), { name: "t", log: () => {} });
    let workers: Workers | undefined;
    try {
      const cluster = await openCluster(nc, TUNING);
      const settings = jobSettingsFor({ dataDir: "unused", until: "images", delayMs: 0 });
      const person = {
        id: "0123abcd",
        category: "x",
        imageUrl: `http://127.0.0.1:${freePort()}/a.png`,
        name: "A B",
        pageUrl: "",
      };
      // The twin's result, stored while this copy of the job waited in the queue.
      const stored = encodeJson({ settingsHash: jobSettingsHash(settings), twin: true });
      const revision = await cluster.results.put(`record.${person.id}`, stored);
      const job: Job = {
        kind: "record",
        key: person.id,
        person,
        settings,
        settingsHash: jobSettingsHash(settings),
        after: 0,
      };
      await cluster.js.publish(jobSubject(job), encodeJson(job), { msgID: jobMessageId(job) });
      workers = startWorkers(server.url, 1);
      const jsm = await jetstreamManager(nc);
      for (let tries = 0; (await jsm.streams.info(JOBS_STREAM)).state.messages > 0; tries++) {
        assert.ok(tries < 100, "the job was never acked");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const [stats] = await workers.stop();
      assert.deepEqual([stats!.done, stats!.duplicates], [0, 1]);
      const entry = await cluster.results.get(`record.${person.id}`);
      assert.equal(entry?.revision, revision);
      assert.deepEqual(entry?.json(), { settingsHash: jobSettingsHash(settings), twin: true });
    } finally {
      await workers?.stop();
      await nc.close();
      await server.close();
    }
  },
});
