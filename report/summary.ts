/** The end-of-run summary: counts per status, reason and category, never names. */
import type { ManifestRow } from "../store/manifest.ts";

export interface RunSummary {
  dataDir: string;
  manifest: string;
  invalidSources: number;
  skippedSources: number;
  pages: { ok: number; failed: number };
  byStatus: Record<string, number>;
  byReason: Record<string, number>;
  byCategory: Record<string, { ok: number; dropped: number }>;
  models: string[];
  report?: string;
  terminalReport?: string;
}

function reasonCode(reason: string): string {
  return reason.split(":")[0] ?? reason;
}

/** Dropped records counted by the code before the colon of their reason (`http_404`, …). */
export function droppedByReason(
  rows: Iterable<Pick<ManifestRow, "status" | "reason">>,
): Record<string, number> {
  const byReason: Record<string, number> = {};
  for (const row of rows) {
    if (row.status === "ok") continue;
    const code = reasonCode(row.reason);
    byReason[code] = (byReason[code] ?? 0) + 1;
  }
  return byReason;
}

export function summarise(
  manifestPath: string,
  rows: readonly Pick<ManifestRow, "status" | "stage" | "reason" | "category">[],
  extra: Omit<RunSummary, "byStatus" | "byReason" | "byCategory" | "manifest">,
): RunSummary {
  const byStatus: Record<string, number> = {};
  const byReason = droppedByReason(rows);
  const byCategory: Record<string, { ok: number; dropped: number }> = {};
  for (const row of rows) {
    const key = row.status === "ok" ? `ok (${row.stage})` : `${row.status} at ${row.stage}`;
    byStatus[key] = (byStatus[key] ?? 0) + 1;
    const category = byCategory[row.category] ??= { ok: 0, dropped: 0 };
    if (row.status === "ok") category.ok++;
    else category.dropped++;
  }
  return { ...extra, manifest: manifestPath, byStatus, byReason, byCategory };
}

export function formatSummary(summary: RunSummary): string {
  const lines = [
    "",
    "== facefield run summary ==",
    `pages: ${summary.pages.ok} ok, ${summary.pages.failed} failed` +
    (summary.skippedSources ? ` · ${summary.skippedSources} sources already crawled` : "") +
    (summary.invalidSources ? ` · ${summary.invalidSources} invalid source rows` : ""),
    "records by status:",
    ...Object.entries(summary.byStatus).sort().map(([k, v]) => `  ${k.padEnd(24)} ${v}`),
  ];
  if (Object.keys(summary.byReason).length) {
    lines.push("dropped, by reason:");
    lines.push(
      ...Object.entries(summary.byReason).sort((a, b) => b[1] - a[1]).map(([k, v]) =>
        `  ${k.padEnd(24)} ${v}`
      ),
    );
  }
  lines.push("by category (ok / dropped):");
  lines.push(
    ...Object.entries(summary.byCategory).sort().map(([k, v]) =>
      `  ${k.padEnd(24)} ${v.ok} / ${v.dropped}`
    ),
  );
  lines.push(`manifest: ${summary.manifest}`);
  for (const model of summary.models) lines.push(`model: ${model}`);
  if (summary.terminalReport) lines.push("", summary.terminalReport);
  if (summary.report && !summary.terminalReport?.includes(summary.report)) {
    lines.push(`report: ${summary.report}`);
  }
  return lines.join("\n");
}
