/**
 * The verdict's shape: one answer per run to the question facefield exists for. When a model
 * guesses the group from a face, is it reading the face, or the photo and the demographics?
 * metrics.json keeps it as `verdict`, the report, the web app and the terminal lead with it.
 * The figures it rests on are fitted in pipeline/checks.ts; the words and the chart are drawn
 * in report/verdict.ts.
 */

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

/** A paired difference of two predictors' accuracy on the very same held-out faces. */
export interface PairedDifference {
  /** With the face minus without it, as a fraction (0.05 = five points). */
  difference: number;
  /** Paired 95 % interval of the difference (from the discordant pairs). */
  ci95: [number, number];
  /** One-sided exact McNemar p-value: the face-holding predictor is right more often. */
  pValue: number;
  /** After Holm's correction over the tests the conclusion uses. */
  holmP: number;
  n: number;
  withFace: number;
  withoutFace: number;
}

/** Leave-sources-out: each run holds out one source of every category (balanced). */
export interface UnseenSources {
  /** The model kind these figures are for (the headline model). */
  model: string;
  /** Groups of held-out sources (one source of each category per group where it can). */
  runs: number;
  n: number;
  /** The headline model's balanced accuracy on sources it never saw. */
  balancedAccuracy: number;
  ci95: [number, number];
  /** One-sided binomial p against chance, on its accuracy. */
  pValue: number;
  /** The headline model's balanced accuracy on the random split, on the same faces. */
  randomSplitBalancedAccuracy: number | null;
  /** The no-face baseline fitted on the same held-out-source runs. */
  noFaceBalancedAccuracy: number | null;
  /** No-face + face features against no-face alone, on the held-out sources. */
  faceAdds: PairedDifference | null;
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
