import type { DependencyContainer } from './di.js';
import type { Clock } from './clock.js';
import type { HostEvents } from './backend.js';
import type { Logger } from './logger.js';
import { TOKENS, type PluginContext } from './tokens.js';

/** What the host gives a plugin, one value per token in {@link TOKENS}. */
export interface PluginServices {
  readonly options: unknown;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly events: HostEvents;
  readonly context: PluginContext;
}

/**
 * Register a plugin's services in its container under {@link TOKENS}. The host does exactly this for every
 * plugin, and {@link createTestBackend} does it for tests, so a backend is built the same way in both.
 */
export function registerPluginServices(c: DependencyContainer, services: PluginServices): DependencyContainer {
  c.register(TOKENS.Options, { useValue: services.options });
  c.register(TOKENS.Logger, { useValue: services.logger });
  c.register(TOKENS.Clock, { useValue: services.clock });
  c.register(TOKENS.Events, { useValue: services.events });
  c.register(TOKENS.Context, { useValue: services.context });
  return c;
}
