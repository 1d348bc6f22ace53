/**
 * What image bytes are, from their magic bytes, and the downloader's limits: no dependency, so
 * that a one-shot command (`predict`) that checks its input loads none of the stage's (rxjs).
 */

/** Largest image the downloader accepts by default, in bytes (10 MiB). */
export const DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024;
/** Largest image the downloader accepts by default, in pixels: a guard against decompression bombs. */
export const DEFAULT_MAX_IMAGE_PIXELS = 40_000_000;

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
