/**
 * `--format hf`: Hugging Face's imagefolder layout, `{train,val,test}/<category>/<id>.png` with
 * a `metadata.csv` in each split folder whose `file_name` names the image (relative to it), and
 * every kept manifest column beside it, so `load_dataset("imagefolder", data_dir=OUT)` gives
 * the images with their metadata and the split from the folder names.
 */
import { stringify } from "csv-stringify/sync";
import {
  faceBox,
  type FormatContext,
  type FormatWriter,
  KEPT_COLUMNS,
  metadataOf,
  type OutDir,
  rel,
} from "./format.ts";
import { imageFiles } from "./imagefolder.ts";

const COLUMNS = [
  "file_name",
  ...KEPT_COLUMNS,
  "box_x",
  "box_y",
  "box_width",
  "box_height",
] as const;

/** Writes one HF imagefolder tree (two with `--what both`) under `base`, metadata row by row. */
export function hfWriter(out: OutDir, base: string, context: FormatContext): FormatWriter {
  const metadata = new Map<string, Deno.FsFile>();
  const encoder = new TextEncoder();
  const append = async (file: string, row: Record<string, string | number>) => {
    let handle = metadata.get(file);
    let text = stringify([row], { columns: [...COLUMNS] });
    if (!handle) {
      handle = await out.createNew(file);
      metadata.set(file, handle);
      text = stringify([row], { columns: [...COLUMNS], header: true });
    }
    const bytes = encoder.encode(text);
    for (let done = 0; done < bytes.length;) done += await handle.write(bytes.subarray(done));
  };
  return {
    async add(item) {
      const files: string[] = [];
      const box = faceBox(item);
      for (const { tree, name, image } of imageFiles(item, context)) {
        const file = rel(base, tree, item.split, name);
        await out.writeNew(file, image.bytes);
        const { split: _split, ...meta } = metadataOf(item);
        await append(rel(base, tree, item.split, "metadata.csv"), {
          file_name: name,
          ...meta,
          box_x: box?.[0] ?? "",
          box_y: box?.[1] ?? "",
          box_width: box?.[2] ?? "",
          box_height: box?.[3] ?? "",
        });
        files.push(file, `${rel(base, tree, item.split, "metadata.csv")}#${item.row.id}`);
      }
      return files;
    },
    close() {
      for (const handle of metadata.values()) handle.close();
      return Promise.resolve();
    },
  };
}
