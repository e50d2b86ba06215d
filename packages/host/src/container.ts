import {
  container as rootContainer,
  type DependencyContainer,
  ErrorCodes,
  RealClock,
  registerPluginServices,
  SpeakerdError,
  TOKENS,
  type Backend,
  type Clock,
  type Extension,
  type HostEvents,
  type Logger,
  type PluginContext,
} from '@speakerd/plugin-sdk';
import type { ResolvedConfig } from './config.js';
import type { LoadedPlugin } from './plugins.js';
import { VERSION } from './version.js';

/** Tokens for the host's own services (plugins never see these). */
export const HOST_TOKENS = {
  Config: Symbol.for('speakerd.host.Config'),
  RootLogger: Symbol.for('speakerd.host.RootLogger'),
} as const;

/**
 * The host's container: the clock, the root logger and the configuration. Tests pass a VirtualClock.
 * Every registration is by token; nothing relies on decorator metadata.
 */
export function createHostContainer(config: ResolvedConfig, logger: Logger, clock: Clock = new RealClock()) {
  const c = rootContainer.createChildContainer();
  c.register(TOKENS.Clock, { useValue: clock });
  c.register(HOST_TOKENS.RootLogger, { useValue: logger });
  c.register(HOST_TOKENS.Config, { useValue: config });
  return c;
}

/** A child container for one plugin: its options, its named logger, the events it reports through. */
export function pluginContainer(
  parent: DependencyContainer,
  loaded: LoadedPlugin,
  options: unknown,
  events: HostEvents,
  configDir: string,
): DependencyContainer {
  const name = loaded.plugin.manifest.name;
  const root = parent.resolve<Logger>(HOST_TOKENS.RootLogger);
  const context: PluginContext = { configDir, pluginName: name, hostVersion: VERSION };
  return registerPluginServices(parent.createChildContainer(), {
    options,
    logger: root.child({ plugin: name }),
    clock: parent.resolve<Clock>(TOKENS.Clock),
    events,
    context,
  });
}

/** Make the backend of `loaded` through its container; coded errors when it has none or cannot run here. */
export function createBackend(c: DependencyContainer, loaded: LoadedPlugin): Backend {
  const { plugin } = loaded;
  const name = plugin.manifest.name;
  if (!plugin.backend)
    throw new SpeakerdError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      `the "${name}" plugin has no backend in this version (${plugin.manifest.version})`,
      { plugin: name },
    );
  const why = plugin.unavailable?.();
  if (why) throw new SpeakerdError(ErrorCodes.BACKEND_UNAVAILABLE, why, { plugin: name });
  try {
    return c.resolve<Backend>(plugin.backend as never);
  } catch (cause) {
    throw new SpeakerdError(
      ErrorCodes.BACKEND,
      `cannot construct the "${name}" backend: ${cause instanceof Error ? cause.message : String(cause)}`,
      { plugin: name, cause },
    );
  }
}

/** Make the extension of `loaded`, if it has one. */
export function createExtension(c: DependencyContainer, loaded: LoadedPlugin): Extension | undefined {
  const ext = loaded.plugin.extension;
  return ext ? c.resolve<Extension>(ext as never) : undefined;
}
