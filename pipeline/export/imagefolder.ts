/**
 * `--format imagefolder`: `{train,val,test}/<category>/<id>.png`, the seed study's layout, which
 * torchvision's `ImageFolder` and Keras' `image_dataset_from_directory` read as it is. With
 * `--what both`, the crops and the originals are two such trees, `crops/` and `originals/`.
 */
import { type FormatContext, type FormatWriter, imageKinds, type OutDir, rel } from "./format.ts";
import type { ExportImage, ExportItem } from "./records.ts";

/** The image files of one item, relative to `base`: [kind folder, image] for each kind. */
export function imageFiles(
  item: ExportItem,
  context: FormatContext,
): { tree: string; name: string; image: ExportImage }[] {
  return imageKinds(context.what).map((kind) => {
    const image = kind === "crop" ? item.crop : item.original;
    if (!image) throw new TypeError(`Cannot export ${item.row.id}: its ${kind} was not read`);
    return {
      tree: context.what === "both" ? (kind === "crop" ? "crops" : "originals") : "",
      name: `${item.categoryDir}/${item.key}.${image.ext}`,
      image,
    };
  });
}

/** Writes one ImageFolder tree (or two, with `--what both`) under `base`. */
export function imageFolderWriter(out: OutDir, base: string, context: FormatContext): FormatWriter {
  return {
    async add(item) {
      const files: string[] = [];
      for (const { tree, name, image } of imageFiles(item, context)) {
        const file = rel(base, tree, item.split, name);
        await out.writeNew(file, image.bytes);
        files.push(file);
      }
      return files;
    },
    close: () => Promise.resolve(),
  };
}
