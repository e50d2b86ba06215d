import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, isAbsolute, join, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import satisfies from 'semver/functions/satisfies.js';
import validRange from 'semver/ranges/valid.js';
import {
  ErrorCodes,
  SDK_VERSION,
  SpeakerdError,
  manifestProblem,
  sdkCopies,
  type SpeakerdPlugin,
} from '@speakerd/plugin-sdk';
import { linkSdk } from './sdk-link.js';

/** Names that stand for the built-in plugin packages. */
export const BUILTIN_PLUGINS: Readonly<Record<string, string>> = {
  alsa: '@speakerd/plugin-alsa',
  command: '@speakerd/plugin-command',
  rtp: '@speakerd/plugin-rtp',
  snapcast: '@speakerd/plugin-snapcast',
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

/**
 * Find a package's entry module by name in the `node_modules` directories from `fromDir` up to `/` — only there:
 * not NODE_PATH, not Node's global folders, never a built-in module (which `require.resolve` would answer with its
 * bare name). Node's resolver, run from the directory where the package was found, reads its `exports`.
 */
function resolvePackage(name: string, fromDir: string): string | undefined {
  for (let dir = resolvePath(fromDir); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name);
    if (existsSync(join(pkgDir, 'package.json'))) {
      try {
        const file = createRequire(join(dir, '__speakerd__.js')).resolve(name);
        if (isAbsolute(file) && realpathSync(file).startsWith(realpathSync(pkgDir) + sep)) return file;
      } catch {
        // ESM-only packages may refuse require.resolve: read the package.json by hand
      }
      return entryOfPackageDir(pkgDir);
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** An npm package name (`name`, `@scope/name`), which is all a non-path plugin specifier may be. */
const PACKAGE_NAME_RE = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$|^@[a-z0-9][a-z0-9._~-]*$/;

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

/** Where speakerd itself is installed (plugins are also looked up next to it). */
const HOST_DIR = dirname(fileURLToPath(import.meta.url));

/** The package prefix of third-party plugins: `speakerd-plugin-<name>`, `@scope/speakerd-plugin-<name>`. */
export const PLUGIN_PREFIX = 'speakerd-plugin-';

/**
 * The package names a plugin name stands for, in the order they are tried (as ESLint resolves its plugin
 * prefixes): `x` → `speakerd-plugin-x`, then `x`; `@scope/x` → `@scope/speakerd-plugin-x`, then `@scope/x`;
 * `@scope` → `@scope/speakerd-plugin`. A full package name stands for itself.
 */
export function packageCandidates(spec: string): string[] {
  if (spec.startsWith('@')) {
    const [scope, name] = spec.split('/', 2) as [string, string | undefined];
    if (!name) return [`${scope}/speakerd-plugin`];
    if (name === 'speakerd-plugin' || name.startsWith(PLUGIN_PREFIX)) return [spec];
    return [`${scope}/${PLUGIN_PREFIX}${name}`, spec];
  }
  if (spec.startsWith(PLUGIN_PREFIX)) return [spec];
  return [`${PLUGIN_PREFIX}${spec}`, spec];
}

/** The short name of a plugin package: `speakerd-plugin-x` → `x`, `@s/speakerd-plugin-x` → `@s/x`, `@s/speakerd-plugin` → `@s`. */
export function shortName(pkg: string): string {
  if (pkg.startsWith('@')) {
    const [scope, name = ''] = pkg.split('/', 2) as [string, string | undefined];
    if (name === 'speakerd-plugin') return scope;
    return name.startsWith(PLUGIN_PREFIX) ? `${scope}/${name.slice(PLUGIN_PREFIX.length)}` : pkg;
  }
  return pkg.startsWith(PLUGIN_PREFIX) ? pkg.slice(PLUGIN_PREFIX.length) : pkg;
}

/** The node_modules directories plugin packages are looked up in: from `configDir` up to `/`, then next to speakerd. */
export function lookupDirs(configDir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const start of [configDir, HOST_DIR]) {
    for (let dir = resolvePath(start); ; dir = dirname(dir)) {
      const nm = join(dir, 'node_modules');
      let real = nm;
      try {
        real = realpathSync(nm);
      } catch {
        real = nm;
      }
      if (!seen.has(real) && existsSync(nm)) {
        seen.add(real);
        out.push(nm);
      }
      if (dirname(dir) === dir) break;
    }
  }
  return out;
}

/** A plugin package found installed (not necessarily loadable). */
export interface InstalledPlugin {
  /** The name to use in speakerrc (`backend`, `plugins`): the package name without the prefix. */
  readonly name: string;
  readonly package: string;
  readonly version: string;
  /** The package's directory. */
  readonly dir: string;
}

/**
 * Every plugin package (`speakerd-plugin-*`, `@scope/speakerd-plugin*`) installed where speakerd looks, nearest
 * first; a package found in two places is listed where it is found first (where it is loaded from).
 */
export function findInstalledPlugins(configDir: string): InstalledPlugin[] {
  const found = new Map<string, InstalledPlugin>();
  const add = (pkg: string, dir: string) => {
    if (found.has(pkg)) return;
    try {
      const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: unknown };
      found.set(pkg, { name: shortName(pkg), package: pkg, version: String(meta.version ?? '?'), dir });
    } catch {
      // not a package
    }
  };
  for (const nm of lookupDirs(configDir)) {
    let entries: string[];
    try {
      entries = readdirSync(nm);
    } catch {
      continue;
    }
    for (const e of entries.sort()) {
      if (e.startsWith(PLUGIN_PREFIX)) add(e, join(nm, e));
      else if (e.startsWith('@')) {
        let scoped: string[] = [];
        try {
          scoped = readdirSync(join(nm, e));
        } catch {
          continue;
        }
        for (const n of scoped.sort())
          if (n === 'speakerd-plugin' || n.startsWith(PLUGIN_PREFIX)) add(`${e}/${n}`, join(nm, e, n));
      }
    }
  }
  return [...found.values()];
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps), for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}

