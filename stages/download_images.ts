/**
 * Stage 4: person records to validated portraits whose raw bytes sit in a content-addressed
 * cache. The type comes from the bytes, not from Content-Type; sharp decodes every image once
 * (with a pixel limit against decompression bombs) so a broken file is caught here, not later.
 *
 * Memory: at most `concurrency` bodies of at most `maxBytes` each are held at once. The records
 * mergeMap queues are small (a few hundred bytes each); the bytes only enter inside the limit.
 */
import { fileURLToPath } from "node:url";
import { mergeMap, Observable, type OperatorFunction } from "rxjs";
import sharp from "sharp";
import { HttpClient } from "../net/http.ts";
import { sha256Hex } from "../core/ids.ts";
import { blobPath } from "../store/paths.ts";
import {
  dropped,
  type ImageRecord,
  isOk,
  ok,
  type Outcome,
  type PersonRecord,
} from "../core/types.ts";
import { exists, writeFileAtomic } from "../core/files.ts";
import {
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_MAX_IMAGE_PIXELS,
  type SniffedType,
  sniffImageType,
} from "./image_type.ts";

// Where they were defined first: callers import them from here too.
export { DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, type SniffedType, sniffImageType };

export interface DownloadImagesOptions {
  /** Content-addressed cache directory: bytes go to `blobPath(cacheDir, sha256)`. */
  cacheDir: string;
  /**
   * The HTTP client; share one with `fetchPages` so per-host limits cover both stages.
   * @default new HttpClient()
   */
  http?: HttpClient;
  /**
   * Downloads (and decodes) in flight at once, across all hosts.
   * @default 8
   */
  concurrency?: number;
  /**
   * Largest image accepted, in bytes.
   * @default 10485760
   */
  maxBytes?: number;
  /**
   * Largest image accepted, in pixels (width × height), checked before decoding.
   * @default 40000000
   */
  maxPixels?: number;
  /**
   * Smallest side accepted, in pixels after orientation; icons and spacers fall below it.
   * @default 32
   */
  minSide?: number;
  /**
   * Accept SVG. Off because a vector portrait is a drawing, not a photo.
   * @default false
   */
  allowSvg?: boolean;
  /**
   * An earlier run's result for this record: when it is given and its bytes are still in the
   * cache, nothing is downloaded.
   */
  lookup?: (record: PersonRecord) => ImageRecord | undefined;
  /**
   * Fetch known records' images again (`--refresh`). With an `HttpCache` on the client that is
   * a conditional GET: a 304 reuses the stored bytes, a changed image is stored anew.
   * @default false
   */
  revalidate?: boolean;
  /**
   * Keeps a validated image's bytes and returns the record's `imagePath`: a cluster worker
   * holds them in memory for its result instead of writing a scratch file.
   * @default writes them to `blobPath(cacheDir, sha256)` (once) and returns that path
   */
  store?: (sha256: string, bytes: Uint8Array) => Promise<string>;
}

/** HTTP failures that are a refusal (by size, address rules or the site's wishes), not an accident. */
const REFUSED = /^(too_large|blocked_address|robots_|unsupported_|bad_url)/;

/** What a download adds to a person record. */
type ImageFields = Pick<
  ImageRecord,
  "sha256" | "imagePath" | "format" | "width" | "height" | "bytes"
>;

/**
 * What a download came to, before it is joined with the record that asked for it: one URL's
 * result serves every record that shares the URL, so a dropped one holds no record yet.
 */
type DownloadResult = Outcome<ImageFields, null>;

/** Writes `bytes` to `path` unless it exists, via a temp file and rename so readers never see half a file. */
async function storeBlob(path: string, bytes: Uint8Array): Promise<void> {
  if (await exists(path)) return;
  await writeFileAtomic(path, bytes);
}

/**
 * The bytes of a `file:` image (an image list's local path), inside the same size limit as a
 * download: the size is checked before reading, so a huge file is never loaded.
 */
