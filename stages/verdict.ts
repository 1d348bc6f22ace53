/**
 * The verdict's shape: one answer per run to the question facefield exists for. When a model
 * guesses the group from a face, is it reading the face, or the photo and the demographics?
 * metrics.json keeps it as `verdict`, the report, the web app and the terminal lead with it.
 * The figures it rests on are fitted in pipeline/checks.ts; the words and the chart are drawn
 * in report/verdict.ts.
 */
import { binomialUpperTail, facesNeededFor, holm } from "../core/statistics.ts";
import {
  type Accuracy,
  accuracyOn,
  type LadderPredictions,
  type PairedDifference,
  pairedDifference,
} from "./held_out_accuracy.ts";
import { unseenFigures, type UnseenInput, type UnseenSources } from "./unseen_sources.ts";

export type { Accuracy, LadderPredictions, PairedDifference, UnseenInput, UnseenSources };
export { accuracyOn, balancedAccuracyOn, pairedDifference } from "./held_out_accuracy.ts";

/** What the run concludes. */
export type Conclusion =
  /** The headline model does not beat chance, and nothing that sees no face does either. */
  | "no-signal"
  /** The photo explains the accuracy: a model that sees no face comes close, or the model fails on new sources. */
  | "photo"
  /** The estimated age, gender and ethnicity explain it. */
  | "demographics"
  /** The face adds significantly beyond the photo and the demographics (the photo may carry signal too). */
  | "face"
  /** Too few faces to tell; `facesNeeded` says how many the effect seen would need. */
  | "undetermined";

export const CONCLUSIONS: readonly Conclusion[] = [
  "no-signal",
  "photo",
  "demographics",
  "face",
  "undetermined",
];

/** One step of the accuracy ladder: chance, then + demographics, + the photo, + the face. */
export interface Rung {
  key: "chance" | "demographics" | "photo" | "face";
  /** As the chart labels it. */
  label: string;
  accuracy: number;
  /** Wilson 95 % interval; null for chance. */
  ci95: [number, number] | null;
  /** Faces it was measured on (0 for chance). */
  n: number;
}

/** A test the conclusion uses, with its raw and Holm-corrected p. */
export interface VerdictTest {
  name: string;
  pValue: number;
  holmP: number;
  significant: boolean;
}

export interface Verdict {
  conclusion: Conclusion;
  /** With `face`: the photo (or the demographics) carries signal as well. */
  alsoNoFace: boolean;
  /** One plain sentence a person without statistics reads right. */
  headline: string;
  /** One line of why. */
  why: string;
  /** The model kind the headline speaks for. */
  model: string;
  /** The rule that chose it, fixed before any test face is scored. */
  modelRule: string;
  chance: number;
  /** chance → + demographics → + the photo → + the face, each on the same held-out faces. */
  ladder: Rung[];
  /** (no-face + face) − no-face on the random split's held-out faces; null where not made. */
  faceAdds: PairedDifference | null;
  /**
   * Shares of the headline model's accuracy above chance that the demographics and the photo
   * (on top of the demographics) account for; null where the model is at chance.
   */
  explainedBy: { demographics: number | null; photo: number | null };
  unseenSources: UnseenSources | null;
  /** With `undetermined`: faces that the effect seen would need to be found (80 % power). */
  facesNeeded: number | null;
  tests: VerdictTest[];
  /** The figures the conclusion rests on, and the per-model detail lines. */
  evidence: { lines: string[]; perModel: string[] };
}

export interface VerdictInput {
  /** Number of classes. */
  classes: number;
  /** The headline model, chosen by `headlineModel` before any face was scored. */
  model: {
    kind: string;
    rule: string;
    /** Its held-out predictions on the random split, by record id. */
    predictions: ReadonlyMap<string, number>;
    /** Its labels' true classes, by record id. */
    actual: ReadonlyMap<string, number>;
  };
  /** The ladder on the random split; null where the checks did not run. */
  ladder: LadderPredictions | null;
  /** The same on sources never seen in training, with the face models' answers there. */
  unseen: UnseenInput | null;
  /** Per-model detail lines for `evidence`. @default [] */
  perModel?: string[];
  /** @default 0.05 */
  alpha?: number;
}

/** Whether a model kind sees the face alone; `context` and `portrait` read the photo around it. */
export function seesFaceAlone(kind: string): boolean {
  return kind !== "context" && kind !== "portrait";
}

/**
 * The rule that names the model a verdict speaks for, fixed before any face is scored: the
 * ensemble where the run trains it (it averages every face probe), else the first face model
 * the user listed; the models that read the photo around the face come last.
 */
