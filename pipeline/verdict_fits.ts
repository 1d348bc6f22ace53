/**
 * The run's verdict from its fits: the ladder on the random split and on the held-out
 * sources' runs, the face models' answers there, judged by stages/verdict.ts.
 */
import type { ModelKind } from "../models/classifier.ts";
import { decideVerdict, headlineModel, seesFaceAlone, type Verdict } from "../stages/verdict.ts";
import { type ChecksInput, type FeatureRow, heldOutGroup } from "./checks_input.ts";
import { ladderFits } from "./ladder.ts";
import type { leaveOneSourceOut } from "./leave_sources_out.ts";

/**
 * The run's verdict: the ladder's fits (pipeline/ladder.ts) on the random split and on the
 * held-out sources' runs, and the headline model's answers on both, judged by decideVerdict.
 */
export function verdictOf(
  input: ChecksInput,
  rows: FeatureRow[],
  loso: Awaited<ReturnType<typeof leaveOneSourceOut>>,
  sources: Map<string, string>,
): Verdict | undefined {
  if (input.kinds.length === 0) return undefined;
  const { kind, rule } = headlineModel(input.kinds);
  const predictions = input.heldOut.get(kind);
  if (!predictions || predictions.size === 0) return undefined;
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  const actual = new Map(input.records.map((r) => [r.id, classIndex.get(r.category)!]));
  const runOfSource = new Map(loso.runs.flatMap((run, i) => run.map((s) => [s, i] as const)));
  const fits = ladderFits({
    records: input.records,
    store: input.store,
    classes: input.classes,
    attributes: input.attributes,
    photo: new Map(rows.map((r) => [r.id, {
      statistics: r.features["image-statistics"],
      masked: r.features["masked-face"],
    }])),
    groupOf: heldOutGroup,
    sourceRunOf: loso.runs.length
      ? (record) => runOfSource.get(sources.get(record.id)!) ?? "train"
      : null,
  });
  const answersOn = (model: string) =>
    new Map(
      (loso.answersOf.get(model as ModelKind) ?? []).flatMap((run) => run ?? []).map((a) =>
        [a.id, a.predicted] as const
      ),
    );
  const answers = answersOn(kind);
  const faceModels = new Map(input.kinds.filter(seesFaceAlone).map((k) => [k, answersOn(k)]));
  return decideVerdict({
    classes: input.classes.length,
    model: { kind, rule, predictions, actual },
    ladder: fits.random,
    unseen: fits.unseen && {
      ...fits.unseen,
      model: answers.size ? answers : null,
      runs: loso.runs.length,
      sourceOf: sources,
      faceModels: new Map([...faceModels].filter(([, a]) => a.size > 0)),
    },
  });
}
