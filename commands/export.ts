/** `export`: the command line over `runExport` and `checkExport` (pipeline/export/run.ts). */
import process from "node:process";
import cliProgress from "cli-progress";
import { type Command, intOption, numberOption, type ParsedValues, stringOption } from "./cli.ts";
import { fail } from "../core/errors.ts";
import { hasRecords } from "../store/paths.ts";
import { exportManifestCsv } from "../pipeline/export/manifest_csv.ts";
import { parseRoleRules } from "../stages/filter_roles.ts";
import {
  checkExport,
  type ExportOptions,
  ExportRefused,
  type ExportResult,
  runExport,
} from "../pipeline/export/run.ts";
import { FORMAT_NAMES, type FormatName } from "../pipeline/export/format.ts";
import type { ExportWhat, SplitChoice } from "../pipeline/export/records.ts";

const WHATS: readonly ExportWhat[] = ["crops", "originals", "both"];

/** `256MB`, `1GiB`, `500k` or a plain number of bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
  if (!match) return undefined;
  const unit = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[match[2]!.toLowerCase()]!;
  return Math.round(Number(match[1]) * unit);
}

function splitOption(values: ParsedValues): SplitChoice | undefined {
  const text = stringOption(values, "split");
  if (text === undefined || text === "manifest") return undefined;
  const fold = /^fold:(\d+)$/.exec(text);
  if (!fold) {
    fail(`--split must be 'manifest' or fold:K (fold K as the test set): got '${text}'`, 2);
  }
  return { kind: "fold", fold: Number(fold[1]) };
}

function readOptions(values: ParsedValues): ExportOptions {
  const format = stringOption(values, "format") as FormatName | undefined;
  const out = stringOption(values, "out");
  if (!format || !FORMAT_NAMES.includes(format)) {
    fail(`--format must be one of ${FORMAT_NAMES.join(", ")}: got '${format ?? ""}'`, 2);
  }
  if (!out) fail("say where to write: --out OUT (a new or empty folder)", 2);
  const what = stringOption(values, "what", "crops") as ExportWhat;
  if (!WHATS.includes(what)) fail(`--what must be one of ${WHATS.join(", ")}: got '${what}'`, 2);
  const shardText = stringOption(values, "shard-size", "256MB");
  const shardSize = parseByteSize(shardText);
  if (shardSize === undefined || shardSize < 4096) {
    fail(`--shard-size must be a size of at least 4KB, like 256MB: got '${shardText}'`, 2);
  }
  const rolesText = stringOption(values, "roles");
  let roles;
  try {
    roles = rolesText === undefined ? undefined : parseRoleRules(rolesText);
  } catch (error) {
    fail(`--roles: ${(error as Error).message}`, 2);
  }
  const categories = stringOption(values, "categories")?.split(",").map((c) => c.trim())
    .filter(Boolean);
  return {
    dataDir: stringOption(values, "data", "facefield-data"),
    out,
    format,
    what,
    ...(values.size !== undefined
      ? { size: intOption(values, "size", 0, { min: 8, max: 4096 }) }
      : {}),
    folds: values.folds === true,
    ...(splitOption(values) ? { split: splitOption(values)! } : {}),
    minScore: numberOption(values, "min-score", 0, { min: 0, max: 1 }),
    ...(categories?.length ? { categories } : {}),
    ...(roles ? { roles } : {}),
    embeddings: values.embeddings === true,
    shardSize,
    force: values.force === true,
  };
}

function summary(result: ExportResult): string {
  const lines = [
    `exported ${result.exported} faces to ${result.out} in ${result.seconds.toFixed(1)} s`,
  ];
  for (const layout of result.layouts) {
    const splits = Object.entries(layout.bySplit).map(([s, n]) => `${s} ${n}`).join(", ");
    lines.push(`  ${layout.dir || "."}: ${splits}`);
  }
  const left = Object.entries(result.excluded);
  if (left.length) lines.push(`left out: ${left.map(([r, n]) => `${r} ${n}`).join(", ")}`);
  lines.push(
    `datasheet: DATASHEET.md in each layout; after a forget: deno task export --check ${result.out}`,
  );
  return lines.join("\n");
}

async function check(out: string, dataDir: string | undefined): Promise<number> {
  const result = await checkExport(out, dataDir);
  console.log(
    `export of ${result.dataDir} made ${result.createdAt}: the removal list had ` +
      `${result.entries.then} entries then, ${result.entries.now} now`,
  );
  if (result.mustDelete.length === 0) {
    console.log("nothing in this copy is on the removal list");
    return 0;
  }
  console.log(`${result.mustDelete.length} faces in this copy were removed since; delete:`);
  for (const face of result.mustDelete) {
    for (const place of face.places) {
      const [file, inside] = place.split("#");
      console.log(
        inside
          ? `  ${file}: the row or sample ${inside} (rewrite the file without it, or export again)`
          : `  ${file}`,
      );
    }
  }
  return 1;
}

/** `--format csv`: the manifest as index.csv has it, to OUT or the data dir's index.csv. */
async function manifestCsv(values: ParsedValues): Promise<number> {
  const dataDir = stringOption(values, "data", "facefield-data");
  if (!await hasRecords(dataDir)) fail(`no records in '${dataDir}': pass it with --data`, 2);
  const out = stringOption(values, "out");
  const result = await exportManifestCsv({
    dataDir,
    ...(out === undefined ? {} : { out }),
    force: values.force === true,
  });
  console.log(`wrote ${result.rows} records to ${result.out}`);
  return 0;
}

