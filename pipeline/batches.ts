/**
 * The one bridge from the RxJS stream of split faces to the dataset (models/dataset.ts).
 */
import { lastValueFrom, mergeMap, type Observable, reduce } from "rxjs";
import type { SplitRecord } from "../core/types.ts";
import { FaceStore, FaceStoreOptions } from "../models/dataset.ts";

export interface CollectOptions extends FaceStoreOptions {
  /**
   * Crops decoded at once.
   * @default 4
   */
  concurrency?: number;
}

/**
 * Drains a stream of split faces into a FaceStore (decoding crops as they arrive).
 *
 * @example
 * ```ts
 * const store = await collectFaces(splitFaces$, { crops: { size: 64, channels: 1 } });
 * const train = store.dataset({ filter: { split: "train" }, preprocessing, shuffle: true });
 * ```
 */
export async function collectFaces(
  records: Observable<SplitRecord>,
  options: CollectOptions = {},
): Promise<FaceStore> {
  const { concurrency = 4, ...storeOptions } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`'concurrency' must be a positive integer: got ${concurrency}`);
  }
  const store = new FaceStore(storeOptions);
  return await lastValueFrom(
    records.pipe(
      mergeMap((record) => store.add(record), concurrency),
      reduce(() => store, store),
    ),
  );
}
