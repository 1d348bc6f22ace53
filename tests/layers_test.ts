/**
 * The house's rule (ARCHITECTURE.md), checked on the code's own imports: every import points
 * down the layers, sideways only inside one folder, and no files import each other in a circle.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { ROOT, sourceFiles } from "./_source_files.ts";

/** Layers from the top; folders on one floor may not import each other. */
const FLOORS: string[][] = [
  ["main.ts"],
  ["commands"],
  ["web"],
  ["pipeline"],
  ["report"],
  ["stages"],
  ["models", "store", "net"],
  ["core"],
];

function layerOf(file: string): { floor: number; folder: string } | undefined {
  const folder = file.includes("/") ? file.split("/")[0]! : file;
  const floor = FLOORS.findIndex((names) => names.includes(folder));
  return floor < 0 ? undefined : { floor, folder };
}

/**
 * Relative specifiers of static imports, re-exports, dynamic imports and workers' scripts (a
 * process spawned from a path, as bench:predict starts main.ts, is no import).
 */
function importsOf(source: string): string[] {
  const specs: string[] = [];
  const patterns = [
    /(?:import|export)\s[^;]*?from\s*"(\.[^"]+)"/g,
    /import\s*\(\s*"(\.[^"]+)"\s*\)/g,
    /new Worker\(\s*new URL\(\s*"(\.[^"]+\.ts)"\s*,\s*import\.meta\.url/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) specs.push(match[1]!);
  }
  return specs;
}

async function importGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const file of await sourceFiles()) {
    const source = await Deno.readTextFile(join(ROOT, file));
    graph.set(
      file,
      // A worker script that starts copies of itself is no circle of files.
      importsOf(source).map((spec) => normalize(join(dirname(file), spec)))
        .filter((target) => target !== file),
    );
  }
  return graph;
}

Deno.test("every import points down the layers, sideways only inside one folder", async () => {
  const broken: string[] = [];
  for (const [file, targets] of await importGraph()) {
    const from = layerOf(file);
    if (!from) {
      broken.push(`${file}: not in any layer of ARCHITECTURE.md`);
      continue;
    }
    for (const target of targets) {
      const to = layerOf(target);
      if (!to) broken.push(`${file} -> ${target}: target is in no layer`);
      else if (to.folder === from.folder) continue;
      else if (to.floor <= from.floor) broken.push(`${file} -> ${target}: runs up or across`);
    }
  }
  assertEquals(broken, []);
});

Deno.test("no files import each other in a circle", async () => {
  const graph = await importGraph();
  const state = new Map<string, "open" | "done">();
  const circles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      circles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
      return;
    }
    state.set(file, "open");
    for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    state.set(file, "done");
  };
  for (const file of graph.keys()) visit(file, []);
  assertEquals(circles, []);
});

Deno.test("the layer check sees an upward import (it can fail)", () => {
  const specs = importsOf(
    `import { x } from "../pipeline/run.ts";\nconst w = new Worker(new URL("./w.ts", import.meta.url));\nconst m = new URL("../main.ts", import.meta.url);`,
  );
  assertEquals(specs, ["../pipeline/run.ts", "./w.ts"]);
  assertEquals(layerOf("stages/a.ts")!.floor > layerOf("pipeline/run.ts")!.floor, true);
});