/** The known plugin names closest to `spec` (at most 2 edits away). */
export function suggestions(spec: string, configDir: string): string[] {
  const names = [...Object.keys(BUILTIN_PLUGINS), ...findInstalledPlugins(configDir).map((p) => p.name)];
  return closest(shortName(spec), names);
}

/** The `names` closest to `word`, nearest first: at most 2 edits away (1 for words of up to 5 letters). */
export function closest(word: string, names: readonly string[]): string[] {
  return [...new Set(names)]
    .map((n) => ({ n, d: distance(word, n) }))
    .filter((x) => x.d > 0 && x.d <= Math.max(1, Math.min(2, Math.floor(word.length / 3))))
    .sort((x, y) => x.d - y.d)
    .map((x) => x.n);
}

function resolveSpec(spec: string, configDir: string): { file: string; origin: LoadedPlugin['origin'] } {
  const builtin = BUILTIN_PLUGINS[spec];
  if (builtin) {
    const file = resolvePackage(builtin, HOST_DIR);
    if (!file)
      throw new SpeakerdError(
        ErrorCodes.PLUGIN_NOT_FOUND,
        `built-in plugin "${spec}" (${builtin}) is not installed next to speakerd; reinstall speakerd`,
        { plugin: spec },
      );
    return { file, origin: 'builtin' };
  }
  // before anything is resolved or imported: a plugin is a package name or an explicit path, never a built-in
  // module of Node's and never a bare file name (which would be looked for in the working directory)
  if (isBuiltin(spec))
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_NOT_FOUND,
      `"${spec}" is a Node.js built-in module, not a plugin: name a plugin package (speakerd-plugin-<name>) or a ` +
        'path (./my-plugin.js)',
      { plugin: spec },
    );
  if (!isPathSpec(spec) && !PACKAGE_NAME_RE.test(spec))
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_NOT_FOUND,
      `"${spec}" is neither a package name nor a path: start a path with ./, ../ or / (relative paths are relative ` +
        "to the config file's directory)",
      { plugin: spec },
    );
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
  const candidates = packageCandidates(spec);
  for (const pkg of candidates) {
    const file = resolvePackage(pkg, configDir) ?? resolvePackage(pkg, HOST_DIR);
    if (file) return { file, origin: 'package' };
  }
  const near = suggestions(spec, configDir);
  const installed = findInstalledPlugins(configDir).map((p) => p.name);
  throw new SpeakerdError(
    ErrorCodes.PLUGIN_NOT_FOUND,
    `no plugin named "${spec}": it is not built in (${Object.keys(BUILTIN_PLUGINS).join(', ')}), and no package ` +
      `${candidates.map((c) => JSON.stringify(c)).join(' or ')} is installed in node_modules from ${configDir} up, or ` +
      `next to speakerd (${HOST_DIR})` +
      (near.length > 0 ? `. Did you mean ${near.map((n) => JSON.stringify(n)).join(' or ')}?` : '') +
      (installed.length > 0 ? ` Installed plugins: ${installed.join(', ')}.` : '') +
      ` To install one: cd ${configDir} && npm install ${candidates[0]} (see "speakerd plugins")`,
    { plugin: spec },
  );
}

