/**
 * A face worker takes jobs from the moment it starts: jobs posted before its nets (or even its
 * modules) have loaded are answered, not lost. The worker used to set its message handler only
 * after importing faces.ts; a job that arrived meanwhile was dropped and its promise never
 * settled (`crop` of 198 portraits wrote 196 crops and hung, on a loaded machine).
 */
import assert from "node:assert/strict";
import { FaceWorkerPool } from "../models/faces/worker_pool.ts";

const fixture = (name: string) =>
  Deno.readFile(new URL(`./testdata/faces/${name}`, import.meta.url));

/** Settles with the promise, or rejects once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

Deno.test({
  name: "FaceWorkerPool answers every job posted the moment its workers start",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const names = ["portrait.jpg", "group.jpg", "tiny.png", "portrait.jpg", "rgba.png"];
    const inputs = await Promise.all(names.map(fixture));
    for (let round = 0; round < 2; round++) {
      // Posted synchronously after the workers are created, before any of them has run a line.
      const pool = new FaceWorkerPool({ workers: 2, jobsPerWorker: 2 });
      try {
        const jobs = inputs.map((bytes) => pool.extractFaces(bytes, { describe: false }));
        const results = await within(Promise.all(jobs), 120_000, `round ${round + 1}`);
        assert.equal(results.length, names.length);
        assert.equal(results[0]!.faces.length, 1);
        assert.deepEqual(results[3]!.faces[0]?.box, results[0]!.faces[0]?.box);
      } finally {
        pool.close();
      }
    }
  },
});
