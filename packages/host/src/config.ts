import { existsSync, readFileSync } from 'node:fs';
import { realpath, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cosmiconfig, defaultLoaders, getDefaultSearchPlaces, type Loader } from 'cosmiconfig';
import {
  ErrorCodes,
  SpeakerdError,
  formatKeyPath,
  issuesFromZod,
  isSpeakerdError,
  type OptionIssue,
} from '@speakerd/plugin-sdk';
import {
  HOST_KEYS,
  MAX_SOCKET_PATH_BYTES,
  defaultSocketPath,
  hostConfigSchema,
  type HostConfig,
} from './config-schema.js';
import {
  AUTO_BACKEND,
  findInstalledPlugins,
  loadPlugins,
  sectionsInOrder,
  type LoadedPlugin,
  type PluginSet,
} from './plugins.js';

export const MODULE_NAME = 'speaker';

/** The configuration after validation: host keys with defaults, each plugin's section, and where it came from. */
export interface ResolvedConfig {
  /** The file it came from, or undefined when none was found (all defaults). */
  readonly file: string | undefined;
  /** Relative paths are resolved against this directory. */
  readonly dir: string;
  readonly host: HostConfig & { socket: string };
  /** The plugin chosen as backend (with `auto`, the first candidate: see {@link AUTO_BACKEND}). */
  readonly backend: LoadedPlugin;
  /** `backend: "auto"`: the output is picked when the backend is made (auto.ts). */
  readonly auto: boolean;
  /** Every loaded plugin, by manifest name. */
  readonly plugins: ReadonlyMap<string, LoadedPlugin>;
  /**
   * Each plugin's validated options, by manifest name: every loaded plugin's, and each unused built-in's whose
   * section was checked (all of them, or those the file has: {@link LoadOptions.sections}).
   */
  readonly options: ReadonlyMap<string, unknown>;
  /** Sections for installed plugins that are not loaded (kept, not checked). */
  readonly unusedSections: readonly string[];
  /** Where a configuration file was looked for (empty with `--config`); see {@link configSearchDirs}. */
  readonly searched?: readonly string[];
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

/**
 * File names looked for in each directory, in order: cosmiconfig's own for "speaker" (package.json's "speaker"
 * key, .speakerrc[.json|.yaml|.yml|.js|.ts|.cjs|.mjs], .config/speakerrc…, speaker.config.*), then the plain
 * `speakerrc[.json|.yaml|.yml]` the documentation calls the file. A name without an extension is YAML (JSON is YAML).
 */
export const SEARCH_PLACES: readonly string[] = [
  ...getDefaultSearchPlaces(MODULE_NAME),
  'speakerrc',
  'speakerrc.json',
  'speakerrc.yaml',
  'speakerrc.yml',
];

/**
 * JSON files: JSON.parse, and cosmiconfig's own loader (parse-json, with a code frame and the position) only for a
 * file that does not parse: a good file never loads parse-json and the Babel code-frame library it brings.
 */
const loadJson: Loader = (filepath, content) => {
  try {
    return JSON.parse(content) as unknown;
  } catch {
    return defaultLoaders['.json'](filepath, content);
  }
};

const requireHere = createRequire(import.meta.url);

/**
 * JavaScript files (.js, .mjs, .cjs), ES module or CommonJS: the default export (module.exports), imported from
 * here rather than by cosmiconfig, which runs from a code-cached script where V8 loses import()'s callback
 * (nodejs/node#43663; scripts/code-cache-runtime.mjs). Each load reads the file as it is now, so that `reload` sees
 * an edit: an ES module by a URL naming the file's mtime and size (Node caches a module per URL), a CommonJS one
 * by dropping it from require's cache first (Node's import() of CommonJS goes through that cache). A file that
 * has not changed is the module already loaded.
 */
const loadModule: Loader = async (filepath) => {
  const file = await realpath(filepath);
  const { mtimeMs, size } = await stat(file);
  delete requireHere.cache[file];
  const url = pathToFileURL(file);
  url.search = `?version=${mtimeMs}-${size}`;
  const namespace = (await import(url.href)) as { default?: unknown };
  return namespace.default;
};

/**
 * TypeScript files: compiled by the `typescript` package where it is installed (as cosmiconfig does, whose loader
 * cannot import() from the code-cached script either), written beside the file so that its relative imports
 * resolve, imported, and removed.
 */
const loadTypeScript: Loader = async (filepath, content) => {
  let ts: typeof import('typescript');
  try {
    ts = ((await import('typescript')) as { default: typeof import('typescript') }).default;
  } catch {
    throw new Error(`${filepath}: a TypeScript configuration needs the "typescript" package installed beside speakerd`);
  }
  const { outputText } = ts.transpileModule(content, {
    fileName: filepath,
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  const compiled = `${filepath}.${process.pid}-${Date.now()}.mjs`;
  await writeFile(compiled, outputText);
  try {
    return await loadModule(compiled, outputText);
  } finally {
    await rm(compiled, { force: true });
  }
};

function explorer() {
  return cosmiconfig(MODULE_NAME, {
    loaders: {
      '.json': loadJson,
      '.js': loadModule,
      '.mjs': loadModule,
      '.cjs': loadModule,
      '.ts': loadTypeScript,
    },
    // only the directory given: speakerd walks its own list of directories (configSearchDirs)
    searchStrategy: 'none',
    searchPlaces: [...SEARCH_PLACES],
    // an empty file is found, and refused (emptyFile), rather than passed over for the next place
    ignoreEmptySearchPlaces: false,
  });
}

/**
 * The directories searched for a configuration file without `--config`, in order: the working directory, the
 * user's (`$XDG_CONFIG_HOME/speakerd`, default `~/.config/speakerd`), then the system's (`/etc/speakerd`). The first
 * file found is used; nothing is merged.
 */
export function configSearchDirs(cwd: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const xdg = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return [...new Set([resolvePath(cwd), join(xdg, 'speakerd'), '/etc/speakerd'])];
}

/** A configuration file found and parsed, or none (`file` undefined: the defaults), and where it was looked for. */
export interface FoundConfig {
  readonly file: string | undefined;
  readonly raw: unknown;
  /** The directories searched, in order (empty with `--config`). */
  readonly searched: readonly string[];
}

/** Find and parse the configuration file: `--config FILE`, else the first found in {@link configSearchDirs}. */
export async function findConfigFile(explicit: string | undefined, cwd: string): Promise<FoundConfig> {
  const ex = explorer();
  if (explicit !== undefined) {
    const file = isAbsolute(explicit) ? explicit : resolvePath(cwd, explicit);
    if (!existsSync(file)) throw new ConfigError(file, [{ path: [], message: 'file not found' }]);
    let result;
    try {
      result = await ex.load(file);
    } catch (err) {
      throw parseFailure(file, err);
    }
    if (!result || result.isEmpty || result.config == null) throw emptyFile(file);
    return { file, raw: result.config, searched: [] };
  }
  const searched = configSearchDirs(cwd);
  for (const dir of searched) {
    try {
      const result = await ex.search(dir);
      if (result && (result.isEmpty || result.config == null)) throw emptyFile(result.filepath);
      if (result) return { file: result.filepath, raw: result.config, searched };
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const file = (err as { filepath?: string }).filepath;
      // a directory that cannot be read (permissions) is not a configuration error: go on to the next
      if (file === undefined && ['EACCES', 'ENOTDIR', 'ENOENT'].includes((err as NodeJS.ErrnoException).code ?? ''))
        continue;
      throw parseFailure(file, err);
    }
  }
  return { file: undefined, raw: {}, searched };
}

/**
 * An empty (or whitespace- or comment-only) file is an error, not "all defaults": it is what an editor or a
 * configuration manager leaves when it truncates a file before writing it, and taking it as the defaults would
 * switch the backend under a running music server.
 */
function emptyFile(file: string): ConfigError {
  return new ConfigError(file, [
    {
      path: [],
      message:
        'the file is empty (truncated while it was being written?); write {} to mean "all defaults", or remove ' +
        'the file',
    },
  ]);
}

/** Line and column (1-based) of character `offset` in `text`. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/**
 * A file that does not parse, said the way an editor shows it: `FILE:LINE:COLUMN: reason`, then the line and a
 * caret. YAML errors carry their position (js-yaml's `mark`); JSON errors say "at position N" (or, in newer
 * Node, "line L column C"), which is turned into a line and column of the file.
 */
function parseFailure(file: string | undefined, err: unknown): ConfigError {
  const e = err as { message?: string; reason?: string; mark?: { line: number; column: number } };
  const message = e.message ?? String(err);
  let reason = message.split('\n')[0]!.replace(/^(JSON|YAML) Error in .*?:\s*/, '');
  let at: { line: number; column: number } | undefined;
  if (e.mark && typeof e.mark.line === 'number') {
    at = { line: e.mark.line + 1, column: e.mark.column + 1 };
    reason = e.reason ?? reason;
  } else {
    // parse-json: the reason is further down, after the code frame
    const json =
      /([^\n]*?) in JSON at position (\d+)/.exec(message) ?? /([^\n]*?) \(line (\d+) column (\d+)\)/.exec(message);
    if (json) {
      reason = json[1]!.replace(/^.*?\|\s*/, '').trim();
      if (json.length === 4) at = { line: Number(json[2]), column: Number(json[3]) };
      else if (file !== undefined) {
        try {
          at = lineColumn(readFileSync(file, 'utf8'), Number(json[2]));
        } catch {
          // unreadable now: no position
        }
      }
    }
  }
  reason = reason.replace(/\s*\(\d+:\d+\)$/, '').trim() || 'syntax error';
  return new ConfigParseError(file, reason, at);
}

/** A configuration file that does not parse: where (line and column, when known) and why. */
export class ConfigParseError extends ConfigError {
  constructor(
    file: string | undefined,
    readonly reason: string,
    readonly at: { line: number; column: number } | undefined,
  ) {
    super(file, [
      { path: [], message: `does not parse${at ? ` (line ${at.line}, column ${at.column})` : ''}: ${reason}` },
    ]);
  }

  override describe(): string {
    const where = `${this.file ?? '(no configuration file)'}${this.at ? `:${this.at.line}:${this.at.column}` : ''}`;
    let frame = '';
    if (this.at && this.file) {
      try {
        const line = readFileSync(this.file, 'utf8').split('\n')[this.at.line - 1];
        if (line !== undefined && line.length <= 200)
          frame = `\n  ${line}\n  ${' '.repeat(Math.max(0, this.at.column - 1))}^`;
      } catch {
        // gone: no frame
      }
    }
    return `${where}: does not parse: ${this.reason}${frame}`;
  }
}

/**
 * Validate a parsed configuration as a whole: host keys, then (after loading the plugins it names) each plugin's
 * section with that plugin's schema. Every problem is collected before failing.
 */
export async function validateConfig(
  raw: unknown,
  file: string | undefined,
  cwd: string,
  opts: LoadOptions = {},
): Promise<ResolvedConfig> {
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

  // "auto": the built-ins alsa and rtp (loadPlugins loads both); which one plays is decided when the backend is made
  const auto = backendSpec === AUTO_BACKEND;
  let plugins: PluginSet;
  try {
    plugins = await loadPlugins(
      backendSpec,
      extraSpecs,
      dir,
      opts.sections === 'written' ? (name) => Object.hasOwn(record, name) : undefined,
    );
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
  let installed: Set<string> | undefined; // node_modules is read only for a key that is not ours
  for (const k of Object.keys(record)) {
    if (HOST_KEYS.has(k) || plugins.byName.has(k) || plugins.sections.has(k)) continue;
    installed ??= new Set(findInstalledPlugins(dir).map((p) => p.name.replace(/^@[^/]+\//, '')));
    if (installed.has(k)) unused.push(k);
    else issues.push({ path: [k], message: 'unknown key' });
  }

  // every section is checked, the built-ins' first (in use or not), in the order of BUILTIN_PLUGINS
  const options = new Map<string, unknown>();
  for (const { name, options: schema } of sectionsInOrder(plugins)) {
    const parsed = schema.safeParse(record[name] ?? {});
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
  return {
    file,
    dir,
    host: { ...host, socket },
    backend,
    auto,
    plugins: plugins.byName,
    options,
    unusedSections: unused,
  };
}

/** Find, parse and validate: what every subcommand does first. */
/** How much of the configuration {@link loadConfig} resolves. */
export interface LoadOptions {
  /**
   * The sections of the built-ins the configuration does not use: `all` (the default) checks each and resolves its
   * defaults (`check-config` prints them); `written` only those the file has, so that a daemon does not build the
   * option schemas of plugins it will not run (docs/benchmarks.md), and `options` holds no entry for the others.
   */
  sections?: 'all' | 'written';
}

export async function loadConfig(
  explicit: string | undefined,
  cwd = process.cwd(),
  overrides?: Record<string, unknown>,
  opts: LoadOptions = {},
): Promise<ResolvedConfig> {
  const { file, raw, searched } = await findConfigFile(explicit, cwd);
  return { ...(await validateConfig(overrides ? overlay(raw, overrides) : raw, file, cwd, opts)), searched };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` laid on `raw`: its keys replace the file's, except that a section is merged key by key. */
export function overlay(raw: unknown, over: Record<string, unknown>): unknown {
  if (!isRecord(raw)) return raw; // not an object: validation says so
  const out: Record<string, unknown> = { ...raw };
  for (const [k, v] of Object.entries(over)) out[k] = isRecord(v) && isRecord(raw[k]) ? { ...raw[k], ...v } : v;
  return out;
}

/** One line saying which configuration is in force: the file, or where none was found. */
export function configSource(config: Pick<ResolvedConfig, 'file' | 'searched'>): string {
  if (config.file !== undefined) return `configuration from ${config.file}`;
  return (
    `no configuration file found (looked in ${(config.searched ?? []).join(', ')} for speakerrc, .speakerrc, ` +
    '.speakerrc.json, .speakerrc.yaml and the other names in packages/host/README.md): using the defaults'
  );
}

/** The resolved configuration as plain JSON (for `check-config`). */
export function configToJson(config: ResolvedConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config.host };
  for (const [name, opts] of config.options) out[name] = opts;
  return out;
}
