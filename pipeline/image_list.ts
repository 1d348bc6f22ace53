/**
 * The image list half of a run (`--images list.csv`), beside the crawl's parts: a labelled list
 * of portraits to person records, for users who already have their images and labels. Its
 * people flow into the same stream as crawled ones, so downloads, faces, split, training and
 * the manifest treat them alike.
 */
import { dirname, resolve } from "node:path";
import { EMPTY, mergeMap, type Observable, of, tap } from "rxjs";
import { dropped, type PersonRecord } from "../core/types.ts";
import { readImageList, type ReadImageListOptions } from "../stages/read_image_list.ts";
import { sourceBytes } from "../stages/read_sources.ts";
import type { ResolvedPipelineOptions } from "./options.ts";
import type { RunState } from "./run_state.ts";

/** Where relative image paths resolve: the list's own folder, or the working folder for stdin. */
export function imageListBaseDir(list: string | undefined): string {
  return list === undefined || list === "-" ? Deno.cwd() : dirname(resolve(list));
}

/**
 * People of the run's image list (`options.images`, or `input` when given). A row that cannot
 * become a record is logged by line number (never by name) and, when it names enough to have
 * an id, kept in the manifest as rejected at "sources" with its reason.
 */
export function listedPeople(
  options: ResolvedPipelineOptions,
  state: RunState,
  input?: Observable<Uint8Array | string>,
  listOptions: Pick<ReadImageListOptions, "columns" | "baseDir"> = {},
): Observable<PersonRecord> {
  const { baseDir = imageListBaseDir(options.images), columns } = listOptions;
  return (input ?? sourceBytes(options.images ?? "-")).pipe(
    readImageList({ baseDir, columns }),
    tap((item) => {
      if (item.kind !== "invalid") return;
      state.sources.invalid++;
      state.progress.log(`image list line ${item.line}: skipped, ${item.reason}`);
      if (item.person && !state.manifest.get(item.person.id)) {
        state.manifest.record(dropped("sources", "rejected", item.reason, item.person), "sources");
      }
    }),
    mergeMap((item) => item.kind === "person" ? of(item.person) : EMPTY),
  );
}
