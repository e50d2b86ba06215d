/** The log levels of `--log-level` and `logLevel` (apart from logger.ts so that the CLI's definition loads no pino). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
