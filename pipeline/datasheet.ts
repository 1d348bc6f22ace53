/**
 * The datasheet's inputs from a data dir: the manifest (through its API), the page log, the
 * removal list's size, the last run's settings and the report's demographic estimate. A run
 * writes `<data dir>/DATASHEET.md` at its end; an export writes one for what it exported.
 */
import { join } from "node:path";
import { writeFileAtomic } from "../core/files.ts";
import type { Manifest, ManifestRow } from "../store/manifest.ts";
import { PageLog } from "../store/page_log.ts";
import { type DataPaths, REPORT_FILES } from "../store/paths.ts";
import { RemovedList } from "../store/removed.ts";
import {
  type DatasheetInput,
  datasheetMarkdown,
  type DemographicEstimate,
  type RunSettings,
} from "../report/datasheet.ts";
import { userAgentFor } from "../net/http.ts";
import type { ResolvedPipelineOptions } from "./options.ts";

export type { RunSettings };

/** The faces a data dir's data set holds: ok rows with a split, each in its own split. */
export function datasetRecords(rows: Iterable<ManifestRow>): { row: ManifestRow; split: string }[] {
  const records: { row: ManifestRow; split: string }[] = [];
  for (const row of rows) {
    if (row.status === "ok" && row.split && row.sha256) records.push({ row, split: row.split });
  }
  return records;
}

/** What a run's options say for the datasheet. */
export function runSettingsOf(options: ResolvedPipelineOptions): RunSettings {
  return {
    detector: options.detector,
    size: options.size,
    facePercent: options.facePercent,
    align: true,
    ratios: options.ratios,
    folds: options.folds ?? null,
    seed: options.seed,
    userAgent: userAgentFor(options.contact),
    contactGiven: Boolean(options.contact?.trim()),
    sources: options.images !== undefined
      ? `the image list ${options.images}`
      : options.sources ?? "the embedded demo",
    ...(options.roles
      ? {
        roles: [...options.roles.keep, ...options.roles.drop.map((r) => `!${r.trim()}`)]
          .map((r) => r.trim()).join(","),
      }
      : {}),
    finishedAt: new Date().toISOString(),
  };
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof SyntaxError) return undefined;
    throw error;
  }
}

/** Faces per stratum from the report's checks (the first model's strata), when it has them. */
async function demographicEstimate(paths: DataPaths): Promise<DemographicEstimate | undefined> {
  const metrics = await readJson<{
    checks?: {
      demographics?: {
        estimatedBy: string;
        n: number;
        strata: Record<string, { stratum: string; n: number }[]>;
      };
    };
  }>(join(paths.reports, REPORT_FILES.metrics));
  const demographics = metrics?.checks?.demographics;
  const strata = demographics ? Object.values(demographics.strata)[0] : undefined;
  if (!demographics || !strata) return undefined;
  return {
    estimatedBy: demographics.estimatedBy,
    n: demographics.n,
    strata: strata.map(({ stratum, n }) => ({ stratum, n })),
  };
}

/** What every datasheet of the data dir shares: pages, removal list, settings, demographics. */
export async function datasheetContext(
  paths: DataPaths,
): Promise<Pick<DatasheetInput, "pages" | "removalEntries" | "settings" | "demographics">> {
  const settings = await readJson<RunSettings>(paths.runSettings);
  const demographics = await demographicEstimate(paths);
  return {
    pages: (await PageLog.open(paths.pages)).rows(),
    removalEntries: (await RemovedList.open(paths.removed)).size,
    ...(settings ? { settings } : {}),
    ...(demographics ? { demographics } : {}),
  };
}

/** Writes `<data dir>/DATASHEET.md` (and, from a run, its settings) from the manifest. */
export async function writeDataDirDatasheet(
  paths: DataPaths,
  manifest: Manifest,
  settings?: RunSettings,
): Promise<string> {
  if (settings) await writeFileAtomic(paths.runSettings, JSON.stringify(settings, null, 2) + "\n");
  // Whole rows only for the data set's records; the rest as status and reason (at 100,000
  // records, every whole row held at once was the run's end's collector pause).
  const records: { row: ManifestRow; split: string }[] = [];
  for await (const row of manifest.eachRow()) records.push(...datasetRecords([row]));
  const text = datasheetMarkdown({
    subject: `the data dir ${paths.root}`,
    records,
    manifestRows: await manifest.statusRows(),
    ...await datasheetContext(paths),
  });
  await writeFileAtomic(paths.datasheet, text);
  return paths.datasheet;
}
