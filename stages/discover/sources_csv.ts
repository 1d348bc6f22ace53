/**
 * Discovered people pages as a sources file that `deno task pipeline --sources` reads as it is:
 * each row under a comment with its score, the links that led there and why; unsure rows
 * commented out for a person to confirm. `--category NAME=WORDS` maps the units the sites name
 * to the user's categories.
 */
import { stringify } from "csv-stringify/sync";
import type { Candidate } from "./site_crawl.ts";

/** A user category and the words that put a unit in it. */
export interface CategoryRule {
  name: string;
  words: string[];
}

/**
 * Reads `NAME=WORD,WORD` specs (`econ=Wirtschaft,Economics`). Throws a RangeError that says
 * what is wrong with a bad one.
 */
export function parseCategoryRules(specs: string[]): CategoryRule[] {
  return specs.map((spec) => {
    const match = /^([^=]+)=(.+)$/.exec(spec.trim());
    const words = match?.[2]?.split(",").map((word) => word.trim().toLowerCase()).filter(Boolean);
    if (!match || !words?.length) {
      throw new RangeError(
        `--category must be NAME=WORDS, e.g. econ=Wirtschaft,Economics: got '${spec}'`,
      );
    }
    return { name: match[1]!.trim(), words };
  });
}

/** The category of a candidate: the first rule whose words its unit (or links) name. */
export function categoryFor(
  candidate: Pick<Candidate, "unit" | "via" | "url">,
  rules: CategoryRule[],
): { category: string; matched: boolean } {
  if (rules.length === 0) return { category: candidate.unit, matched: true };
  const texts = [candidate.unit, ...[...candidate.via].reverse()].map((t) => t.toLowerCase());
  for (const text of texts) {
    const rule = rules.find((r) => r.words.some((word) => text.includes(word)));
    if (rule) return { category: rule.name, matched: true };
  }
  return { category: candidate.unit, matched: false };
}

/** The header of a discovered sources file, with what its comments mean. */
export function sourcesHeader(): string {
  return [
    "# facefield sources, found by deno task discover. Each row's comment gives its score (0-1),",
    "# the links that led there from the home page, and why. Rows commented out are unsure:",
    "# remove the '# ' to keep one. The category is the unit the site names; edit freely.",
    "url,category",
    "",
  ].join("\n");
}

/** One candidate's comment and row; `unsure` rows are commented out. */
export function sourceRow(candidate: Candidate, rules: CategoryRule[]): string {
  const { category, matched } = categoryFor(candidate, rules);
  const sure = candidate.sure && matched;
  const why = [...candidate.why];
  if (!matched) why.push("no --category matched its unit");
  const via = candidate.via.length ? candidate.via.join(" > ") : "(home page)";
  const comment = `# score ${candidate.score.toFixed(2)}${sure ? "" : " UNSURE"} | via ${via} | ${
    why.join("; ")
  }`.replace(/[\r\n]+/g, " ");
  const row = stringify([[candidate.url, category]]).trimEnd();
  return `${comment}\n${sure ? "" : "# "}${row}\n`;
}
