/**
 * The split stage: gives each face its place in the dataset (train/val/test, and a
 * cross-validation fold with `folds`) as it arrives, stratified per category, stable across
 * reruns and identity-safe (one person never lands in two splits).
 */
import { defer, map, mergeMap, type OperatorFunction, toArray } from "rxjs";
import { sha256Hex } from "../core/ids.ts";
import type { FaceRecord, Outcome, SplitName, SplitRecord } from "../core/types.ts";
import { ok } from "../core/types.ts";
import { DEFAULT_IDENTITY_THRESHOLD, largestDeficit, SPLIT_NAMES } from "../core/split_rules.ts";

/** An assignment from an earlier run (manifest row, descriptor from the face cache). */
export interface PreviousAssignment {
  id: string;
  sha256: string;
  category: string;
  split: SplitName;
  fold: number | null;
  identity: string;
  descriptor?: ArrayLike<number>;
}

export interface SplitOptions {
  /**
   * Shares of train, validation and test; they must sum to 1.
   * @default {train: 0.7, val: 0.1, test: 0.2}
   */
  ratios?: { train: number; val: number; test: number };
  /**
   * k for k-fold cross-validation: each record also gets a fold 0..k-1, stratified per
   * category. The split is then stratified within each (category, fold) cell, so at train
   * time with test fold f: test = fold f, val = the other folds' `val` records, train = the
   * rest (see `foldRole`). Without it, `fold` is null.
   * @default undefined (no folds)
   */
  folds?: number;
  /**
   * Euclidean descriptor distance under which two faces are the same person.
   * See `DEFAULT_IDENTITY_THRESHOLD` for why 0.5.
   * @default 0.5
   */
  identityThreshold?: number;
  /** Assignments from earlier runs; they win over new ones, so reruns are stable. */
  previous?: Iterable<PreviousAssignment>;
  /**
   * Salt for the tie-break hash, so a different seed gives a different but stable split.
   * @default "facefield"
   */
  seed?: string;
}

interface Identity {
  identity: string;
  split: SplitName;
  fold: number | null;
}

function checkOptions(options: SplitOptions) {
  const {
    ratios = { train: 0.7, val: 0.1, test: 0.2 },
    folds,
    identityThreshold = DEFAULT_IDENTITY_THRESHOLD,
    previous = [],
    seed = "facefield",
  } = options;
  const shares = SPLIT_NAMES.map((name) => ratios[name]);
  if (shares.some((share) => !Number.isFinite(share) || share < 0)) {
    throw new RangeError(
      `Cannot split as 'ratios' must be finite and non-negative: got ${JSON.stringify(ratios)}`,
    );
  }
  const sum = shares.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) {
    throw new RangeError(`Cannot split as 'ratios' must sum to 1: they sum to ${sum}`);
  }
  if (folds !== undefined && (!Number.isInteger(folds) || folds < 2)) {
    throw new RangeError(`Cannot split as 'folds' must be an integer of 2 or more: got ${folds}`);
  }
  if (!Number.isFinite(identityThreshold) || identityThreshold < 0) {
    throw new RangeError(
      `Cannot split as 'identityThreshold' must be a non-negative distance: got ${identityThreshold}`,
    );
  }
  return { shares, folds, identityThreshold, previous: [...previous], seed };
}

/**
 * The faces of a run in an order fixed by the seed, whatever order they arrived in: by the
 * sha256 of the seed and the image's content hash, ascending. The split is assigned in arrival order, and arrival
 * follows the crawl's and the face stage's timing, so without this a fresh data dir got another
 * partition for the same faces and seed (on congress dev only 91 of 200 faces kept their fold
 * between two runs). It waits for the last face: the split comes after the face stage, which
 * training waits for anyway, and earlier runs' assignments still never move.
 *
 * @example
 * ```ts
 * faces$.pipe(inSeedOrder("42"), assignSplit({ folds: 5, seed: "42" }))
 * ```
 */
