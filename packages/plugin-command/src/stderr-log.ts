import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { LineSplitter, RateLimitedLog, type Logger } from '@speakerd/plugin-sdk';

/**
 * Longest stderr line logged as is, in bytes. A longer line is logged cut to this many bytes (whole UTF-8
 * characters) and `…` as soon as it passes the limit; the rest of it, up to its newline, is not logged (nor held).
 */
export const MAX_STDERR_LINE = 4096;
/** At most this many stderr lines are logged per {@link STDERR_INTERVAL_MS} (across runs of the command). */
export const STDERR_LINES = 20;
export const STDERR_INTERVAL_MS = 10_000;

/**
 * The command's stderr, logged line by line at `warn` with `{"stream":"stderr","pid":…}`: split by the SDK's
 * LineSplitter (so UTF-8 characters split across chunks arrive whole), a trailing `\r` dropped, empty lines
 * skipped, a line longer than {@link MAX_STDERR_LINE} bytes cut,
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
    const emit = (text: string): void => {
      if (text === '') return;
      const { log, suppressed } = this.#limit.shouldLog();
      if (!log) return;
      if (suppressed > 0) this.log.warn({ stream: 'stderr', suppressed }, `(${suppressed} stderr lines not logged)`);
      this.log.warn({ stream: 'stderr', pid: pid() }, text);
    };
    const splitter = new LineSplitter(
      MAX_STDERR_LINE,
      (line) => emit(line.toString('utf8').replace(/\r$/, '')),
      // whole characters only: a decoder's write() keeps back an incomplete UTF-8 sequence at the cut
      (head) => emit(`${new StringDecoder('utf8').write(head)}…`),
    );
    stream.on('data', (chunk: Buffer | string) =>
      splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk),
    );
    stream.on('end', () => splitter.end());
    stream.on('error', () => undefined);
  }
}
