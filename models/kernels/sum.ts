/**
 * Sum for the wasm backend where it reduces every leading axis of a large float32 tensor, the
 * shape of a bias gradient (e.g. [32,62,62,32] → [32]). The stock kernel first transposes the
 * reduced axes innermost, a strided copy that costs more than the sum; here one pass adds the
 * rows up in float64. Every other reduction goes to the stock kernel.
 */
import {
  backend_util,
  type KernelConfig,
  type KernelFunc,
  Sum,
  type SumAttrs,
  util,
} from "@tensorflow/tfjs";
import { type BackendWasm, heapView, type TensorInfo } from "./_wasm.ts";

/** Below this many elements the stock kernel's set-up costs nothing worth saving. */
const MIN_ELEMENTS = 1 << 16;

/** Builds the Sum kernel around the stock one, which handles what this does not. */
export function makeSumConfig(stock: KernelConfig): KernelConfig {
  function sum(
    args: { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: SumAttrs },
  ): TensorInfo {
    const { inputs: { x }, backend, attrs: { axis, keepDims } } = args;
    const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < x.shape.length &&
      axes.every((value, k) => value === k);
    const size = util.sizeFromShape(x.shape);
    if (x.dtype !== "float32" || !leading || size < MIN_ELEMENTS) {
      return stock.kernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
    }
    const keptShape = x.shape.slice(axes.length);
    const columns = util.sizeFromShape(keptShape);
    const rows = size / columns;
    const outShape = keepDims ? backend_util.expandShapeToKeepDim(keptShape, axes) : keptShape;
    const outInfo = backend.makeOutput(outShape, "float32");
    const values = heapView(backend, x);
    const totals = new Float64Array(columns);
    // Four rows a pass: a quarter of the loads and stores of the running totals.
    let row = 0;
    let offset = 0;
    for (; row + 4 <= rows; row += 4, offset += 4 * columns) {
      for (let column = 0; column < columns; column++) {
        const at = offset + column;
        totals[column] = totals[column]! +
          ((values[at]! + values[at + columns]!) +
            (values[at + 2 * columns]! + values[at + 3 * columns]!));
      }
    }
    for (; row < rows; row++, offset += columns) {
      for (let column = 0; column < columns; column++) {
        totals[column] = totals[column]! + values[offset + column]!;
      }
    }
    heapView(backend, outInfo).set(totals);
    return outInfo;
  }
  return { kernelName: Sum, backendName: "wasm", kernelFunc: sum as unknown as KernelFunc };
}
