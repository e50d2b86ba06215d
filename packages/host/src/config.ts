import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { cosmiconfig } from 'cosmiconfig';
import {
  ErrorCodes,
  SpeakerdError,
  formatKeyPath,
  issuesFromZod,
  isSpeakerdError,
  type OptionIssue,
  type SpeakerdPlugin,
} from '@speakerd/plugin-sdk';
import {
  HOST_KEYS,
  MAX_SOCKET_PATH_BYTES,
  defaultSocketPath,
  hostConfigSchema,
  type HostConfig,
} from './config-schema.js';
import { findInstalledPlugins, loadPlugins, type LoadedPlugin, type PluginSet } from './plugins.js';

export const MODULE_NAME = 'speaker';

/** The configuration after validation: host keys with defaults, each plugin's section, and where it came from. */
export interface ResolvedConfig {
  /** The file it came from, or undefined when none was found (all defaults). */
  readonly file: string | undefined;
  /** Relative paths are resolved against this directory. */
  readonly dir: string;
  readonly host: HostConfig & { socket: string };
  /** The plugin chosen as backend. */
  readonly backend: LoadedPlugin;
  /** Every loaded plugin, by manifest name. */
  readonly plugins: ReadonlyMap<string, LoadedPlugin>;
  /** Each plugin's validated options, by manifest name. */
  readonly options: ReadonlyMap<string, unknown>;
  /** Sections for installed plugins that are not loaded (kept, not checked). */
  readonly unusedSections: readonly string[];
}

/** A configuration that does not parse or validate: every problem, each with its key path. */
export class ConfigError extends SpeakerdError {
  readonly file: string | undefined;
  readonly issues: readonly OptionIssue[];

  constructor(file: string | undefined, issues: readonly OptionIssue[], plugin?: string) {
    const where = file ?? '(no configuration file)';
    const lines = issues.map((i) => `${formatKeyPath(i.path)}: ${i.message}`);
    super(ErrorCodes.CONFIG, `${where}: ${lines.join('; ')}`, plugin === undefined ? {} : { plugin });
    this.file = file;
    this.issues = issues;
  }

  /** One line per problem, each naming the file and the key path. */
  describe(): string {
    const where = this.file ?? '(no configuration file)';
    return this.issues.map((i) => `${where}: ${formatKeyPath(i.path)}: ${i.message}`).join('\n');
  }
}

function explorer() {
  return cosmiconfig(MODULE_NAME, {
    // cosmiconfig 9 searches only the start directory unless told otherwise; that is what we want
    searchStrategy: 'none',
  });
}

/** Find and parse the configuration file: `--config FILE`, else cosmiconfig's search from `cwd`. */
export async function findConfigFile(
  explicit: string | undefined,
  cwd: string,
): Promise<{ file: string | undefined; raw: unknown }> {
  const ex = explorer();
  if (explicit !== undefined) {
    const file = isAbsolute(explicit) ? explicit : resolvePath(cwd, explicit);
    if (!existsSync(file)) throw new ConfigError(file, [{ path: [], message: 'file not found' }]);
    try {
      const result = await ex.load(file);
      return { file, raw: result?.config ?? {} };
    } catch (err) {
      throw parseFailure(file, err);
    }
  }
  try {
    const result = await ex.search(cwd);
    if (!result) return { file: undefined, raw: {} };
    return { file: result.filepath, raw: result.isEmpty ? {} : result.config };
  } catch (err) {
    const file = (err as { filepath?: string }).filepath;
    throw parseFailure(file, err);
  }
}

function parseFailure(file: string | undefined, err: unknown): ConfigError {
  const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  return new ConfigError(file, [{ path: [], message: `does not parse: ${msg.replace(/^.*?: /, '')}` }]);
}

/**
 * Validate a parsed configuration as a whole: host keys, then (after loading the plugins it names) each plugin's
 * section with that plugin's schema. Every problem is collected before failing.
 */
export async function validateConfig(raw: unknown, file: string | undefined, cwd: string): Promise<ResolvedConfig> {
  const dir = file ? dirname(file) : cwd;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(file, [{ path: [], message: `expected an object, got ${JSON.stringify(raw)}` }]);
  const record = raw as Record<string, unknown>;

  const hostPart: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) if (HOST_KEYS.has(k)) hostPart[k] = v;
  const issues: OptionIssue[] = [];
  const hostResult = hostConfigSchema.safeParse(hostPart);
  if (!hostResult.success) issues.push(...issuesFromZod(hostResult.error));
  // Plugin sections can be checked as long as `backend` and `plugins` themselves are valid.
  const which = hostConfigSchema
    .pick({ backend: true, plugins: true })
    .safeParse({ backend: hostPart.backend, plugins: hostPart.plugins });
  if (!which.success) throw new ConfigError(file, issues);
  const { backend: backendSpec, plugins: extraSpecs } = which.data;

  let plugins: PluginSet;
  try {
    plugins = await loadPlugins(backendSpec, extraSpecs, dir);
  } catch (err) {
    if (isSpeakerdError(err)) {
      const where = extraSpecs.includes(err.plugin ?? '') ? 'plugins' : 'backend';
      throw new SpeakerdError(err.code, `${file ?? '(no configuration file)'}: ${where}: ${err.message}`, {
        ...(err.plugin === undefined ? {} : { plugin: err.plugin }),
        cause: err,
      });
    }
    throw err;
  }

  // a section for an installed plugin the configuration does not use now (the backend was switched away from it)
  // is kept, unchecked; any other key is a mistake
  const unused: string[] = [];
  const installed = new Set(findInstalledPlugins(dir).map((p) => p.name.replace(/^@[^/]+\//, '')));
  for (const k of Object.keys(record)) {
    if (HOST_KEYS.has(k) || plugins.byName.has(k)) continue;
    if (installed.has(k)) unused.push(k);
    else issues.push({ path: [k], message: 'unknown key' });
  }

  const options = new Map<string, unknown>();
  for (const [name, loaded] of plugins.byName) {
    const section = record[name] ?? {};
    const parsed = (loaded.plugin as SpeakerdPlugin).options.safeParse(section);
    if (parsed.success) options.set(name, parsed.data);
    else issues.push(...issuesFromZod(parsed.error, [name]));
  }

  if (!hostResult.success) throw new ConfigError(file, issues);
  const host = hostResult.data;
  let socket = host.socket === undefined ? defaultSocketPath() : resolvePath(dir, host.socket);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH_BYTES)
    issues.push({
      path: ['socket'],
      message: `path is ${Buffer.byteLength(socket)} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} Linux allows for a Unix socket`,
    });
  if (issues.length > 0) throw new ConfigError(file, issues);
  socket = socket.normalize();

  const backend = plugins.bySpec.get(backendSpec)!;
  return { file, dir, host: { ...host, socket }, backend, plugins: plugins.byName, options, unusedSections: unused };
}

/** Find, parse and validate: what every subcommand does first. */
export async function loadConfig(explicit: string | undefined, cwd = process.cwd()): Promise<ResolvedConfig> {
  const { file, raw } = await findConfigFile(explicit, cwd);
  return validateConfig(raw, file, cwd);
}

/** The resolved configuration as plain JSON (for `check-config`). */
export function configToJson(config: ResolvedConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config.host };
  for (const [name, opts] of config.options) out[name] = opts;
  return out;
}
