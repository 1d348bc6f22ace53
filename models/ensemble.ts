/**
 * The ensemble: the mean of its members' class probabilities. Its members are models trained
 * on the same faces (one fold's, or one run's); nothing is fitted on top, so no weight is chosen
 * on any face. Averaging helps where the members err on different faces: on congress dev the
 * probes on face-api's descriptor and on mobilefacenet disagree on about a quarter of the faces.
 *
 * `portrait` is an ensemble too, whose members include the masked photo's probe (`context`).
 *
 * A saved ensemble is a folder of its own: metadata.json (kind `ensemble`, each member's
 * metadata) and `members/<kind>/`, a copy of each member's saved model, so it loads alone.
 */
import { cp, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  type Classifier,
  type ComposedKind,
  type FaceInput,
  isComposed,
  loadClassifier,
  MODEL_FORMAT,
  ModelLoadError,
  type ModelMetadata,
} from "./classifier.ts";

const METADATA_JSON = "metadata.json";
const MEMBERS_DIR = "members";

export class EnsembleClassifier implements Classifier {
  readonly metadata: ModelMetadata;
  readonly ownsMembers: boolean;

  /**
   * @param members two or more classifiers over the same classes
   * @param options.kind the composed kind it is saved as (`ensemble` or `portrait`)
   * @param options.ownsMembers whether `dispose` disposes them (a loaded ensemble owns its
   *   members; one composed from a run's models shares them with the run)
   */
  constructor(
    readonly members: readonly Classifier[],
    options: { kind?: ComposedKind; ownsMembers?: boolean } = {},
  ) {
    this.ownsMembers = options.ownsMembers ?? false;
    if (members.length < 2) {
      throw new RangeError(`An ensemble needs two or more members: got ${members.length}`);
    }
    const first = members[0]!.metadata;
    const classes = [...first.classes].sort().join("\n");
    for (const member of members) {
      if ([...member.metadata.classes].sort().join("\n") !== classes) {
        throw new RangeError(
          `Cannot average ${member.metadata.kind} with ${first.kind}: their classes differ`,
        );
      }
    }
    const { fit: _fit, ...shared } = first;
    this.metadata = {
      ...shared,
      kind: options.kind ?? "ensemble",
      history: [],
      bestEpoch: 0,
      createdAt: new Date().toISOString(),
      engine: `mean of ${members.map((m) => m.metadata.kind).join(", ")}`,
      members: members.map((member) => member.metadata),
    };
  }

  /** Per face, the members' mean probabilities, in the first member's class order. */
  async predict(faces: FaceInput[]): Promise<Float32Array[]> {
    const classes = this.metadata.classes;
    const means = faces.map(() => new Float32Array(classes.length));
    for (const member of this.members) {
      const order = member.metadata.classes.map((name) => classes.indexOf(name));
      const probabilities = await member.predict(faces);
      probabilities.forEach((p, i) =>
        order.forEach((to, from) => means[i]![to]! += p[from]! / this.members.length)
      );
    }
    return means;
  }

  dispose(): void {
    if (this.ownsMembers) { for (const member of this.members) member.dispose(); }
  }
}

/**
 * Saves an ensemble whose members are saved already, each in its folder: copies them under
 * `dir/members/` and writes the ensemble's metadata last, so its presence marks a whole save.
 */
export async function saveEnsemble(
  ensemble: EnsembleClassifier,
  memberDirs: readonly string[],
  dir: string,
): Promise<void> {
  if (memberDirs.length !== ensemble.members.length) {
    throw new RangeError(
      `saveEnsemble: ${memberDirs.length} folders for ${ensemble.members.length} members`,
    );
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, MEMBERS_DIR), { recursive: true });
  for (const [i, member] of ensemble.members.entries()) {
    await cp(memberDirs[i]!, join(dir, MEMBERS_DIR, member.metadata.kind), { recursive: true });
  }
  await Deno.writeTextFile(
    join(dir, METADATA_JSON),
    JSON.stringify(ensemble.metadata, null, 2) + "\n",
  );
}

/** Loads any saved model: an ensemble with its members, or one classifier. */
export async function loadModel(dir: string): Promise<Classifier> {
  const metadata = await Deno.readTextFile(join(dir, METADATA_JSON))
    .then((text) => JSON.parse(text) as Partial<ModelMetadata>, () => undefined);
  if (!metadata?.kind || !isComposed(metadata.kind)) return await loadClassifier(dir);
  if (metadata.format !== MODEL_FORMAT || !Array.isArray(metadata.members)) {
    throw new ModelLoadError(`${join(dir, METADATA_JSON)} is not an ensemble this version reads`);
  }
  const members: Classifier[] = [];
  try {
    for (const member of metadata.members) {
      members.push(await loadClassifier(join(dir, MEMBERS_DIR, member.kind)));
    }
    return new EnsembleClassifier(members, { kind: metadata.kind, ownsMembers: true });
  } catch (error) {
    for (const member of members) member.dispose();
    if (error instanceof RangeError) throw new ModelLoadError(error.message);
    throw error;
  }
}
