// A third-party plugin installed the way docs/plugins.md says, as a user does it: the SDK and a plugin packed with
// `npm pack`, the plugin installed with `npm install` into a fresh directory beside the speakerrc, named there by
// its short name. No symlinks into the repo: the plugin gets speakerd's own SDK at run time.
import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { REPO, runSpeakerd, tempDir } from './helpers/cli.js';
import { npm, pack } from './helpers/npm.js';
import { testSignal } from './helpers/pcm.js';
import { decoder, Speakerd } from './helpers/speakerd.js';

const F: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

/** A plain-JS plugin package, written as an outside author would from the SDK docs. */
const PLUGIN_JS = `
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  SpeakerdError, definePlugin, withInjections, TOKENS, RealtimePacer, bytesPerFrame, framesForMs, z,
} from '@speakerd/plugin-sdk';

/** Spools PCM into a file at real time plus 20 ms. */
class SpoolBackend {
  pacing = 'clock';
  constructor(options, clock, context) {
    this.file = resolve(context.configDir, options.file);
    this.clock = clock;
    this.commands = {
      flush: () => { throw new SpeakerdError('bad-command', 'nothing to flush', { plugin: 'spool' }); },
      named: () => { throw new Error('spool.named: it says its own name'); },
    };
  }
  async activate(format) {
    this.format = format;
    this.pacer = new RealtimePacer(this.clock, format.rate, framesForMs(20, format));
    this.pacer.start();
  }
  writable() { return this.pacer ? this.pacer.writable() : 0; }
  write(data) {
    appendFileSync(this.file, data);
    const n = data.length / bytesPerFrame(this.format);
    this.pacer.wrote(n);
    return n;
  }
  delay() { return this.pacer ? this.pacer.queued() : 0; }
  async idle() { this.pacer?.stop(); }
  async close() {}
}
withInjections(SpoolBackend, TOKENS.Options, TOKENS.Clock, TOKENS.Context);

export default definePlugin({
  manifest: { name: 'spool', version: '1.2.3', sdk: '^0.1.0', description: 'PCM into a file' },
  options: z.strictObject({ file: z.string().default('spool.raw') }).prefault({}),
  backend: SpoolBackend,
});
`;

/** package.json as docs/plugins.md has it: the SDK an optional peer (speakerd supplies it). */
function pluginPackage(name: string, main = 'index.js') {
  return {
    name,
    version: '1.2.3',
    type: 'module',
    main,
    keywords: ['speakerd-plugin'],
    peerDependencies: { '@speakerd/plugin-sdk': '^0.1.0' },
    peerDependenciesMeta: { '@speakerd/plugin-sdk': { optional: true } },
  };
}

let work: { dir: string; cleanup: () => void };
let sdkTgz: string;
let pluginTgz: string;
let cleanups: (() => void | Promise<void>)[] = [];

beforeAll(() => {
  work = tempDir('speakerd-install-');
  // the SDK as it would be published (its built dist/, as `npm pack` takes it)
  sdkTgz = pack(join(REPO, 'packages/plugin-sdk'), work.dir);
  const src = join(work.dir, 'speakerd-plugin-spool');
  mkdirSync(src);
  writeFileSync(join(src, 'package.json'), JSON.stringify(pluginPackage('speakerd-plugin-spool'), null, 2));
  writeFileSync(join(src, 'index.js'), PLUGIN_JS);
  pluginTgz = pack(src, work.dir);
}, 60_000);

afterAll(() => work?.cleanup());
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** A fresh directory with the plugin installed by `npm install <tarball>` (offline: nothing else is fetched). */
function freshInstall(extra: string[] = []): string {
  const { dir, cleanup } = tempDir('speakerd-user-');
  cleanups.push(cleanup);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-speakerd', private: true }));
  npm(['install', '--prefer-offline', pluginTgz, ...extra], dir);
  return dir;
}

async function playOneTrack(dir: string, config: Record<string, unknown>) {
  const s = await Speakerd.start({ format: F, ...config }, { dir });
  cleanups.push(() => s.dispose());
  expect(s.events[0]).toMatchObject({ type: 'ready', backend: 'spool' });
  const pcm = testSignal(F, 22050, 91);
  expect((await decoder(s.socket, { id: 'a', ...F }, pcm)).reply).toEqual({ ok: true });
  s.send({ type: 'play', id: 'a' });
  await s.waitFor((e) => e.type === 'finished' && e.id === 'a');
  // finished comes up to earlyFinishMs early: wait until all of it has been spooled
  const file = join(dir, 'spool.raw');
  for (let i = 0; i < 100 && (!existsSync(file) || statSync(file).size < pcm.length); i++)
    await new Promise((r) => setTimeout(r, 50));
  return { s, pcm };
}

