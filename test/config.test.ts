import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, hasStackTrace, runSpeakerd, tempDir } from './helpers/cli.js';

let cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});

function dir(): string {
  const t = tempDir('speakerd-config-');
  cleanups.push(t.cleanup);
  return t.dir;
}

async function checkConfig(cwd: string, extra: string[] = []) {
  const r = await runSpeakerd(['check-config', '--allow-root', ...extra], { cwd });
  return {
    ...r,
    json: r.code === 0 ? (JSON.parse(r.stdout) as { file: string | null; config: Record<string, any> }) : undefined,
  };
}

describe('speakerrc is found by cosmiconfig (module name "speaker")', () => {
  const places: [string, string][] = [
    ['.speakerrc', 'bufferMs: 1234\n'],
    ['.speakerrc.json', '{"bufferMs": 1234}'],
    ['.speakerrc.yaml', 'bufferMs: 1234\n'],
    ['speaker.config.js', 'export default { bufferMs: 1234 };\n'],
    ['speaker.config.cjs', 'module.exports = { bufferMs: 1234 };\n'],
    ['.speakerrc.mjs', 'const bufferMs = 1234;\nexport default { bufferMs };\n'],
    ['speaker.config.ts', 'const bufferMs: number = 1234;\nexport default { bufferMs };\n'],
    ['package.json', '{"name": "x", "speaker": {"bufferMs": 1234}}'],
  ];
  for (const [name, text] of places) {
    it(`finds ${name}`, async () => {
      const d = dir();
      writeFileSync(join(d, name), text);
      const r = await checkConfig(d);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.json!.file).toBe(join(d, name));
      expect(r.json!.config.bufferMs).toBe(1234);
    });
  }

  it('takes an explicit --config path, relative to the working directory', async () => {
    const d = dir();
    mkdirSync(join(d, 'etc'));
    writeFileSync(join(d, 'etc', 'mine.json'), '{"maxTracks": 7, "socket": "run/d.sock"}');
    const r = await checkConfig(d, ['--config', 'etc/mine.json']);
    expect(r.code).toBe(0);
    expect(r.json!.config.maxTracks).toBe(7);
    // relative paths in the file are relative to the file's directory
    expect(r.json!.config.socket).toBe(join(d, 'etc', 'run', 'd.sock'));
  });

  it('uses every default without a file', async () => {
    const r = await checkConfig(dir());
    expect(r.code).toBe(0);
    expect(r.json!.file).toBeNull();
    expect(r.json!.config.format).toEqual({ encoding: 's16le', rate: 44100, channels: 2 });
    expect(r.json!.config.bufferMs).toBe(5000);
    expect(r.json!.config.rtp.port).toBe(5004);
  });
});

describe('configuration errors name the file, the key path and the problem; exit 2; no stack trace', () => {
  async function expectConfigError(config: unknown, ...fragments: string[]) {
    const d = dir();
    const file = join(d, 'x.json');
    writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config));
    const r = await runSpeakerd(['check-config', '--allow-root', '--config', file], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(file);
    for (const f of fragments) expect(r.stderr).toContain(f);
    expect(hasStackTrace(r.stderr)).toBe(false);
    return r.stderr;
  }

  it('rtp.port given as a string', async () => {
    await expectConfigError({ rtp: { port: 'abc' } }, 'rtp.port: expected an integer 1..65535, got "abc"');
  });
  it('an unknown top-level key', async () => {
    await expectConfigError({ bufferMS: 100 }, 'bufferMS: unknown key');
  });
  it('an unknown key inside a plugin section', async () => {
    await expectConfigError({ command: { runn: 'cat' } }, 'command.runn: unknown key');
  });
  it('wrong types, all reported at once', async () => {
    const err = await expectConfigError(
      { format: { encoding: 's17', rate: 44100, channels: 9 }, volume: 'loud', alsa: { periodMs: -1 } },
      'format.encoding: expected one of u8, s8, s16le',
      'format.channels: expected an integer 1..8, got 9',
      'volume: expected a number 0..100, got "loud"',
      'alsa.periodMs: expected an integer 1..1000, got -1',
    );
    expect(err.split('\n').filter((l) => l.includes('x.json:')).length).toBe(4);
  });
  it('a file that does not parse', async () => {
    await expectConfigError('{"bufferMs": ', 'does not parse');
  });
  it('a missing --config file', async () => {
    const d = dir();
    const r = await runSpeakerd(['check-config', '--allow-root', '--config', join(d, 'nope.json')], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('nope.json');
    expect(r.stderr).toContain('file not found');
  });
  it('a socket path longer than Linux allows', async () => {
    await expectConfigError({ socket: '/tmp/' + 'x'.repeat(120) }, 'socket: path is 125 bytes, longer than the 107');
  });
});

