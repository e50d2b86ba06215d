import { isSpeakerdError } from '@speakerd/plugin-sdk';
import { loadConfig, type ResolvedConfig } from './config.js';
import { BUILTIN_PLUGINS, findInstalledPlugins, loadPlugin, type LoadedPlugin } from './plugins.js';

/** One line of `speakerd plugins`. */
export interface PluginLine {
  /** The name to use in speakerrc, and `(backend)` for the one in use. */
  name: string;
  version: string;
  /** `builtin`, `package`, `path`, or `installed` for a package found installed that the configuration does not use. */
  origin: string;
  file: string;
  /** `available`, `unavailable: why`, `not in use: …`, or `cannot load: why`. */
  status: string;
  description?: string;
}

function why(err: unknown): string {
  return isSpeakerdError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
}

function status(p: LoadedPlugin): string {
  const unavailable = p.plugin.backend ? p.plugin.unavailable?.() : 'no backend in this version';
  return unavailable ? `unavailable: ${unavailable}` : 'available';
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
  const line = (p: LoadedPlugin, name: string, origin: string, state = status(p)): PluginLine => ({
    name,
    version: p.plugin.manifest.version,
    origin,
    file: p.file,
    status: state,
    ...(p.plugin.manifest.description ? { description: p.plugin.manifest.description } : {}),
  });
  const dir = config?.dir ?? cwd;
  if (config) {
    for (const [name, p] of config.plugins) {
      used.add(p.file);
      lines.push(line(p, `${name}${config.backend === p ? ' (backend)' : ''}`, p.origin));
    }
  } else {
    for (const spec of Object.keys(BUILTIN_PLUGINS)) {
      try {
        const p = await loadPlugin(spec, dir);
        used.add(p.file);
        lines.push(line(p, spec, p.origin));
      } catch (err) {
        lines.push({ name: spec, version: '?', origin: 'builtin', file: '', status: `cannot load: ${why(err)}` });
      }
    }
  }
  for (const inst of findInstalledPlugins(dir)) {
    try {
      const p = await loadPlugin(inst.package, dir);
      if (used.has(p.file)) continue;
      used.add(p.file);
      const state = status(p);
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
