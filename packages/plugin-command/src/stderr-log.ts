import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { RateLimitedLog, type Logger } from '@speakerd/plugin-sdk';

/**
 * Longest stderr line logged as is. A line that grows past it without a newline is logged cut to this many
 * characters and `…`; what had been read of it beyond is dropped, and what follows up to the next newline is
 * logged as a line of its own.
 */
export const MAX_STDERR_LINE = 4096;
/** At most this many stderr lines are logged per {@link STDERR_INTERVAL_MS} (across runs of the command). */
export const STDERR_LINES = 20;
export const STDERR_INTERVAL_MS = 10_000;

/**
 * The command's stderr, logged line by line at `warn` with `{"stream":"stderr","pid":…}`: UTF-8 decoded across
 * chunk boundaries, a trailing `\r` dropped, empty lines skipped, a line longer than {@link MAX_STDERR_LINE} cut,
 * an unterminated last line logged when the stream ends. At most {@link STDERR_LINES} lines per
 * {@link STDERR_INTERVAL_MS} on the given clock; the first line logged after lines were swallowed is preceded by
 * a line that says how many. One instance serves every run of the command, so the limit holds across restarts.
 */
export class StderrLog {
  readonly #limit: RateLimitedLog;

  constructor(
    private readonly log: Logger,
    now: () => number,
  ) {
    this.#limit = new RateLimitedLog(now, STDERR_LINES, STDERR_INTERVAL_MS);
  }

  /** Log `stream` line by line as the stderr of the process `pid()` (read when each line is logged). */
  follow(stream: Readable, pid: () => number | undefined): void {
    const decoder = new StringDecoder('utf8');
    let partial = '';
    const emit = (line: string): void => {
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text === '') return;
      const { log, suppressed } = this.#limit.shouldLog();
      if (!log) return;
      if (suppressed > 0) this.log.warn({ stream: 'stderr', suppressed }, `(${suppressed} stderr lines not logged)`);
      this.log.warn({ stream: 'stderr', pid: pid() }, text);
    };
    stream.on('data', (chunk: Buffer) => {
      partial += decoder.write(chunk);
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        emit(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      if (partial.length > MAX_STDERR_LINE) {
        emit(`${partial.slice(0, MAX_STDERR_LINE)}…`);
        partial = '';
      }
    });
    stream.on('end', () => {
      partial += decoder.end();
      if (partial !== '') emit(partial);
      partial = '';
    });
    stream.on('error', () => undefined);
  }
}
