/**
 * `deno task export --format csv`: the data dir's manifest as CSV (index.csv's columns and
 * escaping), streamed from state.db, by default to the data dir's own index.csv.
 */
import { DataDirLock } from "../../store/lock.ts";
import { writeManifestCsv } from "../../store/manifest.ts";
import { dataPaths } from "../../store/paths.ts";
import { openStateDb } from "../../store/state_db.ts";
import { ExportRefused } from "./run.ts";

export interface ManifestCsvOptions {
  dataDir: string;
  /**
   * The CSV file to write.
   * @default the data dir's index.csv
   */
  out?: string;
  /** Replace `out` when it exists (the data dir's own index.csv is always replaced). */
  force?: boolean;
}

/** Writes the manifest's CSV under the data dir's lock; gives the file and its row count. */
export async function exportManifestCsv(
  options: ManifestCsvOptions,
): Promise<{ out: string; rows: number }> {
  const paths = dataPaths(options.dataDir);
  const out = options.out ?? paths.manifest;
  if (options.out !== undefined && !options.force) {
    const there = await Deno.stat(out).catch(() => undefined);
    if (there) throw new ExportRefused(`'${out}' exists: pass --force to replace it`);
  }
  const lock = await DataDirLock.acquire(paths.lock);
  const db = openStateDb(paths.state);
  try {
    writeManifestCsv(db, out);
    const { n } = db.prepare("SELECT count(*) AS n FROM records").get() as { n: number };
    return { out, rows: Number(n) };
  } finally {
    db.close();
    lock.releaseSync();
  }
}
