/**
 * DATASHEET.md: a data set's datasheet after Gebru et al., "Datasheets for Datasets" (2021):
 * motivation, composition, collection, preprocessing, uses, distribution, maintenance. Every
 * figure is counted here from the manifest rows it is given, never typed by hand; the data
 * dir's run and every export write one (pipeline/datasheet.ts gathers the inputs).
 */
import type { ManifestRow } from "../store/manifest.ts";
import type { PageLogRow } from "../store/page_log.ts";
import { NO_AI_DIRECTIVES, ROBOTS_AGENT } from "../net/robots.ts";
import { droppedByReason } from "./summary.ts";
import { DEFAULT_IDENTITY_THRESHOLD } from "../core/split_rules.ts";

/** The settings of the run that made the data, as `pipeline` saved them. */
export interface RunSettings {
  detector: string;
  size: number;
  facePercent: number;
  align: boolean;
  ratios: { train: number; val: number; test: number };
  folds: number | null;
  seed: number | string;
  userAgent: string;
  /** Whether the run named a contact in its User-Agent. */
  contactGiven: boolean;
  sources: string;
  roles?: string;
  finishedAt: string;
}

/** Estimated demographics of the faces, from the run's checks (metrics.json), counts only. */
export interface DemographicEstimate {
  estimatedBy: string;
  n: number;
  /** Faces per stratum (`women`, `age < 35`, …). */
  strata: { stratum: string; n: number }[];
}

export interface DatasheetInput {
  /** What the sheet describes, e.g. "the data dir /data" or "an export (imagefolder)". */
  subject: string;
  /** The records in the data set, each with the split it has there. */
  records: { row: ManifestRow; split: string }[];
  /** Every manifest row's status and reason, for the records dropped on the way (not ok). */
  manifestRows: Iterable<Pick<ManifestRow, "status" | "reason">>;
  /** Records the export itself left out, by reason (`min_score`, `category`, …). */
  excluded?: Record<string, number>;
  pages: PageLogRow[];
  /** Entries on the removal list when the sheet was written. */
  removalEntries: number;
  settings?: RunSettings;
  demographics?: DemographicEstimate;
  /** For an export: how it was written (format, images, options). */
  distribution?: Record<string, string | number>;
  /**
   * When the sheet was written.
   * @default new Date()
   */
  generatedAt?: Date;
}

/** The sheet's figures, each counted from the records: what the test holds against the manifest. */
export interface DatasheetFigures {
  total: number;
  byCategory: Record<string, number>;
  bySplit: Record<string, number>;
  byRole: Record<string, number>;
  bySource: Record<string, number>;
  byCategoryAndSplit: Record<string, Record<string, number>>;
  droppedByReason: Record<string, number>;
  identities: number;
  crawled: { first: string; last: string } | undefined;
}

