/**
 * `runExport`: the data set of a data dir, copied to OUT in one format, with its datasheet and
 * a record of what went where (`facefield-export.jsonl`) that `checkExport` reads after a later
 * forget. Faces stream through one at a time (a few read ahead), so memory does not grow with
 * the data set.
 */
import { createReadStream } from "node:fs";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { sha256Hex } from "../../core/ids.ts";
import { DataDirLock } from "../../store/lock.ts";
import { Manifest, type ManifestRow } from "../../store/manifest.ts";
import { dataPaths, hasRecords } from "../../store/paths.ts";
import { nameHash, RemovedList } from "../../store/removed.ts";
import type { RoleRules } from "../../stages/filter_roles.ts";
import { datasheetMarkdown } from "../../report/datasheet.ts";
import { datasheetContext } from "../datasheet.ts";
import {
  FORMAT_NAMES,
  type FormatContext,
  type FormatName,
  type FormatWriter,
  OutDir,
  rel,
} from "./format.ts";
import {
  aheadMap,
  type ExportWhat,
  foldsOf,
  RecordLoader,
  selectRecords,
  type SplitChoice,
} from "./records.ts";
import { imageFolderWriter } from "./imagefolder.ts";
import { hfWriter } from "./hf.ts";
import { parquetWriter } from "./parquet.ts";
import { webDatasetWriter } from "./webdataset.ts";

/** The file in OUT that records what the export holds, a JSON line per face after a header. */
export const EXPORT_RECORD = "facefield-export.jsonl";
/** The datasheet in each layout folder. */
export const DATASHEET = "DATASHEET.md";

const WRITERS: Record<FormatName, (out: OutDir, base: string, c: FormatContext) => FormatWriter> = {
  imagefolder: imageFolderWriter,
  hf: hfWriter,
  parquet: parquetWriter,
  webdataset: webDatasetWriter,
};

export interface ExportOptions {
  dataDir: string;
  out: string;
  format: FormatName;
  /** @default "crops" */
  what?: ExportWhat;
  /** Side of the crops (longest side of the originals) in px. @default as stored */
  size?: number;
  /** One layout per fold (`fold-<k>/`, fold k the test set). @default false */
  folds?: boolean;
  /** The split of the one layout. @default { kind: "manifest" } */
  split?: SplitChoice;
  /** @default 0 */
  minScore?: number;
  /** @default every category */
  categories?: string[];
  /** @default keep every role */
  roles?: RoleRules;
  /** The face stage's descriptor and embeddings (parquet, webdataset). @default false */
  embeddings?: boolean;
  /** Most bytes per WebDataset shard. @default 256 MiB */
  shardSize?: number;
  /** Write into a non-empty OUT (files of an earlier export there are replaced). @default false */
  force?: boolean;
  /** Faces read ahead of the writer. @default 8 */
  readAhead?: number;
  /** Called after each face with the faces done and the total. */
  onProgress?: (done: number, total: number) => void;
}

/** Why an export cannot start: a user error the command reports (exit 2). */
export class ExportRefused extends Error {}

export interface LayoutResult {
  /** Folder under OUT ("" for OUT itself). */
  dir: string;
  bySplit: Record<string, number>;
  byCategory: Record<string, number>;
}

export interface ExportResult {
  out: string;
  exported: number;
  layouts: LayoutResult[];
  /** Faces left out, by reason (removal list, filters, files gone). */
  excluded: Record<string, number>;
  seconds: number;
}

/** The header line of the export record. */
interface RecordHeader {
  facefield_export: 1;
  created_at: string;
  data_dir: string;
  format: FormatName;
  what: ExportWhat;
  removal_list: { entries: number; sha256: string };
}

/** One face's line in the export record: who, and where in OUT. */
interface RecordLine {
  id: string;
  sha256: string;
  name_hash: string;
  places: string[];
}

async function isEmptyDir(path: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(path)) return false;
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
}

