/**
 * The environment a peer benchmark (PyTorch, OpenCV) runs in: ours, less the OpenBLAS
 * overrides this machine sets for old OpenBLAS builds, which slow a current one. Only the
 * peer's own process loses them, as the machine's notes advise.
 */
export function peerEnvironment(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

/**
 * How busy the machine was while a benchmark ran: the load averages, and a warning when the
 * last minute's load says other work shared the cores, so a ratio against a peer is not to be
 * trusted (a peer on two threads suffers most from a shared machine).
 */
export function machineLoad(): { load_average: number[]; idle: boolean; warning?: string } {
  const load = Deno.loadavg().map((value) => Math.round(value * 100) / 100);
  const cores = navigator.hardwareConcurrency || 1;
  // The benchmark itself may keep every core busy (workers, a peer on all threads); more than
  // that plus half a core is others' work.
  const idle = (load[0] ?? 0) <= cores + 0.5;
  return idle ? { load_average: load, idle } : {
    load_average: load,
    idle,
    warning: `load average ${load[0]} on ${cores} cores: other work shared the machine, so ` +
      `these figures and ratios are not an idle machine's; rerun when it is idle`,
  };
}
