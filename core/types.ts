/** Record types that flow through the stream, one per stage boundary. */

/** One row of a sources CSV: a staff page and the group its people belong to. */
export interface SourceRow {
  /** 1-based line number in the sources file, for error messages. */
  line: number;
  url: string;
  category: string;
  personSelector?: string;
  nameSelector?: string;
  imageSelector?: string;
  nextSelector?: string;
  /** How the page is read: `http` as served, `browser` rendered, `auto` rendered when needed. */
  render?: RenderMode;
  /** Hosts besides the page's own that its scripts may load from in the browser (`*`: any). */
  allowHosts?: string[];
}

export type RenderMode = "auto" | "http" | "browser";

/** A staff page as fetched, after redirects. */
export interface FetchedPage {
  source: SourceRow;
  /** Final URL after redirects: relative image URLs resolve against it (and its `<base>`). */
  url: string;
  html: string;
  /** 0 for the source's own page, n for the n-th pagination step. */
  pageIndex: number;
  /** `browser` when `html` is the DOM as Chromium rendered it, else the page as served. */
  renderedBy?: "http" | "browser";
}

/** A person found on a page: the seed study's columns plus provenance. */
export interface PersonRecord {
  /** 16 hex chars (8 in a data dir not yet migrated), stable: see `personId()`. */
  id: string;
  category: string;
  imageUrl: string;
  /** As the page shows it, academic titles included; a trailing term or role is cut off. */
  name: string;
  /** The role or term the page gives with the name ("PhD Student", "Secretary", "FA21-"). */
  role?: string;
  pageUrl: string;
}

/** A portrait whose bytes were downloaded, validated and stored by content. */
export interface ImageRecord extends PersonRecord {
  sha256: string;
  /** Path of the raw bytes in the content-addressed cache. */
  imagePath: string;
  format: string;
  width: number;
  height: number;
  bytes: number;
}

/** A decoded image: `width`×`height` RGB pixels, row by row, 3 bytes a pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A portrait with one accepted, aligned face crop. */
export interface FaceRecord extends ImageRecord {
  /** PNG crop, `size`×`size`, in the face cache. */
  cropPath: string;
  faceBox: Box;
  faceScore: number;
  faceCount: number;
  /** Degrees the image was rotated to level the eyes. */
  faceAngle: number;
  /** 128-d face descriptor from face-api's recognition net. */
  descriptor: number[];
  /** Embeddings of the stronger shipped face networks the run asked for, by network name. */
  embeddings?: Record<string, number[]>;
  detector: string;
}

export type SplitName = "train" | "val" | "test";

/** A face with its place in the dataset split. */
export interface SplitRecord extends FaceRecord {
  split: SplitName;
  /** Cross-validation fold (0-based) with `--folds k`, else null. */
  fold: number | null;
  /** Id of the first record judged to be the same person (itself when first seen). */
  identity: string;
}

export type StageName = "sources" | "pages" | "people" | "images" | "faces" | "split";

/** What a dropped person record still knows: who, and whatever stages it passed. */
export type DroppedPerson = PersonRecord & Partial<FaceRecord & SplitRecord>;

/**
 * Something that left the stream, with the stage and a specific reason. `R` is what the stage
 * was working on: a person record for the record stages, a source row or a page for the crawl.
 */
export interface Dropped<R = DroppedPerson> {
  status: "failed" | "rejected";
  stage: StageName;
  /** Short machine-readable code first, detail after a colon: `http_404: GET …`. */
  reason: string;
  record: R;
}

/**
 * The one result shape between stages: ok with the record, or dropped with a reason. Per-item
 * failures are data that flows on and gets counted; only programming errors throw.
 */
export type Outcome<T, R = DroppedPerson> = { status: "ok"; record: T } | Dropped<R>;

export function ok<T, R = DroppedPerson>(record: T): Outcome<T, R> {
  return { status: "ok", record };
}

export function isOk<T, R>(outcome: Outcome<T, R>): outcome is { status: "ok"; record: T } {
  return outcome.status === "ok";
}

/** A dropped outcome, for stages that build one by hand. */
export function dropped<R>(
  stage: StageName,
  status: Dropped["status"],
  reason: string,
  record: R,
): Dropped<R> {
  return { status, stage, reason, record };
}
