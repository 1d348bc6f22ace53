/**
 * The house's size rule (ARCHITECTURE.md): no function is longer than about 80 lines unless its
 * comment says why. Checked with the TypeScript parser on every source file, so a function hidden
 * in an object literal, a class or an arrow counts as much as a declared one.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { ROOT, sourceFiles } from "./_source_files.ts";
import ts from "typescript";

/** Lines a function may span before it needs a reason. */
export const MAX_FUNCTION_LINES = 80;
/** The words a leading comment uses to give that reason. */
const REASON = /Long because/i;

export interface LongFunction {
  file: string;
  name: string;
  lines: number;
}

type FunctionNode =
  | ts.FunctionDeclaration
  | ts.MethodDeclaration
  | ts.ArrowFunction
  | ts.FunctionExpression
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration
  | ts.SetAccessorDeclaration;

function isFunction(node: ts.Node): node is FunctionNode {
  return ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) ||
    ts.isArrowFunction(node) || ts.isFunctionExpression(node) ||
    ts.isConstructorDeclaration(node) || ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node);
}

/** The name a reader would search for: its own, or the variable, property or class it sits in. */
function nameOf(node: FunctionNode, source: ts.SourceFile): string {
  if (node.name) return node.name.getText(source);
  if (ts.isConstructorDeclaration(node)) {
    const owner = node.parent;
    return `${
      ts.isClassLike(owner) && owner.name ? owner.name.getText(source) : "class"
    }#constructor`;
  }
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) {
    return parent.name.getText(source);
  }
  const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
  return `(anonymous at line ${line})`;
}

/**
 * The comments a reason may sit in: the function's own leading comment, and that of the
 * statement or property that holds it (`const run = async () => …` carries its comment on the
 * `const`).
 */
function leadingComments(node: ts.Node, source: ts.SourceFile): string {
  const text = source.getFullText();
  const holders: ts.Node[] = [node];
  let parent: ts.Node | undefined = node.parent;
  while (
    parent && (ts.isVariableDeclaration(parent) || ts.isVariableDeclarationList(parent) ||
      ts.isVariableStatement(parent) || ts.isPropertyAssignment(parent) ||
      ts.isExportAssignment(parent) || ts.isCallExpression(parent))
  ) {
    holders.push(parent);
    parent = parent.parent;
  }
  return holders.map((holder) =>
    (ts.getLeadingCommentRanges(text, holder.getFullStart()) ?? [])
      .map((range) => text.slice(range.pos, range.end)).join("\n")
  ).join("\n");
}

/** Every function in one file's text longer than the limit whose comment gives no reason. */
export function longFunctions(file: string, text: string): LongFunction[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: LongFunction[] = [];
  const visit = (node: ts.Node) => {
    if (isFunction(node) && node.body) {
      const start = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > MAX_FUNCTION_LINES && !REASON.test(leadingComments(node, source))) {
        found.push({ file, name: nameOf(node, source), lines });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

Deno.test("no function in the house is longer than 80 lines without a reason in its comment", async () => {
  const found: LongFunction[] = [];
  for (const file of await sourceFiles()) {
    found.push(...longFunctions(file, await Deno.readTextFile(join(ROOT, file))));
  }
  assertEquals(found.map((f) => `${f.file}: ${f.name} (${f.lines} lines)`), []);
});

Deno.test("the length check sees a long function, an arrow and a method, and honours a reason", () => {
  const body = Array.from({ length: MAX_FUNCTION_LINES }, (_, i) => `  const v${i} = ${i};`)
    .join("\n");
  const text = [
    `function plain() {\n${body}\n}`,
    `const arrow = () => {\n${body}\n};`,
    `class Box {\n  method() {\n${body}\n  }\n}`,
    `/** Long because one table reads best whole. */\nfunction excused() {\n${body}\n}`,
    `function short() {\n  return 1;\n}`,
  ].join("\n");
  const names = longFunctions("sample.ts", text).map((f) => f.name);
  assertEquals(names, ["plain", "arrow", "method"]);
  assert(longFunctions("sample.ts", text).every((f) => f.lines > MAX_FUNCTION_LINES));
});
