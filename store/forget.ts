/**
 * `deno task forget`: a person who asks to be removed disappears from everything under the
 * data dir, and later crawls drop them before anything is stored.
 */
import { join } from "node:path";
import { writeManifestCsv } from "./manifest.ts";
import { dropFromManifestCsv } from "./csv_drop.ts";
import type { DatabaseSync } from "node:sqlite";
import { deleteRecords, fromDb, openStateDb, type PersonKeys, toDb } from "./state_db.ts";
import { recordsOfPerson } from "./record_query.ts";
import { exists } from "../core/files.ts";
import { idAnswersTo, LEGACY_PERSON_ID_LENGTH, PERSON_ID_LENGTH } from "../core/ids.ts";
import { DataDirLock } from "./lock.ts";
import { blobPath, dataPaths, MODEL_FILES, occlusionMapPath } from "./paths.ts";
import { normaliseName, RemovedList } from "./removed.ts";
import { HttpCacheStore } from "./http_cache.ts";

export interface ForgetRequest {
  dataDir: string;
  ids?: string[];
  names?: string[];
}

export interface ForgetResult {
  records: number;
  images: number;
  faceFiles: number;
  models: string[];
  reportRemoved: boolean;
  /** The records removed: id, name, image and identity, as they were. */
  people: PersonKeys[];
}

