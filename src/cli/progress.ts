/**
 * A one-line progress display on stderr, redrawn at most every `intervalMs`. It writes nothing
 * when the stream is not a terminal, so logs and pipes see only the final summary.
 */
export class ProgressLine {
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = 250,
  ) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  /** Redraws the line with `render()` unless the last redraw was under `intervalMs` ago. */
  update(render: () => string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastDraw < this.intervalMs) return;
    this.lastDraw = now;
    this.stream.write(`\r${render()}\x1b[K`);
    this.drawn = true;
  }

  /** Erases the line, so the next output starts on a clean line. */
  clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
