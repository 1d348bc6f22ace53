/**
 * The run's verdict from its fits: the ladder on the random split and on the held-out
 * sources' runs, the face models' answers there, judged by stages/verdict.ts.
 */
import type { ModelKind } from "../models/classifier.ts";
import {
  decideVerdict,
  headlineModel,
  type LadderPredictions,
  seesFaceAlone,
  type Verdict,
} from "../stages/verdict.ts";
import type { ChecksInput } from "./checks_input.ts";
import type { leaveOneSourceOut } from "./leave_sources_out.ts";

/**
 * The run's verdict: the ladder's fits (pipeline/ladder.ts, fitted by pipeline/checks_fits.ts)
 * on the random split and on the held-out sources' runs, and the headline model's answers on
 * both, judged by decideVerdict.
 */
export function verdictOf(
  input: ChecksInput,
  loso: Awaited<ReturnType<typeof leaveOneSourceOut>>,
  sources: Map<string, string>,
  random: LadderPredictions | null,
  unseen: LadderPredictions | null,
): Verdict | undefined {
  if (input.kinds.length === 0 || !random) return undefined;
  const { kind, rule } = headlineModel(input.kinds);
  const predictions = input.heldOut.get(kind);
  if (!predictions || predictions.size === 0) return undefined;
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  const actual = new Map(input.records.map((r) => [r.id, classIndex.get(r.category)!]));
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
    ladder: random,
    unseen: unseen && {
      ...unseen,
      model: answers.size ? answers : null,
      runs: loso.runs.length,
      sourceOf: sources,
      faceModels: new Map([...faceModels].filter(([, a]) => a.size > 0)),
    },
  });
}
