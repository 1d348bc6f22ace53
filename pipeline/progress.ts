/**
 * Live counts for a run: one rewritten status line on a terminal, a plain log line every few
 * seconds otherwise. Hand-written because progress-bar libraries draw bars for a known total,
 * and a crawl's total is unknown until it ends. Only counts are shown: never names or URLs.
 */
export class Progress {
  readonly counts = new Map<string, number>();
  readonly #started = performance.now();
  readonly #tty: boolean;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #encoder = new TextEncoder();
  #lastLine = "";

  constructor(readonly labels: string[], { intervalMs }: { intervalMs?: number } = {}) {
    this.#tty = Deno.stderr.isTerminal();
    for (const label of labels) this.counts.set(label, 0);
    this.#timer = setInterval(() => this.render(), intervalMs ?? (this.#tty ? 250 : 5000));
    Deno.unrefTimer(this.#timer);
  }

  readonly #firstAt = new Map<string, number>();
  readonly #lastAt = new Map<string, number>();

  add(label: string, by = 1): void {
    this.counts.set(label, (this.counts.get(label) ?? 0) + by);
    const now = performance.now() - this.#started;
    if (!this.#firstAt.has(label)) this.#firstAt.set(label, now);
    this.#lastAt.set(label, now);
  }

  /**
   * Per label: its count and when (seconds since the start) its first and last item passed.
   * Streamed stages overlap, so a stage's span is from its first item to its last.
   */
  timings(): { label: string; items: number; firstS: number; lastS: number }[] {
    return this.labels.map((label) => ({
      label,
      items: this.counts.get(label) ?? 0,
      firstS: (this.#firstAt.get(label) ?? 0) / 1000,
      lastS: (this.#lastAt.get(label) ?? 0) / 1000,
    }));
  }

  line(): string {
    const seconds = (performance.now() - this.#started) / 1000;
    const parts = this.labels.map((label) => {
      const n = this.counts.get(label) ?? 0;
      const rate = seconds > 0 ? n / seconds : 0;
      return `${label} ${n}${n > 0 ? ` (${rate.toFixed(1)}/s)` : ""}`;
    });
    return `${seconds.toFixed(0)}s · ${parts.join(" · ")}`;
  }

  render(): void {
    const line = this.line();
    if (this.#tty) {
      Deno.stderr.writeSync(this.#encoder.encode(`\r\x1b[2K${line}`));
    } else if (line !== this.#lastLine) {
      console.error(line);
    }
    this.#lastLine = line;
  }

  /** Prints a message without tearing the status line. */
  log(message: string): void {
    if (this.#tty) Deno.stderr.writeSync(this.#encoder.encode("\r\x1b[2K"));
    console.error(message);
    if (this.#tty && this.#lastLine) this.render();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.render();
    if (this.#tty) Deno.stderr.writeSync(this.#encoder.encode("\n"));
  }
}