function count(values: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

/** A record's source: the source row its page came from (pages.csv), else the page's host. */
export function sourceOfRow(row: ManifestRow, sourceOfPage: Map<string, string>): string {
  const known = sourceOfPage.get(row.page_url);
  if (known) return known;
  try {
    return new URL(row.page_url).host || row.page_url;
  } catch {
    return row.page_url || "unknown";
  }
}

/** Counts the sheet shows, from the records and the manifest. */
export function datasheetFigures(input: DatasheetInput): DatasheetFigures {
  const sourceOfPage = new Map(
    input.pages.filter((p) => p.page_url).map((p) => [p.page_url, p.source_url]),
  );
  const rows = input.records.map((r) => r.row);
  const byCategoryAndSplit: Record<string, Record<string, number>> = {};
  for (const { row, split } of input.records) {
    const perSplit = byCategoryAndSplit[row.category] ??= {};
    perSplit[split] = (perSplit[split] ?? 0) + 1;
  }
  const fetched = input.pages.map((p) => p.fetched_at).filter(Boolean).sort();
  return {
    total: rows.length,
    byCategory: count(rows.map((r) => r.category)),
    bySplit: count(input.records.map((r) => r.split)),
    byRole: count(rows.map((r) => r.role || "(none given)")),
    bySource: count(rows.map((r) => sourceOfRow(r, sourceOfPage))),
    byCategoryAndSplit,
    droppedByReason: { ...droppedByReason(input.manifestRows), ...prefixed(input.excluded) },
    identities: new Set(rows.map((r) => r.identity || r.id)).size,
    crawled: fetched.length ? { first: fetched[0]!, last: fetched.at(-1)! } : undefined,
  };
}

function prefixed(excluded: Record<string, number> | undefined): Record<string, number> {
  return Object.fromEntries(
    Object.entries(excluded ?? {}).map(([reason, n]) => [`export: ${reason}`, n]),
  );
}

/** Markdown-safe cell: no pipe, no newline, no HTML tag (`age < 35` stays as it is). */
function cell(text: string | number): string {
  return String(text).replace(/[\r\n]+/g, " ").replace(/\|/g, "&#124;")
    .replace(/<(?=[A-Za-z/!?])/g, "&#60;");
}

function table(header: string[], rows: (string | number)[][]): string {
  if (rows.length === 0) return "(none)\n";
  return [
    `| ${header.map(cell).join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`),
  ].join("\n") + "\n";
}

const sorted = (counts: Record<string, number>) =>
  Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));

/** What one instance's image is: the crop, the portrait as served, or both. */
function instance(input: DatasheetInput): string {
  const images = input.distribution?.images;
  return images === "originals"
    ? "the image as the page served it"
    : images === "both"
    ? "an aligned face crop (PNG) and the image as the page served it"
    : "one aligned face crop (PNG)";
}

function compositionSection(f: DatasheetFigures, input: DatasheetInput): string {
  const splits = ["train", "val", "test", ...Object.keys(f.bySplit)].filter((s, i, all) =>
    f.bySplit[s] !== undefined && all.indexOf(s) === i
  );
  const demographics = input.demographics
    ? `Estimated by ${input.demographics.estimatedBy} on ${input.demographics.n} faces (the run's ` +
      `held-out faces):\n\n` +
      table(["stratum", "faces"], input.demographics.strata.map((s) => [s.stratum, s.n])) +
      "\nCaveat: these are a network's guesses from the face, not what the people say of " +
      "themselves; such estimates err more on some groups than others, and gender is given as " +
      "two classes only. Use them to describe the data set in aggregate, never a person.\n"
    : "No estimate: the run that made the data set did not run the demographic checks " +
      "(metrics.json has none).\n";
  return `## Composition

Each instance is ${instance(input)} of one portrait on a public "people" page, with its
label (the group the page lists the person under), the person's name and role as the page gave
them, the page and image URLs, and the detector's box and score. There are **${f.total}** faces
of **${f.identities}** distinct identities (faces judged to be the same person share one).

Faces per category and split:

${
    table(
      ["category", ...splits, "all"],
      sorted(f.byCategory).map(([category, n]) => [
        category,
        ...splits.map((s) => f.byCategoryAndSplit[category]?.[s] ?? 0),
        n,
      ]),
    )
  }
Faces per source:

${table(["source", "faces"], sorted(f.bySource))}
Faces per role:

${table(["role", "faces"], sorted(f.byRole))}
Records dropped on the way, by reason:

${table(["reason", "records"], sorted(f.droppedByReason))}
### Estimated demographics

${demographics}`;
}