export function headlineModel(kinds: readonly string[]): { kind: string; rule: string } {
  if (kinds.length === 0) throw new RangeError("Cannot name a headline model among none");
  if (kinds.includes("ensemble")) {
    return { kind: "ensemble", rule: "the ensemble of the face probes, as the run trains it" };
  }
  const face = kinds.find(seesFaceAlone);
  return face
    ? { kind: face, rule: "the first face model listed (no ensemble in this run)" }
    : { kind: kinds[0]!, rule: "the first model listed (no face-only model in this run)" };
}

const pct = (value: number) => `${(value * 100).toFixed(1)} %`;
const points = (value: number) => `${value >= 0 ? "+" : "−"}${Math.abs(value * 100).toFixed(1)}`;

/** The ladder's rungs on the random split, each measured on the same faces. */
function rungsOf(ladder: LadderPredictions | null, chance: number): Rung[] {
  const rungs: Rung[] = [{ key: "chance", label: "chance", accuracy: chance, ci95: null, n: 0 }];
  if (!ladder) return rungs;
  const add = (key: Rung["key"], label: string, predicted: ReadonlyMap<string, number> | null) => {
    const score = predicted && accuracyOn(ladder.actual, predicted);
    if (score) rungs.push({ key, label, accuracy: score.accuracy, ci95: score.ci95, n: score.n });
  };
  add("demographics", "+ demographics", ladder.demographics);
  add("photo", "+ the photo", ladder.noFace);
  add("face", "+ the face", ladder.withFace);
  return rungs;
}

/** The figures the conclusion reads, gathered once. */
interface Figures {
  chance: number;
  model: Accuracy;
  /** The headline model on the ladder's faces, for shares measured on the same faces. */
  modelOnLadder: Accuracy | null;
  demographics: Accuracy | null;
  noFace: Accuracy | null;
  /** The photo's blocks without the demographics. */
  photoAlone: Accuracy | null;
  faceAdds: PairedDifference | null;
  unseen: UnseenSources | null;
  tests: VerdictTest[];
}

/** Gathers the figures and corrects the tests the conclusion uses with Holm's method. */
function figuresOf(input: VerdictInput): Figures {
  const { alpha = 0.05 } = input;
  const chance = 1 / input.classes;
  const model = accuracyOn(input.model.actual, input.model.predictions);
  if (!model) throw new RangeError(`Cannot judge '${input.model.kind}': it answered no face`);
  const ladder = input.ladder;
  const figures: Figures = {
    chance,
    model,
    modelOnLadder: ladder && accuracyOn(ladder.actual, input.model.predictions),
    demographics: ladder?.demographics ? accuracyOn(ladder.actual, ladder.demographics) : null,
    noFace: ladder && accuracyOn(ladder.actual, ladder.noFace),
    photoAlone: ladder && accuracyOn(ladder.actual, ladder.photo ?? ladder.noFace),
    faceAdds: ladder && pairedDifference(ladder.actual, ladder.withFace, ladder.noFace),
    unseen: unseenFigures(input.unseen, input.model, chance),
    tests: [],
  };
  const raw: [string, number][] = [
    ["the model beats chance", binomialUpperTail(model.correct, model.n, chance)],
  ];
  const { noFace, faceAdds, unseen } = figures;
  if (noFace) {
    raw.push([
      "what sees no face beats chance",
      binomialUpperTail(noFace.correct, noFace.n, chance),
    ]);
  }
  if (faceAdds) raw.push(["the face adds to what sees no face", faceAdds.pValue]);
  if (unseen) raw.push(["the model beats chance on sources it never saw", unseen.pValue]);
  if (unseen?.faceEvidence) {
    raw.push(["the face adds on sources it never saw", unseen.faceEvidence.pValue]);
  }
  const adjusted = holm(raw.map(([, p]) => p));
  figures.tests = raw.map(([name, pValue], i) => ({
    name,
    pValue,
    holmP: adjusted[i]!,
    significant: adjusted[i]! < alpha,
  }));
  if (faceAdds) {
    faceAdds.holmP = adjusted[raw.findIndex(([n]) => n.startsWith("the face adds to"))]!;
  }
  if (unseen?.faceEvidence) {
    unseen.faceEvidence.faceAdds.holmP = adjusted[
      raw.findIndex(([n]) => n.endsWith("adds on sources it never saw"))
    ]!;
  }
  return figures;
}

/** Within this many accuracy points of the model, what sees no face explains it. */
const CLOSE = 0.05;

