import { dirname, join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import { stringify } from "csv-stringify/sync";
import { legacyIdOf, sha256Hex } from "../core/ids.ts";
import {
  checkpoint,
  inTransaction,
  openStateDb,
  REMOVED_COLUMNS,
  REMOVED_INSERT,
  STATE_FILE,
} from "./state_db.ts";

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
 * The people who asked to be removed, kept as ids, image hashes and name hashes only, so a later
 * crawl that meets them again drops them before anything is stored. In state.db's `removed`
 * table (once `<data dir>/removed.csv`); `add` stages entries, `flushSync` commits them.
 */
export class RemovedList {
  readonly #ids = new Set<string>();
  readonly #names = new Set<string>();
  readonly #images = new Set<string>();
  readonly #rows: RemovedRow[];
  readonly #db: DatabaseSync;
  #committed: number;

  private constructor(readonly path: string, db: DatabaseSync) {
    this.#db = db;
    this.#rows = db.prepare(`SELECT ${REMOVED_COLUMNS.join(", ")} FROM removed ORDER BY rowid`)
      .all() as unknown as RemovedRow[];
    this.#committed = this.#rows.length;
    for (const row of this.#rows) this.#add(row);
  }

  /** The removal list of the data dir holding `path` (its removed.csv, migrated if there is one). */
  static open(path: string): Promise<RemovedList> {
    const db = openStateDb(join(dirname(path), STATE_FILE), { removed: path });
    return Promise.resolve(new RemovedList(path, db));
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
    // An id removed before ids were widened is the first 8 digits of the person's id now. A
    // name is hashed only when the list holds names: a run asks this of every record, and
    // 100,000 hashes held the event loop for a second at a rerun's start.
    const legacy = legacyIdOf(record.id);
    return this.#ids.has(record.id) || (legacy !== undefined && this.#ids.has(legacy)) ||
      (record.name !== undefined && this.#names.size > 0 &&
        this.#names.has(nameHash(record.name))) ||
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

  /** Commits the entries added since the last commit, in one transaction. */
  flushSync(): void {
    const fresh = this.#rows.slice(this.#committed);
    if (fresh.length === 0) return;
    const insert = this.#db.prepare(REMOVED_INSERT);
    inTransaction(this.#db, () => {
      for (const row of fresh) insert.run(row.kind, row.value, row.removed_at);
    });
    this.#committed = this.#rows.length;
    checkpoint(this.#db);
  }

  /** The list as removed.csv had it: what an export's record hashes, to tell lists apart. */
  csv(): string {
    return stringify(this.#rows as unknown as Record<string, string>[], {
      header: true,
      columns: [...REMOVED_COLUMNS],
    });
  }

  close(): void {
    this.#db.close();
  }
}
