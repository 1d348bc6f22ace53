/**
 * Record ids widened from the seed study's 8 hex digits to 16, once per data dir. At 8 digits two
 * of 100,000 people got one id more often than not, and the second silently replaced the first.
 *
 * Only ids `personId` made are widened (a list's own ids stay as given); the new id starts with
 * the old one, so an old export's id still finds its person. The files that name records by id
 * go first and are idempotent (an occlusion map renamed, a model's training ids rewritten), then
 * state.db in one transaction: a kill -9 anywhere leaves a data dir the next open finishes.
 */
import { join } from "node:path";
import { LEGACY_PERSON_ID_LENGTH, legacyPersonId, personId } from "../core/ids.ts";
import { writeFileAtomicSync } from "../core/files.ts";
import { dataPaths, MODEL_FILES, occlusionMapPath } from "./paths.ts";

/** A record as the widening reads it: its id and what `personId` makes ids from. */
export interface IdSource {
  id: string;
  category: string;
  imageUrl: string;
  name: string;
}

/** Legacy id → widened id, for every record whose id `personId` made at 8 digits. */
export function widenedIds(records: Iterable<IdSource>): Map<string, string> {
  const widened = new Map<string, string>();
  for (const { id, category, imageUrl, name } of records) {
    if (id.length === LEGACY_PERSON_ID_LENGTH && legacyPersonId(category, imageUrl, name) === id) {
      widened.set(id, personId(category, imageUrl, name));
    }
  }
  return widened;
}

/**
 * Renames what the data dir at `root` keeps under a record's id, before state.db changes:
 * each step is idempotent, so a run killed half-way redoes it on the next open.
 */
export function moveIdFiles(root: string, widened: Map<string, string>): void {
  if (widened.size === 0) return;
  renameOcclusionMaps(root, widened);
  rewriteTrainingIds(root, widened);
}

function renameOcclusionMaps(root: string, widened: Map<string, string>): void {
  const reports = dataPaths(root).reports;
  for (const [legacy, id] of widened) {
    const from = occlusionMapPath(reports, legacy);
    let map: Record<string, unknown>;
    try {
      map = JSON.parse(Deno.readTextFileSync(from));
    } catch {
      continue; // No map for this face, or one the report rewrites anyway.
    }
    if (map.id === legacy) map.id = id;
    writeFileAtomicSync(occlusionMapPath(reports, id), JSON.stringify(map));
    try {
      Deno.removeSync(from);
    } catch (error) {
      // Another process opening the same data dir moved it first.
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/** Every model's list of the ids it trained on, which `forget` reads to find the models. */
function rewriteTrainingIds(root: string, widened: Map<string, string>): void {
  for (const path of trainingIdFiles(dataPaths(root).models)) {
    let ids: unknown;
    try {
      ids = JSON.parse(Deno.readTextFileSync(path));
    } catch {
      continue; // forget treats a model without a readable list as having seen everyone.
    }
    if (!Array.isArray(ids)) continue;
    const mapped = ids.map((id) => typeof id === "string" ? widened.get(id) ?? id : id);
    if (mapped.some((id, i) => id !== ids[i])) {
      writeFileAtomicSync(path, JSON.stringify(mapped));
    }
  }
}

function trainingIdFiles(dir: string): string[] {
  const files: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return files;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) files.push(...trainingIdFiles(path));
    else if (entry.name === MODEL_FILES.trainingIds) files.push(path);
  }
  return files;
}