export const exportCommand: Command = {
  name: "export",
  summary:
    "copy the data set to a folder as imagefolder, hf, parquet or webdataset, with its datasheet",
  usage: `
usage: deno task export --data DIR --format imagefolder|hf|parquet|webdataset --out OUT [options]
       deno task export --check OUT [--data DIR]
       deno task export --data DIR --format csv [--out FILE]

Writes the data dir's faces (never one on its removal list) and a DATASHEET.md to OUT, which
must be new or empty. Values become safe file names; the originals stay in the metadata.
  imagefolder  OUT/{train,val,test}/<category>/<id>.png (torchvision ImageFolder, Keras)
  hf           the same with metadata.csv per split (datasets' load_dataset("imagefolder"))
  parquet      OUT/<split>.parquet: image bytes, box, manifest columns (--embeddings adds them)
  webdataset   OUT/<split>-NNNNNN.tar shards of <key>.png + <key>.json
  csv          the manifest (every record, index.csv's columns) to FILE, by default the data
               dir's index.csv (a run writes it at each stage end; this writes it now)

  --data DIR          data dir (default facefield-data)
  --what W            crops | originals | both (default crops)
  --size PX           resize crops to PX×PX (originals to fit PX×PX), PNG
  --split S           manifest (the run's split, default) or fold:K (fold K is the test set)
  --folds             one layout per fold, OUT/fold-K/ (a run with --folds)
  --min-score X       only faces the detector scored X or more
  --categories A,B    only these categories
  --roles LIST        as the pipeline's --roles ('professor,postdoc', '!secretary')
  --embeddings        the face descriptor and embeddings (parquet, webdataset)
  --shard-size SIZE   most bytes per webdataset shard (default 256MB)
  --force             write into a non-empty OUT (an earlier export's files there are replaced)
  --check OUT         after a forget: name what in the copy OUT must be deleted (exit 1 if any)
`,
  options: {
    data: { type: "string" },
    format: { type: "string" },
    out: { type: "string" },
    what: { type: "string" },
    size: { type: "string" },
    split: { type: "string" },
    folds: { type: "boolean" },
    "min-score": { type: "string" },
    categories: { type: "string" },
    roles: { type: "string" },
    embeddings: { type: "boolean" },
    "shard-size": { type: "string" },
    force: { type: "boolean" },
    check: { type: "string" },
  },
  async run(values) {
    try {
      const checkOut = stringOption(values, "check");
      if (checkOut !== undefined) return await check(checkOut, stringOption(values, "data"));
      if (values.format === "csv") return await manifestCsv(values);
      const options = readOptions(values);
      if (!await hasRecords(options.dataDir)) {
        fail(`no records in '${options.dataDir}': pass the data dir with --data`, 2);
      }
      const bar = Deno.stderr.isTerminal()
        ? new cliProgress.SingleBar({ stream: process.stderr }, cliProgress.Presets.shades_classic)
        : undefined;
      bar?.start(1, 0);
      const result = await runExport({
        ...options,
        onProgress: (done, total) => {
          bar?.setTotal(total);
          bar?.update(done);
        },
      }).finally(() => bar?.stop());
      console.log(summary(result));
      return 0;
    } catch (error) {
      if (error instanceof ExportRefused || error instanceof RangeError) fail(error.message, 2);
      if (error instanceof Deno.errors.Busy) fail(error.message, 1);
      throw error;
    }
  },
};