describe('a plugin installed from a packed tarball, named by its short name', () => {
  it('npm install needs nothing from a registry, and backend "spool" plays a track byte-exact through it', async () => {
    const dir = freshInstall();
    const lock = readFileSync(join(dir, 'package-lock.json'), 'utf8');
    expect(lock).not.toContain('node_modules/@speakerd/plugin-sdk'); // the optional peer was not installed
    const { s, pcm } = await playOneTrack(dir, { backend: 'spool' });
    // plugin commands: errors are answered once, prefixed with the command once
    expect(await s.request({ type: 'spool.flush' })).toMatchObject({
      type: 'error',
      code: 'bad-command',
      message: 'spool.flush: nothing to flush',
    });
    expect((await s.request({ type: 'spool.named' })).message).toBe('spool.named: it says its own name');
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, 'spool.raw')), Buffer.from(pcm))).toBe(0);
    const list = await runSpeakerd(['plugins', '--allow-root', '--config', join(dir, 'speakerrc.json')]);
    expect(list.code).toBe(0);
    const spool = list.stdout.split('\n').find((l) => l.startsWith('spool'))!;
    expect(spool.split('\t').slice(0, 3)).toEqual(['spool (backend)', '1.2.3', 'package']);
    expect(spool).toContain(join(dir, 'node_modules', 'speakerd-plugin-spool'));
  });

  it('with a copy of the SDK installed next to it too, the plugin still gets speakerd’s', async () => {
    const dir = freshInstall([sdkTgz]);
    const copy = JSON.parse(readFileSync(join(dir, 'node_modules/@speakerd/plugin-sdk/package.json'), 'utf8'));
    expect(copy.name).toBe('@speakerd/plugin-sdk');
    const { s, pcm } = await playOneTrack(dir, { backend: 'speakerd-plugin-spool' }); // the full name works too
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, 'spool.raw')), Buffer.from(pcm))).toBe(0);
  });

  it('installed and not configured: "speakerd plugins" lists it; its section is kept, not an unknown key', async () => {
    const dir = freshInstall();
    writeFileSync(
      join(dir, '.speakerrc.json'),
      JSON.stringify({ backend: 'command', command: { run: 'cat > /dev/null' }, spool: { file: 'later.raw' } }),
    );
    const list = await runSpeakerd(['plugins', '--allow-root'], { cwd: dir });
    expect(list.code).toBe(0);
    // the example plugin is a workspace of this checkout, so it is installed next to speakerd here: listed last
    const lines = list.stdout
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('recorder\t'));
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['alsa', 'command (backend)', 'rtp', 'snapcast', 'spool']);
    const spool = lines.find((l) => l.startsWith('spool\t'))!;
    expect(spool.split('\t').slice(1, 3)).toEqual(['1.2.3', 'installed']);
    expect(spool).toContain('not in use (name it in speakerrc: "backend": "spool"');
    const check = await runSpeakerd(['check-config', '--allow-root'], { cwd: dir });
    expect(check.code).toBe(0);
    expect(JSON.parse(check.stdout).notLoaded).toEqual(['spool']);
    // a typo is not kept: it is an unknown key, and a typo'd backend gets a suggestion
    writeFileSync(join(dir, '.speakerrc.json'), JSON.stringify({ backend: 'spoool' }));
    const typo = await runSpeakerd(['check-config', '--allow-root'], { cwd: dir });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('no plugin named "spoool"');
    expect(typo.stderr).toContain('Did you mean "spool"?');
    expect(typo.stderr).toContain('npm install speakerd-plugin-spoool');
  });

  it('a plugin that brings its own copy of the SDK (imported by a path) is refused with a coded message', async () => {
    const dir = freshInstall([sdkTgz]);
    const pkgDir = join(dir, 'node_modules', 'speakerd-plugin-spool');
    // as a bundler would leave it: the SDK's code inside the plugin, imported by a relative path
    cpSync(join(dir, 'node_modules/@speakerd/plugin-sdk'), join(pkgDir, 'vendor/plugin-sdk'), { recursive: true });
    writeFileSync(
      join(pkgDir, 'index.js'),
      PLUGIN_JS.replace("from '@speakerd/plugin-sdk'", "from './vendor/plugin-sdk/dist/index.js'"),
    );
    writeFileSync(join(dir, '.speakerrc.json'), JSON.stringify({ backend: 'spool' }));
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('SPEAKERD_ERR_PLUGIN_SDK_COPY');
    expect(r.stderr).toContain('second copy of @speakerd/plugin-sdk');
    expect(r.stderr).toContain('vendor/plugin-sdk');
    expect(r.stderr).toContain('optional peer dependency');
  });
});
