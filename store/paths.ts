import { join } from "node:path";

/** Where a run keeps its state under the data dir. One place, so `forget` can find it all. */
export interface DataPaths {
  root: string;
  /** The data dir's state (records, pages, HTTP validators, removals): store/state_db.ts. */
  state: string;
  /** The manifest as CSV, written from state.db at the end of each stage and of a run. */
  manifest: string;
  pages: string;
  removed: string;
  lock: string;
  /** Every cache below: content-addressed blobs and validators, all written by rename. */
  cache: string;
  imageCache: string;
  /** Page bodies by sha256, for a 304 to reuse. */
  pageCache: string;
  /** Validators (ETag, Last-Modified) of pages and images, by URL. */
  httpCache: string;
  faceCache: string;
  /** Small previews made by `deno task serve`, by image sha256; forget removes them too. */
  thumbnails: string;
  models: string;
  reports: string;
  /** The latest run's progress as JSON lines (start, epochs, end): counts only, no personal data. */
  runEvents: string;
  /**
   * Data dirs of a repeated benchmark's other partitions (`repeats/seed-<N>/`), each a whole
   * data dir; `forget` reaches into them.
   */
  repeats: string;
  /** The datasheet every run writes (report/datasheet.ts): counts only, no names. */
  datasheet: string;
  /** The last run's settings, for the datasheets of the data dir and its exports. */
  runSettings: string;
}

export function dataPaths(root: string): DataPaths {
  return {
    root,
    state: join(root, "state.db"),
    manifest: join(root, "index.csv"),
    pages: join(root, "pages.csv"),
    removed: join(root, "removed.csv"),
    lock: join(root, ".lock"),
    cache: join(root, "cache"),
    imageCache: join(root, "cache", "images"),
    pageCache: join(root, "cache", "pages"),
    httpCache: join(root, "cache", "http.csv"),
    faceCache: join(root, "cache", "faces"),
    thumbnails: join(root, "cache", "thumbnails"),
    models: join(root, "models"),
    reports: join(root, "report"),
    runEvents: join(root, "run_events.jsonl"),
    repeats: join(root, "repeats"),
    datasheet: join(root, "DATASHEET.md"),
    runSettings: join(root, "run_settings.json"),
  };
}

/** Path of a content-addressed blob: `<dir>/ab/abcdef…`. */
export function blobPath(dir: string, sha256: string, extension = ""): string {
  return join(dir, sha256.slice(0, 2), sha256 + extension);
}

/** Files facefield writes inside a model's folder, beside the model format's own files. */
export const MODEL_FILES = {
  /** The record ids a model was trained on, so `forget` finds the models that saw a person. */
  trainingIds: "training_ids.json",
} as const;

/** The report folder's main files. */
export const REPORT_FILES = {
  html: "report.html",
  metrics: "metrics.json",
} as const;

/** The report's folder of per-face occlusion maps, `<id>.json` each; `forget` removes a person's. */
export const OCCLUSION_DIR = "occlusion";

/** Path of one face's occlusion map under a report folder. */
export function occlusionMapPath(reports: string, id: string): string {
  return join(reports, OCCLUSION_DIR, `${id}.json`);
}

/** Whether `root` holds a data dir's records: its state.db, or an index.csv not yet migrated. */
export async function hasRecords(root: string): Promise<boolean> {
  const paths = dataPaths(root);
  for (const path of [paths.state, paths.manifest]) {
    try {
      if ((await Deno.stat(path)).isFile) return true;
    } catch {
      // Absent: try the next.
    }
  }
  return false;
}
