/**
 * `forget --cluster`: a person who asks to be removed leaves the cluster's copies too: their
 * record results (with the image bytes and crops they carry), queued jobs, image bytes and crops
 * in the object store, and their entries in the sources' page
 * results (which list the names found on each page).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { normaliseName } from "../../store/removed.ts";
import { type ClusterAddress, connectCluster } from "./connection.ts";
import {
  decodeJson,
  encodeJson,
  JOBS_STREAM,
  JOBS_SUBJECT,
  openCluster,
  type RecordResult,
  type SourceResult,
} from "./layout.ts";

export interface ClusterForgetRequest {
  ids: string[];
  sha256s: string[];
  /** Names as asked for: a person listed on a page but never downloaded has no id here yet. */
  names: string[];
}

export interface ClusterForgetResult {
  records: number;
  blobs: number;
  sourcePages: number;
}

/** Removes the people from the cluster's bucket, queue and object store. */
export async function forgetInCluster(
  address: ClusterAddress,
  request: ClusterForgetRequest,
  log: (line: string) => void = console.error,
): Promise<ClusterForgetResult> {
  const ids = new Set(request.ids);
  const shas = new Set(request.sha256s);
  const names = new Set(request.names.map(normaliseName));
  const nc = await connectCluster(address, { name: "forget", log });
  try {
    const cluster = await openCluster(nc);
    const jsm = await jetstreamManager(nc);
    let records = 0;
    // Bytes carried in a record's result go with it (the purge below removes the message).
    let blobs = 0;
    for (const id of ids) {
      const entry = await cluster.results.get(`record.${id}`);
      if (entry?.operation === "PUT") {
        records++;
        const { image, inline = {} } = decodeJson<RecordResult>(entry.value);
        if (image.status === "ok" && shas.has(image.record.sha256)) {
          blobs += Object.keys(inline).length;
        }
      }
      await cluster.results.purge(`record.${id}`);
      await cluster.results.purge(`error.record.${id}`);
      await jsm.streams.purge(JOBS_STREAM, { filter: `${JOBS_SUBJECT}.record.${id}` });
    }
    for (const info of await cluster.blobs.list()) {
      const sha = /^(?:image\/|face\/[^/]+\/)([0-9a-f]{64})(?:\.\w+)?$/.exec(info.name)?.[1];
      if (sha && shas.has(sha)) {
        await cluster.blobs.delete(info.name);
        blobs++;
      }
    }
    let sourcePages = 0;
    const sourceKeys: string[] = [];
    for await (const key of await cluster.results.keys("source.>")) sourceKeys.push(key);
    for (const key of sourceKeys) {
      const entry = await cluster.results.get(key);
      if (entry?.operation !== "PUT") continue;
      const result = decodeJson<SourceResult>(entry.value);
      let changed = false;
      for (const page of result.pages) {
        if (page.status !== "ok") continue;
        const kept = page.people.filter((person) =>
          !ids.has(person.id) && !names.has(normaliseName(person.name))
        );
        if (kept.length !== page.people.length) {
          page.people = kept;
          changed = true;
          sourcePages++;
        }
      }
      if (changed) await cluster.results.put(key, encodeJson(result));
    }
    return { records, blobs, sourcePages };
  } finally {
    await nc.close();
  }
}
