import pino from 'pino';
import pretty from 'pino-pretty';
import type { Logger } from '@speakerd/plugin-sdk';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * The process logger: pino to stderr (fd 2) — JSON lines when stderr is not a TTY (a music server reads them),
 * pino-pretty when it is. stdout is never touched: it carries the control channel.
 */
export function createLogger(level: LogLevel, isTty = process.stderr.isTTY === true): pino.Logger & Logger {
  const options: pino.LoggerOptions = { level, base: { pid: process.pid }, name: 'speakerd' };
  if (isTty) {
    const stream = pretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l' });
    return pino(options, stream) as pino.Logger & Logger;
  }
  return pino(options, pino.destination({ dest: 2, sync: true })) as pino.Logger & Logger;
}
