/**
 * Injection tokens for what the host provides to a plugin's backend or extension class. Use them with an
 * explicit `@inject(TOKENS.X)` on every constructor parameter: speakerd never relies on decorator metadata.
 *
 * ```ts
 * @injectable()
 * export class MyBackend implements Backend {
 *   constructor(
 *     @inject(TOKENS.Options) private readonly options: MyOptions,
 *     @inject(TOKENS.Logger) private readonly log: Logger,
 *     @inject(TOKENS.Clock) private readonly clock: Clock,
 *     @inject(TOKENS.Events) private readonly events: HostEvents,
 *   ) {}
 * }
 * ```
 */
export const TOKENS = {
  /** {@link Logger}: a child logger bound to the plugin's name. */
  Logger: Symbol.for('speakerd.Logger'),
  /** {@link Clock}: the monotonic clock (virtual in tests). */
  Clock: Symbol.for('speakerd.Clock'),
  /** The plugin's own options: its speakerrc section, validated and with defaults applied. */
  Options: Symbol.for('speakerd.Options'),
  /** {@link HostEvents}: report backend state, ask to be fed. */
  Events: Symbol.for('speakerd.Events'),
  /** {@link PluginContext}: paths and names a plugin may need. */
  Context: Symbol.for('speakerd.Context'),
} as const;

/** Facts about where the plugin runs (token {@link TOKENS.Context}). */
export interface PluginContext {
  /** Directory of the configuration file (or the working directory without one); relative paths start here. */
  readonly configDir: string;
  /** The plugin's name. */
  readonly pluginName: string;
  /** speakerd's version. */
  readonly hostVersion: string;
}
