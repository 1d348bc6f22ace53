/**
 * Retraining from the app after a removal: the run that made the data dir, repeated with the
 * same sources and folds (read from the report before the removal deletes it), started as a
 * `deno task pipeline` process of its own whose progress the Overview follows live.
 */
import { html } from "hono/html";
import type { Html } from "./layout.ts";
import { CSRF_FIELD } from "./security.ts";
import type { ReportData, StoreView } from "./store_view.ts";

/** How the app repeats a run. */
export interface Retrain {
  /** The `pipeline` command's arguments (after `main.ts`). */
  args: string[];
  /** As a person types it. */
  command: string;
  /** Said after the command where the report cannot tell how the data dir was made. */
  hint: string;
  /** Whether the app may start it itself (it knows the sources, or it is the demo). */
  startable: boolean;
}

/** Starts `deno run … main.ts` with these arguments; tests pass a recorder. */
export type RunLauncher = (args: string[]) => void;

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * The default launcher: a process of its own, its output in the serve's terminal, not waited
 * for (the data dir's lock and run events say how it goes).
 */
export const launchRun: RunLauncher = (args) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--max-old-space-size=8192", MAIN, ...args],
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  child.unref();
};

/**
 * The run that made this data dir, from the report's provenance: the sources file and the
 * folds. The report does not tell the demo from a labelled image list (both say "embedded
 * demo"), so without a sources file the app starts it only where pages were crawled (the demo).
 */
export function retrainFor(
  report: ReportData | undefined,
  dataDir: string,
  crawledPages: number,
): Retrain {
  const provenance = report?.dataset?.provenance ?? {};
  const args = ["pipeline", "--data", dataDir];
  const sources = provenance.sources;
  const known = typeof sources === "string" && sources !== "" && sources !== "embedded demo";
  if (known) args.push("--sources", sources);
  const folds = provenance.folds;
  if (typeof folds === "number") args.push("--folds", String(folds));
  const startable = known || (report !== undefined && crawledPages > 0);
  return {
    args,
    command: `deno task ${args.join(" ")}`,
    hint: known ? "" : " (add --images LIST if a list made this data dir)",
    startable,
  };
}

/** `retrainFor` on the data dir as it is now. */
export async function retrainOf(view: StoreView): Promise<Retrain> {
  const [report, pages] = await Promise.all([view.report(), view.pages()]);
  return retrainFor(report, view.paths.root, pages.length);
}

/** The command, and a button that starts it where the app may. */
export function retrainOffer(retrain: Retrain, csrfToken: string): Html {
  return html`<code>${retrain.command}</code>${retrain.hint}${
    retrain.startable
      ? html`<form class="retrain" method="post" action="/retrain"><input type="hidden"
name="${CSRF_FIELD}" value="${csrfToken}"><button type="submit">Retrain now</button></form>`
      : ""
  }`;
}
