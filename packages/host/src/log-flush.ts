/**
 * How main() flushes the logs before it exits without loading the logger (pino) for a run that never made one
 * (`--version`, `--help`): logger.ts registers its flush here when it loads.
 */
let flush: (() => void) | undefined;

export function registerLogFlush(f: () => void): void {
  flush = f;
}

export function flushLogsIfAny(): void {
  flush?.();
}
