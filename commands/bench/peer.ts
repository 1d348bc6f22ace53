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
