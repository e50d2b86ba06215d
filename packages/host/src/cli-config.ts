import { ErrorCodes, isSpeakerdError } from '@speakerd/plugin-sdk';
import type { GlobalOptions } from './cli-options.js';
import { EXIT_CONFIG, EXIT_FAILURE, fail } from './cli-exit.js';
import { ConfigError, loadConfig, type LoadOptions, type ResolvedConfig } from './config.js';

/**
 * What the subcommands that read the configuration share (loaded when one of them runs, never for `--help` or
 * `--version`).
 */

/** Print a configuration or plugin error the way people read it (no stack trace), then exit 2. */
export function failWith(err: unknown): never {
  if (err instanceof ConfigError) fail(`invalid configuration\n${err.describe()}`);
  if (isSpeakerdError(err))
    fail(
      err.toString(),
      err.code === ErrorCodes.BACKEND || err.code === ErrorCodes.SOCKET ? EXIT_FAILURE : EXIT_CONFIG,
    );
  throw err;
}

export function refuseRoot(opts: GlobalOptions): void {
  if (typeof process.getuid === 'function' && process.getuid() === 0 && !opts.allowRoot)
    fail(
      `${ErrorCodes.ROOT}: refusing to run as root (a sound server has no need for it); ` +
        `run as an ordinary user, or pass --allow-root if you really mean it`,
    );
}

export async function loadOrFail(
  opts: GlobalOptions,
  overrides?: Record<string, unknown>,
  load?: LoadOptions,
): Promise<ResolvedConfig> {
  try {
    return await loadConfig(opts.config, process.cwd(), overrides, load);
  } catch (err) {
    failWith(err);
  }
}
