/** `deno task worker`: one NATS worker of a cluster run (see `pipeline --cluster`). */
import { type Command, intOption, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { parseClusterUrl } from "../pipeline/cluster/connection.ts";
import { runWorker } from "../pipeline/cluster/worker.ts";

export const workerCommand: Command = {
  name: "worker",
  summary: "work a cluster run's jobs: fetch pages, download images, find faces (NATS)",
  usage: `
usage: deno task worker --cluster nats://host:4222 [options]

Pulls jobs from the NATS JetStream server that 'deno task pipeline --cluster' feeds, works
them with the same stages as a single-machine run, and puts the results back (records in a
KV bucket, image bytes and crops in an object store). Start as many as you like, anywhere
that reaches the server; politeness per host holds across all of them. Ctrl-C finishes the
jobs in hand and stops; a killed worker's jobs go to another worker.

  --cluster URL        nats://[user:pass@|token@]host:4222, tls://… for TLS (required);
                       env:NAME reads the URL from that variable (keeps a password out of ps)
  --tls-ca FILE        CA certificate that signed the server's (implies TLS)
  --concurrency N      jobs worked at once, waiting for a host's turn included (default 32)
  --face-threads N     threads for the face nets, 0 for this thread (default: cores)
  --work-dir DIR       scratch folder (default: a temp folder, removed at the end)
  --verbose            a line per job started and done (record ids only)
`,
  options: {
    cluster: { type: "string" },
    "tls-ca": { type: "string" },
    concurrency: { type: "string" },
    "face-threads": { type: "string" },
    "work-dir": { type: "string" },
    verbose: { type: "boolean" },
  },
  async run(values) {
    const url = stringOption(values, "cluster");
    if (url === undefined) fail("worker needs --cluster nats://host:4222", 2);
    const address = parseClusterUrl(url, stringOption(values, "tls-ca"));
    const controller = new AbortController();
    const stop = () => {
      if (controller.signal.aborted) Deno.exit(130);
      console.error("worker: stopping after the jobs in hand (Ctrl-C again to quit now)");
      controller.abort();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    try {
      await runWorker({
        address,
        concurrency: intOption(values, "concurrency", 32, { min: 1, max: 256 }),
        faceThreads: intOption(values, "face-threads", navigator.hardwareConcurrency, {
          min: 0,
          max: 64,
        }),
        workDir: stringOption(values, "work-dir"),
        verbose: values.verbose === true,
        signal: controller.signal,
      });
    } catch (error) {
      if (controller.signal.aborted) return 130;
      throw error;
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
    }
    return 0;
  },
};
