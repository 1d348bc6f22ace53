/**
 * Drops records from `index.csv` by id without writing it again from state.db: the file is read
 * a megabyte at a time, split into CSV records (a newline inside quotes is not a record's end),
 * and every record whose first cell is one of the ids is left out of the copy, which then
 * replaces the file by rename. A 25 MB file is a copy's cost (well under a second), where
 * writing it again from 100,000 rows of state.db took seconds.
 */
import { MANIFEST_COLUMNS } from "./manifest_rows.ts";

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const COMMA = 0x2c;
const CHUNK = 1 << 20;

/** The header line as the manifest writes it. */
const HEADER = new TextEncoder().encode(MANIFEST_COLUMNS.join(",") + "\n");

/** The same temp name as `core/files.ts` gives, so a leftover is recognised and swept. */
const tempBeside = (path: string) => `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;

function startsWithHeader(bytes: Uint8Array): boolean {
  if (bytes.length < HEADER.length) return false;
  for (let i = 0; i < HEADER.length; i++) if (bytes[i] !== HEADER[i]) return false;
  return true;
}

/**
 * Where records end in `bytes` (after a newline outside quotes); `state` carries the quotes.
 * Native `indexOf` finds the next newline and quote: the manifest's few quoted cells cost a
 * jump each, and the rest of the file is a memchr.
 */
function recordEnds(bytes: Uint8Array, state: { quoted: boolean }): number[] {
  const ends: number[] = [];
  let quoted = state.quoted;
  let pos = 0;
  let nextQuote = bytes.indexOf(QUOTE);
  while (pos < bytes.length) {
    if (nextQuote !== -1 && nextQuote < pos) nextQuote = bytes.indexOf(QUOTE, pos);
    if (quoted) {
      if (nextQuote === -1) break;
      // A doubled quote closes and opens again: the next turn sees the second one.
      quoted = false;
      pos = nextQuote + 1;
      continue;
    }
    const newline = bytes.indexOf(NEWLINE, pos);
    if (nextQuote !== -1 && (newline === -1 || nextQuote < newline)) {
      quoted = true;
      pos = nextQuote + 1;
    } else if (newline !== -1) {
      ends.push(newline + 1);
      pos = newline + 1;
    } else break;
  }
  state.quoted = quoted;
  return ends;
}

/** Whether the record at `start` has one of `ids` (8 ASCII characters) as its first cell. */
function dropped(bytes: Uint8Array, start: number, end: number, ids: Set<string>): boolean {
  const comma = bytes.indexOf(COMMA, start);
  if (comma < 0 || comma >= end || comma - start > 64) return false;
  let id = "";
  for (let i = start; i < comma; i++) id += String.fromCharCode(bytes[i]!);
  return ids.has(id);
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/**
 * Leaves the records of `ids` out of the manifest CSV at `path`, by atomic replace. Gives how
 * many it dropped, or undefined (nothing written) when there is no file or its header is not
 * the manifest's (an older or edited file: the caller writes it again from state.db).
 */
export async function dropFromManifestCsv(
  path: string,
  ids: Set<string>,
): Promise<number | undefined> {
  let input: Deno.FsFile;
  try {
    input = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  const temp = tempBeside(path);
  let output: Deno.FsFile | undefined;
  let count = 0;
  try {
    const state = { quoted: false };
    let carry = new Uint8Array(0);
    let atHeader = true;
    for (;;) {
      const read = await readChunk(input);
      const bytes = read === null ? carry : concat(carry, read);
      // Only the new bytes are scanned: the carried ones were, and left the quote state.
      const ends = read === null
        ? (bytes.length ? [bytes.length] : [])
        : recordEnds(bytes.subarray(carry.length), state).map((e) => e + carry.length);
      if (!output && (ends.length || read === null)) {
        if (!startsWithHeader(bytes)) break;
        output = await Deno.open(temp, { write: true, createNew: true });
      }
      let start = 0;
      let keptFrom = 0;
      for (const end of ends) {
        if (!atHeader && dropped(bytes, start, end, ids)) {
          await writeAll(output!, bytes.subarray(keptFrom, start));
          keptFrom = end;
          count++;
        }
        atHeader = false;
        start = end;
      }
      if (output) await writeAll(output, bytes.subarray(keptFrom, start));
      if (read === null) break;
      carry = bytes.slice(start);
    }
  } catch (error) {
    output?.close();
    input.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  input.close();
  if (!output) return undefined;
  output.close();
  if (count === 0) {
    await Deno.remove(temp);
    return 0;
  }
  await Deno.rename(temp, path);
  return count;
}

/** Up to `CHUNK` bytes (reads return less: a pipe's or the runtime's piece), null at the end. */
async function readChunk(file: Deno.FsFile): Promise<Uint8Array | null> {
  const buffer = new Uint8Array(CHUNK);
  let filled = 0;
  while (filled < CHUNK) {
    const read = await file.read(buffer.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  return filled === 0 ? null : buffer.subarray(0, filled);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
