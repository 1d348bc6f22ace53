/**
 * File helpers used across the layers, each written once: whole-file replacement that never
 * leaves a torn file, and existence checks that tell "absent" from a real I/O error.
 */
import { mkdirSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/** A temp name beside `path`, unique per process and call, so concurrent writers never collide. */
function tempBeside(path: string): string {
  return `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/** The pid that wrote a temp file `tempBeside` named, or undefined for any other name. */
export function tempWriter(name: string): number | undefined {
  const match = /\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * Replaces a file whole: written to a temp file beside it, then renamed over it, so a run that
 * dies mid-write leaves the previous complete file (or none), never a torn one. Parent
 * folders are made as needed.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempBeside(path);
  await writeFile(temp, data);
  await rename(temp, path);
}

/** `writeFileAtomic`, synchronously: for the manifest's flush from a signal handler. */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = tempBeside(path);
  if (typeof data === "string") Deno.writeTextFileSync(temp, data);
  else Deno.writeFileSync(temp, data);
  Deno.renameSync(temp, path);
}

/** Whether `path` exists. Absent is false; any other error (permissions, I/O) is thrown. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Whether `path` is a folder; false when it is absent or not a folder. */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/**
 * `writeFileAtomicSync` for text made piece by piece: each chunk goes to the temp file as it
 * comes, so the whole text is never in memory at once.
 */
export function writeChunksAtomicSync(path: string, chunks: Iterable<string>): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = tempBeside(path);
  const file = Deno.openSync(temp, { write: true, createNew: true });
  const encoder = new TextEncoder();
  try {
    for (const chunk of chunks) {
      const bytes = encoder.encode(chunk);
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    }
  } catch (error) {
    file.close();
    Deno.removeSync(temp);
    throw error;
  }
  file.close();
  Deno.renameSync(temp, path);
}

/** `writeChunksAtomicSync` with a turn of the event loop after each chunk. */
export async function writeChunksAtomic(path: string, chunks: Iterable<string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = tempBeside(path);
  const file = await Deno.open(temp, { write: true, createNew: true });
  const encoder = new TextEncoder();
  try {
    for (const chunk of chunks) {
      const bytes = encoder.encode(chunk);
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
    }
  } catch (error) {
    file.close();
    await Deno.remove(temp);
    throw error;
  }
  file.close();
  await rename(temp, path);
}
