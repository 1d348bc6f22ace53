import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";

/** Rows of a CSV file with a header, or none when the file does not exist yet. */
export async function readCsvRows<T>(path: string): Promise<T[]> {
  try {
    return parse(await Deno.readTextFile(path), { columns: true, skip_empty_lines: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

/**
 * Replaces a file whole: written to a temp file beside it, then renamed over it, so a run that
 * dies mid-write leaves the previous complete file, never a torn one.
 */
export function writeFileAtomicSync(path: string, text: string): void {
  const temp = `${path}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(temp, text);
  Deno.renameSync(temp, path);
}

export function writeCsvAtomicSync<T extends object>(
  path: string,
  rows: T[],
  columns: (keyof T & string)[],
): void {
  writeFileAtomicSync(
    path,
    stringify(rows as Record<string, unknown>[], { header: true, columns }),
  );
}
