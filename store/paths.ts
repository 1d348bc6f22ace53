import { join } from "node:path";

/** Where a run keeps its state under the data dir. One place, so `forget` can find it all. */
export interface DataPaths {
  root: string;
  manifest: string;
  pages: string;
  removed: string;
  lock: string;
  imageCache: string;
  faceCache: string;
  /** Small previews made by `deno task serve`, by image sha256; forget removes them too. */
  thumbnails: string;
  models: string;
  reports: string;
  /** The latest run's progress as JSON lines (start, epochs, end): counts only, no personal data. */
  runEvents: string;
}

export function dataPaths(root: string): DataPaths {
  return {
    root,
    manifest: join(root, "index.csv"),
    pages: join(root, "pages.csv"),
    removed: join(root, "removed.csv"),
    lock: join(root, ".lock"),
    imageCache: join(root, "cache", "images"),
    faceCache: join(root, "cache", "faces"),
    thumbnails: join(root, "cache", "thumbnails"),
    models: join(root, "models"),
    reports: join(root, "report"),
    runEvents: join(root, "run_events.jsonl"),
  };
}

/** Path of a content-addressed blob: `<dir>/ab/abcdef…`. */
export function blobPath(dir: string, sha256: string, extension = ""): string {
  return join(dir, sha256.slice(0, 2), sha256 + extension);
}
