/**
 * The verdict's ladder: what the group is predicted from when the face is left out, and what
 * the face adds to it. Three fits on the same held-out faces, each fitted as the probes are
 * (pipeline/same_split.ts): the estimated demographics; every no-face block (the
 * demographics, image statistics, the photo with the face masked, the head's pose), stacked;
 * and those with the face's own blocks (face-api's descriptor, the shipped networks'
 * embeddings, the landmarks), stacked. The third minus the second is what the face adds. The same fits on sources
 * never seen in training show a style that one category's sources share (the no-face fit keeps
 * it) and a face signal behind per-site styles (the style does not carry over, the face does).
 */
import type { SplitRecord } from "../core/types.ts";
import type { StoredFace } from "../models/dataset.ts";
import { GEAR_ETHNICITIES } from "../models/faces/face_networks.ts";
import { headPose } from "../models/faces/head_pose.ts";
import type { Attributes } from "../stages/validity.ts";
import type { LadderPredictions } from "../stages/verdict.ts";
import {
  type BlockRow,
  fitOnSameSplit,
  fitStackedOnSameSplit,
  type HeldOutGroup,
  type SameSplitOptions,
} from "./same_split.ts";

/** The shipped networks' outputs that are the face's own (not its ethnicity, not the photo). */
const FACE_NETWORKS = ["faceres", "mobilefacenet", "landmarks"] as const;

export interface LadderInput {
  records: SplitRecord[];
  /** The faces' descriptors and embeddings (a `FaceStore`, or its faces without their crops). */
  store: { faces: readonly Pick<StoredFace, "id" | "descriptor" | "embeddings">[] };
  classes: string[];
  attributes?: ReadonlyMap<string, Attributes>;
  /** Each record's photo features: image statistics and the masked photo, by record id. */
  photo: ReadonlyMap<string, { statistics: ArrayLike<number>; masked: ArrayLike<number> }>;
  /** Each record's random-split group: its fold, the test split, or train. */
  groupOf: (record: SplitRecord) => HeldOutGroup;
  /** Each record's held-out-sources run (index), or train for sources never held out; null without the check. */
  sourceRunOf: ((record: SplitRecord) => HeldOutGroup) | null;
}

export interface LadderFits {
  random: LadderPredictions;
  unseen: LadderPredictions | null;
  /** How many features each block has. */
  widths: { demographics: number; photo: number; face: number };
}

/** One record's feature blocks: no-face blocks first (the demographics' first where any), then the face's. */
interface Blocks {
  record: SplitRecord;
  blocks: ArrayLike<number>[];
}

/** Which blocks are whose, the same for every record. */
interface Layout {
  demographics: boolean;
  noFace: number;
  face: number;
  widths: LadderFits["widths"];
}

function demographicBlock(a: Attributes | undefined, withEthnicity: boolean): number[] {
  if (!a) return [];
  const female = a.femaleProbability ?? (a.gender === "female" ? 1 : 0);
  const ethnicity = withEthnicity ? GEAR_ETHNICITIES.map((e) => a.ethnicity === e ? 1 : 0) : [];
  return [female, a.age, a.age * a.age / 100, ...ethnicity];
}

