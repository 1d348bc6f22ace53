/**
 * The dataset of split faces as plain typed arrays (uint8 crops at the model's input size,
 * float32 descriptors); a tensor is born only when a batch is made, shuffled afresh each epoch
 * and augmented on the fly, so no crop is ever copied into per-split folders.
 */
import { tf } from "./engine.ts";
import {
  decodeCrop,
  decodeRgb,
  inputBatch,
  type Preprocessing,
  scaledPixels,
} from "./classifier.ts";
import { type AugmentOptions, augmentPixels, drawAugmentations, seededRandom } from "./augment.ts";
import { foldRole, SPLIT_NAMES } from "../core/split_rules.ts";
import type { RgbImage, SplitName, SplitRecord } from "../core/types.ts";

/** Which faces a dataset draws from: a split, or a role under k-fold with a test fold. */
export type FaceFilter =
  | { split: SplitName | readonly SplitName[] }
  | { testFold: number; role: SplitName };

/** One face as the store keeps it. */
export interface StoredFace {
  id: string;
  category: string;
  split: SplitName;
  fold: number | null;
  identity: string;
  /** size×size×channels bytes, or empty when the store keeps no crops. */
  crop: Uint8Array;
  /**
   * The crop at its own size, decoded once for the run: evaluation, the face cues and the
   * report read it instead of decoding the PNG again. Absent for faces added already decoded.
   */
  image?: RgbImage;
  descriptor: Float32Array;
  /** The shipped face networks' embeddings the face stage computed, by network name. */
  embeddings?: Record<string, Float32Array>;
  /** Origin of the page the face came from (no path, nothing personal). */
  source: string;
}

export interface FaceStoreOptions {
  /**
   * Crop size and channels to decode to, or false to keep descriptors only (faster for the
   * embedding model).
   * @default { size: 64, channels: 1 }
   */
  crops?: { size: number; channels: 1 | 3 } | false;
}

export interface DatasetOptions {
  /** Which faces. */
  filter: FaceFilter;
  /** Crop pixels or descriptors, and how to scale them. */
  preprocessing: Preprocessing;
  /**
   * Class names in output order; faces of other classes are left out.
   * @default store.classes
   */
  classes?: readonly string[];
  /**
   * Faces per batch.
   * @default 32
   */
  batchSize?: number;
  /**
   * Reshuffle the faces at the start of every epoch.
   * @default false
   */
  shuffle?: boolean;
  /**
   * Seed of the per-epoch shuffle and augmentation draws.
   * @default 0
   */
  seed?: number;
  /**
   * Vary crop batches on the fly (ignored for descriptors); true for the default variations.
   * @default false
   */
  augment?: boolean | AugmentOptions;
}

/** The faces of a run in memory, and the datasets made from them. */
export class FaceStore {
  readonly faces: StoredFace[] = [];
  /** Faces left out because their crop could not be read, with the reason (ids only). */
  readonly skipped: { id: string; reason: string }[] = [];
  readonly #ids = new Set<string>();
  readonly crops: { size: number; channels: 1 | 3 } | false;

  constructor(options: FaceStoreOptions = {}) {
    const { crops = { size: 64, channels: 1 } } = options;
    if (crops && (!Number.isInteger(crops.size) || crops.size < 8)) {
      throw new RangeError(
        `Cannot keep crops as 'crops.size' must be an integer ≥ 8: got ${crops.size}`,
      );
    }
    this.crops = crops;
  }

