/**
 * Errors with a stable string `code`, and the name of the plugin they come from. The host prints
 * `[plugin] CODE: message` and never a stack trace for these.
 */
export class SpeakerdError extends Error {
  /** Stable machine-readable code, e.g. `SPEAKERD_ERR_PLUGIN_SDK_RANGE`. */
  readonly code: string;
  /** Name of the plugin the error comes from, when it comes from one. */
  readonly plugin: string | undefined;

  constructor(code: string, message: string, options: { plugin?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SpeakerdError';
    this.code = code;
    this.plugin = options.plugin;
  }

  /** `[rtp] SPEAKERD_ERR_X: message` (without the plugin part when there is none). */
  override toString(): string {
    return `${this.plugin ? `[${this.plugin}] ` : ''}${this.code}: ${this.message}`;
  }
}

/** Error codes the host and the SDK use. Plugins may define their own, prefixed with their name. */
export const ErrorCodes = {
  /** The configuration file does not parse or does not validate. */
  CONFIG: 'SPEAKERD_ERR_CONFIG',
  /** A plugin named in the configuration could not be found. */
  PLUGIN_NOT_FOUND: 'SPEAKERD_ERR_PLUGIN_NOT_FOUND',
  /** A plugin module failed to load (threw while importing). */
  PLUGIN_LOAD: 'SPEAKERD_ERR_PLUGIN_LOAD',
  /** A plugin module exports no valid manifest. */
  PLUGIN_MANIFEST: 'SPEAKERD_ERR_PLUGIN_MANIFEST',
  /** A plugin was built for an SDK range the running SDK does not satisfy. */
  PLUGIN_SDK_RANGE: 'SPEAKERD_ERR_PLUGIN_SDK_RANGE',
  /** A plugin loaded a second copy of the SDK (bundled, or imported by a path) instead of using speakerd's. */
  PLUGIN_SDK_COPY: 'SPEAKERD_ERR_PLUGIN_SDK_COPY',
  /** Two plugins claim the same name. */
  PLUGIN_DUPLICATE: 'SPEAKERD_ERR_PLUGIN_DUPLICATE',
  /** The plugin chosen as backend has no backend. */
  PLUGIN_NO_BACKEND: 'SPEAKERD_ERR_PLUGIN_NO_BACKEND',
  /** The backend cannot run on this machine (missing library, missing addon, not implemented). */
  BACKEND_UNAVAILABLE: 'SPEAKERD_ERR_BACKEND_UNAVAILABLE',
  /** The backend failed (threw, rejected). */
  BACKEND: 'SPEAKERD_ERR_BACKEND',
  /** The backend returned something the contract does not allow (a fractional frame count, bytes for frames…). */
  BACKEND_CONTRACT: 'SPEAKERD_ERR_BACKEND_CONTRACT',
  /** The decoder socket cannot be made: its directory cannot be created or is unsafe, or the path is in use. */
  SOCKET: 'SPEAKERD_ERR_SOCKET',
  /** speakerd was started as root without --allow-root. */
  ROOT: 'SPEAKERD_ERR_ROOT',
} as const;

/** True when `value` is a {@link SpeakerdError} (also across module copies). */
export function isSpeakerdError(value: unknown): value is SpeakerdError {
  return (
    value instanceof SpeakerdError ||
    (typeof value === 'object' &&
      value !== null &&
      (value as { name?: unknown }).name === 'SpeakerdError' &&
      typeof (value as { code?: unknown }).code === 'string')
  );
}

/**
 * The `error` codes of the control channel that a plugin command may answer with: throw
 * `new SpeakerdError(ProtocolErrorCodes.BUSY, …)` from a command handler to send `{"type":"error","code":"busy",…}`.
 * Any other code is sent as `bad-command`.
 */
export const ProtocolErrorCodes = {
  BAD_COMMAND: 'bad-command',
  BUSY: 'busy',
  BACKEND: 'backend',
  CONFIG: 'config',
} as const;
