/**
 * The checks' linear fits: a logistic regression fitted on each held-out group's complement
 * and asked about the group, so a baseline is judged on the very faces the face models were.
 */
import { L2_GRID, LogisticRegression } from "../models/logistic.ts";

/**
 * Every other penalty of the probes' grid (10, 1, 0.1, 0.01, 0.001): a block's fit in a stack
 * is one of many, and half the grid halves what the ladder costs (158 s on congress all with
 * the whole grid, on a busy machine) for a penalty a third of a decade off at worst.
 */
const STACK_GRID = L2_GRID.filter((_, i) => i % 2 === 1);

/** A row's held-out group: a fold, the test split, or `train` (never held out). */
export type HeldOutGroup = number | "test" | "train";

export interface SameSplitRow {
  id: string;
  label: number;
  group: HeldOutGroup;
  x: ArrayLike<number>;
  /** Who the face is: one person's faces stay on one side of the inner folds. */
  person?: string;
}

export interface SameSplitOptions {
  /**
   * Weigh the classes alike in the fit (see `LogisticOptions.balanced`), for groups that leave
   * a class outnumbered in training, as held-out sources do.
   * @default false
   */
  balanced?: boolean;
  /**
   * Leave out of each fit the training rows of people who are in the held-out group: a person
   * listed by two sources would otherwise be met again and answered by who they are.
   * @default false
   */
  keepPeopleApart?: boolean;
}

/**
 * Each held-out group with its training rows: every other group (only `train` against the test
 * split), less the held-out people's other faces with `keepPeopleApart`; groups whose training
 * rows hold fewer than two classes are left out.
 */
function* heldOutGroups<
  R extends { group: HeldOutGroup; label: number; id: string; person?: string },
>(
  rows: readonly R[],
  { keepPeopleApart = false }: SameSplitOptions,
): Generator<{ train: R[]; test: R[] }> {
  for (const group of [...new Set(rows.map((r) => r.group))].filter((g) => g !== "train")) {
    const test = rows.filter((r) => r.group === group);
    const testPeople = keepPeopleApart ? new Set(test.map((r) => r.person ?? r.id)) : null;
    const train = rows.filter((r) =>
      r.group !== group && (group !== "test" || r.group === "train") &&
      !testPeople?.has(r.person ?? r.id)
    );
    if (train.length > 0 && test.length > 0 && new Set(train.map((r) => r.label)).size >= 2) {
      yield { train, test };
    }
  }
}

/**
 * Fits a logistic regression on each held-out group's complement and predicts the group: the
 * same split as the face models (the folds, or train+val → test). Its penalty is chosen by
 * cross-validation inside the training rows, grouped by person, exactly as the probes'
 * (models/training/probe_fit.ts): a baseline fitted less carefully than the model it is held
 * against would flatter the model. Gives each held-out row's predicted class, and with
 * `probabilities` its class probabilities too.
 */
export function fitOnSameSplit(
  rows: readonly SameSplitRow[],
  classes: number,
  options: SameSplitOptions = {},
  probabilities?: Map<string, Float64Array>,
): Map<string, number> {
  const { balanced = false } = options;
  const predictions = new Map<string, number>();
  for (const { train, test } of heldOutGroups(rows, options)) {
    const { model } = LogisticRegression.fitCv(
      train.map((r) => r.x),
      train.map((r) => r.label),
      classes,
      { groups: train.map((r) => r.person ?? r.id), balanced },
    );
    model.predict(test.map((r) => r.x)).forEach((p, i) => {
      let best = 0;
      for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
      predictions.set(test[i]!.id, best);
      probabilities?.set(test[i]!.id, p);
    });
  }
  return predictions;
}

/** A row whose features come in blocks (a kind of evidence each), for `fitStackedOnSameSplit`. */
export interface BlockRow {
  id: string;
  label: number;
  group: HeldOutGroup;
  person?: string;
  /** Each block's features, in the same block order on every row. */
  blocks: readonly ArrayLike<number>[];
}

/** One block's fit on a group's complement: answers for the training rows (out of fold) and the test rows. */
interface BlockAnswers {
  train: Float64Array[];
  test: Float64Array[];
}

/** Each class's log-odds against the first, the stacker's features from one block's answers. */
function logOdds(p: Float64Array): number[] {
  const first = Math.log(Math.max(p[0]!, 1e-6));
  return Array.from(p.subarray(1), (q) => Math.log(Math.max(q, 1e-6)) - first);
}

function blockAnswers(
  train: readonly BlockRow[],
  test: readonly BlockRow[],
  block: number,
  classes: number,
  balanced: boolean,
): BlockAnswers {
  const x = train.map((r) => r.blocks[block]!);
  const { model, scores } = LogisticRegression.fitCv(x, train.map((r) => r.label), classes, {
    groups: train.map((r) => r.person ?? r.id),
    balanced,
    outOfFold: true,
    grid: STACK_GRID,
  });
  const outOfFold = scores.find((s) => s.l2 === model.l2)?.outOfFold;
  const inSample = model.predict(x);
  return {
    // A row no inner fit held out (too few people of a class) gets the in-sample answer.
    train: inSample.map((p, i) => outOfFold?.[i] ?? p),
    test: model.predict(test.map((r) => r.blocks[block]!)),
  };
}

/**
 * Stacked generalisation on the same split as `fitOnSameSplit`: within each held-out group's
 * complement, one logistic regression per block (its penalty by inner cross-validation), then
 * a second one on the blocks' out-of-fold log-odds, which learns how far to trust each block.
 * One regression on all blocks at once would take one penalty for all: the one that suits a
 * block of hundreds of weak features (pixels, embeddings) shrinks a block of a dozen strong
 * ones, and a mix then scores below its best part. `stacks` names the blocks each stack
 * combines; gives each stack's predicted class per held-out row, in the order of `stacks`.
 */
export function fitStackedOnSameSplit(
  rows: readonly BlockRow[],
  classes: number,
  stacks: readonly (readonly number[])[],
  options: SameSplitOptions = {},
): Map<string, number>[] {
  const { balanced = false } = options;
  const predictions = stacks.map(() => new Map<string, number>());
  const used = [...new Set(stacks.flat())];
  for (const { train, test } of heldOutGroups(rows, options)) {
    const answers = new Map(used.map((b) => [b, blockAnswers(train, test, b, classes, balanced)]));
    stacks.forEach((stack, s) => {
      const features = (side: "train" | "test", i: number) =>
        stack.flatMap((b) => logOdds(answers.get(b)![side][i]!));
      const { model } = LogisticRegression.fitCv(
        train.map((_, i) => features("train", i)),
        train.map((r) => r.label),
        classes,
        { groups: train.map((r) => r.person ?? r.id), balanced },
      );
      model.predict(test.map((_, i) => features("test", i))).forEach((p, i) => {
        let best = 0;
        for (let c = 1; c < p.length; c++) if (p[c]! > p[best]!) best = c;
        predictions[s]!.set(test[i]!.id, best);
      });
    });
  }
  return predictions;
}
