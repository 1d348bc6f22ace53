/**
 * `--format parquet`: one file per split, `<split>.parquet`, a row per face: the crop's PNG
 * bytes (`image`) and/or the original's (`original`), the crop's box in the original, the
 * face stage's descriptor (and other embeddings, as JSON) with `--embeddings`, and the kept
 * manifest columns. Written by hyparquet-writer a row group at a time, so a file of any size
 * holds at most one row group in memory.
 */
import { fileWriter, ParquetWriter, type SchemaElement } from "hyparquet-writer";
import {
  faceBox,
  type FormatContext,
  type FormatWriter,
  KEPT_COLUMNS,
  type OutDir,
  rel,
} from "./format.ts";
import type { ExportItem } from "./records.ts";
import type { SplitName } from "../../core/types.ts";

/** Rows per row group: a few MB of crops, so readers can skip through a big file. */
const ROW_GROUP = 256;

type Value = string | number | Uint8Array | number[] | null;
type Column = { name: string; schema: SchemaElement[]; value: (item: ExportItem) => Value };

const optional = (name: string, type: SchemaElement["type"], extra = {}): SchemaElement[] => [
  { name, type, repetition_type: "OPTIONAL", ...extra },
];
const text = (name: string, value: (item: ExportItem) => string): Column => ({
  name,
  schema: optional(name, "BYTE_ARRAY", { converted_type: "UTF8" }),
  value,
});
const int = (name: string, value: (item: ExportItem) => number | null): Column => ({
  name,
  schema: optional(name, "INT32"),
  value,
});
const double = (name: string, value: (item: ExportItem) => number | null): Column => ({
  name,
  schema: optional(name, "DOUBLE"),
  value,
});
const numberOrNull = (cell: string) =>
  cell === "" || !Number.isFinite(Number(cell)) ? null : Number(cell);

const NUMERIC: Partial<Record<typeof KEPT_COLUMNS[number], "int" | "double">> = {
  width: "int",
  height: "int",
  bytes: "int",
  face_count: "int",
  fold: "int",
  face_score: "double",
  face_angle: "double",
};

/** The file's columns, fixed before the first row: what `context` asks for decides them. */
function columnsFor(context: FormatContext): Column[] {
  const columns: Column[] = [text("key", (i) => i.key), text("split", (i) => i.split)];
  for (const column of KEPT_COLUMNS) {
    const kind = NUMERIC[column];
    const value = (i: ExportItem) => numberOrNull(i.row[column]);
    columns.push(
      kind === "int"
        ? int(column, value)
        : kind === "double"
        ? double(column, value)
        : text(column, (i) => i.row[column]),
    );
  }
  ["box_x", "box_y", "box_width", "box_height"].forEach((name, k) =>
    columns.push(int(name, (i) => faceBox(i)?.[k] ?? null))
  );
  if (context.what !== "originals") {
    columns.push({
      name: "image",
      schema: [{ name: "image", type: "BYTE_ARRAY", repetition_type: "REQUIRED" }],
      value: (i) => i.crop!.bytes,
    });
  }
  if (context.what !== "crops") {
    columns.push({
      name: "original",
      schema: [{ name: "original", type: "BYTE_ARRAY", repetition_type: "REQUIRED" }],
      value: (i) => i.original!.bytes,
    }, text("original_ext", (i) => i.original!.ext));
  }
  if (context.embeddings) {
    columns.push({
      name: "descriptor",
      schema: [
        {
          name: "descriptor",
          repetition_type: "OPTIONAL",
          num_children: 1,
          converted_type: "LIST",
        },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", type: "FLOAT", repetition_type: "REQUIRED" },
      ],
      value: (i) => i.face?.descriptor ?? null,
    }, {
      name: "embeddings",
      schema: optional("embeddings", "BYTE_ARRAY", { converted_type: "JSON" }),
      value: (i) => i.face?.embeddings ? JSON.stringify(i.face.embeddings) : null,
    });
  }
  return columns;
}

/** One split's file: rows gather to a row group, which goes to disk whole. */
class SplitFile {
  readonly #rows: ExportItem[] = [];

  constructor(readonly writer: ParquetWriter, readonly columns: Column[]) {}

  async add(item: ExportItem): Promise<void> {
    this.#rows.push(item);
    if (this.#rows.length >= ROW_GROUP) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#rows.length === 0) return;
    const rows = this.#rows.splice(0);
    await this.writer.write({
      columnData: this.columns.map((column) => ({
        name: column.name,
        data: rows.map(column.value),
        // PNG and JPEG bytes are compressed already: snappy would spend time for nothing.
        ...(column.name === "image" || column.name === "original"
          ? { codec: "UNCOMPRESSED" as const, statistics: false }
          : {}),
      })),
      rowGroupSize: ROW_GROUP,
    });
  }

  async close(): Promise<void> {
    await this.flush();
    await this.writer.finish();
  }
}

/** Writes `<split>.parquet` files under `base`. */
export function parquetWriter(out: OutDir, base: string, context: FormatContext): FormatWriter {
  const columns = columnsFor(context);
  const schema: SchemaElement[] = [
    { name: "root", num_children: columns.length },
    ...columns.flatMap((c) => c.schema),
  ];
  const files = new Map<SplitName, SplitFile>();
  const fileOf = async (split: SplitName): Promise<SplitFile> => {
    let file = files.get(split);
    if (!file) {
      const relative = rel(base, `${split}.parquet`);
      // Created new first, so that the writer (which truncates) only ever opens our own file.
      (await out.createNew(relative)).close();
      const writer = new ParquetWriter({
        writer: fileWriter(out.path(relative)),
        schema,
        createdBy: "facefield export",
      });
      file = new SplitFile(writer, columns);
      files.set(split, file);
    }
    return file;
  };
  return {
    async add(item) {
      await (await fileOf(item.split)).add(item);
      return [`${rel(base, `${item.split}.parquet`)}#${item.row.id}`];
    },
    async close() {
      for (const file of files.values()) await file.close();
    },
  };
}