/** The conclusion the figures support (see `Conclusion`). */
function conclude(figures: Figures): { conclusion: Conclusion; alsoNoFace: boolean } {
  const significant = (prefix: string) =>
    figures.tests.some((t) => t.name.startsWith(prefix) && t.significant);
  // Only a face model above chance on every held-out source is tested (`faceEvidence`).
  const onNewSources = significant("the face adds on sources it never saw");
  const faceAdds = significant("the face adds to") || onNewSources;
  const noFaceSignal = significant("what sees no face");
  const modelSignal = significant("the model beats chance");
  if (faceAdds) return { conclusion: "face", alsoNoFace: noFaceSignal };
  if (!modelSignal && !noFaceSignal) return { conclusion: "no-signal", alsoNoFace: false };
  const { chance, demographics, noFace } = figures;
  const model = figures.modelOnLadder ?? figures.model;
  if (noFaceSignal && noFace && (!modelSignal || noFace.accuracy >= model.accuracy - CLOSE)) {
    // The demographics where they alone come close to the model and to the photo alone. The
    // estimates read the photo too (a colour cast moves an estimated age), so they can echo a
    // style the photo shows better; and the photo shows gender too (hair, clothes).
    const byDemographics = demographics?.accuracy ?? chance;
    const byPhoto = figures.photoAlone?.accuracy ?? noFace.accuracy;
    const demographic = byDemographics >= model.accuracy - CLOSE &&
      byDemographics >= byPhoto - CLOSE;
    return { conclusion: demographic ? "demographics" : "photo", alsoNoFace: false };
  }
  return { conclusion: "undetermined", alsoNoFace: noFaceSignal };
}

/** Shares of the model's accuracy above chance that the demographics and the photo explain. */
function sharesOf(figures: Figures): Verdict["explainedBy"] {
  const model = figures.modelOnLadder ?? figures.model;
  const above = model.accuracy - figures.chance;
  if (above <= 0 || !figures.noFace) return { demographics: null, photo: null };
  const clip = (v: number, top: number) => Math.max(0, Math.min(top, v));
  const demographics = clip(
    ((figures.demographics?.accuracy ?? figures.chance) - figures.chance) / above,
    1,
  );
  const photo = clip(
    (figures.noFace.accuracy - (figures.demographics?.accuracy ?? figures.chance)) / above,
    1 - demographics,
  );
  return { demographics, photo };
}

/** Faces needed to tell whether the face adds the gain the model shows over what sees no face. */
function neededFaces(figures: Figures): number | null {
  const model = figures.modelOnLadder ?? figures.model;
  const { faceAdds } = figures;
  const gain = faceAdds && faceAdds.difference > 0.01
    ? faceAdds.difference
    : model.accuracy - (figures.noFace?.accuracy ?? figures.chance);
  if (gain <= 0) return null;
  const discordant = faceAdds && faceAdds.difference > 0.01
    ? faceAdds.discordant
    : 2 * (1 - model.accuracy) + gain;
  return facesNeededFor(gain, discordant, 0.05 / Math.max(1, figures.tests.length));
}

