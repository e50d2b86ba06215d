import { createSocket } from 'node:dgram';
import { constants, existsSync, statSync, type Stats } from 'node:fs';
import { access } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isSpeakerdError } from '@speakerd/plugin-sdk';
import { ConfigError, loadConfig, type ResolvedConfig } from './config.js';
import { socketDirProblem } from './decoders/server.js';
import { defaultSocketPath } from './config-schema.js';
import { probePlugin } from './plugin-list.js';
import { loadPlugin, type LoadedPlugin } from './plugins.js';

/** How a check came out. */
export type CheckLevel = 'ok' | 'warn' | 'fail';

/** One line of `speakerd doctor`. */
export interface Check {
  /** What was checked: `config`, `alsa addon`, `output`, `ffmpeg`, `socket`… */
  name: string;
  level: CheckLevel;
  /** What was found. */
  found: string;
  /** For anything not ok: what to do (the command to run or the key to set). */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

const ok = (name: string, found: string): Check => ({ name, level: 'ok', found });
const warn = (name: string, found: string, fix: string): Check => ({ name, level: 'warn', found, fix });
const fail = (name: string, found: string, fix: string): Check => ({ name, level: 'fail', found, fix });

function message(err: unknown): string {
  if (err instanceof ConfigError) return err.describe().replace(/\n/g, '; ');
  if (isSpeakerdError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** A bound on anything that waits on the outside world (a socket that never answers). */
function within<T>(ms: number, p: Promise<T>, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(late), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

// ------------------------------------------------------------------ configuration

async function checkConfig(
  configArg: string | undefined,
  cwd: string,
): Promise<{ check: Check; config?: ResolvedConfig }> {
  let config: ResolvedConfig;
  try {
    config = await loadConfig(configArg, cwd);
  } catch (err) {
    return {
      check: fail(
        'config',
        `the configuration does not load: ${message(err)}`,
        'fix the key named above (speakerd check-config lists every problem), or pass --config FILE',
      ),
    };
  }
  const backend = config.backend.plugin.manifest.name;
  const auto = (config as { auto?: boolean }).auto === true;
  const what = `backend ${JSON.stringify(auto ? 'auto' : backend)}`;
  if (config.file) return { check: ok('config', `${config.file} (${what})`), config };
  const searched = (config as { searched?: readonly string[] }).searched;
  const where = searched && searched.length > 0 ? ` (looked in ${searched.join(', ')})` : ` (looked in ${cwd})`;
  return {
    check: warn(
      'config',
      `no configuration file found${where}; the defaults are in force (${what})`,
      'create .speakerrc.json there (e.g. {"backend": "command", "command": {"run": "aplay -q -t raw -f cd -"}}) ' +
        'or pass --config FILE',
    ),
    config,
  };
}

// ------------------------------------------------------------------ addons and libraries

/** Why an addon is unavailable, as the SDK's loadAddon() puts it: the whole message and its two halves. */
interface AddonWhy {
  why?: string;
  problem?: string;
  fix?: string;
}
interface AlsaModule {
  ADDON_PATH?: string;
  /** `part`: whether the addon itself failed or libasound, which it loads. */
  loadBinding?: () => AddonWhy & { part?: 'addon' | 'libasound' };
}
interface RtpModule {
  ADDON_PATH?: string;
  loadNative?: () => AddonWhy;
}

async function builtin(name: string, config: ResolvedConfig | undefined, dir: string): Promise<LoadedPlugin> {
  const mine = config?.plugins.get(name);
  if (mine && mine.origin === 'builtin') return mine;
  return loadPlugin(name, dir);
}

async function importModule<T>(file: string): Promise<T> {
  return (await import(pathToFileURL(file).href)) as T;
}

/** The alsa addon and libasound: a failure when alsa is the backend (or a candidate of `auto`), else a warning. */
async function checkAlsa(config: ResolvedConfig | undefined, dir: string, needed: boolean): Promise<Check[]> {
  const bad = needed ? fail : warn;
  let mod: AlsaModule;
  try {
    mod = await importModule<AlsaModule>((await builtin('alsa', config, dir)).file);
  } catch (err) {
    return [
      bad('alsa addon', `the alsa plugin does not load: ${message(err)}`, 'run "npm ci" in the speakerd checkout'),
    ];
  }
  const path = mod.ADDON_PATH ?? '(unknown)';
  // the plugin's own words (loadAddon's): what is wrong, and what to do
  const r = mod.loadBinding?.() ?? {};
  if (r.why && r.part !== 'libasound')
    return [
      bad('alsa addon', r.problem ?? r.why, r.fix ?? 'run "npm ci" in the speakerd checkout'),
      bad('libasound', 'not checked: the alsa addon loads it', 'make the alsa addon load first (above)'),
    ];
  const checks = [ok('alsa addon', `built (${path})`)];
  if (r.why) checks.push(bad('libasound', r.problem ?? r.why, r.fix ?? 'install the ALSA library'));
  else checks.push(ok('libasound', 'libasound.so.2 loads'));
  return checks;
}

/** The rtp sender addon: without it the JavaScript sender is used, so a warning at most. */
async function checkRtpAddon(config: ResolvedConfig | undefined, dir: string): Promise<Check> {
  let mod: RtpModule;
  try {
    mod = await importModule<RtpModule>((await builtin('rtp', config, dir)).file);
  } catch (err) {
    return warn('rtp addon', `the rtp plugin does not load: ${message(err)}`, 'run "npm ci" in the speakerd checkout');
  }
  const r = mod.loadNative?.() ?? {};
  if (!r.why) return ok('rtp addon', `built (${mod.ADDON_PATH ?? 'native sender'})`);
  return warn(
    'rtp addon',
    `${r.problem ?? r.why}; rtp sends from JavaScript timers instead (less even packet timing)`,
    r.fix ?? 'nothing to do: the JavaScript sender works here',
  );
}

// ------------------------------------------------------------------ the output

function describeOutput(name: string, options: unknown): string {
  const o = (options ?? {}) as Record<string, unknown>;
  if (name === 'alsa') return `the alsa device ${JSON.stringify(o.device ?? 'default')}`;
  if (name === 'rtp') return `rtp to ${String(o.destination ?? '127.0.0.1')}:${String(o.port ?? 5004)}`;
  if (name === 'command') return 'the command backend (/bin/sh)';
  return `the ${name} backend`;
}

/** The configured output can play now: its plugin's probe, with its section. */
async function checkOutput(config: ResolvedConfig): Promise<Check> {
  const auto = (config as { auto?: boolean }).auto === true;
  if (auto) {
    // `backend: "auto"` tries alsa, then rtp: fine as long as one of them can play
    const tried: string[] = [];
    for (const name of ['alsa', 'rtp']) {
      const p = config.plugins.get(name);
      if (!p) continue;
      const unavailable = p.plugin.unavailable?.();
      const why = unavailable ?? (await probePlugin(p, config.options.get(name), config.dir));
      if (why === undefined) {
        const note = tried.length > 0 ? ` (${tried.join('; ')})` : '';
        return ok('output', `auto picks ${describeOutput(name, config.options.get(name))}${note}`);
      }
      tried.push(`${name} cannot play: ${why}`);
    }
    return fail('output', `auto finds no output that can play: ${tried.join('; ')}`, 'set "backend" to "command"');
  }
  const p = config.backend;
  const name = p.plugin.manifest.name;
  const what = describeOutput(name, config.options.get(name));
  const unavailable = p.plugin.backend ? p.plugin.unavailable?.() : `the "${name}" plugin has no backend`;
  if (unavailable) return fail('output', `${what} cannot be used: ${unavailable}`, 'see the addon lines above');
  if (!p.plugin.probe) return ok('output', `${what}: the plugin has no probe; assumed able to play`);
  const why = await probePlugin(p, config.options.get(name), config.dir);
  if (why === undefined) return ok('output', name === 'alsa' ? `${what} opens` : `${what} can play`);
  // the probe's line says why and what to do
  return fail('output', name === 'alsa' ? `${what} does not open` : `${what} cannot play`, why);
}

// ------------------------------------------------------------------ tools for `speakerd play`

async function onPath(cmd: string): Promise<string | undefined> {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    if (!d) continue;
    const file = join(d, cmd);
    try {
      await access(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function checkTools(): Promise<Check[]> {
  const tools: [string, string, string][] = [
    ['ffmpeg', 'speakerd play decodes every format with it; without it, only WAV files play', 'apt-get install ffmpeg'],
    ['ffprobe', 'speakerd play reads durations with it (for the progress bar)', 'apt-get install ffmpeg'],
    [
      'sox',
      'not needed by speakerd itself; the documentation makes test tones with it',
      'apt-get install sox (optional)',
    ],
  ];
  return Promise.all(
    tools.map(async ([cmd, role, install]) => {
      const file = await onPath(cmd);
      return file ? ok(cmd, file) : warn(cmd, `not found on PATH (${role})`, install);
    }),
  );
}

// ------------------------------------------------------------------ the decoder socket

function isLive(path: string): Promise<boolean> {
  return within(
    500,
    new Promise<boolean>((resolve) => {
      const s = createConnection(path);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    }),
    false,
  );
}

/** PROTOCOL.md section 3: the socket's directory exists or can be made, is the user's, is not writable by others. */
async function checkSocket(config: ResolvedConfig | undefined): Promise<Check> {
  const path = config?.host.socket ?? defaultSocketPath();
  const dir = dirname(path);
  const own = 'set "socket" in speakerrc to a path in a directory of your own';
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  let st: Stats | undefined;
  try {
    st = statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      return fail('socket', `cannot use ${dir}: ${message(err)}`, own);
  }
  if (!st) {
    // find the nearest directory that exists: the rest is made (0700) at start
    let up = dirname(dir);
    for (; up !== dirname(up) && !existsSync(up); up = dirname(up));
    const virtual = /^\/(proc|sys)(\/|$)/.test(up);
    let writable = !virtual;
    if (writable)
      try {
        await access(up, constants.W_OK | constants.X_OK);
        writable = statSync(up).isDirectory();
      } catch {
        writable = false;
      }
    if (!writable) return fail('socket', `${dir} does not exist and cannot be made (${up} is not writable)`, own);
    return ok('socket', `${dir} does not exist yet; speakerd makes it (mode 0700) at start, for ${path}`);
  }
  if (!st.isDirectory()) return fail('socket', `${dir} is not a directory`, own);
  const mode = (st.mode & 0o777).toString(8).padStart(3, '0');
  const problem = socketDirProblem(dir, st, uid);
  if (problem) return fail('socket', problem.why, `${problem.fix.replace(/^run "(.*)"$/, '$1')}, or ${own}`);
  try {
    await access(dir, constants.W_OK | constants.X_OK);
  } catch {
    return fail('socket', `${dir} is not writable by this user (owner uid ${st.uid}, mode ${mode})`, own);
  }
  if (uid !== undefined && st.uid !== uid && (st.mode & 0o1000) === 0)
    return warn('socket', `${dir} belongs to uid ${st.uid}, not to this user (uid ${uid})`, own);
  if (existsSync(path) && (await isLive(path)))
    return warn(
      'socket',
      `another process is listening on ${path} (a speakerd already running?)`,
      `stop it, or ${own}`,
    );
  return ok('socket', `${dir} (mode ${mode}) for ${path}`);
}

// ------------------------------------------------------------------ RTP on this machine

function bindUdp(port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      resolve(err);
    });
    s.bind(port, '127.0.0.1', () => {
      s.close();
      resolve(undefined);
    });
  });
}

/** The RTP port and port + 1 can be bound on 127.0.0.1 (where a local receiver such as ffplay listens). */
async function checkRtpPort(config: ResolvedConfig | undefined, needed: boolean): Promise<Check> {
  const opts = (config?.options.get('rtp') ?? {}) as { port?: number };
  const port = opts.port ?? 5004;
  const errs = await Promise.all([bindUdp(port), bindUdp(port + 1)]);
  const inUse = [port, port + 1].filter((_, i) => errs[i]?.code === 'EADDRINUSE');
  if (inUse.length > 0)
    return warn(
      'rtp port',
      `UDP ${inUse.join(' and ')} on 127.0.0.1 is in use (a receiver already listening there is fine; another program is not)`,
      `if it is not your receiver, set "rtp.port" to a free even port (ss -ulpn shows who holds ${inUse[0]})`,
    );
  const other = errs.find((e) => e !== undefined);
  if (other)
    return (needed ? fail : warn)(
      'rtp port',
      `cannot bind UDP ${port} on 127.0.0.1: ${other.code ?? other.message}`,
      'check the loopback interface (ip addr show lo)',
    );
  return ok('rtp port', `UDP ${port} and ${port + 1} are free on 127.0.0.1 for a local receiver`);
}

/** One datagram from a socket on 127.0.0.1 to itself: UDP over loopback works (nothing leaves the machine). */
async function checkLoopback(needed: boolean): Promise<Check> {
  const s = createSocket('udp4');
  const result = await within(
    1000,
    new Promise<string | undefined>((resolve) => {
      s.once('error', (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      s.once('message', () => resolve(undefined));
      s.bind(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.send(Buffer.from('speakerd doctor'), port, '127.0.0.1', (err) => {
          if (err) resolve((err as NodeJS.ErrnoException).code ?? err.message);
        });
      });
    }),
    'no datagram arrived within 1 s',
  );
  s.close();
  if (result === undefined)
    return ok('loopback', 'a UDP datagram to 127.0.0.1 arrives (a local RTP receiver would hear the stream)');
  return (needed ? fail : warn)(
    'loopback',
    `UDP over 127.0.0.1 does not work: ${result}`,
    'check the firewall for the loopback interface (iptables -S / nft list ruleset) and that lo is up (ip link set lo up)',
  );
}

// ------------------------------------------------------------------ all of it

/** Run every check, in order. Nothing is changed on the machine and no sound is made. */
export async function runDoctor(
  configArg: string | undefined,
  cwd = process.cwd(),
  allowRoot = false,
): Promise<DoctorReport> {
  const checks: Check[] = [];
  const { check, config } = await checkConfig(configArg, cwd);
  checks.push(check);
  const dir = config?.dir ?? cwd;
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid === 0)
    checks.push(
      allowRoot
        ? ok('user', 'root (--allow-root given)')
        : warn(
            'user',
            'running as root: speakerd refuses to, unless given --allow-root',
            'run speakerd as an ordinary user',
          ),
    );
  else if (uid !== undefined) checks.push(ok('user', `uid ${uid}`));
  const backend = config?.backend.plugin.manifest.name;
  const auto = (config as { auto?: boolean } | undefined)?.auto === true;
  checks.push(...(await checkAlsa(config, dir, backend === 'alsa' && !auto)));
  checks.push(await checkRtpAddon(config, dir));
  if (config) checks.push(await checkOutput(config));
  else
    checks.push(fail('output', 'not checked: the configuration does not load', 'fix the configuration first (above)'));
  checks.push(...(await checkTools()));
  checks.push(await checkSocket(config));
  const rtpNeeded = backend === 'rtp' || auto;
  checks.push(await checkRtpPort(config, rtpNeeded));
  checks.push(await checkLoopback(rtpNeeded));
  return { ok: checks.every((c) => c.level !== 'fail'), checks };
}

/** `ok   name: found` and, for anything not ok, ` — what to do` — one line per check. */
export function formatCheck(c: Check): string {
  return `${c.level.padEnd(4)} ${c.name}: ${c.found}${c.fix ? ` — ${c.fix}` : ''}`;
}

/** Register `speakerd doctor` (after `plugins`). */
