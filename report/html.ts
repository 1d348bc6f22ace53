/** Small pieces of the report's HTML: escaping, percentages, p-values, tables, images. */
import { Buffer } from "node:buffer";
import type { SignificanceTest } from "../stages/evaluate.ts";

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export const pct = (value: number | null, digits = 1) =>
  value === null || !Number.isFinite(value) ? "n/a" : `${(value * 100).toFixed(digits)} %`;

export function pValue(test: SignificanceTest): string {
  return test.pValue < 0.001 ? "p < 0.001" : `p = ${test.pValue.toFixed(3)}`;
}

/** Safe in a file name: kinds and class labels come from config and data. */
export function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "x";
}

export function table(head: string[], rows: (string | number)[][], className = ""): string {
  const cell = (tag: string) => (value: string | number) => `<${tag}>${value}</${tag}>`;
  return `<table class="${className}"><thead><tr>${head.map(cell("th")).join("")}</tr></thead>
<tbody>${rows.map((r) => `<tr>${r.map(cell("td")).join("")}</tr>`).join("\n")}</tbody></table>`;
}

export function imageTag(png: Uint8Array, alt: string, width?: number): string {
  const src = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
  return `<img src="${src}" alt="${escapeXml(alt)}"${width ? ` width="${width}"` : ""}>`;
}