/**
 * Load one plugin by its configuration name: resolve it, import it, check its manifest and its SDK range.
 * Every failure is a {@link SpeakerdError} with a code and the plugin's name.
 */
export async function loadPlugin(spec: string, configDir: string): Promise<LoadedPlugin> {
  const { file, origin } = resolveSpec(spec, configDir);
  // a plugin from outside speakerd gets speakerd's own SDK, wherever it is installed
  if (origin !== 'builtin') linkSdk();
  const copies = sdkCopies().length;
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
  const extra = sdkCopies().slice(copies);
  if (extra.length > 0 && copies > 0)
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_SDK_COPY,
      `plugin "${spec}" (${file}) loaded a second copy of @speakerd/plugin-sdk (${extra.join(', ')}); speakerd ` +
        `gives every plugin its own SDK (${SDK_VERSION}), and a second copy cannot work with it (another injection ` +
        `container). Do not bundle the SDK into the plugin or import it by a path: import "@speakerd/plugin-sdk" and ` +
        `declare it an optional peer dependency (see docs/plugins.md)`,
      { plugin: spec },
    );
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
  if (validRange(range) === null)
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_MANIFEST,
      `plugin "${plugin.manifest.name}" declares an invalid SDK range ${JSON.stringify(range)}`,
      { plugin: plugin.manifest.name },
    );
  if (!satisfies(SDK_VERSION, range, { includePrerelease: true }))
    throw new SpeakerdError(
      ErrorCodes.PLUGIN_SDK_RANGE,
      `plugin "${plugin.manifest.name}" ${plugin.manifest.version} expects @speakerd/plugin-sdk ${range}, ` +
        `but ${SDK_VERSION} is running; install a version of the plugin built for SDK ${SDK_VERSION}`,
      { plugin: plugin.manifest.name },
    );
  return { spec, file, origin, plugin };
}

/**
 * A built-in plugin the configuration does not use, as far as speakerd needs it: its name, its line and the schema
 * its section is checked with (the package's `./section` entry, which imports the options and nothing else).
 */
export interface BuiltinSection {
  readonly name: string;
  readonly description?: string;
  readonly options: SpeakerdPlugin['options'];
}

/** Import a built-in's `./section` entry; a failure is a {@link SpeakerdError} like a plugin's that does not load. */
export async function loadBuiltinSection(spec: string): Promise<BuiltinSection> {
  const pkg = BUILTIN_PLUGINS[spec];
  if (!pkg) throw new Error(`"${spec}" is not a built-in plugin`);
  const main = resolveSpec(spec, HOST_DIR).file;
  let file = main;
  try {
    file = createRequire(main).resolve(`${pkg}/section`);
    const section = ((await import(pathToFileURL(file).href)) as { section?: BuiltinSection }).section;
    if (section?.name !== spec || typeof section.options?.safeParse !== 'function')
      throw new Error('it exports no section { name, options }');
    return section;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new SpeakerdError(ErrorCodes.PLUGIN_LOAD, `plugin "${spec}" failed to load from ${file}: ${why}`, {
      plugin: spec,
      cause,
    });
  }
}

