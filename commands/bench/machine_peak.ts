/**
 * The machine's peak float32 rate, from /proc/cpuinfo, for a benchmark's "share of peak":
 * cores × clock × SIMD lanes × 2 (a fused multiply-add is two operations), once for the
 * 128-bit SIMD that wasm has (4 lanes) and once for the widest x86 vectors the CPU has
 * (AVX-512: 16 lanes, AVX2: 8), which PyTorch's oneDNN uses and wasm cannot.
 */

/** Peaks in GFLOP/s, per core and for all cores, with what they were computed from. */
export interface MachinePeak {
  cores: number;
  /** Clock in GHz, as /proc/cpuinfo's "cpu MHz" gives it (the nominal clock on a VM). */
  ghz: number;
  /** The widest x86 vector extension the flags name. */
  nativeSimd: "avx512" | "avx2" | "sse" | "unknown";
  wasmSimd128PerCore: number;
  nativePerCore: number;
  /** How the figures were computed, for the benchmark's output. */
  formula: string;
}

const NATIVE_LANES = { avx512: 16, avx2: 8, sse: 4, unknown: 4 } as const;

/** The peak from /proc/cpuinfo's text; undefined where it names no clock. */
export function parseMachinePeak(cpuinfo: string, cores?: number): MachinePeak | undefined {
  const mhz = [...cpuinfo.matchAll(/^cpu MHz\s*:\s*([\d.]+)/gm)].map((m) => Number(m[1]));
  if (mhz.length === 0 || !mhz.every((value) => value > 0)) return undefined;
  const ghz = Math.max(...mhz) / 1000;
  const processors = [...cpuinfo.matchAll(/^processor\s*:/gm)].length;
  const count = cores ?? (processors || 1);
  const flags = new Set(cpuinfo.match(/^flags\s*:(.*)$/m)?.[1]?.trim().split(/\s+/) ?? []);
  const nativeSimd = flags.has("avx512f")
    ? "avx512"
    : flags.has("avx2")
    ? "avx2"
    : flags.has("sse") || flags.has("sse2")
    ? "sse"
    : "unknown";
  const lanes = NATIVE_LANES[nativeSimd];
  return {
    cores: count,
    ghz: round(ghz, 3),
    nativeSimd,
    wasmSimd128PerCore: round(ghz * 4 * 2, 1),
    nativePerCore: round(ghz * lanes * 2, 1),
    formula: `${count} cores × ${round(ghz, 3)} GHz × lanes × 2 (FMA): wasm SIMD-128 4 lanes, ` +
      `${nativeSimd} ${lanes} lanes; one FMA unit per core assumed (a core with two doubles it)`,
  };
}

/** This machine's peak, or undefined where /proc/cpuinfo cannot be read or names no clock. */
export async function machinePeak(): Promise<MachinePeak | undefined> {
  try {
    return parseMachinePeak(await Deno.readTextFile("/proc/cpuinfo"));
  } catch {
    return undefined;
  }
}

/**
 * Achieved GFLOP/s of `imagesPerS` images of `flopsPerImage` each on `threads` threads, with
 * its share of the wasm-SIMD-128 and the native peak of that many cores.
 */
export function achieved(
  imagesPerS: number,
  flopsPerImage: number,
  threads: number,
  peak: MachinePeak | undefined,
): Record<string, number> {
  const gflops = imagesPerS * flopsPerImage / 1e9;
  return {
    gflop_per_s: round(gflops, 2),
    ...(peak
      ? {
        share_of_wasm_simd128_peak: round(gflops / (peak.wasmSimd128PerCore * threads), 3),
        [`share_of_${peak.nativeSimd}_peak`]: round(gflops / (peak.nativePerCore * threads), 3),
      }
      : {}),
  };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