async function removeIfPresent(path: string, options?: Deno.RemoveOptions): Promise<boolean> {
  try {
    await Deno.remove(path, options);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function listDirs(path: string): Promise<string[]> {
  const dirs: string[] = [];
  try {
    for await (const entry of Deno.readDir(path)) {
      if (entry.isDirectory) dirs.push(join(path, entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return dirs;
}

/**
 * The rows that belong to the person: the ids and names asked for, and then every row that
 * shares an image or a face identity with them (the same face on another department's page).
 */
export function rowsOfPerson<R extends PersonKeys>(rows: R[], request: ForgetRequest): R[] {
  const ids = request.ids ?? [];
  const names = new Set((request.names ?? []).map(normaliseName));
  const matched = new Set(
    rows.filter((row) =>
      ids.some((id) => idAnswersTo(row.id, id)) || names.has(normaliseName(row.name))
    ),
  );
  let grew = true;
  while (grew) {
    grew = false;
    const images = new Set([...matched].map((row) => row.sha256).filter(Boolean));
    const identities = new Set(
      [...matched].flatMap((row) => [row.identity, row.id]).filter(Boolean),
    );
    for (const row of rows) {
      if (matched.has(row)) continue;
      if (
        (row.sha256 && images.has(row.sha256)) || (row.identity && identities.has(row.identity))
      ) {
        matched.add(row);
        grew = true;
      }
    }
  }
  return [...matched];
}

/**
 * `rowsOfPerson` asked of state.db: the ids asked for and the rows whose name matches (a scan
 * of the names alone), then the same image or face identity by SQL (store/record_query.ts), so
 * no whole row but theirs is read.
 */
export function personRows(db: DatabaseSync, request: ForgetRequest): PersonKeys[] {
  const seeds = new Set(request.ids ?? []);
  // An 8-digit id from before ids were widened names the record whose id starts with it.
  const widened = db.prepare(
    "SELECT id FROM records WHERE length(id) = ? AND substr(id, 1, ?) = ?",
  );
  for (const id of request.ids ?? []) {
    if (id.length !== LEGACY_PERSON_ID_LENGTH) continue;
    for (const row of widened.all(PERSON_ID_LENGTH, id.length, toDb(id))) {
      seeds.add(fromDb((row as { id: string }).id));
    }
  }
  const names = new Set((request.names ?? []).map(normaliseName));
  if (names.size > 0) {
    const select = db.prepare("SELECT id, name FROM records");
    select.setReturnArrays(true);
    for (const [id, name] of select.all() as unknown as string[][]) {
      if (names.has(normaliseName(fromDb(name!)))) seeds.add(fromDb(id!));
    }
  }
  if (seeds.size === 0) return [];
  return recordsOfPerson(db, [...seeds]).map(({ id, name, sha256, identity }) => ({
    id,
    name,
    sha256,
    identity,
  }));
}

/**
 * Removes the person's records, images, face crops, and every model and report built on them,
 * from the data dir and from each of its repeated benchmark's data dirs.
 */
export async function forget(request: ForgetRequest): Promise<ForgetResult> {
  const result = await forgetInOne(request);
  for (const dir of await listDirs(dataPaths(request.dataDir).repeats)) {
    const inRepeat = await forget({ ...request, dataDir: dir });
    result.records += inRepeat.records;
    result.images += inRepeat.images;
    result.faceFiles += inRepeat.faceFiles;
    result.models.push(...inRepeat.models);
    result.reportRemoved ||= inRepeat.reportRemoved;
    result.people.push(...inRepeat.people);
  }
  return result;
}

/** The page bodies and every validator: cached pages hold names. */
async function dropPageCache(paths: ReturnType<typeof dataPaths>): Promise<void> {
  await removeIfPresent(paths.pageCache, { recursive: true });
  await removeIfPresent(paths.httpCache);
  const httpCache = await HttpCacheStore.open(paths);
  httpCache.clear();
  httpCache.close();
}

async function forgetInOne(request: ForgetRequest): Promise<ForgetResult> {
  const paths = dataPaths(request.dataDir);
  const lock = await DataDirLock.acquire(paths.lock);
  try {
    const db = openStateDb(paths.state);
    const removedList = await RemovedList.open(paths.removed);
    const rows = personRows(db, request);
    const ids = new Set(rows.map((row) => row.id));
    const shas = new Set(rows.map((row) => row.sha256).filter(Boolean));

    // The list first: if the run dies half-way, the next crawl still keeps them out.
    for (const id of request.ids ?? []) removedList.add({ id });
    for (const name of request.names ?? []) removedList.add({ name });
    for (const row of rows) {
      removedList.add({ id: row.id, name: row.name, sha256: row.sha256 || undefined });
    }
    removedList.flushSync();

    let images = 0;
    let faceFiles = 0;
    // Face crops live under one folder per face settings; thumbnails under one flat folder.
    const faceSettingsDirs = [...await listDirs(paths.faceCache), paths.thumbnails];
    for (const sha of shas) {
      if (await removeIfPresent(blobPath(paths.imageCache, sha))) images++;
      for (const dir of faceSettingsDirs) {
        const shard = join(dir, sha.slice(0, 2));
        try {
          for await (const entry of Deno.readDir(shard)) {
            if (entry.name.startsWith(sha) && await removeIfPresent(join(shard, entry.name))) {
              faceFiles++;
            }
          }
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }
    }

    // Each face's occlusion map goes by its id, whatever happens to the report around it.
    for (const id of ids) {
      if (await removeIfPresent(occlusionMapPath(paths.reports, id))) faceFiles++;
    }

    // A model has seen the person's face in training, so it goes; so does any report built on it.
    const models: string[] = [];
    for (const dir of await listDirs(paths.models)) {
      let trainedOn: string[] = [];
      try {
        trainedOn = JSON.parse(await Deno.readTextFile(join(dir, MODEL_FILES.trainingIds)));
      } catch {
        trainedOn = [...ids]; // Without its list we cannot prove the model is clean.
      }
      if (trainedOn.some((id) => ids.has(id))) {
        await removeIfPresent(dir, { recursive: true });
        models.push(dir);
      }
    }
    const reportRemoved = (models.length > 0 || rows.length > 0) &&
      await removeIfPresent(paths.reports, { recursive: true });

    // Cached page bodies hold the person's name: they go, with the validators that point at
    // them. It costs one full fetch per page on the next --refresh.
    if (rows.length > 0) await dropPageCache(paths);

    // Out of state.db (zeroed, the WAL truncated) and out of index.csv, written again.
    deleteRecords(db, [...ids]);
    // index.csv, where there is one, loses their records: copied without them, or (a file
    // this version did not write) written again from state.db.
    if (
      rows.length > 0 && await dropFromManifestCsv(paths.manifest, ids) === undefined &&
      await exists(paths.manifest)
    ) writeManifestCsv(db, paths.manifest);
    db.close();
    removedList.close();
    return { records: rows.length, images, faceFiles, models, reportRemoved, people: rows };
  } finally {
    lock.releaseSync();
  }
}
