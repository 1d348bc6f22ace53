/**
 * Test faces whose signal a test plants: `count` faces alternating between classes `a` and `b`,
 * each its own person, one in five in `test` and one in seven of the rest in `val` unless
 * `split` says otherwise. `make` gives each face's descriptor and embeddings from its label.
 */
import { FaceStore } from "../models/dataset.ts";
import type { SplitName } from "../core/types.ts";

export interface PlantedFace {
  descriptor?: Float32Array;
  embeddings?: Record<string, Float32Array>;
}

export function plantedStore(
  count: number,
  make: (label: 0 | 1) => PlantedFace,
  split: (i: number) => SplitName = (i) => i % 5 === 0 ? "test" : i % 7 === 0 ? "val" : "train",
): FaceStore {
  const store = new FaceStore({ crops: false });
  for (let i = 0; i < count; i++) {
    const label = (i % 2) as 0 | 1;
    const { descriptor = new Float32Array(128), embeddings } = make(label);
    store.addStored({
      id: `f${i}`,
      category: label ? "b" : "a",
      split: split(i),
      fold: null,
      identity: `f${i}`,
      crop: new Uint8Array(0),
      descriptor,
      embeddings,
      source: "",
    });
  }
  return store;
}
