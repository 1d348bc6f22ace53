/** `forget`: the command line over `forget()` (store/forget.ts). */
import { type Command, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { dataPaths, hasRecords } from "../store/paths.ts";
import { forget } from "../store/forget.ts";
import { Manifest } from "../store/manifest.ts";
import { writeDataDirDatasheet } from "../pipeline/datasheet.ts";

export const forgetCommand: Command = {
  name: "forget",
  summary: "remove a person from the data dir: records, images, crops, models and reports",
  usage: `
usage: deno task forget [--data DIR] (--id ID | --name "FULL NAME")...

Deletes every manifest row of the person (by id or by the name as the page showed it, case and
spacing ignored), and every row sharing their image or their face identity; their cached images
and face crops; every trained model whose training data held them, and the report. Their id,
image hash and a one-way hash of their name go on the data dir's removal list, so later crawls
drop them before anything is stored. Retrain afterwards with 'deno task pipeline'.

  --data DIR     data dir (default facefield-data)
  --id ID        record id (16 hex chars; an old index.csv's 8 also work), repeatable
  --name NAME    name as on the page, repeatable
  --cluster URL  also remove them from the NATS cluster a run used (records, queued jobs,
                 images, crops, page results); nats://… as for 'pipeline --cluster'
  --tls-ca FILE  CA certificate of the NATS server (implies TLS)
`,
  options: {
    data: { type: "string" },
    id: { type: "string", multiple: true },
    name: { type: "string", multiple: true },
    cluster: { type: "string" },
    "tls-ca": { type: "string" },
  },
  async run(values) {
    const ids = (values.id as string[] | undefined) ?? [];
    const names = (values.name as string[] | undefined) ?? [];
    if (!ids.length && !names.length) fail("say who to remove: --id ID or --name NAME", 2);
    const dataDir = stringOption(values, "data", "facefield-data");
    if (!await hasRecords(dataDir)) {
      fail(`no records (state.db or index.csv) in '${dataDir}': pass the data dir with --data`, 2);
    }
    const clusterUrl = stringOption(values, "cluster");
    // The cluster's modules (NATS, and through its layout the face nets) load only when asked:
    // they were most of a local forget's start-up.
    const cluster = clusterUrl === undefined ? undefined : {
      ...await import("../pipeline/cluster/connection.ts"),
      ...await import("../pipeline/cluster/forget.ts"),
    };
    const address = clusterUrl === undefined
      ? undefined
      : cluster!.parseClusterUrl(clusterUrl, stringOption(values, "tls-ca"));
    const result = await forget({ dataDir, ids, names });
    // Who they were in the manifest: the rows the local forget removed.
    const rows = result.people;
    if (address) {
      const inCluster = await cluster!.forgetInCluster(address, {
        ids: [...new Set([...ids, ...rows.map((row) => row.id)])],
        sha256s: [...new Set(rows.map((row) => row.sha256).filter(Boolean))],
        names: [...names, ...rows.map((row) => row.name)],
      });
      console.log(
        `cluster ${address.redacted}: removed ${inCluster.records} records, ${inCluster.blobs} ` +
          `images and crops, them from ${inCluster.sourcePages} page results`,
      );
    }
    console.log(
      `removed ${result.records} records, ${result.images} images, ${result.faceFiles} face files, ` +
        `${result.models.length} models${result.reportRemoved ? ", the report" : ""}; ` +
        `they are on the removal list of ${dataDir}`,
    );
    if (result.records === 0) {
      console.log("no record matched; later crawls will still drop whoever matches the list");
    }
    await writeDataDirDatasheet(
      dataPaths(dataDir),
      await Manifest.open(dataPaths(dataDir).manifest),
    );
    console.log("copies made by 'deno task export': run 'deno task export --check OUT' on each");
    if (result.models.length) console.log("retrain with: deno task pipeline --data " + dataDir);
    return 0;
  },
};
