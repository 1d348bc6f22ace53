/**
 * The data dir's trained models, for the web app: loaded on first use, reloaded when a run (or
 * `forget`) replaces or removes them. Uploads go through `Predictor` (pipeline/predictor.ts),
 * the code path of `deno task predict`; stored faces are classified from their cached crop and
 * descriptor, as the evaluation does.
 */
import { join } from "node:path";
import { initEngine } from "../models/engine.ts";
import { type Classifier, inputsOf, MODEL_KINDS, ModelLoadError } from "../models/classifier.ts";
import { loadModel } from "../models/ensemble.ts";
import { type PredictionLine, Predictor } from "../pipeline/predictor.ts";
import type { ManifestRow } from "../store/manifest.ts";
import type { StoreView } from "./store_view.ts";

/** The model kinds a run trains under `models/<kind>/` (fold models are for evaluation only). */
/** The model folders the app looks for: every kind a run can train. */
export { MODEL_KINDS };

export interface LoadedModel {
  kind: string;
  dir: string;
  classifier: Classifier;
  predictor: Predictor;
  /** Fingerprint of its metadata.json when loaded. */
  version: string;
}

/** One model's answer for one face. */
export interface ModelAnswer {
  label: string;
  probability: number;
  /** Class → probability, most likely first. */
  probabilities: Record<string, number>;
}

/** A face found in an uploaded image, with every model's answer. */
export interface UploadFace {
  box: { x: number; y: number; width: number; height: number };
  score: number;
  answers: Record<string, ModelAnswer>;
}

async function versionOf(dir: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(join(dir, "metadata.json"));
    return `${info.mtime?.getTime()}:${info.size}`;
  } catch {
    return undefined;
  }
}

export function rankAnswer(classes: string[], probabilities: ArrayLike<number>): ModelAnswer {
  const ranked = Array.from(probabilities, (p, c) => [classes[c]!, p] as const)
    .sort((a, b) => b[1] - a[1]);
  const round = (p: number) => Number(p.toFixed(4));
  return {
    label: ranked[0]![0],
    probability: round(ranked[0]![1]),
    probabilities: Object.fromEntries(ranked.map(([label, p]) => [label, round(p)])),
  };
}

export class ModelSet {
  #loaded = new Map<string, LoadedModel>();
  #engine: Promise<unknown> | undefined;
  #refresh: Promise<LoadedModel[]> | undefined;
  /** Why a model folder could not be used, by kind, to show instead of its answers. */
  readonly problems = new Map<string, string>();

  constructor(readonly view: StoreView) {}

  /** The models present now, (re)loading those that changed; gone ones are dropped. */
  models(): Promise<LoadedModel[]> {
    // One refresh at a time, so two requests never load the same model twice.
    this.#refresh ??= this.#reload().finally(() => this.#refresh = undefined);
    return this.#refresh;
  }

  async #reload(): Promise<LoadedModel[]> {
    const models: LoadedModel[] = [];
    for (const kind of MODEL_KINDS) {
      const dir = join(this.view.paths.models, kind);
      const version = await versionOf(dir);
      const current = this.#loaded.get(kind);
      if (current && current.version === version) {
        models.push(current);
        continue;
      }
      current?.classifier.dispose();
      this.#loaded.delete(kind);
      this.problems.delete(kind);
      if (version === undefined) continue;
      this.#engine ??= initEngine();
      await this.#engine;
      try {
        const classifier = await loadModel(dir);
        const loaded = { kind, dir, classifier, predictor: new Predictor(classifier), version };
        this.#loaded.set(kind, loaded);
        models.push(loaded);
      } catch (error) {
        if (!(error instanceof ModelLoadError)) throw error;
        this.problems.set(kind, error.message); // A run is writing it, or it is broken.
      }
    }
    return models;
  }

  /** Every model's answer for a stored face; empty when it has no crop or there is no model. */
  async predictStored(row: ManifestRow): Promise<Record<string, ModelAnswer>> {
    const input = await this.#storedInput(row);
    if (!input) return {};
    const answers: Record<string, ModelAnswer> = {};
    for (const model of await this.models()) {
      const [probabilities] = await model.classifier.predict([input]);
      answers[model.kind] = rankAnswer(model.classifier.metadata.classes, probabilities!);
    }
    return answers;
  }

  async #storedInput(row: ManifestRow) {
    if (!row.sha256) return undefined;
    const [cropPath, entry] = await Promise.all([
      this.view.cropPath(row.sha256),
      this.view.faceEntry(row.sha256),
    ]);
    if (!cropPath || entry?.status !== "ok") return undefined;
    const { descriptor, embeddings } = entry.record;
    return { crop: await Deno.readFile(cropPath), descriptor, embeddings };
  }

  /**
   * The faces in uploaded bytes with every model's answer, through `Predictor` as
   * `deno task predict` runs it: the faces are found once, then each model classifies them.
   * Throws `InputError` for bytes that are not a usable image.
   */
  async predictUpload(bytes: Uint8Array): Promise<{ faces: UploadFace[]; noFace?: string }> {
    const models = await this.models();
    if (models.length === 0) return { faces: [] };
    // The faces are found once, with what every model reads: the descriptor, the networks.
    const inputs = models.map((m) => inputsOf(m.classifier.metadata));
    const describe = inputs.some((input) => input.describe);
    const networks = [...new Set(inputs.flatMap((input) => input.networks))];
    const found = await models[0]!.predictor.findFaces(bytes, { describe, networks });
    if (found.result === "no_face") return { faces: [], noFace: found.reason };
    const faces: UploadFace[] = [];
    for (const model of models) {
      const lines: PredictionLine[] = await model.predictor.classify("upload", found);
      for (const line of lines) {
        if (!("result" in line) || line.result === "no_face") continue;
        const face = faces[line.face - 1] ??= { box: line.box, score: line.score, answers: {} };
        face.answers[model.kind] = {
          label: line.label,
          probability: line.probability,
          probabilities: line.probabilities,
        };
      }
    }
    return { faces };
  }

  /** Drops every loaded model, e.g. after `forget` removed them. */
  reset(): void {
    for (const model of this.#loaded.values()) model.classifier.dispose();
    this.#loaded.clear();
  }
}
