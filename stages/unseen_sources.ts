/**
 * The verdict's figures on sources never seen in training (leave-sources-out). A style per
 * source does not carry over to a new source, a face signal does, and a style that all of one
 * category's sources share stays in the no-face fit too. Faces of one source share its
 * photographer, so the source, not the face, is the unit these tests count.
 */
import { binomialUpperTail, oneSampleTUpperTail } from "../core/statistics.ts";
import {
  type Accuracy,
  accuracyOn,
  balancedAccuracyOn,
  type LadderPredictions,
  type PairedDifference,
  pairedDifference,
} from "./held_out_accuracy.ts";

/** What the checks give: the ladder's fits on held-out sources and the face models' answers. */
export type UnseenInput = LadderPredictions & {
  /** The headline model's answers on the held-out sources; null where it has none. */
  model: ReadonlyMap<string, number> | null;
  runs: number;
  /** Each held-out face's source, for the per-source figures. */
  sourceOf?: ReadonlyMap<string, string>;
  /**
   * Every model that sees only the face (not the photo around it), by kind, with its answers
   * on the held-out sources. @default the headline model alone
   */
  faceModels?: ReadonlyMap<string, ReadonlyMap<string, number>>;
};

/** One face model on sources it never saw. */
export interface UnseenModel {
  model: string;
  n: number;
  balancedAccuracy: number;
  /**
   * It against the no-face fit on the same faces, tested as an intersection-union: p is the
   * largest of McNemar's against the no-face fit, the binomial against chance and the t-test
   * over held-out sources against chance (`sourcesPValue`). A no-face fit that learnt the
   * training sources' looks can score far below chance on a new source (its look points to the
   * wrong class), and a face model merely less wrong must not pass as the face adding.
   */
  faceAdds: PairedDifference | null;
  /** One-sided t-test over the held-out sources that their accuracy is above chance. */
  sourcesPValue: number;
  /** Its accuracy on each held-out source's faces. */
  perSource: { source: string; n: number; accuracy: number }[];
  /**
   * Whether it is above chance on every held-out source. Faces of one source share its look,
   * so a model can beat chance on pooled faces by a look that happens to resemble another
   * source of the same class; a face signal holds on each source.
   */
  everySourceAboveChance: boolean;
}

/** Leave-sources-out: each run holds out one source of every category (balanced). */
export interface UnseenSources extends UnseenModel {
  /** The model kind these figures are for (the headline model). */
  model: string;
  /** Groups of held-out sources (one source of each category per group where it can). */
  runs: number;
  /** The headline model's balanced accuracy on sources it never saw. */
  balancedAccuracy: number;
  ci95: [number, number];
  /** One-sided binomial p against chance, on its accuracy. */
  pValue: number;
  /** The headline model's balanced accuracy on the random split, on the same faces. */
  randomSplitBalancedAccuracy: number | null;
  /** The no-face baseline fitted on the same held-out-source runs. */
  noFaceBalancedAccuracy: number | null;
  /** The no-face and face features stacked, fitted on the same runs. */
  withFaceBalancedAccuracy: number | null;
  /** Every model that sees only the face, the headline model among them. */
  faceModels: UnseenModel[];
  /**
   * The face model the face's test on new sources rests on: of those above chance on every
   * held-out source, the one with the smallest p, which is multiplied by the number of face
   * models tried (Bonferroni). The stacked fit is no judge here: trained where the style gives
   * every answer, it trusts the style, which a new source does not have. And an ensemble
   * averages in members that learnt the style; one that ignores it can show the face where the
   * ensemble is thrown by a new photographer. Null where no face model qualifies.
   */
  faceEvidence: { model: string; pValue: number; faceAdds: PairedDifference } | null;
}

