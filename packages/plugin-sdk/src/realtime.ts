import { z } from 'zod';
import type { Logger } from './logger.js';

/**
 * Real-time scheduling of a backend's native thread (an RTP sender, an ALSA writer), as MPD does for its output
 * thread: the thread asks the kernel itself for SCHED_FIFO priority {@link REALTIME_PRIORITY}
 * (SCHED_RESET_ON_FORK) and 1 ns timer slack. `true`: ask, and warn when refused; `"auto"`: ask, and say so in one
 * info line when refused; `false`: leave the scheduling and the timer slack alone. rtkit is not used: the kernel
 * grants it to root, to a process with CAP_SYS_NICE, or under an RLIMIT_RTPRIO of at least the priority.
 */
export type RealtimeMode = boolean | 'auto';

/** The SCHED_FIFO priority a native thread asks for: below the kernel's threaded interrupt handlers (50). */
export const REALTIME_PRIORITY = 20;

/** The option's schema: `true`, `false` or `"auto"`. */
export function realtimeMode() {
  return z.union([z.boolean(), z.literal('auto')], {
    error: (issue) => `expected true, false or "auto", got ${JSON.stringify(issue.input) ?? String(issue.input)}`,
  });
}

/** What a native thread reports about its scheduling (from its own thread, right after it started). */
export interface RealtimeOutcome {
  /** The thread asked (the mode was not false). */
  requested: boolean;
  /** SCHED_FIFO was granted. */
  ok: boolean;
  /** errno of sched_setscheduler (0 when ok). */
  errno: number;
  /** Its name: EPERM, EINVAL, … ("" when ok). */
  code: string;
  /** strerror() of it ("" when ok). */
  message: string;
  /** The timer slack is 1 ns (prctl PR_SET_TIMERSLACK succeeded). */
  timerSlack: boolean;
}

/** The log line for a native thread's scheduling: info when granted, info (auto) or warn (true) when refused. */
export function reportRealtime(log: Logger, mode: RealtimeMode, outcome: RealtimeOutcome, thread: string): void {
  if (mode === false || !outcome.requested) return;
  const fields = { thread, realtime: mode, errno: outcome.errno, code: outcome.code, timerSlack: outcome.timerSlack };
  if (outcome.ok) {
    log.info(
      fields,
      `real-time scheduling for the ${thread}: SCHED_FIFO priority ${REALTIME_PRIORITY}` +
        (outcome.timerSlack ? ', 1 ns timer slack' : ''),
    );
    return;
  }
  const why =
    outcome.code === 'EPERM'
      ? `it needs CAP_SYS_NICE (root has it unless it was dropped) or an rtprio limit of ${REALTIME_PRIORITY} or more; rtkit is not used`
      : 'the kernel refused it';
  const text =
    `real-time scheduling was not permitted for the ${thread} (sched_setscheduler: ${outcome.code} ` +
    `${outcome.message}; ${why}): it runs at normal priority`;
  if (mode === true) log.warn(fields, text);
  else log.info(fields, text);
}
