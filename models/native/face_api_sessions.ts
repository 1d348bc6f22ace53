/**
 * face-api's networks on the native engine: one ONNX Runtime session per network, built from
 * the weights of face-api's loaded nets, each run on one thread (a process's parallelism is its
 * face workers, each with sessions of its own). Pixels go in as plain float arrays, NHWC, 0–255.
 */
import {
  GRAPH_INPUT,
  GRAPH_OUTPUT,
  RECOGNITION_SIDE,
  recognitionGraph,
  type RecognitionWeights,
} from "./face_api_graphs.ts";
import { createSession, type OrtModule, type OrtSession } from "./onnx_runtime.ts";

/** The loaded face-api nets' weights (`faceapi.nets.<net>.params`). */
export interface FaceApiWeights {
  recognition: RecognitionWeights;
}

/** face-api's nets as ONNX Runtime sessions. */
export class NativeFaceNets {
  private constructor(
    readonly ort: OrtModule,
    readonly recognition: OrtSession,
  ) {}

  /** Builds each net's graph and its session (about 0.1 s for the recognition net). */
  static async create(ort: OrtModule, weights: FaceApiWeights): Promise<NativeFaceNets> {
    const recognition = await createSession(ort, recognitionGraph(weights.recognition));
    return new NativeFaceNets(ort, recognition);
  }

  /** The 128-d descriptor of a 150×150 RGB chip (0–255), as face-api's recognition net gives it. */
  async describe(chip: Float32Array): Promise<Float32Array> {
    return await this.#run(this.recognition, chip, [1, RECOGNITION_SIDE, RECOGNITION_SIDE, 3]);
  }

  async #run(session: OrtSession, pixels: Float32Array, dims: number[]): Promise<Float32Array> {
    const input = new this.ort.Tensor("float32", pixels, dims);
    const outputs = await session.run({ [GRAPH_INPUT]: input });
    const output = outputs[GRAPH_OUTPUT]!;
    const values = new Float32Array(output.data as Float32Array);
    output.dispose();
    return values;
  }
}
