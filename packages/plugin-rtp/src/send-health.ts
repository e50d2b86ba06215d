import { OutputState, RateLimitedLog, type Clock, type HostEvents, type Logger } from '@speakerd/plugin-sdk';
import { errorText } from './errors.js';
import type { Destination } from './transport.js';

/** Errors stop being reported as `lost` once sending has worked this long without one. */
export const RECOVER_MS = 3000;
/** RTCP/SAP send failures are logged at most once per this interval, with a count. */
export const CONTROL_LOG_MS = 60_000;

/**
 * Whether the stream gets out, as the host hears it: `lost` on a failed RTP send (either sender's), `ok` again
 * once a packet went out RECOVER_MS after the last error (one rule for both senders), each change once (the SDK's
 * OutputState). Failed sends are logged at most 5 times in 10 s with a count; RTCP and SAP failures once a
 * minute, and never change the state: the audio goes out on the RTP sockets, whose errors alone say whether the
 * output works.
 */
export class SendHealth {
  readonly output: OutputState;
  #lastErrorMs = -Infinity;
  readonly #errorLog: RateLimitedLog;
  readonly #controlLog: RateLimitedLog;

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
    events: HostEvents,
    /** The backend is closed: nothing is reported any more. */
    private readonly closed: () => boolean,
  ) {
    this.output = new OutputState(events);
    this.#errorLog = new RateLimitedLog(() => clock.now(), 5, 10_000);
    this.#controlLog = new RateLimitedLog(() => clock.now(), 1, CONTROL_LOG_MS);
  }

  /** A packet went out at `now` (either sender): `ok` again once RECOVER_MS have passed since the last error. */
  sendingWorks(now: number): void {
    if (this.output.state === 'lost' && now - this.#lastErrorMs > RECOVER_MS && this.output.ok('sending works again'))
      this.log.info('sending works again');
  }

  /** An RTP datagram (or `count` of them, the native thread's report) was not sent. */
  sendFailed(err: Error, dest: Destination | undefined, to?: string, count = 1): void {
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    const where =
      to || (dest ? `${dest.address}:${dest.port}` : e.address ? `${e.address}:${e.port ?? '?'}` : 'a recipient');
    this.#lastErrorMs = this.clock.now();
    const { log, suppressed } = this.#errorLog.shouldLog();
    if (log)
      this.log.warn(
        {
          code: e.code,
          to: where,
          ...(count > 1 ? { failed: count } : {}),
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        `sending to ${where} failed (${errorText(err)}); the datagram is dropped`,
      );
    if (!this.closed()) this.output.lost(`sending to ${where} failed: ${errorText(err)}`);
  }

  /** A report from the native thread: `count` sends failed since the last one, the last with `code`. */
  nativeFailed(code: string, errno: number, count: number, to: string, message: string): void {
    const err = Object.assign(new Error(message), { code, errno: -errno });
    this.sendFailed(err, undefined, to, count);
  }

  /** An RTCP report or a SAP announcement was not sent: logged (once a minute, with a count), nothing else. */
  controlFailed(err: Error, dest: Destination, what: 'rtcp' | 'sap'): void {
    if (this.closed()) return;
    const { log, suppressed } = this.#controlLog.shouldLog();
    if (!log) return;
    const where = `${dest.address}:${dest.port}`;
    this.log.warn(
      { code: (err as NodeJS.ErrnoException).code, to: where, what, ...(suppressed > 0 ? { suppressed } : {}) },
      `${what === 'rtcp' ? 'RTCP' : 'SAP'} to ${where} failed (${errorText(err)}); ` +
        `the report is dropped, the audio is not affected` +
        (suppressed > 0 ? ` (${suppressed} more RTCP/SAP failures in the last minute)` : ''),
    );
  }
}
