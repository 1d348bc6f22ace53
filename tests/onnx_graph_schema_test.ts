import assert from "node:assert/strict";
import onnxProto from "onnx-proto";
import { OnnxDataType, OnnxGraph } from "../models/native/onnx_graph.ts";

Deno.test("OnnxDataType holds ONNX's own element type numbers", () => {
  const reference = onnxProto.onnx.TensorProto.DataType;
  for (const name of ["FLOAT", "INT32", "INT64", "BOOL"] as const) {
    assert.equal(OnnxDataType[name], reference[name], name);
  }
});

Deno.test("OnnxGraph's bytes decode as the ONNX model it was built as", () => {
  const graph = new OnnxGraph("probe");
  const x = graph.input("x", ["batch", 2]);
  const w = graph.constant("w", new Float32Array([1, 2, 3, 4]), [2, 2]);
  graph.output(graph.node("MatMul", [x, w], {}, "y"), ["batch", 2]);
  const model = onnxProto.onnx.ModelProto.decode(graph.toBytes());
  assert.equal(model.graph?.name, "probe");
  assert.deepEqual(model.graph?.node?.map((node) => node.opType), ["MatMul"]);
  assert.equal(model.graph?.initializer?.[0]?.dataType, onnxProto.onnx.TensorProto.DataType.FLOAT);
});
