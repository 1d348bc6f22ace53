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
import type { Dropped, ImageRecord, Outcome, PersonRecord } from "../core/types.ts";
import { exists, writeFileAtomic } from "../core/files.ts";

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
}

/** What the bytes say they are. `sharp` names the formats sharp can decode. */
export type SniffedType =
  | { kind: "sharp"; format: "jpeg" | "png" | "gif" | "webp" | "tiff" | "heif" }
  | { kind: "svg" }
  | { kind: "unsupported"; format: string }
  | { kind: "unknown" };

const HEIF_BRANDS = new Set(["avif", "avis", "heic", "heix", "hevc", "hevx", "mif1", "msf1"]);

function startsWith(bytes: Uint8Array, signature: number[], offset = 0): boolean {
  return signature.every((byte, index) => bytes[offset + index] === byte);
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, end));
}

/**
 * Tells an image format from its magic bytes. A small table rather than a dependency such as
 * file-type: it needs only the formats sharp can decode, plus the usual impostors.
 */
export function sniffImageType(bytes: Uint8Array): SniffedType {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { kind: "sharp", format: "jpeg" };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    return { kind: "sharp", format: "png" };
  }
  const head = ascii(bytes, 0, 12);
  if (head.startsWith("GIF87a") || head.startsWith("GIF89a")) {
    return { kind: "sharp", format: "gif" };
  }
  if (head.startsWith("RIFF") && head.slice(8, 12) === "WEBP") {
    return { kind: "sharp", format: "webp" };
  }
  if (head.startsWith("II*\0") || head.startsWith("MM\0*")) {
    return { kind: "sharp", format: "tiff" };
  }
  if (head.slice(4, 8) === "ftyp") {
    const brand = head.slice(8, 12);
    if (HEIF_BRANDS.has(brand)) return { kind: "sharp", format: "heif" };
  }
  if (head.startsWith("BM")) return { kind: "unsupported", format: "bmp" };
  if (startsWith(bytes, [0x00, 0x00, 0x01, 0x00])) return { kind: "unsupported", format: "ico" };
  const text = new TextDecoder().decode(bytes.subarray(0, 1024)).replace(/^\uFEFF/, "").trimStart();
  if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(text)) {
    return { kind: "svg" };
  }
  return { kind: "unknown" };
}

/** What a download came to, before it is joined with the record that asked for it. */
type DownloadResult =
  | (
    & { ok: true }
    & Pick<ImageRecord, "sha256" | "imagePath" | "format" | "width" | "height" | "bytes">
  )
  | { ok: false; status: Dropped["status"]; reason: string };

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
): Promise<
  { ok: true; body: Uint8Array } | { ok: false; status: Dropped["status"]; reason: string }
> {
  const failed = (reason: string) => ({ ok: false as const, status: "failed" as const, reason });
  const rejected = (reason: string) => ({
    ok: false as const,
    status: "rejected" as const,
    reason,
  });
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
    return { ok: true, body };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return failed("file_not_found: no such file");
    if (error instanceof Deno.errors.PermissionDenied) {
      return failed("file_unreadable: permission denied");
    }
    return failed(`file_unreadable: ${(error as Error).message.split("\n")[0]?.slice(0, 120)}`);
  }
}