/**
 * Load the backend and the listed plugins (for `auto`, its candidates), once each; of the other built-ins only
 * their sections (a daemon on the command backend never compiles the RTP sender or opens the ALSA addon), and of
 * those only the ones `wantSection` asks for (a daemon: the sections the file has). Names must be unique: two
 * plugins with the same manifest name are an error (their sections and commands would collide).
 */
export async function loadPlugins(
  backend: string,
  extra: readonly string[],
  configDir: string,
  wantSection: (name: string) => boolean = () => true,
): Promise<PluginSet> {
  const named = new Set(backend === AUTO_BACKEND ? [...AUTO_CANDIDATES, ...extra] : [backend, ...extra]);
  const specs = [...new Set([...Object.keys(BUILTIN_PLUGINS), ...named])];
  const byName = new Map<string, LoadedPlugin>();
  const bySpec = new Map<string, LoadedPlugin>();
  const sectionsOf = new Map<string, BuiltinSection>();
  for (const spec of specs) {
    if (!named.has(spec)) {
      if (wantSection(spec)) sectionsOf.set(spec, await loadBuiltinSection(spec));
      continue;
    }
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
  // a plugin of the configuration's own that takes the name of a built-in it does not use
  for (const [name, loaded] of byName)
    if (name in BUILTIN_PLUGINS && !named.has(name))
      throw new SpeakerdError(
        ErrorCodes.PLUGIN_DUPLICATE,
        `two plugins are named "${name}": the built-in ${BUILTIN_PLUGINS[name]} and ${loaded.spec} (${loaded.file})`,
        { plugin: name },
      );
  // "auto" stands for its first candidate until the backend is made (auto.ts picks then)
  if (backend === AUTO_BACKEND) bySpec.set(AUTO_BACKEND, bySpec.get(AUTO_CANDIDATES[0])!);
  return { byName, bySpec, sections: sectionsOf };
}

/**
 * Every section a plugin set checks, in the order speakerd reports them: the built-ins first, in the order of
 * BUILTIN_PLUGINS (loaded, or only their section), then the other loaded plugins as loaded.
 */
export function sectionsInOrder(set: PluginSet): BuiltinSection[] {
  const out: BuiltinSection[] = [];
  const of = (name: string, p: LoadedPlugin): BuiltinSection => {
    const { description } = p.plugin.manifest;
    return { name, options: p.plugin.options, ...(description === undefined ? {} : { description }) };
  };
  for (const name of Object.keys(BUILTIN_PLUGINS)) {
    const loaded = set.byName.get(name);
    const section = loaded ? of(name, loaded) : set.sections.get(name);
    if (section) out.push(section);
  }
  for (const [name, p] of set.byName) if (!(name in BUILTIN_PLUGINS)) out.push(of(name, p));
  return out;
}

/** The outputs `backend: "auto"` tries, in order (as MPD, with no output configured, tries the sound card first). */
export const AUTO_CANDIDATES = ['alsa', 'rtp'] as const;

/** The backend name that picks an output the way MPD does when none is configured (auto.ts). */
export const AUTO_BACKEND = 'auto';

/** Loaded plugins by manifest name and by the name the configuration used. */
export interface PluginSet {
  readonly byName: ReadonlyMap<string, LoadedPlugin>;
  readonly bySpec: ReadonlyMap<string, LoadedPlugin>;
  /** The built-ins the configuration does not name (those asked for): only their sections, to check them. */
  readonly sections: ReadonlyMap<string, BuiltinSection>;
}
