/**
 * The engine that runs face-api's nets in this process: the nets loaded from node_modules once
 * each, and their native sessions (ONNX Runtime, `models/native/`) where it loads, else tfjs wasm.
 * The loaded engine is this file's state, held once per process (each face worker has its own).
 */
import type * as FaceApi from "@vladmandic/face-api/dist/face-api.node-wasm.js";
import { faceModelDir } from "./package_files.ts";
import { initEngine } from "../engine.ts";
import { nativeEngine } from "../native/onnx_runtime.ts";
import { type FaceApiWeights, NativeFaceNets } from "../native/face_api_sessions.ts";
import {
  type FaceNetworkName,
  GRAPH_NETWORK_NAMES,
  type GraphNetworkName,
  prepareFaceNetwork,
} from "./face_networks.ts";
import { firstLine } from "./face_defaults.ts";
import { checkOptions } from "./face_options.ts";

const netsReady = new Map<string, Promise<void>>();

let faceApiLoading: Promise<typeof FaceApi> | undefined;

/**
 * face-api's module, imported on first use: on the native engine with every graph cached, a
 * process needs none of it (only SSD, the age/gender net, the wasm engine and building a graph
 * from the weights do), and it costs about 0.1 s to load.
 */
export function faceApi(): Promise<typeof FaceApi> {
  faceApiLoading ??= import("@vladmandic/face-api/dist/face-api.node-wasm.js");
  return faceApiLoading;
}

export type NetName =
  | "tinyFaceDetector"
  | "ssdMobilenetv1"
  | "faceLandmark68Net"
  | "faceRecognitionNet"
  | "ageGenderNet";

/** Loads face-api nets from node_modules once each; SSD and age/gender only when first needed. */
export function loadNets(names: NetName[]): Promise<void> {
  return Promise.all(names.map((name) => {
    let ready = netsReady.get(name);
    if (!ready) {
      ready = Promise.all([initEngine(), faceApi()]).then(([, faceapi]) =>
        faceapi.nets[name].loadFromDisk(faceModelDir())
      );
      netsReady.set(name, ready);
    }
    return ready;
  })).then(() => {});
}

/** Starts the engine and loads the tiny detector, landmark and recognition nets once. */
export function loadFaceModels(): Promise<void> {
  return loadNets(["tinyFaceDetector", "faceLandmark68Net", "faceRecognitionNet"]);
}

/** The engine that runs face-api's nets in this process, and why. */
export interface FaceEngineInfo {
  engine: "native" | "wasm";
  /** The native engine's version, or why the wasm engine runs instead. */
  detail: string;
}

export interface FaceEngine extends FaceEngineInfo {
  /** face-api's nets on ONNX Runtime; absent on the wasm engine. */
  nets?: NativeFaceNets;
}

let faceEngineReady: Promise<FaceEngine> | undefined;

/**
 * Loads face-api's nets and, where ONNX Runtime loads, builds their native sessions from the
 * loaded weights, once per process (each face worker has its own); where it does not, or a
 * session fails to build, the nets run on tfjs wasm as before.
 */
export function faceEngine(): Promise<FaceEngine> {
  faceEngineReady ??= (async (): Promise<FaceEngine> => {
    // tfjs stays the engine of the work copy's tensors (SSD, the shipped networks, warps) even
    // where every face-api graph comes from the graph cache and no weight loads into tfjs. The
    // nets' sessions start before it is up: on a session thread they load while it starts.
    const tfjsReady = initEngine();
    tfjsReady.catch(() => {});
    const native = await nativeEngine();
    if (!native.ok) {
      await loadFaceModels();
      return { engine: "wasm", detail: native.reason };
    }
    try {
      // face-api's weights load into tfjs only where a graph is not in the graph cache yet.
      const nets = await NativeFaceNets.create(native.ort, faceApiWeights);
      await tfjsReady;
      return { engine: "native", detail: `onnxruntime-node ${native.version}`, nets };
    } catch (error) {
      await loadFaceModels();
      return { engine: "wasm", detail: `face-api's native graphs failed: ${firstLine(error)}` };
    }
  })();
  return faceEngineReady;
}

/** face-api's loaded weights, for building its nets' native graphs. */
async function faceApiWeights(): Promise<FaceApiWeights> {
  await loadFaceModels();
  const faceapi = await faceApi();
  const landmarkNet = faceapi.nets.faceLandmark68Net;
  return {
    recognition: faceapi.nets.faceRecognitionNet.params!,
    landmarks: {
      // deno-lint-ignore no-explicit-any
      extractor: (landmarkNet.faceFeatureExtractor as any).params,
      fc: landmarkNet.params!.fc,
    },
    // deno-lint-ignore no-explicit-any
    tinyDetector: faceapi.nets.tinyFaceDetector.params as any,
  };
}

/** What `prepareFaces` gets ready. */
export interface PrepareOptions {
  /**
   * Whether faces will be described (face-api's recognition net, its largest graph).
   * @default true
   */
  describe?: boolean;
  /**
   * The shipped networks to load as well.
   * @default []
   */
  networks?: readonly FaceNetworkName[];
}

/**
 * Gets a process ready to find (and describe) faces before its first image comes: the engine,
 * face-api's nets (the tiny detector at its first default input size) and the graph
 * `networks`' sessions, all at once. `predict`, `crop` and the face workers start it while they read input.
 */
export async function prepareFaces(options: PrepareOptions = {}): Promise<void> {
  const { describe = true, networks = [] } = options;
  const graphs = networks.filter((name): name is GraphNetworkName =>
    (GRAPH_NETWORK_NAMES as readonly string[]).includes(name)
  );
  await Promise.all([
    faceEngine().then(({ nets }) =>
      Promise.all([
        // The first pass's size: a later size runs only where it finds no face, and loads then.
        nets?.prepareTiny(checkOptions({}).tinyInputSizes.slice(0, 1)),
        describe ? nets?.prepareRecognition() : undefined,
      ])
    ),
    ...graphs.map((name) => prepareFaceNetwork(name)),
  ]);
}

/** Which engine runs face-api's nets here (loading them first), for logs and benchmarks. */
export async function faceEngineInfo(): Promise<FaceEngineInfo> {
  const { engine, detail } = await faceEngine();
  return { engine, detail };
}
