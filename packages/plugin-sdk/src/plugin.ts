import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import type { BackendClass, ExtensionClass } from './backend.js';
import { ErrorCodes, SpeakerdError } from './errors.js';
import type { PluginContext } from './tokens.js';
import { inject, injectable } from './di.js';

/** Who a plugin is and which SDK it was written for. Checked by the host at load. */
export interface PluginManifest {
  /** Plugin name, also its key in speakerrc and the prefix of its commands (`rtp`, `rtp.add-recipient`). */
  readonly name: string;
  /** The plugin's own version (semver). */
  readonly version: string;
  /** The semver range of `@speakerd/plugin-sdk` the plugin works with, e.g. `^0.1.0`. */
  readonly sdk: string;
  /** One line for `speakerd plugins`. */
  readonly description?: string;
}

/** A speakerd plugin: the default export of its package's entry module. */
export interface SpeakerdPlugin<Options = unknown> {
  readonly manifest: PluginManifest;
  /**
   * Schema of the plugin's speakerrc section. Defaults belong here: `{}` should validate (a required key makes a
   * configuration that loads the plugin without it invalid, naming the key).
   */
  readonly options: z.ZodType<Options>;
  /** The output backend, if the plugin provides one. */
  readonly backend?: BackendClass;
  /** A service that adds commands without being an output. */
  readonly extension?: ExtensionClass;
  /**
   * Why this plugin's backend cannot run on this machine (a library or addon missing), or undefined when it can.
   * The host calls it before choosing the backend and reports the answer as `SPEAKERD_ERR_BACKEND_UNAVAILABLE`.
   */
  readonly unavailable?: () => string | undefined;
  /**
   * Whether the backend can play here, now, with these options (its section, validated, defaults applied): the
   * device opens, the address can be used. Resolves to undefined when it can, else why not in one line a person
   * can act on. Called before any backend is made, by `speakerd plugins`, `speakerd doctor` and
   * `backend: "auto"` (which picks the first output that can play). It may open and close a device or a socket
   * but makes no sound, and settles within about two seconds. Optional: without it the backend is assumed able.
   */
  probe?(options: Options, context: PluginContext): Promise<string | undefined>; // a method: bivariant in Options
}

const NAME_RE = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Declare a plugin. Checks the shape at once, so a malformed plugin fails where it is written rather than in the
 * host. Returns its argument.
 */
export function definePlugin<Options>(plugin: SpeakerdPlugin<Options>): SpeakerdPlugin<Options> {
  const problem = manifestProblem(plugin as unknown);
  if (problem) throw new SpeakerdError(ErrorCodes.PLUGIN_MANIFEST, problem, { plugin: plugin?.manifest?.name });
  return plugin;
}

/** Why `value` is not a valid plugin object, or undefined when it is. */
export function manifestProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'the module exports no plugin object';
  const p = value as Partial<SpeakerdPlugin>;
  const m = p.manifest as Partial<PluginManifest> | undefined;
  if (typeof m !== 'object' || m === null) return 'the plugin has no manifest';
  if (typeof m.name !== 'string' || !NAME_RE.test(m.name))
    return `manifest.name must match ${NAME_RE} (got ${JSON.stringify(m.name)})`;
  if (typeof m.version !== 'string' || m.version === '') return 'manifest.version must be a version string';
  if (typeof m.sdk !== 'string' || m.sdk === '') return 'manifest.sdk must be a semver range of @speakerd/plugin-sdk';
  if (typeof p.options !== 'object' || p.options === null || typeof (p.options as z.ZodType).safeParse !== 'function')
    return 'the plugin has no options schema (a zod schema)';
  if (p.backend !== undefined && typeof p.backend !== 'function') return 'backend must be a class';
  if (p.extension !== undefined && typeof p.extension !== 'function') return 'extension must be a class';
  if (p.unavailable !== undefined && typeof p.unavailable !== 'function') return 'unavailable must be a function';
  if (p.probe !== undefined && typeof p.probe !== 'function') return 'probe must be a function';
  return undefined;
}

/**
 * Read `name` and `version` from the package.json nearest to `moduleUrl` (pass `import.meta.url`), the way
 * ESLint plugins fill their `meta`, so the manifest never disagrees with the package.
 */
export function packageInfo(moduleUrl: string): { name: string; version: string } {
  let dir = dirname(fileURLToPath(moduleUrl));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name && pkg.version) return { name: pkg.name, version: pkg.version };
    } catch {
      // not here; go up
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${moduleUrl}`);
    dir = up;
  }
}

/**
 * For plugins written in plain JavaScript, which has no parameter decorators: declare the token of each
 * constructor parameter, in order, and make the class injectable. The same as `@injectable()` on the class and
 * `@inject(TOKENS.X)` on every parameter.
 *
 * ```js
 * class MyBackend { constructor(options, log, clock, events) { … } }
 * withInjections(MyBackend, TOKENS.Options, TOKENS.Logger, TOKENS.Clock, TOKENS.Events);
 * ```
 */
export function withInjections<C extends new (...args: never[]) => unknown>(cls: C, ...tokens: symbol[]): C {
  tokens.forEach((token, index) => inject(token)(cls, undefined, index));
  injectable()(cls as never);
  return cls;
}
