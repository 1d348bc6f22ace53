/**
 * Small WebP previews for the web app, made once with sharp and kept in the data dir's
 * thumbnail cache (`store/paths.ts`) by image sha256, where `forget` finds and removes them.
 */
import { basename, dirname } from "node:path";
import sharp from "sharp";
import { writeFileAtomic } from "../core/files.ts";
import { blobPath } from "../store/paths.ts";
import { SHA256_PATTERN, type StoreView } from "./store_view.ts";

/** What a preview shows: the aligned face crop, the original image small, or the original large. */
export const THUMBNAIL_KINDS = {
  face: { source: "crop", side: 112, fit: "cover" },
  image: { source: "image", side: 112, fit: "cover" },
  view: { source: "image", side: 640, fit: "inside" },
} as const;
export type ThumbnailKind = keyof typeof THUMBNAIL_KINDS;

export function isThumbnailKind(kind: string): kind is ThumbnailKind {
  return Object.hasOwn(THUMBNAIL_KINDS, kind);
}

/** Makes and caches previews; two requests for one preview share one sharp job. */
export class Thumbnails {
  readonly #inFlight = new Map<string, Promise<Uint8Array | undefined>>();
  constructor(readonly view: StoreView) {}

  /** The preview's WebP bytes, or undefined when its source is not in the data dir. */
  get(sha256: string, kind: ThumbnailKind): Promise<Uint8Array | undefined> {
    if (!SHA256_PATTERN.test(sha256)) return Promise.resolve(undefined);
    const key = `${sha256}.${kind}`;
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#make(sha256, kind).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #make(sha256: string, kind: ThumbnailKind): Promise<Uint8Array | undefined> {
    const spec = THUMBNAIL_KINDS[kind];
    const source = spec.source === "crop"
      ? await this.view.cropPath(sha256)
      : await this.view.imagePath(sha256);
    if (!source) return undefined;
    // A crop's preview names its face settings, so a run with new settings gets new previews.
    const settings = spec.source === "crop" ? `.${basename(dirname(dirname(source)))}` : "";
    const cached = blobPath(this.view.paths.thumbnails, sha256, `${settings}.${kind}.webp`);
    try {
      return await Deno.readFile(cached);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    const bytes = await sharp(await Deno.readFile(source), { failOn: "none" })
      .rotate()
      .resize(spec.side, spec.side, { fit: spec.fit, withoutEnlargement: spec.fit === "inside" })
      .webp({ quality: 80 })
      .toBuffer();
    const webp = new Uint8Array(bytes);
    await writeFileAtomic(cached, webp);
    return webp;
  }
}
