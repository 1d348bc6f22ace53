/**
 * Builds ONNX models in memory, node by node, for the native engine: the face networks' graphs
 * from their shipped weights and the training steps. Encoding is `onnx-proto`'s (ONNX's own
 * protobuf schema); weights go in as raw little-endian bytes, as ONNX stores them.
 */
import { createRequire } from "node:module";
import type onnxProto from "onnx-proto";

/** ONNX's element types (TensorProto.DataType), the four our graphs use. */
const DataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;

let schema: typeof onnxProto.onnx | undefined;

/**
 * onnx-proto, loaded by the first graph built or encoded (55 ms on the loading thread): a
 * command whose graphs all come from the graph cache, as a warm `predict` or `crop`, never
 * loads it.
 */
function onnx(): typeof onnxProto.onnx {
  schema ??= (createRequire(import.meta.url)("onnx-proto") as typeof onnxProto).onnx;
  return schema;
}

/** An attribute value: an integer, integers, a string, or a float (`{ float }`, `{ floats }`). */
export type AttributeValue =
  | number
  | readonly number[]
  | string
  | { float: number }
  | { floats: readonly number[] };

/** A dimension: a size, or a name for one set at run time (the batch). */
export type Dim = number | string;

type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

function elemTypeOf(values: TensorData): number {
  if (values instanceof Float32Array) return DataType.FLOAT;
  if (values instanceof BigInt64Array) return DataType.INT64;
  if (values instanceof Int32Array) return DataType.INT32;
  return DataType.BOOL;
}

function attribute(name: string, value: AttributeValue): onnxProto.onnx.IAttributeProto {
  const type = onnx().AttributeProto.AttributeType;
  if (typeof value === "number") {
    if (!Number.isInteger(value)) {
      throw new TypeError(`attribute '${name}': write a float as { float: ${value} }`);
    }
    return { name, type: type.INT, i: value };
  }
  if (typeof value === "string") {
    return { name, type: type.STRING, s: new TextEncoder().encode(value) };
  }
  if (Array.isArray(value)) return { name, type: type.INTS, ints: [...value] };
  if ("float" in value) return { name, type: type.FLOAT, f: value.float };
  return { name, type: type.FLOATS, floats: [...(value as { floats: number[] }).floats] };
}

function valueInfo(name: string, dims: readonly Dim[], elemType: number = DataType.FLOAT) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => typeof d === "number" ? { dimValue: d } : { dimParam: d }),
        },
      },
    },
  };
}

/** One ONNX graph under construction; `toBytes` encodes it as a model. */
export class OnnxGraph {
  readonly #nodes: onnxProto.onnx.INodeProto[] = [];
  readonly #initializers: onnxProto.onnx.ITensorProto[] = [];
  readonly #inputs: ReturnType<typeof valueInfo>[] = [];
  readonly #outputs: ReturnType<typeof valueInfo>[] = [];
  readonly #names = new Set<string>();
  #counter = 0;

  constructor(readonly name: string, readonly opset = 17) {}

  /** A fresh tensor name with the given stem. */
  fresh(stem: string): string {
    let name = stem;
    while (this.#names.has(name)) name = `${stem}_${++this.#counter}`;
    this.#names.add(name);
    return name;
  }

  /** A graph input (float unless `elemType` says otherwise). */
  input(name: string, dims: readonly Dim[], elemType: number = DataType.FLOAT): string {
    const unique = this.fresh(name);
    if (unique !== name) throw new Error(`OnnxGraph: input '${name}' is defined twice`);
    this.#inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** A constant tensor (an initializer): weights, shapes, scalars. */
  constant(stem: string, values: TensorData, dims: readonly number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== values.length) {
      throw new RangeError(`OnnxGraph: '${stem}' has ${values.length} values, dims say ${size}`);
    }
    const name = this.fresh(stem);
    this.#initializers.push({
      name,
      dims: [...dims],
      dataType: elemTypeOf(values),
      rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice(),
    });
    return name;
  }

  /** A float scalar or vector constant. */
  floats(stem: string, values: readonly number[], dims: readonly number[] = [values.length]) {
    return this.constant(stem, Float32Array.from(values), dims);
  }

  /** An int64 vector constant (shapes, axes, indices). */
  int64s(stem: string, values: readonly number[]): string {
    return this.constant(stem, BigInt64Array.from(values.map(BigInt)), [values.length]);
  }

  /** Adds a node with one output; returns the output's name. */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue> = {},
    outputName?: string,
  ): string {
    return this.nodeOutputs(
      opType,
      inputs,
      1,
      attributes,
      outputName ? [outputName] : undefined,
    )[0]!;
  }

  /** Adds a node with `count` outputs; returns their names. */
  nodeOutputs(
    opType: string,
    inputs: readonly string[],
    count: number,
    attributes: Record<string, AttributeValue> = {},
    outputNames?: readonly string[],
  ): string[] {
    const outputs = Array.from(
      { length: count },
      (_, i) => this.fresh(outputNames?.[i] ?? `${opType.toLowerCase()}`),
    );
    this.#nodes.push({
      opType,
      input: [...inputs],
      output: outputs,
      name: outputs[0],
      attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
    });
    return outputs;
  }

  /** Marks a tensor as a graph output, under its own name. */
  output(name: string, dims: readonly Dim[], elemType: number = DataType.FLOAT): void {
    this.#outputs.push(valueInfo(name, dims, elemType));
  }

  /** The model as ONNX bytes, for `InferenceSession.create`. */
  toBytes(): Uint8Array {
    const model = onnx().ModelProto.create({
      irVersion: 8,
      producerName: "facefield",
      opsetImport: [{ domain: "", version: this.opset }],
      graph: {
        name: this.name,
        node: this.#nodes,
        initializer: this.#initializers,
        input: this.#inputs,
        output: this.#outputs,
      },
    });
    return onnx().ModelProto.encode(model).finish();
  }
}

export { DataType as OnnxDataType };
