/**
 * face-api's networks on the native engine: one ONNX Runtime session per network (the tiny
 * detector one per input side), built from the weights of face-api's loaded nets, each run on
 * one thread (a process's parallelism is its face workers, each with sessions of its own).
 * Pixels go in as plain float arrays, NHWC, 0–255.
 */
import {
  GRAPH_INPUT,
  GRAPH_OUTPUT,
  LANDMARK_SIDE,
  landmarkGraph,
  type LandmarkWeights,
  RECOGNITION_SIDE,
  recognitionGraph,
  type RecognitionWeights,
  tinyDetectorGraph,
  type TinyDetectorWeights,
} from "./face_api_graphs.ts";
import type { OrtModule } from "./onnx_runtime.ts";
import { cachedSession, type GraphSource } from "./graph_cache.ts";
import type { GraphSession } from "./session_host.ts";

/** The loaded face-api nets' weights (`faceapi.nets.<net>.params`). */
export interface FaceApiWeights {
  recognition: RecognitionWeights;
  landmarks: LandmarkWeights;
  tinyDetector: TinyDetectorWeights;
}

/** The tiny detector's raw grid: `cells`×`cells`×25 values, row by row. */
export interface TinyGrid {
  values: Float32Array;
  cells: number;
}

/** face-api's nets as ONNX Runtime sessions. */
export class NativeFaceNets {
  /** Tiny detector sessions by input side, built on first use. */
  readonly #tiny = new Map<number, Promise<GraphSession>>();
  /** Where each session's graph came from: the graph cache, or built from the weights. */
  readonly sources: Record<string, GraphSource> = {};

  #recognition: Promise<GraphSession> | undefined;

  private constructor(
    readonly ort: OrtModule,
    readonly landmarkNet: GraphSession,
    readonly weights: () => Promise<FaceApiWeights>,
  ) {}

  /**
   * The landmark net's session, from its cached graph (models/native/graph_cache.ts) or built
   * from the weights, which `weights()` loads only then. The recognition net (0.6 s to build,
   * 0.1 s from the cache) and the tiny detector load on first use or when prepared.
   */
  static async create(
    ort: OrtModule,
    weights: () => Promise<FaceApiWeights>,
  ): Promise<NativeFaceNets> {
    const landmarks = await cachedSession(
      ort,
      "face-api-landmarks",
      async () => landmarkGraph((await weights()).landmarks),
      { warmUp: { dims: [1, LANDMARK_SIDE, LANDMARK_SIDE, 3] } },
    );
    const nets = new NativeFaceNets(ort, landmarks.session, weights);
    nets.sources.landmarks = landmarks.source;
    return nets;
  }

  /** Starts loading the recognition net's session, before the first face to describe. */
  prepareRecognition(): Promise<GraphSession> {
    this.#recognition ??= cachedSession(
      this.ort,
      "face-api-recognition",
      async () => recognitionGraph((await this.weights()).recognition),
      { warmUp: { dims: [1, RECOGNITION_SIDE, RECOGNITION_SIDE, 3] } },
    ).then(({ session, source }) => {
      this.sources.recognition = source;
      return session;
    });
    return this.#recognition;
  }

  /** Starts building the tiny detector's session for each input side, before the first image. */
  prepareTiny(sides: readonly number[]): Promise<void> {
    return Promise.all(sides.map((side) => this.#tinySession(side))).then(() => {});
  }

  #tinySession(side: number): Promise<GraphSession> {
    let session = this.#tiny.get(side);
    if (!session) {
      session = cachedSession(
        this.ort,
        `face-api-tiny-${side}`,
        async () => tinyDetectorGraph((await this.weights()).tinyDetector, side),
        { warmUp: { dims: [1, side, side, 3] } },
      ).then(({ session, source }) => {
        this.sources[`tiny-${side}`] = source;
        return session;
      });
      this.#tiny.set(side, session);
    }
    return session;
  }

  /** The 128-d descriptor of a 150×150 RGB chip (0–255), as face-api's recognition net gives it. */
  async describe(chip: Float32Array): Promise<Float32Array> {
    const session = await this.prepareRecognition();
    return await this.#run(session, chip, [1, RECOGNITION_SIDE, RECOGNITION_SIDE, 3]);
  }

  /** The 68 landmarks of a 112×112 RGB patch: x, y of each as shares of the patch's side. */
  async landmarks(patch: Float32Array): Promise<Float32Array> {
    return await this.#run(this.landmarkNet, patch, [1, LANDMARK_SIDE, LANDMARK_SIDE, 3]);
  }

  /** The tiny detector's grid for a `side`×`side` RGB input (padded and resized by the caller). */
  async tinyGrid(input: Float32Array, side: number): Promise<TinyGrid> {
    const values = await this.#run(await this.#tinySession(side), input, [1, side, side, 3]);
    return { values, cells: Math.round(Math.sqrt(values.length / 25)) };
  }

  async #run(session: GraphSession, pixels: Float32Array, dims: number[]): Promise<Float32Array> {
    const input = new this.ort.Tensor("float32", pixels, dims);
    const outputs = await session.run({ [GRAPH_INPUT]: input });
    const output = outputs[GRAPH_OUTPUT]!;
    const values = new Float32Array(output.data as Float32Array);
    output.dispose();
    return values;
  }
}