describe('plugins', () => {
  /** A plugin package outside the repo, depending on the SDK the way an npm-installed plugin would. */
  function writePlugin(root: string, name: string, body: string): string {
    const pdir = join(root, name);
    mkdirSync(pdir, { recursive: true });
    writeFileSync(
      join(pdir, 'package.json'),
      JSON.stringify({ name, version: '1.2.3', type: 'module', main: 'index.js' }),
    );
    writeFileSync(join(pdir, 'index.js'), body);
    return pdir;
  }
  function linkSdk(root: string): void {
    mkdirSync(join(root, 'node_modules', '@speakerd'), { recursive: true });
    symlinkSync(join(REPO, 'packages/plugin-sdk'), join(root, 'node_modules', '@speakerd', 'plugin-sdk'));
  }

  const good = (sdk: string) => `
import { definePlugin, z, intRange, injectable, inject, TOKENS } from '@speakerd/plugin-sdk';
export default definePlugin({
  manifest: { name: 'outside', version: '1.2.3', sdk: '${sdk}', description: 'a plugin from elsewhere' },
  options: z.strictObject({ level: intRange(0, 10).default(3) }).prefault({}),
});
`;

  it('a plugin written outside the repo and named by path loads like the built-ins', async () => {
    const d = dir();
    linkSdk(d);
    writePlugin(d, 'outside-plugin', good('^0.1.0'));
    writeFileSync(
      join(d, '.speakerrc.json'),
      JSON.stringify({ backend: 'command', plugins: ['./outside-plugin'], outside: { level: 5 } }),
    );
    const r = await checkConfig(d);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.json!.config.outside).toEqual({ level: 5 });

    const bad = join(d, 'bad');
    mkdirSync(bad);
    writeFileSync(
      join(bad, '.speakerrc.json'),
      JSON.stringify({ plugins: ['../outside-plugin'], outside: { level: 50 } }),
    );
    const r2 = await runSpeakerd(['check-config', '--allow-root'], { cwd: bad });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain('outside.level: expected an integer 0..10, got 50');

    const list = await runSpeakerd(['plugins', '--allow-root'], { cwd: d });
    expect(list.code).toBe(0);
    // the example plugin is a workspace of this checkout, so it is installed next to speakerd here: listed last
    const lines = list.stdout
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('recorder\t'));
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['alsa', 'command (backend)', 'rtp', 'snapcast', 'outside']);
    expect(lines[4]).toContain('\t1.2.3\tpath\t' + join(d, 'outside-plugin', 'index.js'));
  });

  it('a plugin package installed in node_modules is found by name', async () => {
    const d = dir();
    linkSdk(d);
    writePlugin(join(d, 'node_modules'), 'speakerd-plugin-outside', good('>=0.1.0 <1'));
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ plugins: ['speakerd-plugin-outside'] }));
    const r = await checkConfig(d);
    expect(r.stderr).toBe('');
    expect(r.json!.config.outside).toEqual({ level: 3 });
  });

  async function expectPluginError(d: string, code: string, ...fragments: string[]) {
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: d });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(code);
    for (const f of fragments) expect(r.stderr).toContain(f);
    expect(hasStackTrace(r.stderr)).toBe(false);
  }

  it('a missing plugin package is a coded error', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ plugins: ['speakerd-plugin-nowhere'] }));
    await expectPluginError(
      d,
      'SPEAKERD_ERR_PLUGIN_NOT_FOUND',
      'speakerd-plugin-nowhere',
      'npm install speakerd-plugin-nowhere',
      'plugins:',
    );
  });

  it('a missing backend path is a coded error', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ backend: './not-here' }));
    await expectPluginError(d, 'SPEAKERD_ERR_PLUGIN_NOT_FOUND', 'not-here', 'backend:');
  });

  it('a plugin built for an incompatible SDK range is a coded error', async () => {
    const d = dir();
    linkSdk(d);
    writePlugin(d, 'old-plugin', good('^9.0.0'));
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ plugins: ['./old-plugin'] }));
    await expectPluginError(d, 'SPEAKERD_ERR_PLUGIN_SDK_RANGE', 'expects @speakerd/plugin-sdk ^9.0.0', '[outside]');
  });

  it('a plugin without a manifest is a coded error', async () => {
    const d = dir();
    writePlugin(d, 'bare', 'export default { hello: 1 };\n');
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ plugins: ['./bare'] }));
    await expectPluginError(d, 'SPEAKERD_ERR_PLUGIN_MANIFEST', 'has no manifest');
  });

  it('a plugin of the configuration named like a built-in it does not use is refused', async () => {
    const d = dir();
    linkSdk(d);
    writePlugin(d, 'fake-rtp', good('^0.1.0').replace("name: 'outside'", "name: 'rtp'"));
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ backend: 'command', plugins: ['./fake-rtp'] }));
    await expectPluginError(d, 'SPEAKERD_ERR_PLUGIN_DUPLICATE', 'two plugins are named "rtp"', '@speakerd/plugin-rtp');
  });

  it('the built-ins the configuration does not name: their plugins are never loaded, their sections checked (a daemon: those written)', async () => {
    const d = dir();
    // every module the daemon loads, through a resolve hook (module.register), written to a file
    const log = join(d, 'loaded.txt');
    writeFileSync(
      join(d, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';\n` +
        `export async function load(url, context, next) {\n` +
        `  appendFileSync(${JSON.stringify(log)}, url + '\\n');\n  return next(url, context);\n}\n`,
    );
    writeFileSync(
      join(d, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(d, 'hooks.mjs')).href)});\n`,
    );
    const hooked = { NODE_OPTIONS: `--import=${pathToFileURL(join(d, 'register.mjs')).href}` };
    const loaded = (): string[] =>
      readFileSync(log, 'utf8')
        .split('\n')
        .map((u) => /packages\/plugin-(alsa|command|rtp|snapcast)\/dist\/([a-z]+)\.bundle\.js$/.exec(u))
        .filter((m) => m !== null)
        .map((m) => `${m[1]}/${m[2]}`)
        .sort();

    const cfg = { backend: 'command', command: { run: 'cat > /dev/null' }, socket: join(d, 'run', 'd.sock') };
    const daemonLoads = async (config: Record<string, unknown>): Promise<string[]> => {
      rmSync(log, { force: true });
      writeFileSync(join(d, '.speakerrc.json'), JSON.stringify(config));
      const daemon = await runSpeakerd(['--allow-root'], { cwd: d, env: hooked });
      expect(daemon.stdout, daemon.stderr).toContain('"type":"ready"');
      return loaded();
    };
    // a daemon: the backend's plugin, and of the other built-ins only the sections the file has
    expect(await daemonLoads(cfg)).toEqual(['command/index']);
    expect(await daemonLoads({ ...cfg, rtp: { port: 5006 }, snapcast: {} })).toEqual([
      'command/index',
      'rtp/section',
      'snapcast/section',
    ]);

    // check-config resolves every section (it prints their defaults); auto loads both its candidates
    rmSync(log);
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ ...cfg, backend: 'auto' }));
    const check = await runSpeakerd(['check-config', '--allow-root'], { cwd: d, env: hooked });
    expect(check.code).toBe(0);
    expect(loaded()).toEqual(['alsa/index', 'command/section', 'rtp/index', 'snapcast/section']);
    expect(Object.keys(JSON.parse(check.stdout).config)).toEqual(expect.arrayContaining(['command', 'snapcast']));

    // a mistake in a section not in use is found all the same, each with its key path, by the daemon too
    const wrong = { ...cfg, rtp: { port: 'abc' }, alsa: { devcie: 'hw:0' }, snapcast: { port: 0 } };
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify(wrong));
    for (const args of [['check-config', '--allow-root'], ['--allow-root']]) {
      const r = await runSpeakerd(args, { cwd: d });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('rtp.port: expected an integer 1..65535, got "abc"');
      expect(r.stderr).toContain('alsa.devcie: unknown key');
      expect(r.stderr).toMatch(/snapcast\.port: /);
    }
  });

  it('a plugin that throws while loading is a coded error', async () => {
    const d = dir();
    writePlugin(d, 'broken', 'throw new Error("kaboom");\n');
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ plugins: ['./broken'] }));
    await expectPluginError(d, 'SPEAKERD_ERR_PLUGIN_LOAD', 'kaboom');
  });
});

describe('command line', () => {
  it('refuses to run as root without --allow-root', async () => {
    if (process.getuid?.() !== 0) {
      console.log('skipped: not running as root, so the root refusal cannot be observed');
      return;
    }
    const r = await runSpeakerd(['check-config'], { cwd: dir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('refusing to run as root');
    expect(r.stderr).toContain('--allow-root');
  });

  it('--version prints the host version', async () => {
    const r = await runSpeakerd(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('--help lists the subcommands and global options', async () => {
    const r = await runSpeakerd(['--help']);
    expect(r.code).toBe(0);
    for (const s of ['play', 'check-config', 'plugins', '--config', '--allow-root', '--log-level'])
      expect(r.stdout).toContain(s);
  });

  it('rejects an unknown option and a bad log level with exit 2', async () => {
    expect((await runSpeakerd(['--bogus'])).code).toBe(2);
    const r = await runSpeakerd(['check-config', '--allow-root', '--log-level', 'loud'], { cwd: dir() });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected one of trace, debug, info, warn, error');
  });
});
