/**
 * `--format webdataset`: tar shards `<split>-000000.tar`, … of at most `--shard-size` bytes,
 * each sample `<key>.png` (the crop; `<key>.original.<ext>` beside it with `--what both`, or
 * `<key>.<ext>` for originals alone) and `<key>.json` (the kept manifest columns, the box, the
 * embeddings when asked). A sample is never cut across shards; one larger than the bound gets
 * a shard to itself. tar-stream writes the tar; we only count its blocks to bound the shards.
 */
import tarStream from "tar-stream";
import {
  faceBox,
  type FormatContext,
  type FormatWriter,
  metadataOf,
  type OutDir,
  rel,
} from "./format.ts";
import type { ExportItem } from "./records.ts";
import type { SplitName } from "../../core/types.ts";

const padded = (bytes: number) => Math.ceil(bytes / 512) * 512;

/**
 * A tar member's size on disk: a 512-byte header and its data padded to 512, after a pax
 * header and its record where the name is not short ASCII (tar-stream writes one then).
 */
function tarSize(name: string, bytes: number): number {
  const nameBytes = new TextEncoder().encode(name).length;
  const pax = nameBytes > 100 || nameBytes !== name.length ? 512 + padded(nameBytes + 32) : 0;
  return pax + 512 + padded(bytes);
}
/** The two zero blocks that end an archive. */
const TAR_END = 1024;
/** One fixed time for every member, so two exports of the same data are the same bytes. */
const MTIME = new Date(0);

/** One open shard: tar-stream's pack, drained into the file as it fills. */
class Shard {
  readonly #pack = tarStream.pack();
  readonly #drained: Promise<void>;
  bytes = 0;
  samples = 0;

  constructor(readonly relative: string, file: Deno.FsFile) {
    this.#drained = (async () => {
      try {
        for await (const chunk of this.#pack as AsyncIterable<Uint8Array>) {
          for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
        }
      } finally {
        file.close();
      }
    })();
  }

  /** Adds one member; resolves once the pack took it (back-pressure from the file). */
  add(name: string, data: Uint8Array): Promise<void> {
    this.bytes += tarSize(name, data.length);
    return new Promise((resolve, reject) => {
      this.#pack.entry(
        { name, size: data.length, mtime: MTIME, mode: 0o644 },
        data,
        (error) => error ? reject(error) : resolve(),
      );
    });
  }

  async close(): Promise<void> {
    this.#pack.finalize();
    await this.#drained;
  }
}

/** The members of one sample: its images and its JSON, by name. */
function sampleMembers(item: ExportItem, context: FormatContext): [string, Uint8Array][] {
  const members: [string, Uint8Array][] = [];
  if (item.crop) members.push([`${item.key}.${item.crop.ext}`, item.crop.bytes]);
  if (item.original) {
    const name = item.crop
      ? `${item.key}.original.${item.original.ext}`
      : `${item.key}.${item.original.ext}`;
    members.push([name, item.original.bytes]);
  }
  const box = faceBox(item);
  const json = {
    ...metadataOf(item),
    box: box ? { x: box[0], y: box[1], width: box[2], height: box[3] } : null,
    ...(context.embeddings && item.face ? item.face : {}),
  };
  members.push([`${item.key}.json`, new TextEncoder().encode(JSON.stringify(json))]);
  return members;
}

/** Writes size-bounded shards per split under `base`. */
export function webDatasetWriter(out: OutDir, base: string, context: FormatContext): FormatWriter {
  if (!(context.shardSize >= 4096)) {
    throw new RangeError(
      `Cannot shard as 'shardSize' must be at least 4096 bytes: got ${context.shardSize}`,
    );
  }
  const open = new Map<SplitName, Shard>();
  const counts = new Map<SplitName, number>();
  const shardFor = async (split: SplitName, bytes: number): Promise<Shard> => {
    const current = open.get(split);
    if (
      current && (current.samples === 0 || current.bytes + bytes + TAR_END <= context.shardSize)
    ) {
      return current;
    }
    await current?.close();
    const index = counts.get(split) ?? 0;
    counts.set(split, index + 1);
    const relative = rel(base, `${split}-${String(index).padStart(6, "0")}.tar`);
    const shard = new Shard(relative, await out.createNew(relative));
    open.set(split, shard);
    return shard;
  };
  return {
    async add(item) {
      const members = sampleMembers(item, context);
      const bytes = members.reduce((sum, [name, data]) => sum + tarSize(name, data.length), 0);
      const shard = await shardFor(item.split, bytes);
      for (const [name, data] of members) await shard.add(name, data);
      shard.samples++;
      return [`${shard.relative}#${item.key}`];
    },
    async close() {
      for (const shard of open.values()) await shard.close();
    },
  };
}