/**
 * Downloads each record's image, validates it and stores its raw bytes by sha256; a `file:`
 * URL is read from disk instead, inside the same limits. Every failure is a Dropped outcome of
 * stage "images" with a reason code: http_<code>, timeout, network, too_large, not_an_image,
 * unsupported_format, decode_failed, too_many_pixels, too_small, cache_write_failed, and for
 * local files file_not_found, not_a_file, file_unreadable.
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
    maxBytes = 10 * 1024 * 1024,
    maxPixels = 40_000_000,
    minSide = 32,
    allowSvg = false,
    lookup,
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

  const validate = async (body: Uint8Array): Promise<DownloadResult> => {
    const reject = (reason: string): DownloadResult => ({ ok: false, status: "rejected", reason });
    const sniffed = sniffImageType(body);
    if (sniffed.kind === "unknown") return reject("not_an_image: the bytes match no image format");
    if (sniffed.kind === "unsupported") {
      return reject(`unsupported_format: ${sniffed.format} cannot be decoded`);
    }
    if (sniffed.kind === "svg" && !allowSvg) {
      return reject("unsupported_format: svg is a drawing, not a photo");
    }
    let width: number, height: number, format: string;
    try {
      const image = sharp(body, { limitInputPixels: maxPixels, failOn: "error" });
      const metadata = await image.metadata();
      const rawWidth = metadata.width ?? 0;
      const rawHeight = metadata.height ?? 0;
      if (rawWidth * rawHeight > maxPixels) {
        return reject(`too_many_pixels: ${rawWidth}x${rawHeight} is over ${maxPixels} pixels`);
      }
      // Orientations 5–8 turn the image a quarter: width and height swap.
      const quarterTurn = (metadata.orientation ?? 1) >= 5;
      width = quarterTurn ? rawHeight : rawWidth;
      height = quarterTurn ? rawWidth : rawHeight;
      format = metadata.format ?? (sniffed.kind === "sharp" ? sniffed.format : "svg");
      // Decoding every pixel is what catches truncated and corrupt files. A small output keeps
      // it cheap; .rotate() applies the EXIF orientation the way later stages will see it.
      await image.rotate().resize(64, 64, { fit: "inside" }).raw().toBuffer();
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (/pixel limit/i.test(message)) return reject(`too_many_pixels: ${message.slice(0, 120)}`);
      return reject(`decode_failed: ${message.split("\n")[0]?.slice(0, 160)}`);
    }
    if (Math.min(width, height) < minSide) {
      return reject(`too_small: ${width}x${height} has a side under ${minSide} px`);
    }
    const sha256 = sha256Hex(body);
    const imagePath = blobPath(cacheDir, sha256);
    try {
      await storeBlob(imagePath, body);
    } catch (error) {
      return {
        ok: false,
        status: "failed",
        reason: `cache_write_failed: ${(error as Error).message}`,
      };
    }
    return { ok: true, sha256, imagePath, format, width, height, bytes: body.length };
  };

  return (people) =>
    new Observable<Outcome<ImageRecord>>((subscriber) => {
      // Per subscription: one download per URL, whether the requests overlap or come later
      // (a shared "no photo" placeholder is fetched once). Results are small; bytes are not kept.
      const byUrl = new Map<string, Promise<DownloadResult>>();
      const controller = new AbortController();

      const download = (url: string): Promise<DownloadResult> => {
        let result = byUrl.get(url);
        if (!result && url.startsWith("file:")) {
          result = readLocalImage(url, maxBytes).then((read) =>
            read.ok ? validate(read.body) : read
          );
          byUrl.set(url, result);
        }
        if (!result) {
          result = http.get(url, {
            maxBytes,
            accept: "image/avif,image/webp,image/png,image/jpeg,image/*;q=0.8,*/*;q=0.1",
            signal: controller.signal,
          }).then((response): Promise<DownloadResult> | DownloadResult => {
            if (response.ok) return validate(response.body);
            const status = response.reason.startsWith("too_large") ? "rejected" : "failed";
            return { ok: false, status, reason: response.reason };
          });
          byUrl.set(url, result);
        }
        return result;
      };

      const process = async (record: PersonRecord): Promise<Outcome<ImageRecord>> => {
        const known = lookup?.(record);
        // A known record counts only while its bytes are still in the cache.
        if (known && await exists(known.imagePath)) {
          return { status: "ok", record: { ...known, ...record } };
        }
        const result = await download(record.imageUrl);
        if (!result.ok) {
          return { status: result.status, stage: "images", reason: result.reason, record };
        }
        const { ok: _ok, ...image } = result;
        return { status: "ok", record: { ...record, ...image } };
      };

      const subscription = people.pipe(mergeMap(process, concurrency)).subscribe(subscriber);
      return () => {
        controller.abort();
        subscription.unsubscribe();
      };
    });
}
