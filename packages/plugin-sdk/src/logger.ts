/**
 * The logger the host gives each plugin (token {@link TOKENS.Logger}): pino's calling convention, a child
 * logger already bound to the plugin's name. Log to it, never to stdout (stdout is the control channel).
 */
export interface LogFn {
  (message: string): void;
  (fields: Record<string, unknown>, message?: string): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

/**
 * Calls `log` at most `limit` times per `intervalMs`, then once more with how many were suppressed. For errors
 * that can repeat every packet (a send error on every datagram).
 */
export class RateLimitedLog {
  #windowStart = -Infinity;
  #count = 0;
  #suppressed = 0;

  constructor(
    private readonly now: () => number,
    private readonly limit = 5,
    private readonly intervalMs = 10_000,
  ) {}

  /** Returns true when the caller should log now; `suppressed` tells how many were swallowed since. */
  shouldLog(): { log: boolean; suppressed: number } {
    const t = this.now();
    if (t - this.#windowStart >= this.intervalMs) {
      const suppressed = this.#suppressed;
      this.#windowStart = t;
      this.#count = 1;
      this.#suppressed = 0;
      return { log: true, suppressed };
    }
    if (this.#count < this.limit) {
      this.#count++;
      return { log: true, suppressed: 0 };
    }
    this.#suppressed++;
    return { log: false, suppressed: 0 };
  }
}
