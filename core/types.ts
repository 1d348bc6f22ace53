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
}

/** A staff page as fetched, after redirects. */
export interface FetchedPage {
  source: SourceRow;
  /** Final URL after redirects: relative image URLs resolve against it (and its `<base>`). */
  url: string;
  html: string;
  /** 0 for the source's own page, n for the n-th pagination step. */
  pageIndex: number;
}

/** A person found on a page: the seed study's columns plus provenance. */
export interface PersonRecord {
  /** 8 hex chars, stable: see `personId()`. */
  id: string;
  category: string;
  imageUrl: string;
  /** As the page shows it, academic titles included. */
  name: string;
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

/** A record that left the stream, with the stage and a specific reason. */
export interface Dropped {
  status: "failed" | "rejected";
  stage: StageName;
  /** Short machine-readable code first, detail after a colon: `http_404: GET …`. */
  reason: string;
  record: PersonRecord & Partial<FaceRecord & SplitRecord>;
}

export type Outcome<T> = { status: "ok"; record: T } | Dropped;

export function ok<T>(record: T): Outcome<T> {
  return { status: "ok", record };
}

export function isOk<T>(outcome: Outcome<T>): outcome is { status: "ok"; record: T } {
  return outcome.status === "ok";
}