async function readLocalImage(
  url: string,
  maxBytes: number,
): Promise<Outcome<Uint8Array, null>> {
  const failed = (reason: string) => dropped("images", "failed", reason, null);
  const rejected = (reason: string) => dropped("images", "rejected", reason, null);
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch {
    return rejected("bad_image: not a local file URL");
  }
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return rejected("not_a_file: the path is a folder or a device");
    if (info.size > maxBytes) {
      return rejected(`too_large: file of ${info.size} > ${maxBytes} bytes`);
    }
    const body = await Deno.readFile(path);
    if (body.length > maxBytes) return rejected(`too_large: file over ${maxBytes} bytes`);
    return ok(body);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return failed("file_not_found: no such file");
    if (error instanceof Deno.errors.PermissionDenied) {
      return failed("file_unreadable: permission denied");
    }
    return failed(`file_unreadable: ${(error as Error).message.split("\n")[0]?.slice(0, 120)}`);
  }
}

/**
 * Downloads each record's image, validates it and stores its raw bytes by sha256. Every
 * failure is a Dropped outcome of stage "images" with a reason code: http_<code>, timeout,
 * network, too_large, not_an_image, unsupported_format, animated, decode_failed,
 * too_many_pixels, too_small, cache_write_failed, blocked_address, robots_disallowed, robots_tag.
 *
 * @example
 * ```ts
 * people$.pipe(downloadImages({ cacheDir: "data/cache/images", concurrency: 8 }));
 * ```
 */
export function downloadImages(
  options: DownloadImagesOptions,
): OperatorFunction<PersonRecord, Outcome<ImageRecord>> {
  const {
    cacheDir,
    http = new HttpClient(),
    concurrency = 8,
    maxBytes = DEFAULT_MAX_IMAGE_BYTES,
    maxPixels = DEFAULT_MAX_IMAGE_PIXELS,
    minSide = 32,
    allowSvg = false,
    lookup,
    revalidate = false,
    store,
  } = options;
  if (typeof cacheDir !== "string" || cacheDir === "") {
    throw new TypeError("Cannot download images as 'cacheDir' must be a non-empty path");
  }
  for (const [name, value] of Object.entries({ concurrency, maxBytes, maxPixels, minSide })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(
        `Cannot download images as '${name}' must be a positive integer: current value is ${value}`,
      );
    }
  }
  const rules: ImageRules = { cacheDir, maxPixels, minSide, allowSvg, store };

  return (people) =>
    new Observable<Outcome<ImageRecord>>((subscriber) => {
      const downloads = new ImageDownloads(http, maxBytes, rules);
      const process = async (record: PersonRecord): Promise<Outcome<ImageRecord>> => {
        const known = revalidate ? undefined : lookup?.(record);
        // A known record counts only while its bytes are still in the cache. One synchronous
        // stat: a no-op rerun asks it of every record, and an async one is a thread hop each.
        if (known && isFileSync(known.imagePath)) {
          return { status: "ok", record: { ...known, ...record } };
        }
        const result = await downloads.get(record.imageUrl, record.pageUrl);
        if (!isOk(result)) return { ...result, record };
        return ok({ ...record, ...result.record });
      };
      const subscription = people.pipe(mergeMap(process, concurrency)).subscribe(subscriber);
      return () => {
        downloads.abort();
        subscription.unsubscribe();
      };
    });
}

function isFileSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** What an image must be to be kept, and where its bytes go. */
interface ImageRules {
  cacheDir: string;
  maxPixels: number;
  minSide: number;
  allowSvg: boolean;
  store?: (sha256: string, bytes: Uint8Array) => Promise<string>;
}

/**
 * One subscription's downloads: one per URL, whether the requests overlap or come later (a
 * shared "no photo" placeholder is fetched once). Results are small; bytes are not kept.
 */
class ImageDownloads {
  readonly #byUrl = new Map<string, Promise<DownloadResult>>();
  readonly #controller = new AbortController();

  constructor(
    readonly http: HttpClient,
    readonly maxBytes: number,
    readonly rules: ImageRules,
  ) {}

  /** The result for the image `url` found on `pageUrl`, read or downloaded once. */
  get(url: string, pageUrl: string): Promise<DownloadResult> {
    // Keyed by the page's host too: the same URL from another host has another scope.
    const key = `${url}\n${URL.canParse(pageUrl) ? new URL(pageUrl).host : ""}`;
    let result = this.#byUrl.get(key);
    if (!result) {
      result = url.startsWith("file:") ? this.#readLocal(url) : this.#download(url, pageUrl);
      this.#byUrl.set(key, result);
    }
    return result;
  }

  /** Stops the downloads in flight, when the subscriber leaves. */
  abort(): void {
    this.#controller.abort();
  }