/** The face models' figures on sources never seen, the headline model's first. */
export function unseenFigures(
  unseen: UnseenInput | null,
  headline: { kind: string; predictions: ReadonlyMap<string, number> },
  chance: number,
): UnseenSources | null {
  if (!unseen || unseen.actual.size === 0) return null;
  const modelAnswers = unseen.model ?? new Map<string, number>();
  const score = accuracyOn(unseen.actual, modelAnswers);
  const own = unseenModel(unseen, headline.kind, modelAnswers, chance);
  if (!score || !own) return null;
  const others = [...(unseen.faceModels ?? new Map())]
    .filter(([kind]) => kind !== headline.kind)
    .map(([kind, answers]) => unseenModel(unseen, kind, answers, chance))
    .filter((m): m is UnseenModel => m !== null);
  const faceModels = [own, ...others];
  return {
    ...own,
    runs: unseen.runs,
    ci95: score.ci95,
    pValue: binomialUpperTail(score.correct, score.n, chance),
    randomSplitBalancedAccuracy: balancedAccuracyOn(
      new Map([...unseen.actual].filter(([id]) => modelAnswers.has(id))),
      headline.predictions,
    ),
    noFaceBalancedAccuracy: balancedAccuracyOn(unseen.actual, unseen.noFace),
    withFaceBalancedAccuracy: balancedAccuracyOn(unseen.actual, unseen.withFace),
    faceModels,
    faceEvidence: faceEvidenceOf(faceModels),
  };
}

function unseenModel(
  unseen: UnseenInput,
  kind: string,
  answers: ReadonlyMap<string, number>,
  chance: number,
): UnseenModel | null {
  const score = accuracyOn(unseen.actual, answers);
  const balanced = balancedAccuracyOn(unseen.actual, answers);
  if (!score || balanced === null) return null;
  const perSource = perSourceOf(unseen.actual, answers, unseen.sourceOf);
  const sourcesPValue = oneSampleTUpperTail(perSource.map((s) => s.accuracy), chance);
  return {
    model: kind,
    n: score.n,
    balancedAccuracy: balanced,
    faceAdds: faceAddsOnNewSources(unseen, answers, score, sourcesPValue, chance),
    sourcesPValue,
    perSource,
    everySourceAboveChance: perSource.length > 0 && perSource.every((s) => s.accuracy > chance),
  };
}

function faceAddsOnNewSources(
  unseen: UnseenInput,
  answers: ReadonlyMap<string, number>,
  score: Accuracy,
  sourcesPValue: number,
  chance: number,
): PairedDifference | null {
  if (answers.size === 0) return null;
  const versus = pairedDifference(unseen.actual, answers, unseen.noFace);
  if (!versus) return null;
  const pValue = Math.max(
    versus.pValue,
    binomialUpperTail(score.correct, score.n, chance),
    sourcesPValue,
  );
  return { ...versus, pValue, holmP: pValue };
}

function faceEvidenceOf(models: UnseenModel[]): UnseenSources["faceEvidence"] {
  const eligible = models.filter((m) => m.everySourceAboveChance && m.faceAdds);
  if (eligible.length === 0) return null;
  const best = eligible.reduce((a, b) => (b.faceAdds!.pValue < a.faceAdds!.pValue ? b : a));
  const pValue = Math.min(1, best.faceAdds!.pValue * models.length);
  return { model: best.model, pValue, faceAdds: { ...best.faceAdds!, pValue, holmP: pValue } };
}

/** The model's accuracy per held-out source. */
function perSourceOf(
  actual: ReadonlyMap<string, number>,
  model: ReadonlyMap<string, number>,
  sourceOf: ReadonlyMap<string, string> | undefined,
): UnseenModel["perSource"] {
  const bySource = new Map<string, { n: number; correct: number }>();
  for (const [id, label] of actual) {
    const p = model.get(id);
    if (p === undefined) continue;
    const key = sourceOf?.get(id) ?? "all";
    const entry = bySource.get(key) ?? { n: 0, correct: 0 };
    entry.n++;
    if (p === label) entry.correct++;
    bySource.set(key, entry);
  }
  return [...bySource].sort(([a], [b]) => (a < b ? -1 : 1)).map((
    [source, { n, correct }],
  ) => ({ source, n, accuracy: correct / n }));
}
