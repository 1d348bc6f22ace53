/**
 * `<data dir>/run_events.jsonl`: what the current run is doing, one JSON line per event, so a
 * viewer (`deno task serve`) can follow a run live. Counts and epochs only: never a name, an
 * URL or a face. Each run starts the file afresh, so it stays a few kilobytes.
 */

/** One line of the file. `at` is an ISO time stamp. */
export type RunEvent =
  | { type: "run_started"; at: string; until: string }
  | { type: "run_finished"; at: string }
  | { type: "training"; at: string; model: string; faces: number; classes: number; epochs: number }
  | {
    type: "epoch";
    at: string;
    model: string;
    epoch: number;
    loss: number;
    accuracy: number;
    valLoss: number | null;
    valAccuracy: number | null;
  };

/** An event as the run hands it over; the time stamp is added here. */
export type NewRunEvent = RunEvent extends infer E ? E extends RunEvent ? Omit<E, "at"> : never
  : never;

/** Appends events for one run. Writes are synchronous: a line is whole on disk when it returns. */
export class RunEventLog {
  private constructor(readonly path: string) {}

  /** Starts the file afresh for a new run. */
  static start(path: string, until: string): RunEventLog {
    const log = new RunEventLog(path);
    Deno.writeTextFileSync(path, "");
    log.append({ type: "run_started", until });
    return log;
  }

  append(event: NewRunEvent): void {
    const line = JSON.stringify({ ...event, at: new Date().toISOString() });
    Deno.writeTextFileSync(this.path, line + "\n", { append: true });
  }
}

/** Parses the file's text; a line being written (torn) or garbled is skipped, not fatal. */
export function parseRunEvents(text: string): RunEvent[] {
  const events: RunEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const event = JSON.parse(line);
      if (event && typeof event.type === "string") events.push(event as RunEvent);
    } catch {
      // A half-written last line: the next read has it whole.
    }
  }
  return events;
}

/** The events of the latest run; none when no run has written the file. */
export async function readRunEvents(path: string): Promise<RunEvent[]> {
  try {
    return parseRunEvents(await Deno.readTextFile(path));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}