/** The headline and its one line of why, in words a person without statistics reads right. */
function wordsOf(
  conclusion: Conclusion,
  alsoNoFace: boolean,
  figures: Figures,
  kind: string,
  facesNeeded: number | null,
  shares: Verdict["explainedBy"],
): { headline: string; why: string } {
  const { model, noFace, demographics, faceAdds, unseen, chance } = figures;
  const interval = (d: PairedDifference) =>
    `${points(d.difference)} points, 95 % CI ${points(d.ci95[0])} to ${points(d.ci95[1])}`;
  const unseenText = unseen
    ? `; on sources it never saw, ${pct(unseen.balancedAccuracy)} (balanced)`
    : "";
  const why = `The ${kind} model scores ${pct(model.accuracy)} on ${model.n} held-out faces ` +
    `(chance ${pct(chance)})` +
    (noFace ? `; what sees no face scores ${pct(noFace.accuracy)}` : "") +
    (faceAdds ? `; adding the face changes that by ${interval(faceAdds)}` : "") + unseenText + ".";
  // The demographics alone tell the groups about as well as the photo alone: name both. Where
  // the photo alone does better, estimates taken from the photo may only echo its style.
  const bothTell = demographics !== null && figures.photoAlone !== null &&
    demographics.accuracy >= figures.photoAlone.accuracy - CLOSE &&
    demographics.accuracy - chance >= 0.25 * (model.accuracy - chance);
  const evidence = unseen?.faceEvidence ?? null;
  const onRandomSplit = faceAdds !== null && faceAdds.holmP < 0.05;
  const face = onRandomSplit ? faceAdds : evidence?.faceAdds ?? faceAdds;
  const where = onRandomSplit || !evidence
    ? ""
    : ` on sources it never saw${evidence.model === kind ? "" : ` (the ${evidence.model} model)`}`;
  const headline: Record<Conclusion, string> = {
    face: `Yes: the face itself tells the groups apart${
      alsoNoFace ? ", and the photo or the demographics do too" : ""
    }. The face adds ${
      face ? `${points(face.difference)} points` : "accuracy"
    } to what the photo and the demographics predict${where}.`,
    photo: `No: the model reads the photo${
      bothTell ? " and the demographics" : ""
    }, not the face. A model that never sees a face scores ${
      pct(noFace?.accuracy ?? chance)
    }, against its ${pct(model.accuracy)}.`,
    demographics: `No: the model reads age, gender and ethnicity, not the face itself. ` +
      `Those estimates alone score ${pct(demographics?.accuracy ?? chance)}, against its ` +
      `${pct(model.accuracy)}${
        noFace && shares.photo !== null && shares.photo >= 0.25
          ? `; with the photo, what sees no face scores ${pct(noFace.accuracy)}`
          : ""
      }.`,
    "no-signal": `No: nothing here tells the groups apart. The ${kind} model scores ` +
      `${pct(model.accuracy)}, and chance is ${pct(chance)}.`,
    undetermined: `Too few faces to tell whether the face adds anything to the photo and the ` +
      `demographics${facesNeeded ? `: about ${facesNeeded} faces would be needed` : ""}.`,
  };
  return { headline: headline[conclusion], why };
}

/** The evidence's plain lines: each figure the conclusion rests on. */
function evidenceLines(figures: Figures, rungs: Rung[]): string[] {
  const lines = rungs.filter((r) => r.key !== "chance").map((r) =>
    `${r.label}: ${pct(r.accuracy)} (95 % CI ${pct(r.ci95![0])}–${pct(r.ci95![1])}, n = ${r.n})`
  );
  if (figures.photoAlone && figures.demographics) {
    const { accuracy, ci95, n } = figures.photoAlone;
    lines.push(
      `the photo alone (no demographics): ${pct(accuracy)} (95 % CI ${pct(ci95[0])}–${
        pct(ci95[1])
      }, n = ${n})`,
    );
  }
  for (const m of figures.unseen?.faceModels ?? []) {
    const above = m.perSource.filter((source) => source.accuracy > figures.chance).length;
    lines.push(
      `on sources it never saw, ${m.model}: ${pct(m.balancedAccuracy)} balanced, above chance ` +
        `on ${above} of ${m.perSource.length} sources (over sources p = ${
          m.sourcesPValue.toPrecision(2)
        })` + (figures.unseen?.faceEvidence?.model === m.model ? "; the face's test" : ""),
    );
  }
  for (const test of figures.tests) {
    lines.push(
      `${test.name}: p = ${test.pValue.toPrecision(2)}, Holm ${test.holmP.toPrecision(2)}` +
        (test.significant ? " (significant)" : " (not significant)"),
    );
  }
  return lines;
}

/**
 * The run's verdict from its figures: Holm-corrected tests, then the rule in `conclude`: the
 * face where it adds significantly to everything that sees no face (on the random split or on
 * sources never seen), no signal where neither the model nor what sees no face beats chance,
 * the photo or the demographics where what sees no face comes within five points of the
 * model, and undetermined otherwise.
 */
export function decideVerdict(input: VerdictInput): Verdict {
  const figures = figuresOf(input);
  const { conclusion, alsoNoFace } = conclude(figures);
  const facesNeeded = conclusion === "undetermined" ? neededFaces(figures) : null;
  const rungs = rungsOf(input.ladder, figures.chance);
  return {
    conclusion,
    alsoNoFace,
    ...wordsOf(conclusion, alsoNoFace, figures, input.model.kind, facesNeeded, sharesOf(figures)),
    model: input.model.kind,
    modelRule: input.model.rule,
    chance: figures.chance,
    ladder: rungs,
    faceAdds: figures.faceAdds,
    explainedBy: sharesOf(figures),
    unseenSources: figures.unseen,
    facesNeeded,
    tests: figures.tests,
    evidence: { lines: evidenceLines(figures, rungs), perModel: input.perModel ?? [] },
  };
}
