import { Engine } from './engine.js';
import type { GlobalOptions } from './cli-options.js';
import { failWith, loadOrFail, refuseRoot } from './cli-config.js';
import { EXIT_FAILURE, EXIT_OK } from './cli-exit.js';
import { configSource } from './config.js';
import { createLogger } from './logger.js';
import { isSpeakerdError } from '@speakerd/plugin-sdk';

/** `speakerd` with no subcommand: the long-running output host a music server launches. */
export async function runDaemon(opts: GlobalOptions): Promise<number> {
  refuseRoot(opts);
  // the sections of built-ins it will not run are checked only where the file has them (LoadOptions)
  const config = await loadOrFail(opts, undefined, { sections: 'written' });
  const log = createLogger(opts.logLevel);
  log.info({ file: config.file ?? null }, configSource(config));
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  const engine = new Engine(config, log, {
    configArg: opts.config,
    cwd: process.cwd(),
    input: process.stdin,
    output: process.stdout,
    onStopped: () => stopped(),
  });
  const onSignal = (signal: NodeJS.Signals) => void engine.stop(`received ${signal}`);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGPIPE', () => {});
  try {
    await engine.start();
  } catch (err) {
    await engine.stop('start-up failed').catch(() => {});
    // an expected failure (a coded error: its message says the cause and the fix) is one line, no stack
    if (isSpeakerdError(err)) failWith(err);
    log.fatal({ err }, 'start-up failed');
    process.stderr.write(`speakerd: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILURE;
  }
  await done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return EXIT_OK;
}