function collectionSection(f: DatasheetFigures, input: DatasheetInput): string {
  const s = input.settings;
  const sources = [...new Set(input.pages.map((p) => p.source_url).filter(Boolean))].sort();
  return `## Collection process

Crawled by facefield from ${sources.length} source page(s)${
    s ? ` listed in ${cell(s.sources)}` : ""
  }${f.crawled ? `, between ${f.crawled.first} and ${f.crawled.last}` : ""}:

${sources.map((u) => `- ${cell(u)}`).join("\n") || "(no page log)"}

- robots.txt is read once per origin and checked on every redirect hop, for the agent
  \`${ROBOTS_AGENT}\`; a page or image it disallows is not fetched (reason \`robots_*\`).
- An X-Robots-Tag of ${NO_AI_DIRECTIVES.map((d) => `\`${d}\``).join(", ")} (for all agents or
  for \`${ROBOTS_AGENT}\`) drops the page or image (reason \`robots_tag\`).
- User-Agent: \`${s ? cell(s.userAgent) : "facefield (not recorded)"}\`${
    s && !s.contactGiven ? " (no contact was given: pass --contact)" : ""
  }.
- Requests per host are limited and spaced, and retried with backoff honouring Retry-After.
`;
}

function preprocessingSection(input: DatasheetInput): string {
  const s = input.settings;
  const settings = s
    ? `detector \`${cell(s.detector)}\`, crops ${s.size}×${s.size} px with the face at ` +
      `${s.facePercent} % of the crop height, ${
        s.align ? "rotated so the eyes are level" : "not aligned"
      }; ` +
      (s.folds
        ? `${s.folds}-fold cross-validation (a val share inside the training folds)`
        : `split ${s.ratios.train}/${s.ratios.val}/${s.ratios.test} (train/val/test)`) +
      `, seed ${cell(s.seed)}${s.roles ? `, roles filtered by \`${cell(s.roles)}\`` : ""}.`
    : "The run's settings were not recorded (a data dir from before run_settings.json).";
  return `## Preprocessing

Each portrait's largest face is detected, its landmarks levelled, and a square crop cut around
it; a portrait with no usable face is dropped with its reason (\`no_face\`, \`face_too_small\`,
\`low_score\`). ${settings}

Splits are stratified by category and identity-safe: faces of one identity (the same photo, or
descriptors within ${DEFAULT_IDENTITY_THRESHOLD} of each other) never straddle train and test. A face keeps its split
across runs; a fresh data dir with the same faces and seed gets the same partition.
`;
}

/** The datasheet as Markdown, every figure counted from `input`. */
export function datasheetMarkdown(input: DatasheetInput): string {
  const { generatedAt = new Date() } = input;
  const f = datasheetFigures(input);
  const distribution = input.distribution
    ? table(["setting", "value"], Object.entries(input.distribution).map(([k, v]) => [k, v]))
    : "Not distributed: this is the working data dir. `deno task export` makes a copy with its " +
      "own datasheet.\n";
  return `# Datasheet: ${cell(input.subject)}

Written by facefield on ${generatedAt.toISOString()} from the manifest; every figure is counted,
none typed. After Gebru et al., "Datasheets for Datasets" (CACM 64(12), 2021).

## Motivation

Made to test whether the group a person belongs to (a department, a party) can be predicted from
their face, and to tell honestly whether such a signal comes from the face, the photo or the
demographics. It is a research artefact about classifiers and confounds, not about the people.

${compositionSection(f, input)}
${collectionSection(f, input)}
${preprocessingSection(input)}
## Uses

Sound: measuring how much a classifier's accuracy owes to the photo, the source or the
demographics; testing confound checks. Unsound, and not to be done with this data: identifying
people, matching faces to names outside this study, or inferring traits, beliefs, orientation,
competence or group membership of any individual. A label is the page's grouping, not a trait.

## Distribution

${distribution}
The faces and names are personal data, published by their organisations for another purpose.
Keep copies access-controlled and do not republish them.

## Maintenance

Anyone may ask to be removed. \`deno task forget --data DIR --id ID\` (or \`--name\`) deletes the
person's records, images, crops, models and report from the data dir and puts their id, image
hash and a hash of their name on the removal list (now ${input.removalEntries} entries), so later
crawls and exports drop them. An export records the list's state; \`deno task export --check OUT\`
names the files of that copy that must be deleted after a later removal.
`;
}