  /**
   * Decodes and keeps one face. A record id seen before is ignored; a crop that cannot be
   * read (gone from the cache, corrupt) lands in `skipped` instead of failing the run.
   */
  async add(record: SplitRecord): Promise<void> {
    if (this.#ids.has(record.id)) return;
    this.#ids.add(record.id);
    let crop: Uint8Array = new Uint8Array(0);
    let image: RgbImage | undefined;
    if (this.crops) {
      try {
        image = await decodeRgb(record.cropPath);
        crop = await decodeCrop(image, this.crops.size, this.crops.channels);
      } catch (error) {
        this.skipped.push({
          id: record.id,
          reason: `crop_unreadable: ${(error as Error).message}`,
        });
        return;
      }
    }
    let source = "";
    try {
      source = new URL(record.pageUrl).origin;
    } catch { /* a page URL is not required to parse */ }
    this.faces.push({
      id: record.id,
      category: record.category,
      split: record.split,
      fold: record.fold,
      identity: record.identity,
      crop,
      image,
      descriptor: Float32Array.from(record.descriptor ?? []),
      embeddings: Object.fromEntries(
        Object.entries(record.embeddings ?? {}).map(([name, values]) => [
          name,
          Float32Array.from(values),
        ]),
      ),
      source,
    });
  }

  /**
   * Keeps a face that is already decoded (a synthetic bench, a test); a record id seen before
   * is ignored. The crop must match the store's crop size.
   */
  addStored(face: StoredFace): void {
    const expected = this.crops ? this.crops.size ** 2 * this.crops.channels : 0;
    if (face.crop.length !== expected) {
      throw new RangeError(
        `Cannot keep face ${face.id}: its crop has ${face.crop.length} bytes, the store keeps ${expected}`,
      );
    }
    if (this.#ids.has(face.id)) return;
    this.#ids.add(face.id);
    this.faces.push(face);
  }

  get size(): number {
    return this.faces.length;
  }

  /** Class names (categories), sorted, so a rerun gets the same output order. */
  get classes(): string[] {
    return [...new Set(this.faces.map((face) => face.category))].sort();
  }

  /** k when the faces carry folds 0..k-1, else null. */
  get folds(): number | null {
    let max = -1;
    for (const face of this.faces) {
      if (face.fold === null) return null;
      max = Math.max(max, face.fold);
    }
    return max < 0 ? null : max + 1;
  }

  /**
   * The faces a filter selects, ordered by id: crops decode concurrently, so arrival order
   * varies from run to run, and a seeded shuffle must start from the same order to repeat.
   */
  select(filter: FaceFilter): StoredFace[] {
    let selected: StoredFace[];
    if ("split" in filter) {
      const splits: readonly SplitName[] = typeof filter.split === "string"
        ? [filter.split]
        : filter.split;
      selected = this.faces.filter((face) => splits.includes(face.split));
    } else {
      selected = this.faces.filter((face) => foldRole(face, filter.testFold) === filter.role);
    }
    return selected.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Faces per split (or fold role) and class. */
  counts(testFold: number | null = null): Record<SplitName, Record<string, number>> {
    const counts = Object.fromEntries(SPLIT_NAMES.map((s) => [s, {}])) as Record<
      SplitName,
      Record<string, number>
    >;
    for (const face of this.faces) {
      const role = testFold === null ? face.split : foldRole(face, testFold);
      counts[role][face.category] = (counts[role][face.category] ?? 0) + 1;
    }
    return counts;
  }

  /** Distinct identities (people) and page origins. */
  provenance(): { identities: number; sources: string[] } {
    return {
      identities: new Set(this.faces.map((f) => f.identity)).size,
      sources: [...new Set(this.faces.map((f) => f.source).filter(Boolean))].sort(),
    };
  }

  /** The model input of one face under a preprocessing. */
  sample(face: StoredFace, preprocessing: Preprocessing): Uint8Array | Float32Array {
    if (preprocessing.input === "descriptor") {
      if (preprocessing.network === undefined) return face.descriptor;
      const embedding = face.embeddings?.[preprocessing.network];
      if (!embedding) {
        throw new RangeError(
          `face ${face.id} has no ${preprocessing.network} embedding: the face stage ran without it`,
        );
      }
      return embedding;
    }
    if (
      !this.crops || this.crops.size !== preprocessing.size ||
      this.crops.channels !== preprocessing.channels
    ) {
      throw new RangeError(
        `the store keeps ${
          this.crops ? `${this.crops.size}px×${this.crops.channels}` : "no"
        } crops; the model takes ${preprocessing.size}px×${preprocessing.channels}`,
      );
    }
    return face.crop;
  }

  /**
   * A dataset of `{xs, ys}` batches (ys one-hot over `classes`) made with
   * `tf.data.generator`: each epoch (each `iterator()`) reshuffles with its own seeded order
   * and draws fresh augmentations. The consumer owns and must dispose each batch.
   */
  dataset(options: DatasetOptions): tf.data.Dataset<{ xs: tf.Tensor; ys: tf.Tensor }> {
    const {
      filter,
      preprocessing,
      classes = this.classes,
      batchSize = 32,
      shuffle = false,
      seed = 0,
      augment = false,
    } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(
        `Cannot batch as 'batchSize' must be a positive integer: got ${batchSize}`,
      );
    }
    const classIndex = new Map(classes.map((name, i) => [name, i]));
    const faces = this.select(filter).filter((face) => classIndex.has(face.category));
    const samples = faces.map((face) => this.sample(face, preprocessing));
    const labels = faces.map((face) => classIndex.get(face.category)!);
    const augmentOptions = augment && preprocessing.input === "crop"
      ? (augment === true ? {} : augment)
      : undefined;
    let epoch = 0;

    return tf.data.generator(() => {
      const random = seededRandom(seed * 100_003 + epoch++);
      const order = faces.map((_, i) => i);
      if (shuffle) {
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
      }
      return (function* () {
        for (let start = 0; start < order.length; start += batchSize) {
          const picked = order.slice(start, start + batchSize);
          const oneHot = new Float32Array(picked.length * classes.length);
          picked.forEach((index, row) => oneHot[row * classes.length + labels[index]!] = 1);
          const ys = tf.tensor2d(oneHot, [picked.length, classes.length]);
          const batch = picked.map((index) => samples[index]!);
          if (!augmentOptions || preprocessing.input !== "crop") {
            yield { xs: inputBatch(preprocessing, batch), ys };
            continue;
          }
          // Augmented on the typed arrays, so the batch becomes a tensor once, ready to train.
          const { size, channels, scale } = preprocessing;
          const shape: [number, number, number, number] = [batch.length, size, size, channels];
          const pixels = scaledPixels(batch, size * size * channels, scale);
          const varied = new Float32Array(pixels.length);
          augmentPixels(
            pixels,
            varied,
            shape,
            drawAugmentations(batch.length, random, augmentOptions),
          );
          yield { xs: tf.tensor4d(varied, shape), ys };
        }
      })();
    });
  }
}
