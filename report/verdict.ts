/**
 * The verdict in words: the run's one answer (stages/verdict.ts decides it) as the report's
 * first screen and the terminal's first lines, and under it, folded, each model's detail:
 * what it beats, what it does not, and which check explains most of its accuracy.
 */
// @ts-types="@types/escape-html"
import escapeHtml from "escape-html";
import { readsContext } from "../models/classifier.ts";
import type { Verdict } from "../stages/verdict.ts";
import type { Metrics, SignificanceTest } from "../stages/evaluate.ts";
import type {
  BaselineResult,
  LosoResult,
  MatchedPairs,
  ValidityChecks,
} from "../stages/validity.ts";

const pct = (value: number) => `${(value * 100).toFixed(1)} %`;
const p = (test: SignificanceTest) =>
  test.pValue < 0.001 ? "p < 0.001" : `p = ${test.pValue.toFixed(3)}`;

/** Short names for the baselines, as the verdict says them. */
const SHORT: Record<string, string> = {
  "image-statistics": "image statistics",
  "masked-face": "the photo with the face masked",
  "blurred-face": "a heavily blurred face",
  demographics: "estimated age, gender and ethnicity",
  "head-pose": "the head's pose",
};

/** What one check leaves of the model's accuracy above chance. */
interface Explanation {
  what: string;
  /** Share of the model's accuracy above chance that the check accounts for. */
  share: number;
}

function baselineName(baseline: BaselineResult): string {
  const name = SHORT[baseline.key] ?? baseline.key;
  const telling = baseline.telling?.slice(0, 2).map((t) => t.feature);
  return telling?.length ? `${name} (most telling: ${telling.join(", ")})` : name;
}

function explanations(
  model: Metrics,
  kind: string,
  checks: ValidityChecks | undefined,
): Explanation[] {
  const above = model.accuracy - model.chance;
  if (above <= 0) return [];
  const found: Explanation[] = [];
  for (const baseline of checks?.baselines ?? []) {
    const versus = baseline.versus[kind];
    if (!versus || versus.n === 0) continue;
    found.push({
      what: baselineName(baseline),
      share: (versus.baselineAccuracy - model.chance) / (versus.modelAccuracy - model.chance || 1),
    });
  }
  const loso = checks?.loso.find((l) => l.kind === kind);
  if (loso?.score) {
    const random = loso.randomSplitOnTheseSources?.accuracy ?? model.accuracy;
    found.push({
      what: "its sources: on sources it never saw (leave-one-source-out) it loses it",
      share: (random - loso.score.accuracy) / (random - model.chance || 1),
    });
  }
  const gender = model.confounds.genderOnly;
  if (gender.accuracy !== null) {
    found.push({ what: "predicted gender alone", share: (gender.accuracy - model.chance) / above });
  }
  // A check can explain all of it, not more: a model below chance on unseen sources loses
  // everything. Ties keep the baselines first, so the verdict names the cue itself.
  return found.map((e) => ({ ...e, share: Math.min(1, e.share) }))
    .sort((a, b) => b.share - a.share);
}

function losoLine(loso: LosoResult | undefined): string | null {
  if (!loso) return null;
  if (!loso.possible || !loso.score) {
    const why = loso.reason ?? loso.notPossible.map((n) => n.reason).join("; ");
    return `  leave-one-source-out cannot be made: ${why}`;
  }
  const s = loso.score;
  const cannot = loso.notPossible.length
    ? ` (not for ${loso.notPossible.map((n) => `'${n.category}'`).join(", ")}: one source each)`
    : "";
  return `  on sources it never saw (leave-one-source-out): ${pct(s.accuracy)} (95 % CI ${
    pct(s.ci95[0])
  }–${pct(s.ci95[1])}, n = ${s.n}), ${s.beatsChance.significant ? "above" : "NOT above"} chance (${
    p(s.beatsChance)
  })${cannot}`;
}

/** A line for the models that read more than the face's pixels: what they read. */
function whatItReads(kind: string): string[] {
  if (readsContext(kind)) {
    return [
      `  it reads the photo around the face (the face box masked)${
        kind === "context" ? " and no face" : " beside the face"
      }: against the photo with the face masked, it shows what the face adds to the photo`,
    ];
  }
  if (kind === "landmarks") {
    return [
      "  it reads the face's 68 landmarks and no pixel: the face's proportions, but also its " +
      "expression and the head's pose, which the photographer shares",
    ];
  }
  return [];
}

/**
 * The verdict's lines for every model: plain text, the first lines of report.html,
 * metrics.json and the terminal summary.
 */
