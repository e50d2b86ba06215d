import { isSpeakerdError, type PluginContext, type SpeakerdPlugin } from '@speakerd/plugin-sdk';
import { loadConfig, type ResolvedConfig } from './config.js';
import { AUTO_CANDIDATES, BUILTIN_PLUGINS, findInstalledPlugins, loadPlugin, type LoadedPlugin } from './plugins.js';
import { VERSION } from './version.js';

/** One line of `speakerd plugins`. */
export interface PluginLine {
  /** The name to use in speakerrc, and `(backend)` for the one in use. */
  name: string;
  version: string;
  /** `builtin`, `package`, `path`, or `installed` for a package found installed that the configuration does not use. */
  origin: string;
  file: string;
  /**
   * `available` (its probe, with its section of the configuration or the defaults, says it can play here now),
   * `cannot play: why` (it loads, but its device does not open, its address cannot be used…),
   * `unavailable: why` (an addon or library is missing), `not in use: …`, or `cannot load: why`.
   */
  status: string;
  description?: string;
}

function why(err: unknown): string {
  return isSpeakerdError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

/** A host-side bound on a plugin's probe (the SDK asks for about two seconds; a third-party one may hang). */
export const PROBE_LIMIT_MS = 5000;

/**
 * Ask a plugin's `probe` whether its backend can play here now with `section` (its part of the configuration, or
 * undefined for its defaults). Resolves undefined when it can (or has no probe), else why not, in one line. Never
 * rejects: a probe that throws, or does not settle within {@link PROBE_LIMIT_MS}, is an answer too.
 */
export async function probePlugin(p: LoadedPlugin, section: unknown, configDir: string): Promise<string | undefined> {
  const plugin = p.plugin as SpeakerdPlugin;
  if (!plugin.probe) return undefined;
  const parsed = plugin.options.safeParse(section ?? {});
  if (!parsed.success)
    return `its section of the configuration does not validate: ${parsed.error.issues.map((i) => i.message).join('; ')}`;
  const context: PluginContext = { configDir, pluginName: plugin.manifest.name, hostVersion: VERSION };
  let timer: NodeJS.Timeout | undefined;
  try {
    const answer = await Promise.race([
      Promise.resolve().then(() => plugin.probe!(parsed.data, context)),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`its probe did not answer within ${PROBE_LIMIT_MS / 1000} s`), PROBE_LIMIT_MS);
      }),
    ]);
    return typeof answer === 'string' && answer !== '' ? answer.replace(/\s*\n\s*/g, ' ') : undefined;
  } catch (err) {
    return `its probe failed: ${why(err)}`;
  } finally {
    clearTimeout(timer);
  }
}

/** Loads, has a backend, nothing missing: then what its probe says. */
async function status(p: LoadedPlugin, section: unknown, dir: string): Promise<string> {
  const unavailable = p.plugin.backend ? p.plugin.unavailable?.() : 'no backend in this version';
  if (unavailable) return `unavailable: ${unavailable}`;
  const cannot = await probePlugin(p, section, dir);
  return cannot === undefined ? 'available' : `cannot play: ${cannot}`;
}

/**
 * What `speakerd plugins` lists: the plugins the configuration loads (built-ins, its backend, its `plugins`), then
 * every plugin package installed where speakerd looks that it does not use, each loaded to say whether it would
 * work. With a configuration that does not load, the built-ins and the installed packages are still listed, and
 * `error` says why.
 */
export async function pluginLines(
  configArg: string | undefined,
  cwd = process.cwd(),
): Promise<{ lines: PluginLine[]; error?: string }> {
  let config: ResolvedConfig | undefined;
  let error: string | undefined;
  try {
    config = await loadConfig(configArg, cwd);
  } catch (err) {
    error = why(err);
  }
  const lines: PluginLine[] = [];
  const used = new Set<string>();
  const line = (p: LoadedPlugin, name: string, origin: string, state: string): PluginLine => ({
    name,
    version: p.plugin.manifest.version,
    origin,
    file: p.file,
    status: state,
    ...(p.plugin.manifest.description ? { description: p.plugin.manifest.description } : {}),
  });
  const dir = config?.dir ?? cwd;
  /** A built-in, or undefined once a line says why it does not load. */
  const loadBuiltin = async (spec: string): Promise<LoadedPlugin | undefined> => {
    try {
      return await loadPlugin(spec, dir);
    } catch (err) {
      lines.push({ name: spec, version: '?', origin: 'builtin', file: '', status: `cannot load: ${why(err)}` });
      return undefined;
    }
  };
  if (config) {
    // `backend: "auto"` tries its candidates in order: each is marked with its place
    const marker = (name: string, p: LoadedPlugin): string => {
      if (config.auto) {
        const i = (AUTO_CANDIDATES as readonly string[]).indexOf(name);
        return i < 0 ? '' : ` (backend "auto", choice ${i + 1})`;
      }
      return config.backend === p ? ' (backend)' : '';
    };
    // the probes run at once (each bounded), the lines stay in order
    // the built-ins it does not name are not loaded by the configuration (only their sections): loaded here
    const entries: [string, LoadedPlugin][] = [];
    for (const spec of Object.keys(BUILTIN_PLUGINS)) {
      const p = config.plugins.get(spec) ?? (await loadBuiltin(spec));
      if (p) entries.push([spec, p]);
    }
    for (const [name, p] of config.plugins) if (!(name in BUILTIN_PLUGINS)) entries.push([name, p]);
    for (const [, p] of entries) used.add(p.file);
    const states = await Promise.all(entries.map(([name, p]) => status(p, config.options.get(name), dir)));
    entries.forEach(([name, p], i) => lines.push(line(p, `${name}${marker(name, p)}`, p.origin, states[i]!)));
  } else {
    for (const spec of Object.keys(BUILTIN_PLUGINS)) {
      const p = await loadBuiltin(spec);
      if (!p) continue;
      used.add(p.file);
      lines.push(line(p, spec, p.origin, await status(p, undefined, dir)));
    }
  }
  for (const inst of findInstalledPlugins(dir)) {
    try {
      const p = await loadPlugin(inst.package, dir);
      if (used.has(p.file)) continue;
      used.add(p.file);
      const state = await status(p, undefined, dir);
      const use = `not in use (name it in speakerrc: "backend": "${inst.name}" or "plugins": ["${inst.name}"])`;
      lines.push(line(p, inst.name, 'installed', state === 'available' ? use : `${use}; ${state}`));
    } catch (err) {
      lines.push({
        name: inst.name,
        version: inst.version,
        origin: 'installed',
        file: inst.dir,
        status: `cannot load: ${why(err)}`,
      });
    }
  }
  return error === undefined ? { lines } : { lines, error };
}
