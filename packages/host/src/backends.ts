import type { DependencyContainer } from '@speakerd/plugin-sdk';
import type { BackendMethod, BackendState, Clock, HostEvents, Logger, SampleFormat } from '@speakerd/plugin-sdk';
import { chooseAuto, type AutoChoice } from './auto.js';
import type { ResolvedConfig } from './config.js';
import { createBackend, pluginContainer } from './container.js';
import { BackendDriver, type BackendReport } from './playback/driver.js';

/** A backend made from a configuration: built, initialised, its format negotiated and configured. */
export interface MadeBackend {
  driver: BackendDriver;
  /** The output format (what the backend negotiated from the configured one). */
  format: SampleFormat;
  /** With `backend: "auto"`: what was picked, and why. */
  choice?: AutoChoice;
}

/** What the engine hears from a backend, through its driver. */
export interface BackendHooks {
  report(driver: BackendDriver, report: BackendReport): void;
  wake(driver: BackendDriver): void;
  failed(driver: BackendDriver, method: BackendMethod, retaken: number | undefined): void;
}

/**
 * Make the configured backend and bring it up to the point where it can be activated: construct it in its own
 * container (with the plugin's options, logger, clock and events), `init()`, `negotiate()`, `configure()`. Every
 * error is stamped with the plugin's name and the method; on an error, what was made is closed again.
 */
export async function makeBackend(
  parent: DependencyContainer,
  configured: ResolvedConfig,
  clock: Clock,
  log: Logger,
  hooks: BackendHooks,
): Promise<MadeBackend> {
  // backend "auto": pick the output first (ALSA if its device opens, else RTP)
  const auto = configured.auto ? await chooseAuto(configured) : undefined;
  const config = auto?.config ?? configured;
  const name = config.backend.plugin.manifest.name;
  // the backend gets its events before its driver exists: what it reports from its constructor is passed on later
  const ref: { driver?: BackendDriver; early?: { state: BackendState; message: string } } = {};
  const events: HostEvents = {
    backendState: (state, message) => {
      if (ref.driver) ref.driver.pluginState(state, message);
      else ref.early = { state, message };
    },
    wake: () => ref.driver?.pluginWake(),
  };
  const c = pluginContainer(parent, config.backend, config.options.get(name), events, config.dir);
  const backend = createBackend(c, config.backend);
  let made: BackendDriver;
  try {
    made = new BackendDriver(backend, name, {
      clock,
      log: log.child({ component: 'backend', plugin: name }),
      report: (r) => hooks.report(made, r),
      wake: () => hooks.wake(made),
      failed: (method, retaken) => hooks.failed(made, method, retaken),
    });
  } catch (err) {
    await Promise.resolve()
      .then(() => backend.close())
      .catch(() => {});
    throw err;
  }
  ref.driver = made;
  if (ref.early) made.pluginState(ref.early.state, ref.early.message);
  try {
    await made.init();
    const format = made.negotiate(config.host.format);
    await made.configure(format);
    return { driver: made, format, ...(auto ? { choice: auto.choice } : {}) };
  } catch (err) {
    await made.close();
    throw err;
  }
}
