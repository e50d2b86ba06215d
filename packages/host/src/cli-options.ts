import type { LogLevel } from './log-levels.js';

/** The options every subcommand takes (`--config`, `--allow-root`, `--log-level`), as commander parses them. */
export interface GlobalOptions {
  config?: string;
  allowRoot?: boolean;
  logLevel: LogLevel;
}