export function inSeedOrder<T extends { id: string; sha256?: string }>(
  seed: string,
): OperatorFunction<T, T> {
  return (source) =>
    source.pipe(
      toArray(),
      mergeMap((records) => {
        const keyed = records.map((record) => ({
          record,
          key: sha256Hex(`${seed}\n${tieKeyOf(record)}`),
        }));
        // One image under two ids (two people, one portrait) is one person: either order.
        const order = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0;
        keyed.sort((a, b) => order(a.key, b.key) || order(a.record.id, b.record.id));
        return keyed.map(({ record }) => record);
      }),
    );
}

/**
 * What orders a face and breaks its ties: the image's content hash, which a loopback bench site
 * on another port leaves as it is (a record id holds the image URL), else the id.
 */
function tieKeyOf(record: { id: string; sha256?: string }): string {
  return record.sha256 || record.id;
}

/**
 * Assigns each face a split (and fold), online, as faces stream in.
 *
 * - stratified: per category (and per fold with `folds`), the record goes to the split
 *   furthest below its share, so every prefix of the stream is within one item of the ratios;
 * - stable: a record id seen before (in `previous` or earlier in the stream) keeps its place,
 *   and earlier assignments count towards the shares, so new records never move old ones;
 * - identity-safe: a face with the sha256 of an earlier face, or a descriptor within
 *   `identityThreshold` of one, is the same person and takes that person's split and fold,
 *   even across categories and even if that nudges the stratification.
 *
 * @example
 * ```ts
 * faces$.pipe(filter(isOk), map((o) => o.record), assignSplit({ folds: 5 }))
 * ```
 */
export function assignSplit(options: SplitOptions = {}): OperatorFunction<
  FaceRecord,
  Outcome<SplitRecord>
> {
  const settings = checkOptions(options);
  return (source) =>
    defer(() => {
      const planner = new SplitPlanner(settings);
      for (const entry of settings.previous) planner.keep(entry);
      return source.pipe(map((face): Outcome<SplitRecord> => {
        const { identity, split, fold } = planner.place(face);
        return ok({ ...face, split, fold, identity });
      }));
    });
}

/**
 * The split's state for one pass of the stream: counts per category, fold and split, every
 * person seen (by sha256 and by descriptor), and where each record went.
 */
class SplitPlanner {
  readonly #shares: number[];
  readonly #folds: number | undefined;
  readonly #foldShares: number[];
  readonly #threshold: number;
  readonly #seed: string;
  readonly #bySha = new Map<string, Identity>();
  readonly #descriptors: { vector: Float32Array; identity: Identity }[] = [];
  /** category → fold cell → split counts; category → fold counts. */
  readonly #splitCounts = new Map<string, number[][]>();
  readonly #foldCounts = new Map<string, number[]>();
  /** One entry per person: the split and fold every face of theirs gets. */
  readonly #people = new Map<string, Identity>();
  /** One entry per record id: where it went. */
  readonly #placed = new Map<string, Identity>();
  /** Record ids whose descriptor is already in `#descriptors`. */
  readonly #described = new Set<string>();

  constructor(settings: ReturnType<typeof checkOptions>) {
    this.#shares = settings.shares;
    this.#folds = settings.folds;
    this.#threshold = settings.identityThreshold;
    this.#seed = settings.seed;
    const folds = settings.folds;
    this.#foldShares = folds === undefined ? [1] : Array.from({ length: folds }, () => 1 / folds);
  }

  #cellsOf(category: string) {
    let cells = this.#splitCounts.get(category);
    if (!cells) {
      cells = this.#foldShares.map(() => SPLIT_NAMES.map(() => 0));
      this.#splitCounts.set(category, cells);
      this.#foldCounts.set(category, this.#foldShares.map(() => 0));
    }
    return { cells, foldCount: this.#foldCounts.get(category)! };
  }