/** Empties the files an earlier export wrote into OUT (its record lists them), nothing else. */
async function removeEarlierExport(out: OutDir): Promise<void> {
  const files = new Set<string>();
  let record = false;
  try {
    for await (const line of readLines(out.path(EXPORT_RECORD))) {
      record = true;
      const parsed = JSON.parse(line) as Partial<RecordLine & { datasheets: string[] }>;
      for (const place of [...parsed.places ?? [], ...parsed.datasheets ?? []]) {
        files.add(place.split("#")[0]!);
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  if (!record) return;
  for (const file of files) await Deno.remove(out.path(file)).catch(() => {});
  await Deno.remove(out.path(EXPORT_RECORD));
}

async function* readLines(path: string): AsyncGenerator<string> {
  await Deno.stat(path); // NotFound before the stream opens, as a Deno error.
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim()) yield line;
}

function checkOptions(options: ExportOptions): void {
  if (!FORMAT_NAMES.includes(options.format)) {
    throw new RangeError(
      `Cannot export as '${options.format}': formats are ${FORMAT_NAMES.join(", ")}`,
    );
  }
  if (options.size !== undefined && !(Number.isInteger(options.size) && options.size >= 8)) {
    throw new RangeError(`Cannot export as 'size' must be an integer ≥ 8: got ${options.size}`);
  }
  if (options.folds && options.split && options.split.kind !== "manifest") {
    throw new RangeError("Cannot export with both 'folds' and 'split': --folds writes every fold");
  }
}

/** Opens OUT for writing: refused when it holds anything and `force` is not given. */
async function prepareOut(options: ExportOptions): Promise<OutDir> {
  const out = new OutDir(resolve(options.out));
  if (!(await isEmptyDir(out.root))) {
    if (!options.force) {
      throw new ExportRefused(
        `'${options.out}' is not empty: choose a new folder, or pass --force to write into it ` +
          `(files of an earlier export there are replaced; other files are never overwritten)`,
      );
    }
    await removeEarlierExport(out);
  }
  await Deno.mkdir(out.root, { recursive: true });
  return out;
}

/**
 * Exports the data dir's data set. Takes the data dir's lock, so no run or forget changes it
 * meanwhile; a face on the removal list is never written.
 */
export async function runExport(options: ExportOptions): Promise<ExportResult> {
  checkOptions(options);
  const started = performance.now();
  const paths = dataPaths(options.dataDir);
  const out = await prepareOut(options);
  const lock = await DataDirLock.acquire(paths.lock);
  try {
    const manifest = await Manifest.open(paths.manifest);
    const removed = await RemovedList.open(paths.removed);
    const rows = manifest.rows();
    const header: RecordHeader = {
      facefield_export: 1,
      created_at: new Date().toISOString(),
      data_dir: resolve(options.dataDir),
      format: options.format,
      what: options.what ?? "crops",
      removal_list: { entries: removed.size, sha256: sha256Hex(removed.csv()) },
    };
    const record = await out.createNew(EXPORT_RECORD);
    const result: ExportResult = {
      out: out.root,
      exported: 0,
      layouts: [],
      excluded: {},
      seconds: 0,
    };
    try {
      await writeLine(record, header);
      const context = await datasheetContext(paths);
      const layouts = options.folds
        ? foldsOf(rows).map((fold) => ({
          dir: `fold-${fold}`,
          split: { kind: "fold", fold } as const,
        }))
        : [{ dir: "", split: options.split ?? { kind: "manifest" } as const }];
      if (layouts.length === 0) {
        throw new ExportRefused("--folds: the run that made this data dir did not use --folds");
      }
      const total = { done: 0, all: 0 };
      for (const layout of layouts) {
        const layoutResult = await exportLayout(layout, rows, removed, out, record, options, total);
        result.layouts.push(layoutResult.summary);
        result.exported += layoutResult.records.length;
        for (const [reason, n] of Object.entries(layoutResult.excluded)) {
          result.excluded[reason] = (result.excluded[reason] ?? 0) + n;
        }
        const sheet = rel(layout.dir, DATASHEET);
        await out.writeNew(
          sheet,
          datasheetMarkdown({
            subject: `an export (${options.format}) of ${paths.root}`,
            records: layoutResult.records,
            manifestRows: rows,
            excluded: layoutResult.excluded,
            ...context,
            distribution: distributionOf(options, layout.dir),
          }),
        );
        await writeLine(record, { datasheets: [sheet] });
      }
    } finally {
      record.close();
    }
    result.seconds = (performance.now() - started) / 1000;
    return result;
  } finally {
    lock.releaseSync();
  }
}

function distributionOf(options: ExportOptions, dir: string): Record<string, string | number> {
  return {
    format: options.format,
    images: options.what ?? "crops",
    size: options.size ? `${options.size} px` : "as stored",
    layout: dir || "OUT",
    split: options.folds
      ? `fold ${dir.replace("fold-", "")} is the test set`
      : options.split?.kind === "fold"
      ? `fold ${options.split.fold} is the test set`
      : "the run's split",
    "min score": options.minScore ?? 0,
    categories: options.categories?.join(", ") ?? "all",
    embeddings: options.embeddings ? "yes" : "no",
    "removal record": `${EXPORT_RECORD} (check with: deno task export --check OUT)`,
  };
}

async function writeLine(file: Deno.FsFile, value: unknown): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(value) + "\n");
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/** One layout: select, stream each face through the format's writer, note where it went. */
async function exportLayout(
  layout: { dir: string; split: SplitChoice },
  rows: ManifestRow[],
  removed: RemovedList,
  out: OutDir,
  record: Deno.FsFile,
  options: ExportOptions,
  total: { done: number; all: number },
) {
  const { records, excluded } = selectRecords(rows, removed, { ...options, split: layout.split });
  total.all += records.length;
  const what = options.what ?? "crops";
  const context: FormatContext = {
    what,
    embeddings: options.embeddings ?? false,
    shardSize: options.shardSize ?? 256 * 2 ** 20,
  };
  const writer = WRITERS[options.format](out, layout.dir, context);
  const loader = new RecordLoader(dataPaths(options.dataDir), {
    what,
    size: options.size,
    embeddings: context.embeddings,
  });
  const written: { row: ManifestRow; split: string }[] = [];
  const summary: LayoutResult = { dir: layout.dir, bySplit: {}, byCategory: {} };
  try {
    for await (const item of aheadMap(records, (r) => loader.load(r), options.readAhead ?? 8)) {
      total.done++;
      if ("missing" in item) {
        excluded[item.missing] = (excluded[item.missing] ?? 0) + 1;
      } else {
        const places = await writer.add(item);
        await writeLine(
          record,
          {
            id: item.row.id,
            sha256: item.row.sha256,
            name_hash: nameHash(item.row.name),
            places,
          } satisfies RecordLine,
        );
        written.push({ row: item.row, split: item.split });
        summary.bySplit[item.split] = (summary.bySplit[item.split] ?? 0) + 1;
        summary.byCategory[item.row.category] = (summary.byCategory[item.row.category] ?? 0) + 1;
      }
      options.onProgress?.(total.done, total.all);
    }
  } finally {
    await writer.close();
  }
  return { records: written, excluded, summary };
}

export interface CheckResult {
  dataDir: string;
  createdAt: string;
  /** The removal list's entries when the export was made, and now. */
  entries: { then: number; now: number };
  /** Faces in the copy whom the removal list now names, with where they are. */
  mustDelete: { id: string; places: string[] }[];
}

/**
 * Which faces of an export the data dir's removal list now names (after a later forget), and
 * the files (or `file#row`, `shard#key`) that hold them.
 */
export async function checkExport(outDir: string, dataDir?: string): Promise<CheckResult> {
  const out = new OutDir(resolve(outDir));
  let header: RecordHeader | undefined;
  let removed: RemovedList | undefined;
  const mustDelete: CheckResult["mustDelete"] = [];
  try {
    for await (const line of readLines(out.path(EXPORT_RECORD))) {
      const parsed = JSON.parse(line);
      if (!header) {
        if (parsed.facefield_export !== 1) {
          throw new ExportRefused(`${EXPORT_RECORD} in '${outDir}' has no export header`);
        }
        header = parsed as RecordHeader;
        const paths = dataPaths(dataDir ?? header.data_dir);
        if (!(await hasRecords(paths.root))) {
          throw new ExportRefused(
            `the data dir '${paths.root}' the export came from has no manifest now: ` +
              `pass the data dir with --data DIR`,
          );
        }
        removed = await RemovedList.open(paths.removed);
        continue;
      }
      const face = parsed as Partial<RecordLine>;
      if (!face.id || !face.places) continue;
      if (
        removed!.matches({ id: face.id, sha256: face.sha256 || undefined }) ||
        (face.name_hash !== undefined && removed!.hasNameHash(face.name_hash))
      ) {
        mustDelete.push({ id: face.id, places: face.places });
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ExportRefused(`'${outDir}' has no ${EXPORT_RECORD}: it is not a facefield export`);
    }
    throw error;
  }
  if (!header) throw new ExportRefused(`${EXPORT_RECORD} in '${outDir}' is empty`);
  return {
    dataDir: dataDir ?? header.data_dir,
    createdAt: header.created_at,
    entries: { then: header.removal_list.entries, now: removed!.size },
    mustDelete,
  };
}
