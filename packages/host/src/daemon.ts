import { createBackend, createHostContainer, pluginContainer } from './container.js';
import { failWith, loadOrFail, refuseRoot, type GlobalOptions } from './cli.js';
import { createLogger } from './logger.js';

/** `speakerd` with no subcommand: the long-running output host a music server launches. */
export async function runDaemon(opts: GlobalOptions): Promise<number> {
  refuseRoot(opts);
  const config = await loadOrFail(opts);
  const log = createLogger(opts.logLevel);
  const c = createHostContainer(config, log);
  const events = { backendState: () => {}, wake: () => {} };
  const name = config.backend.plugin.manifest.name;
  const pc = pluginContainer(c, config.backend, config.options.get(name), events, config.dir);
  try {
    createBackend(pc, config.backend);
  } catch (err) {
    failWith(err);
  }
  failWith(new Error('the play engine is not available yet'));
}