  async #readLocal(url: string): Promise<DownloadResult> {
    const read = await readLocalImage(url, this.maxBytes);
    return read.status === "ok" ? await validateImage(read.record, this.rules) : read;
  }

  async #download(url: string, pageUrl: string): Promise<DownloadResult> {
    const response = await this.http.get(url, {
      maxBytes: this.maxBytes,
      // The image may reach only addresses in its page's class (a public page: public).
      // An image list's row names its source, not a page: the image URL is then its own scope.
      scope: URL.canParse(pageUrl) && /^https?:/i.test(pageUrl) ? pageUrl : undefined,
      accept: "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.1",
      signal: this.#controller.signal,
    });
    if (response.ok) return await validateImage(response.body, this.rules);
    // What the site or our rules refuse is rejected; what went wrong on the way failed.
    const status = REFUSED.test(response.reason) ? "rejected" : "failed";
    return dropped("images", status, response.reason, null);
  }
}

/** Checks that `body` is a still photo within the rules, and stores it by its sha256. */
async function validateImage(body: Uint8Array, rules: ImageRules): Promise<DownloadResult> {
  const reject = (reason: string): DownloadResult => dropped("images", "rejected", reason, null);
  const sniffed = sniffImageType(body);
  if (sniffed.kind === "unknown") return reject("not_an_image: the bytes match no image format");
  if (sniffed.kind === "unsupported") {
    return reject(`unsupported_format: ${sniffed.format} cannot be decoded`);
  }
  if (sniffed.kind === "svg" && !rules.allowSvg) {
    return reject("unsupported_format: svg is a drawing, not a photo");
  }
  const decoded = await decodeImage(body, sniffed, rules.maxPixels);
  if (!decoded.ok) return reject(decoded.reason);
  const { width, height, format } = decoded;
  if (Math.min(width, height) < rules.minSide) {
    return reject(`too_small: ${width}x${height} has a side under ${rules.minSide} px`);
  }
  const sha256 = sha256Hex(body);
  let imagePath = blobPath(rules.cacheDir, sha256);
  try {
    if (rules.store) imagePath = await rules.store(sha256, body);
    else await storeBlob(imagePath, body);
  } catch (error) {
    return dropped("images", "failed", `cache_write_failed: ${(error as Error).message}`, null);
  }
  return ok({ sha256, imagePath, format, width, height, bytes: body.length });
}

/**
 * Decodes every pixel of an image sharp can read: its size as it is shown (after the EXIF
 * orientation) and its format, or why it is rejected (too many pixels, animated, corrupt).
 */
async function decodeImage(
  body: Uint8Array,
  sniffed: SniffedType,
  maxPixels: number,
): Promise<
  { ok: true; width: number; height: number; format: string } | { ok: false; reason: string }
> {
  const reject = (reason: string) => ({ ok: false as const, reason });
  try {
    const image = sharp(body, { limitInputPixels: maxPixels, failOn: "error" });
    const metadata = await image.metadata();
    const rawWidth = metadata.width ?? 0;
    const rawHeight = metadata.height ?? 0;
    if (rawWidth * rawHeight > maxPixels) {
      return reject(`too_many_pixels: ${rawWidth}x${rawHeight} is over ${maxPixels} pixels`);
    }
    const frames = metadata.pages ?? 1;
    if (frames > 1 && (metadata.format === "gif" || metadata.format === "webp")) {
      // A portrait is a still photo; an animation is a banner, an avatar loop or a sprite.
      return reject(`animated: ${metadata.format} with ${frames} frames, not a still photo`);
    }
    // Orientations 5–8 turn the image a quarter: width and height swap.
    const quarterTurn = (metadata.orientation ?? 1) >= 5;
    const format = metadata.format ?? (sniffed.kind === "sharp" ? sniffed.format : "svg");
    // Decoding every pixel is what catches truncated and corrupt files. A small output keeps
    // it cheap; .rotate() applies the EXIF orientation the way later stages will see it.
    await image.rotate().resize(64, 64, { fit: "inside" }).raw().toBuffer();
    return {
      ok: true,
      width: quarterTurn ? rawHeight : rawWidth,
      height: quarterTurn ? rawWidth : rawHeight,
      format,
    };
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (/pixel limit/i.test(message)) return reject(`too_many_pixels: ${message.slice(0, 120)}`);
    return reject(`decode_failed: ${message.split("\n")[0]?.slice(0, 160)}`);
  }
}
