/** The split's rules, shared by the split stage and the dataset: names, folds, shares. */
import { sha256Hex } from "./ids.ts";
import type { SplitName } from "./types.ts";

export const SPLIT_NAMES: readonly SplitName[] = ["train", "val", "test"];

/**
 * Default identity threshold on the euclidean distance between two 128-d face descriptors.
 *
 * face-api's FaceMatcher (and dlib, whose ResNet face net face-api ports) uses 0.6 for "same
 * person" (99.38 % pair accuracy on LFW), but LFW's impostor pairs are random strangers, and
 * here one new face is compared with *every* earlier face. Measured with our face stage on the
 * congress dev set (200 distinct people, 19,900 impostor pairs): at 0.6, 0.91 % of impostor
 * pairs match and 60 % of people have some other person within 0.6, so the split would merge
 * strangers wholesale; at 0.5, one pair (0.01 %, 1 % of people; closest impostor 0.419). Reuse
 * of a portrait is what we must catch: the same photo trimmed, shrunk to 80 % and re-encoded
 * as JPEG q60 lies at median 0.125, max 0.286; even its mirror image at max 0.299. Exact reuse
 * is caught by sha256 anyway. 0.5 keeps a wide margin on both sides.
 */
export const DEFAULT_IDENTITY_THRESHOLD = 0.5;

/** Where a record goes when fold `testFold` is the test fold (k-fold mode). */
export function foldRole(
  record: { split: SplitName; fold: number | null },
  testFold: number,
): SplitName {
  if (record.fold === null) {
    throw new RangeError(`Cannot place record by fold: it has no fold (split run without folds)`);
  }
  if (record.fold === testFold) return "test";
  return record.split === "val" ? "val" : "train";
}

/**
 * Index of the share whose count lies furthest below its target for one more item.
 * Keeps every prefix within one item of its shares; ties go to the highest seeded hash.
 */
export function largestDeficit(
  counts: readonly number[],
  shares: readonly number[],
  tieKey: (index: number) => string,
): number {
  const next = counts.reduce((a, b) => a + b, 0) + 1;
  let best = -1;
  let bestDeficit = -Infinity;
  let bestHash = "";
  for (let i = 0; i < shares.length; i++) {
    const deficit = (shares[i] ?? 0) * next - (counts[i] ?? 0);
    if (deficit > bestDeficit + 1e-9) {
      best = i;
      bestDeficit = deficit;
      bestHash = "";
    } else if (Math.abs(deficit - bestDeficit) <= 1e-9) {
      bestHash ||= sha256Hex(tieKey(best));
      const hash = sha256Hex(tieKey(i));
      if (hash > bestHash) {
        best = i;
        bestHash = hash;
      }
    }
  }
  return best;
}
