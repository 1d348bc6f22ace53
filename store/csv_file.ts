import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { writeFileAtomicSync } from "../core/files.ts";

/** Rows of a CSV file with a header, or none when the file does not exist yet. */
export async function readCsvRows<T>(path: string): Promise<T[]> {
  try {
    return parse(await Deno.readTextFile(path), { columns: true, skip_empty_lines: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
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