export function verdictLines(
  models: { kind: string; metrics: Metrics }[],
  checks?: ValidityChecks,
): string[] {
  const lines: string[] = [];
  for (const { kind, metrics: m } of models) {
    lines.push(
      `${kind}: ${pct(m.accuracy)} (95 % CI ${pct(m.ci95[0])}–${
        pct(m.ci95[1])
      }) on the random split, n = ${m.n}; balanced accuracy ${
        pct(m.balancedAccuracy)
      }, label-permutation p = ${m.permutation.pValue.toFixed(4)}`,
    );
    const beats: string[] = [];
    const not: string[] = [];
    (m.beatsChance.significant ? beats : not).push(`chance ${pct(m.chance)} (${p(m.beatsChance)})`);
    (m.beatsMajority.significant ? beats : not).push(
      `majority '${m.majorityBaseline.label}' ${pct(m.majorityBaseline.accuracy)} (${
        p(m.beatsMajority)
      })`,
    );
    const gender = m.confounds.genderOnly;
    if (gender.accuracy !== null && gender.modelBeatsIt) {
      (gender.modelBeatsIt.significant ? beats : not).push(
        `predicted gender ${pct(gender.accuracy)} (${p(gender.modelBeatsIt)})`,
      );
    }
    const close: string[] = [];
    for (const baseline of checks?.baselines ?? []) {
      const versus = baseline.versus[kind];
      if (!versus || versus.n === 0) continue;
      const text = `${SHORT[baseline.key] ?? baseline.key} ${
        pct(versus.baselineAccuracy)
      } (McNemar ${p(versus.modelBeatsIt)})`;
      (versus.modelBeatsIt.significant ? beats : not).push(text);
      if (versus.close) {
        close.push(
          `${baselineName(baseline)} reaches ${pct(versus.baselineAccuracy)} against its ${
            pct(versus.modelAccuracy)
          }`,
        );
      }
    }
    lines.push(...whatItReads(kind));
    lines.push(`  beats: ${beats.join("; ") || "nothing"}`);
    lines.push(`  does not beat: ${not.join("; ") || "nothing it was checked against"}`);
    // At chance there is nothing a baseline could come close to explaining.
    if (close.length && m.accuracy > m.chance) {
      lines.push(`  WARNING, a model that sees no face comes close: ${close.join("; ")}`);
    }
    const loso = losoLine(checks?.loso.find((l) => l.kind === kind));
    if (loso) lines.push(loso);
    const pairs = pairsLine(checks?.demographics?.matchedPairs[kind]);
    if (pairs) lines.push(pairs);
    const [top] = explanations(m, kind, checks);
    if (m.accuracy <= m.chance) {
      lines.push(`  it is no better than chance, so there is no accuracy to explain`);
    } else if (top && top.share >= 0.5) {
      lines.push(
        `  explains most of its accuracy: ${top.what}, ${
          Math.round(top.share * 100)
        } % of its accuracy above chance`,
      );
    } else if (top) {
      lines.push(
        `  no check explains most of its accuracy; the largest share is ${top.what}, ${
          Math.round(Math.max(0, top.share) * 100)
        } %`,
      );
    }
  }
  return lines;
}

/** The matched-pairs line of a model's verdict, or undefined without pairs. */
function pairsLine(pairs: MatchedPairs | undefined): string | undefined {
  if (pairs?.accuracy == null || !pairs.ci95) return undefined;
  const matched = `same estimated gender${pairs.sameEthnicity ? " and ethnicity" : ""}`;
  return `  matched pairs (${matched}, age within ${pairs.maxAgeGap} years): ${
    pct(pairs.accuracy)
  } of ${pairs.pairs} pairs ranked right (95 % CI ${pct(pairs.ci95[0])}–${pct(pairs.ci95[1])})`;
}

/** The conclusion as a reader says it, for the labels of the report and the terminal. */
export const CONCLUSION_WORDS: Record<Verdict["conclusion"], string> = {
  face: "the face",
  photo: "the photo",
  demographics: "the demographics",
  "no-signal": "no signal",
  undetermined: "undetermined",
};

/** The terminal's first lines (at most three): the answer, why, and where the rest is. */
export function verdictSummary(verdict: Verdict | null): string[] {
  if (!verdict) return ["verdict: none, the validity checks were not run"];
  return [
    `verdict (${CONCLUSION_WORDS[verdict.conclusion]}): ${verdict.headline}`,
    `  ${verdict.why}`,
  ];
}

/**
 * The report's first screen: the answer in large type, one line of why, the chart of where
 * the accuracy comes from; then, folded, the figures it rests on and each model's detail.
 */
export function verdictSection(
  verdict: Verdict | null,
  chart: string,
  perModel: string[],
): string {
  const details = `<details><summary>Each model's detail: what it beats, what explains it` +
    `</summary><pre>${escapeHtml(perModel.join("\n"))}</pre></details>`;
  if (!verdict) {
    return `<section class="verdict"><h2>Verdict</h2>
<p class="answer">No verdict: the validity checks were not run, so nothing tells whether the
models read the face or the photo.</p>${details}</section>`;
  }
  const tests = verdict.tests.length;
  return `<section class="verdict ${verdict.conclusion}" id="verdict"><h2>Verdict</h2>
<p class="answer">${escapeHtml(verdict.headline)}</p>
<p class="why">${escapeHtml(verdict.why)}</p>
${chart}
<p class="sub">Conclusion: <b>${CONCLUSION_WORDS[verdict.conclusion]}</b> · spoken for the
${escapeHtml(verdict.model)} model (${escapeHtml(verdict.modelRule)}) · ${tests} tests,
Holm-corrected</p>
<details><summary>What the verdict rests on</summary><ul>${
    verdict.evidence.lines.map((line) => `<li>${escapeHtml(line)}</li>`).join("")
  }</ul></details>
${details}</section>`;
}
