/** The house's own source files, for the tests that hold the code to its rules. */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Every `.ts` file of the house, relative to the root: no tests, no node_modules, no dot dirs. */
export async function sourceFiles(dir = ROOT): Promise<string[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    const rel = relative(ROOT, path);
    if (entry.isDirectory) {
      if (["node_modules", "tests", ".git"].includes(rel) || entry.name.startsWith(".")) continue;
      files.push(...await sourceFiles(path));
    } else if (entry.name.endsWith(".ts")) files.push(rel);
  }
  return files.sort();
}
