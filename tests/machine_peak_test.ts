/** bench:train's peak and achieved GFLOP/s, on /proc/cpuinfo texts whose answer is known. */
import assert from "node:assert/strict";
import { achieved, parseMachinePeak } from "../commands/bench/machine_peak.ts";

const cpu = (flags: string, mhz = "2600.000") =>
  [0, 1].map((i) =>
    `processor\t: ${i}\nmodel name\t: Some CPU\ncpu MHz\t\t: ${mhz}\nflags\t\t: fpu sse sse2 ${flags}\n`
  ).join("\n");

Deno.test("parseMachinePeak() gives cores × clock × lanes × 2 for wasm's SIMD-128 and the CPU's widest vectors", () => {
  const avx512 = parseMachinePeak(cpu("avx2 fma avx512f"))!;
  assert.equal(avx512.cores, 2);
  assert.equal(avx512.nativeSimd, "avx512");
  assert.equal(avx512.wasmSimd128PerCore, 20.8);
  assert.equal(avx512.nativePerCore, 83.2);
  const avx2 = parseMachinePeak(cpu("avx2 fma", "3000"))!;
  assert.equal(avx2.nativeSimd, "avx2");
  assert.equal(avx2.nativePerCore, 48);
  assert.equal(parseMachinePeak("processor : 0\n"), undefined, "no clock, no peak");
});

Deno.test("achieved() divides by the peak of as many cores as the figure used", () => {
  const peak = parseMachinePeak(cpu("avx512f"))!;
  const one = achieved(100, 1e8, 1, peak);
  assert.equal(one.gflop_per_s, 10);
  assert.equal(one.share_of_wasm_simd128_peak, Math.round(10 / 20.8 * 1000) / 1000);
  const two = achieved(100, 1e8, 2, peak);
  assert.equal(two.share_of_avx512_peak, Math.round(10 / 166.4 * 1000) / 1000);
  assert.deepEqual(Object.keys(achieved(1, 1, 1, undefined)), ["gflop_per_s"]);
});
