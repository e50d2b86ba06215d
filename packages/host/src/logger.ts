import { createRequire } from 'node:module';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';
import type { Logger } from '@speakerd/plugin-sdk';

import { registerLogFlush } from './log-flush.js';
import { LOG_LEVELS, type LogLevel } from './log-levels.js';
export { LOG_LEVELS, type LogLevel };

/** Log lines buffered for stderr beyond which new lines are dropped rather than blocking the play loop. */
export const MAX_LOG_BUFFER_BYTES = 1 << 20;

let destination: ReturnType<typeof pino.destination> | undefined;

/**
 * The process logger: pino to stderr (fd 2) — JSON lines when stderr is not a TTY (a music server reads them),
 * pino-pretty when it is. stdout is never touched: it carries the control channel.
 *
 * JSON lines are written asynchronously with a bounded buffer: a parent that stops reading stderr costs log
 * lines (dropped past 1 MiB), never a wedged play loop. {@link flushLogs} writes what is left at exit.
 */
export function createLogger(
  level: LogLevel,
  isTty = process.stderr.isTTY === true,
  /** On a terminal, where the pretty lines go instead of stderr (`speakerd play` puts them above its bar). */
  sink?: NodeJS.WritableStream,
): pino.Logger & Logger {
  const options: pino.LoggerOptions = { level, base: { pid: process.pid }, name: 'speakerd' };
  if (isTty) {
    // loaded only here: a daemon logging JSON to a pipe never loads pino-pretty (30 modules)
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    const stream = pretty({
      destination: sink ?? 2,
      sync: true,
      colorize: useColor(),
      translateTime: 'SYS:HH:MM:ss.l',
    });
    return pino(options, stream) as pino.Logger & Logger;
  }
  destination ??= pino.destination({ dest: 2, sync: false, maxLength: MAX_LOG_BUFFER_BYTES, minLength: 0 });
  return pino(options, destination) as pino.Logger & Logger;
}

/**
 * Whether a terminal gets colours: `NO_COLOR` (any non-empty value, no-color.org) turns them off, `FORCE_COLOR`
 * (anything but "0" or "false") turns them on, else they are on (the pretty form is only used on a terminal).
 */
export function useColor(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return true;
}

/** Write out buffered log lines (at exit). */
export function flushLogs(): void {
  try {
    destination?.flushSync();
  } catch {
    // stderr is gone or full: nothing more can be done
  }
}

registerLogFlush(flushLogs);
