/**
 * The report's folded detail on the checks: confounds, leave-sources-out, the baselines that
 * see no face, and the demographics' strata and pairs.
 */
import type { ModelResult } from "./charts.ts";
import type { SignificanceTest } from "../stages/evaluate.ts";
import type { BaselineResult, Demographics, ValidityChecks } from "../stages/validity.ts";
import { escapeXml, pct, pValue, table } from "./html.ts";

export function verdict(test: SignificanceTest, what: string): string {
  return test.significant
    ? `<span class="yes">beats ${escapeXml(what)} (${pValue(test)})</span>`
    : `<span class="no">does not beat ${escapeXml(what)} significantly (${pValue(test)})</span>`;
}

export function confoundSection(models: ModelResult[]): string {
  const rows = models.map((model) => {
    const c = model.metrics.confounds;
    const rule = Object.entries(c.genderOnly.rule).map(([g, label]) =>
      `${g} → ${escapeXml(label)}`
    ).join(", ") || "n/a";
    return [
      escapeXml(model.kind),
      pct(model.metrics.accuracy),
      `${pct(c.genderOnly.accuracy)} (${rule}; n = ${c.genderOnly.n})`,
      `${pct(c.grayscale.accuracy)} (n = ${c.grayscale.n})`,
      `${pct(c.colour.accuracy)} (n = ${c.colour.n})`,
    ];
  });
  const fitOn = models[0]?.metrics.confounds.genderOnly.fitOn;
  const note = fitOn === "test"
    ? `<p class="warn">The gender rule was chosen on the test faces themselves (no training faces
had a predicted gender), so its accuracy is optimistic.</p>`
    : `<p>The gender rule was chosen on the training faces and measured on the test faces.</p>`;
  return `<p>How far does a trivial cue get alone? Gender is predicted by face-api's age/gender
net; the rule maps each gender to one class. If the model is no better than the rule, it may
have learned gender, not the group. Accuracy on black-and-white against colour photos shows
whether photo style carries the label.</p>
${table(["model", "model accuracy", "gender-only rule", "on grayscale", "on colour"], rows)}
${note}`;
}

export function checksSection(models: ModelResult[], checks: ValidityChecks | undefined): string {
  if (!checks) {
    return `<p class="warn">The validity checks were not run for this report, so nothing here
says whether the models read faces or photos.</p>`;
  }
  return `${losoPart(checks)}
${baselinesPart(models, checks.baselines)}
${demographicsPart(checks.demographics)}`;
}

/** Leave-one-source-out: each model against its random split, the sources it could not hold out. */
function losoPart(checks: ValidityChecks): string {
  const loso = checks.loso.map((l) => {
    const random = l.randomSplitOnTheseSources;
    return [
      escapeXml(l.kind),
      pct(l.randomSplitAccuracy),
      random ? `${pct(random.accuracy)} (n = ${random.n})` : "n/a",
      l.score
        ? `${pct(l.score.accuracy)} (${pct(l.score.ci95[0])} – ${
          pct(l.score.ci95[1])
        }, n = ${l.score.n}), ${verdict(l.score.beatsChance, "chance")}`
        : `cannot be made: ${escapeXml(l.reason ?? "")}`,
    ];
  });
  const perSource = checks.loso.flatMap((l) =>
    l.perSource.map((s) => [
      escapeXml(l.kind),
      escapeXml(s.source),
      escapeXml(s.category),
      `${s.correct} / ${s.n}`,
      pct(s.accuracy),
    ])
  );
  const notPossible = checks.loso[0]?.notPossible ?? [];
  const cannot = notPossible.length
    ? `<p class="warn">${
      notPossible.map((n) => escapeXml(`Cannot hold out ${n.sources.join(", ")}: ${n.reason}.`))
        .join("<br>")
    }</p>`
    : "";
  return `<p>Is it the face, or the photo? Faces are grouped by ${
    escapeXml(checks.groupedBy)
  } (${checks.sources.length} sources). Leave-one-source-out trains each model again on every
source but one and tests it on the held-out one: a model that learned a site's photo style
instead of faces falls to chance there.</p>
${table(["model", "random split", "random split, these sources", "leave-one-source-out"], loso)}
${cannot}
${
    perSource.length
      ? table(["model", "held-out source", "category", "right", "accuracy"], perSource)
      : ""
  }`;
}

/** The style baselines against each face model on the same faces, and the telling statistics. */
function baselinesPart(models: ModelResult[], baselines: BaselineResult[]): string {
  const baselineRows = baselines.map((b) => [
    escapeXml(b.name),
    `${pct(b.score.accuracy)} (${pct(b.score.ci95[0])} – ${
      pct(b.score.ci95[1])
    }, n = ${b.score.n})`,
    ...models.map((m) => {
      const v = b.versus[m.kind];
      if (!v) return "n/a";
      return `${pct(v.modelAccuracy)} vs ${pct(v.baselineAccuracy)}: ${
        v.modelBeatsIt.significant
          ? `<span class="yes">beaten (McNemar ${pValue(v.modelBeatsIt)})</span>`
          : `<span class="no">not beaten (McNemar ${pValue(v.modelBeatsIt)})</span>`
      }${v.close ? ` <span class="no">close</span>` : ""}`;
    }),
  ]);
  const telling = baselines.find((b) => b.telling)?.telling ?? [];
  return `<p>Style baselines: logistic regressions that never see a face, fitted and tested on the same
split as the face models. A face model that does not beat them may have learned the photos.</p>
${
    table(
      ["baseline sees", "accuracy (95 % CI)", ...models.map((m) => escapeXml(m.kind))],
      baselineRows,
    )
  }
${
    telling.length
      ? `<p>Image statistics that tell the classes apart best (Fisher ratio): ${
        telling.map((t) => `${escapeXml(t.feature)} (${t.separation.toFixed(2)})`).join(", ")
      }.</p>`
      : ""
  }`;
}

/** Accuracy within strata of estimated gender, age and ethnicity, and the matched pairs. */
function demographicsPart(demographics: Demographics | undefined): string {
  if (!demographics) {
    return "<p>No face had an age and gender estimate, so the demographic checks were not made.</p>";
  }
  const strataNames = Object.values(demographics.strata)[0]?.map((s) => s.stratum) ?? [];
  return `<h3>Demographics (estimated by ${
    escapeXml(demographics.estimatedBy)
  }, ${demographics.n} faces)</h3>
<p>Accuracy within each stratum of estimated gender, age and ethnicity: a model that reads only
demographics does well in some strata and at chance within them.</p>
${
    table(
      ["model", ...strataNames.map(escapeXml)],
      Object.entries(demographics.strata).map(([kind, strata]) => [
        escapeXml(kind),
        ...strata.map((s) => s.accuracy === null ? "n/a" : `${pct(s.accuracy)} (n = ${s.n})`),
      ]),
      "num",
    )
  }
<p>Matched pairs (Kosinski 2021): two held-out faces of different classes with the same estimated
gender (and ethnicity, where it was estimated) and ages at most a few years apart, each face in one pair; how often the model gives each
face's own class the higher score.</p>
${
    table(
      ["model", "pairs", "ranked right (95 % CI)"],
      Object.entries(demographics.matchedPairs).map(([kind, m]) => [
        escapeXml(kind),
        m.pairs,
        m.accuracy === null || !m.ci95
          ? "n/a"
          : `${pct(m.accuracy)} (${pct(m.ci95[0])} – ${
            pct(m.ci95[1])
          }), age gap ≤ ${m.maxAgeGap} years`,
      ]),
      "num",
    )
  }`;
}
