import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import semver from 'semver';
import { ErrorCodes, SDK_VERSION, SpeakerdError, manifestProblem, type SpeakerdPlugin } from '@speakerd/plugin-sdk';

/** Names that stand for the built-in plugin packages. */
export const BUILTIN_PLUGINS: Readonly<Record<string, string>> = {
  alsa: '@speakerd/plugin-alsa',
  command: '@speakerd/plugin-command',
  rtp: '@speakerd/plugin-rtp',
};

/** A plugin after loading: where it came from and what it is. */
export interface LoadedPlugin {
  /** What the configuration said (`rtp`, `speakerd-plugin-x`, `./my-plugin`). */
  readonly spec: string;
  /** The file the module was loaded from. */
  readonly file: string;
  /** `builtin`, `package` or `path`. */
  readonly origin: 'builtin' | 'package' | 'path';
  readonly plugin: SpeakerdPlugin;
}

function isPathSpec(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..' || isAbsolute(spec);
}

/** Find a package's entry module by name, looking from `fromDir` upwards (honours `exports` import/default). */
function resolvePackage(name: string, fromDir: string): string | undefined {
  try {
    return createRequire(join(fromDir, '__speakerd__.js')).resolve(name);
  } catch {
    // ESM-only packages may refuse require.resolve; look for the package.json by hand
  }
  let dir = fromDir;
  for (;;) {
    const pkgDir = join(dir, 'node_modules', name);
    if (existsSync(join(pkgDir, 'package.json'))) return entryOfPackageDir(pkgDir);
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function entryOfPackageDir(pkgDir: string): string | undefined {
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
    main?: string;
    exports?: unknown;
  };
  let target: unknown = pkg.exports;
  if (typeof target === 'object' && target !== null && '.' in target) target = (target as Record<string, unknown>)['.'];
  while (typeof target === 'object' && target !== null) {
    const t = target as Record<string, unknown>;
    target = t.import ?? t.node ?? t.default;
  }
  const rel = typeof target === 'string' ? target : (pkg.main ?? 'index.js');
  const file = join(pkgDir, rel);
  return existsSync(file) ? file : undefined;
}

function resolveSpec(spec: string, configDir: string): { file: string; origin: LoadedPlugin['origin'] } {
  const builtin = BUILTIN_PLUGINS[spec];
  if (builtin) {
    const file = resolvePackage(builtin, dirname(new URL(import.meta.url).pathname));
    if (!file)
      throw new SpeakerdError(
        ErrorCodes.PLUGIN_NOT_FOUND,
        `built-in plugin "${spec}" (${builtin}) is not installed next to speakerd; reinstall speakerd`,
        { plugin: spec },
      );
    return { file, origin: 'builtin' };
  }
  if (isPathSpec(spec)) {
    const abs = resolvePath(configDir, spec);
    if (!existsSync(abs))
      throw new SpeakerdError(ErrorCodes.PLUGIN_NOT_FOUND, `plugin path "${spec}" does not exist (${abs})`, {
        plugin: spec,
      });
    let file: string | undefined = abs;
    if (statSync(abs).isDirectory()) {
      file = existsSync(join(abs, 'package.json')) ? entryOfPackageDir(abs) : undefined;
      if (!file && existsSync(join(abs, 'index.js'))) file = join(abs, 'index.js');
      if (!file)
        throw new SpeakerdError(
          ErrorCodes.PLUGIN_NOT_FOUND,
          `plugin directory "${spec}" has no entry module (package.json "exports"/"main", or index.js)`,
          { plugin: spec },
        );
    }
    return { file, origin: 'path' };
  }
  const file = resolvePackage(spec, configDir) ?? resolvePackage(spec, dirname(new URL(import.meta.url).pathname));
  if (!file)
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_NOT_FOUND,
      `cannot find plugin package "${spec}" (looked in node_modules from ${configDir} and next to speakerd); ` +
        `install it with "npm install ${spec}", or name it by path ("./${spec}")`,
      { plugin: spec },
    );
  return { file, origin: 'package' };
}

/**
 * Load one plugin by its configuration name: resolve it, import it, check its manifest and its SDK range.
 * Every failure is a {@link SpeakerdError} with a code and the plugin's name.
 */
export async function loadPlugin(spec: string, configDir: string): Promise<LoadedPlugin> {
  const { file, origin } = resolveSpec(spec, configDir);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new SpeakerdError(ErrorCodes.PLUGIN_LOAD, `plugin "${spec}" failed to load from ${file}: ${why}`, {
      plugin: spec,
      cause,
    });
  }
  const candidate = mod.default ?? mod.plugin;
  const problem = manifestProblem(candidate);
  if (problem)
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_MANIFEST,
      `plugin "${spec}" (${file}) is not a speakerd plugin: ${problem}; ` +
        `its default export must come from definePlugin() of @speakerd/plugin-sdk`,
      { plugin: spec },
    );
  const plugin = candidate as SpeakerdPlugin;
  const range = plugin.manifest.sdk;
  if (semver.validRange(range) === null)
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_MANIFEST,
      `plugin "${plugin.manifest.name}" declares an invalid SDK range ${JSON.stringify(range)}`,
      { plugin: plugin.manifest.name },
    );
  if (!semver.satisfies(SDK_VERSION, range, { includePrerelease: true }))
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_SDK_RANGE,
      `plugin "${plugin.manifest.name}" ${plugin.manifest.version} expects @speakerd/plugin-sdk ${range}, ` +
        `but ${SDK_VERSION} is running; install a version of the plugin built for SDK ${SDK_VERSION}`,
      { plugin: plugin.manifest.name },
    );
  return { spec, file, origin, plugin };
}

/**
 * Load the built-ins, the backend and the listed plugins, once each. Names must be unique: two plugins with the
 * same manifest name are an error (their sections and commands would collide).
 */
export async function loadPlugins(backend: string, extra: readonly string[], configDir: string): Promise<PluginSet> {
  const specs = [...new Set([...Object.keys(BUILTIN_PLUGINS), backend, ...extra])];
  const byName = new Map<string, LoadedPlugin>();
  const bySpec = new Map<string, LoadedPlugin>();
  for (const spec of specs) {
    const loaded = await loadPlugin(spec, configDir);
    const name = loaded.plugin.manifest.name;
    const other = byName.get(name);
    if (other && other.file !== loaded.file)
      throw new SpeakerdError(
        ErrorCodes.PLUGIN_DUPLICATE,
        `two plugins are named "${name}": ${other.spec} (${other.file}) and ${spec} (${loaded.file})`,
        { plugin: name },
      );
    if (!other) byName.set(name, loaded);
    bySpec.set(spec, other ?? loaded);
  }
  return { byName, bySpec };
}

/** Loaded plugins by manifest name and by the name the configuration used. */
export interface PluginSet {
  readonly byName: ReadonlyMap<string, LoadedPlugin>;
  readonly bySpec: ReadonlyMap<string, LoadedPlugin>;
}