/** The records whose every block can be read, with their blocks, and the blocks' layout. */
function blocksOf(input: LadderInput): { rows: Blocks[]; layout: Layout } {
  const faces = new Map(input.store.faces.map((face) => [face.id, face]));
  const attributes = input.attributes ?? new Map<string, Attributes>();
  const withAttributes = attributes.size > 0;
  const withEthnicity = [...attributes.values()].some((a) => a.ethnicity !== undefined);
  const first = input.store.faces[0];
  const networks = FACE_NETWORKS.filter((name) => first?.embeddings?.[name]);
  const withPose = networks.includes("landmarks");
  const rows = input.records.flatMap((record): Blocks[] => {
    const face = faces.get(record.id);
    const photo = input.photo.get(record.id);
    const a = attributes.get(record.id);
    if (!face || !photo || (withAttributes && !a)) return [];
    const embeddings = networks.map((name) => face.embeddings?.[name]);
    if (embeddings.some((e) => !e)) return [];
    const pose = withPose ? headPose(face.embeddings!.landmarks!, record.faceAngle) : undefined;
    if (withPose && !pose) return [];
    return [{
      record,
      blocks: [
        ...(withAttributes ? [demographicBlock(a, withEthnicity)] : []),
        photo.statistics,
        photo.masked,
        ...(pose ? [pose] : []),
        face.descriptor,
        ...embeddings.map((e) => e!),
      ],
    }];
  });
  const noFace = (withAttributes ? 1 : 0) + 2 + (withPose ? 1 : 0);
  const widthOf = (from: number, to: number) =>
    rows[0]?.blocks.slice(from, to).reduce((sum, b) => sum + b.length, 0) ?? 0;
  return {
    rows,
    layout: {
      demographics: withAttributes,
      noFace,
      face: 1 + networks.length,
      widths: {
        demographics: withAttributes ? widthOf(0, 1) : 0,
        photo: widthOf(withAttributes ? 1 : 0, noFace),
        face: widthOf(noFace, noFace + 1 + networks.length),
      },
    },
  };
}

/** The three fits on one grouping of the records. */
function fitLadder(
  rows: Blocks[],
  layout: Layout,
  classes: number,
  groupOf: (record: SplitRecord) => HeldOutGroup,
  options: SameSplitOptions,
  labelOf: (record: SplitRecord) => number,
): LadderPredictions {
  const blockRows: BlockRow[] = rows.map((b) => ({
    id: b.record.id,
    person: b.record.identity,
    label: labelOf(b.record),
    group: groupOf(b.record),
    blocks: b.blocks,
  }));
  const demographics = layout.demographics
    ? fitOnSameSplit(blockRows.map((r) => ({ ...r, x: r.blocks[0]! })), classes, options)
    : null;
  const noFaceBlocks = Array.from({ length: layout.noFace }, (_, i) => i);
  const allBlocks = Array.from({ length: layout.noFace + layout.face }, (_, i) => i);
  const photoBlocks = noFaceBlocks.slice(layout.demographics ? 1 : 0);
  const [noFace, withFace, photo] = fitStackedOnSameSplit(
    blockRows,
    classes,
    [noFaceBlocks, allBlocks, ...(layout.demographics ? [photoBlocks] : [])],
    options,
  ) as [Map<string, number>, Map<string, number>, Map<string, number>?];
  const actual = new Map(
    blockRows.filter((r) => noFace.has(r.id) && withFace.has(r.id)).map((r) => [r.id, r.label]),
  );
  return { actual, demographics, noFace, withFace, photo: photo ?? noFace };
}

/**
 * The ladder on one grouping: the random split (`random`), or held-out sources (`unseen`, null
 * without `sourceRunOf`), the latter fitted with balanced class weights, since a held-out run
 * can leave a class outnumbered in training. The two are independent: they can run apart.
 */
export function ladderFitOn(
  input: LadderInput,
  on: "random" | "unseen",
): { predictions: LadderPredictions | null; widths: LadderFits["widths"] } {
  const classIndex = new Map(input.classes.map((c, i) => [c, i]));
  const labelOf = (record: SplitRecord) => classIndex.get(record.category)!;
  const { rows, layout } = blocksOf(input);
  const groupOf = on === "random" ? input.groupOf : input.sourceRunOf;
  const predictions = groupOf
    ? fitLadder(rows, layout, input.classes.length, groupOf, {
      balanced: on === "unseen",
      keepPeopleApart: on === "unseen",
    }, labelOf)
    : null;
  return {
    predictions: on === "unseen" && predictions?.actual.size === 0 ? null : predictions,
    widths: layout.widths,
  };
}

/** The ladder on the random split, and on held-out sources where `sourceRunOf` is given. */
export function ladderFits(input: LadderInput): LadderFits {
  const random = ladderFitOn(input, "random");
  return {
    random: random.predictions!,
    unseen: ladderFitOn(input, "unseen").predictions,
    widths: random.widths,
  };
}
