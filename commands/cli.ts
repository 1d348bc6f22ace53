import type { ParseArgsConfig } from "node:util";
import { fail } from "../core/errors.ts";
import { checkDetector, type DetectorName, FACE_DEFAULTS } from "../models/faces/face_defaults.ts";

export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

export type ParsedValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** A subcommand of `main.ts`. `main.ts` parses `options`; `run` gets the parsed values. */
export interface Command {
  name: string;
  summary: string;
  /** Usage text shown by `--help`, after the summary. */
  usage: string;
  options: OptionSpec;
  allowPositionals?: boolean;
  run(values: ParsedValues, positionals: string[]): Promise<number>;
}

/** Reads a string option, or its default. */
export function stringOption(values: ParsedValues, name: string, fallback: string): string;
export function stringOption(
  values: ParsedValues,
  name: string,
  fallback?: string,
): string | undefined;
export function stringOption(values: ParsedValues, name: string, fallback?: string) {
  const value = values[name];
  return typeof value === "string" ? value : fallback;
}

/** Reads an integer option within bounds, failing with a usage error otherwise. */
export function intOption(
  values: ParsedValues,
  name: string,
  fallback: number,
  { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = {},
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(`--${name} must be an integer from ${min} to ${max}: got '${String(raw)}'`, 2);
  }
  return value;
}

/** Reads a number option within bounds, failing with a usage error otherwise. */
export function numberOption(
  values: ParsedValues,
  name: string,
  fallback: number,
  { min = -Infinity, max = Infinity } = {},
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    fail(`--${name} must be a number from ${min} to ${max}: got '${String(raw)}'`, 2);
  }
  return value;
}

/** One-line progress on a terminal, plain log lines otherwise. Never logs names or faces. */
export function log(message: string): void {
  console.error(message);
}

/** Reads `--detector`, checked once by the face module (usage error otherwise). */
export function detectorOption(values: ParsedValues): DetectorName {
  try {
    return checkDetector(stringOption(values, "detector", FACE_DEFAULTS.detector), "--detector");
  } catch (error) {
    if (error instanceof RangeError) fail(error.message, 2);
    throw error;
  }
}