  #count(category: string, split: SplitName, fold: number | null) {
    const { cells, foldCount } = this.#cellsOf(category);
    const cell = fold ?? 0;
    cells[cell]![SPLIT_NAMES.indexOf(split)]! += 1;
    foldCount[cell]! += 1;
  }

  #remember(identity: Identity, sha256: string, descriptor: ArrayLike<number> | undefined) {
    if (sha256 && !this.#bySha.has(sha256)) this.#bySha.set(sha256, identity);
    if (descriptor && descriptor.length > 0) {
      this.#descriptors.push({ vector: Float32Array.from(descriptor), identity });
    }
  }

  /** The person whose descriptor lies nearest, within the identity threshold. */
  #nearest(descriptor: ArrayLike<number>): Identity | undefined {
    let best: Identity | undefined;
    let bestSquared = this.#threshold * this.#threshold;
    for (const { vector, identity } of this.#descriptors) {
      if (vector.length !== descriptor.length) continue;
      let squared = 0;
      for (let i = 0; i < vector.length && squared < bestSquared; i++) {
        const d = vector[i]! - descriptor[i]!;
        squared += d * d;
      }
      if (squared < bestSquared) {
        bestSquared = squared;
        best = identity;
      }
    }
    return best;
  }

  #validFold(fold: number | null) {
    const folds = this.#folds;
    return folds === undefined ? null : fold !== null && fold >= 0 && fold < folds ? fold : null;
  }

  #pickFold(category: string, id: string) {
    return this.#folds === undefined ? null : largestDeficit(
      this.#cellsOf(category).foldCount,
      this.#foldShares,
      (i) => `${this.#seed}\n${id}\n${i}`,
    );
  }

  #withFold(person: Identity, face: FaceRecord) {
    if (this.#folds !== undefined && person.fold === null) {
      person.fold = this.#pickFold(face.category, tieKeyOf(face));
    }
    return person;
  }

  /** Keeps an earlier run's assignment: it never moves. */
  keep(entry: PreviousAssignment): void {
    const placement: Identity = {
      identity: entry.identity || entry.id,
      split: entry.split,
      fold: this.#validFold(entry.fold),
    };
    this.#placed.set(entry.id, placement);
    let person = this.#people.get(placement.identity);
    if (!person) {
      person = { ...placement };
      this.#people.set(person.identity, person);
    }
    // A record without a fold (earlier run had none) is counted when it arrives again.
    if (this.#folds === undefined || placement.fold !== null) {
      this.#count(entry.category, placement.split, placement.fold);
    }
    this.#remember(person, entry.sha256, entry.descriptor);
    if (entry.descriptor?.length) this.#described.add(entry.id);
  }

  /** Where a face goes: its earlier place, its person's place, or the largest deficit. */
  place(face: FaceRecord): Identity {
    const known = this.#placed.get(face.id);
    if (known) return this.#placeKnown(known, face);
    const same = (face.sha256 ? this.#bySha.get(face.sha256) : undefined) ??
      (face.descriptor?.length ? this.#nearest(face.descriptor) : undefined);
    let person: Identity;
    if (same) {
      person = this.#withFold(same, face);
    } else {
      const fold = this.#pickFold(face.category, tieKeyOf(face));
      const cell = this.#cellsOf(face.category).cells[fold ?? 0]!;
      const split = SPLIT_NAMES[
        largestDeficit(
          cell,
          this.#shares,
          (i) => `${this.#seed}\n${tieKeyOf(face)}\n${SPLIT_NAMES[i]}`,
        )
      ]!;
      person = { identity: face.id, split, fold };
      this.#people.set(person.identity, person);
    }
    const placement = { ...person };
    this.#placed.set(face.id, placement);
    this.#count(face.category, placement.split, placement.fold);
    this.#remember(person, face.sha256, face.descriptor);
    this.#described.add(face.id);
    return placement;
  }

  #placeKnown(known: Identity, face: FaceRecord): Identity {
    const person = this.#people.get(known.identity) ?? known;
    if (this.#folds !== undefined && known.fold === null) {
      known.fold = this.#withFold(person, face).fold;
      this.#count(face.category, known.split, known.fold);
    }
    // The manifest keeps no descriptors: learn them as earlier records come round again.
    if (!this.#described.has(face.id)) this.#remember(person, face.sha256, face.descriptor);
    this.#described.add(face.id);
    return known;
  }
}
