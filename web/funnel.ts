/**
 * The overview's numbers: per source, how many records got through each stage and why the
 * others were dropped; per category, the faces in each split. Pure functions over the manifest
 * and the page log, so the live view and the page compute them the same way.
 */
import type { ManifestRow } from "../store/manifest.ts";
import type { PageLogRow } from "../store/page_log.ts";
import { NOT_IN_PAGE_LOG } from "../store/record_query.ts";

/** The record stages in order; a row's `stage` is the last one it reached. */
export const FUNNEL_STAGES = ["people", "images", "faces", "split"] as const;
export type FunnelStage = typeof FUNNEL_STAGES[number];

/** Label for records whose page is not in the page log (a data dir built by other means). */
export const UNKNOWN_SOURCE = NOT_IN_PAGE_LOG;

export interface SourceFunnel {
  source: string;
  category: string;
  pages: { ok: number; failed: number };
  /** Records that got through each stage. */
  passed: Record<FunnelStage, number>;
  /** Dropped records by reason code (the part of the reason before the colon). */
  dropped: Record<string, number>;
}

export interface Overview {
  sources: SourceFunnel[];
  /** Category → split → faces. */
  categories: Record<string, Record<string, number>>;
  totals: { records: number; faces: number; dropped: number };
}

const stageRank = (stage: string) => FUNNEL_STAGES.indexOf(stage as FunnelStage);

/** Whether a row got through `stage`: ok rows reached at least it, dropped rows went past it. */
export function passedStage(
  row: Pick<ManifestRow, "stage" | "status">,
  stage: FunnelStage,
): boolean {
  const reached = stageRank(row.stage);
  const wanted = stageRank(stage);
  return row.status === "ok" ? reached >= wanted : reached > wanted;
}

/** The reason code of a dropped row: `http_404: GET …` → `http_404`. */
export function reasonCode(reason: string): string {
  return (reason.split(":")[0] ?? reason).trim() || "unknown";
}

/** Page URL → the source it was crawled for, from the page log. */
export function sourceOfPage(pages: PageLogRow[]): Map<string, PageLogRow> {
  const map = new Map<string, PageLogRow>();
  for (const page of pages) if (page.page_url) map.set(page.page_url, page);
  return map;
}

/** The source a manifest row came from. */
export function sourceOfRow(
  row: Pick<ManifestRow, "page_url">,
  pages: Map<string, PageLogRow>,
): string {
  return pages.get(row.page_url)?.source_url ?? UNKNOWN_SOURCE;
}

/**
 * Rows of the manifest for the overview: whole rows, or one row standing for `n` alike (the
 * columns the overview reads, grouped in SQL by `StoreView.overviewRows`).
 */
export type OverviewRow =
  & Pick<ManifestRow, "category" | "status" | "stage" | "reason" | "split" | "page_url">
  & { n?: number };

/** Funnels per source, in the order the page log lists them, and faces per category and split. */
export function overview(rows: OverviewRow[], pages: PageLogRow[]): Overview {
  const bySource = new Map<string, SourceFunnel>();
  const funnel = (source: string, category: string) => {
    let entry = bySource.get(source);
    if (!entry) {
      entry = {
        source,
        category,
        pages: { ok: 0, failed: 0 },
        passed: { people: 0, images: 0, faces: 0, split: 0 },
        dropped: {},
      };
      bySource.set(source, entry);
    }
    return entry;
  };
  for (const page of pages) {
    const entry = funnel(page.source_url, page.category);
    if (page.status === "ok") entry.pages.ok++;
    if (page.status === "failed") entry.pages.failed++;
  }
  const pageMap = sourceOfPage(pages);
  const categories: Record<string, Record<string, number>> = {};
  let faces = 0;
  let dropped = 0;
  let records = 0;
  for (const row of rows) {
    const n = row.n ?? 1;
    records += n;
    const entry = funnel(sourceOfRow(row, pageMap), row.category);
    for (const stage of FUNNEL_STAGES) if (passedStage(row, stage)) entry.passed[stage] += n;
    if (row.status !== "ok") {
      dropped += n;
      const code = reasonCode(row.reason);
      entry.dropped[code] = (entry.dropped[code] ?? 0) + n;
    }
    if (row.status === "ok" && row.split) {
      faces += n;
      const perSplit = categories[row.category] ??= {};
      perSplit[row.split] = (perSplit[row.split] ?? 0) + n;
    }
  }
  return {
    sources: [...bySource.values()],
    categories,
    totals: { records, faces, dropped },
  };
}
