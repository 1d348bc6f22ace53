import { readCsvRows, writeCsvAtomicSync } from "./csv_file.ts";
import { sha256Hex } from "../core/ids.ts";

/** Names compare after case folding and whitespace collapsing, so "Dr.  Ada LOVELACE" matches. */
export function normaliseName(name: string): string {
  return name.normalize("NFC").replace(/\s+/g, " ").trim().toLocaleLowerCase();
}

/** A one-way hash of a name: the removal list must not itself keep the name. */
export function nameHash(name: string): string {
  return sha256Hex(`facefield-removed-name\n${normaliseName(name)}`);
}

interface RemovedRow {
  kind: "id" | "name" | "sha256";
  value: string;
  removed_at: string;
}

/**
 * `<data dir>/removed.csv`: people who asked to be removed, kept as ids, image hashes and name
 * hashes only, so a later crawl that meets them again drops them before anything is stored.
 */
export class RemovedList {
  readonly #ids = new Set<string>();
  readonly #names = new Set<string>();
  readonly #images = new Set<string>();
  readonly #rows: RemovedRow[];

  private constructor(readonly path: string, rows: RemovedRow[]) {
    this.#rows = rows;
    for (const row of rows) this.#add(row);
  }

  static async open(path: string): Promise<RemovedList> {
    return new RemovedList(path, await readCsvRows<RemovedRow>(path));
  }

  #add(row: RemovedRow): void {
    const set = row.kind === "id" ? this.#ids : row.kind === "name" ? this.#names : this.#images;
    set.add(row.value);
  }

  get size(): number {
    return this.#rows.length;
  }

  /** True when the person behind this record asked to be removed. */
  matches(record: { id: string; name?: string; sha256?: string }): boolean {
    return this.#ids.has(record.id) ||
      (record.name !== undefined && this.#names.has(nameHash(record.name))) ||
      (record.sha256 !== undefined && this.#images.has(record.sha256));
  }

  /** True when the list holds this name hash (`nameHash`), for copies that keep only the hash. */
  hasNameHash(hash: string): boolean {
    return this.#names.has(hash);
  }

  add(entries: { id?: string; name?: string; sha256?: string }): void {
    const removedAt = new Date().toISOString();
    const known = new Set(this.#rows.map((row) => `${row.kind}:${row.value}`));
    const candidates: [RemovedRow["kind"], string | undefined][] = [
      ["id", entries.id],
      ["name", entries.name === undefined ? undefined : nameHash(entries.name)],
      ["sha256", entries.sha256],
    ];
    for (const [kind, value] of candidates) {
      if (!value || known.has(`${kind}:${value}`)) continue;
      const row = { kind, value, removed_at: removedAt };
      this.#rows.push(row);
      this.#add(row);
    }
  }

  flushSync(): void {
    writeCsvAtomicSync(this.path, this.#rows, ["kind", "value", "removed_at"]);
  }
}
