// End-to-end: `speakerd doctor` (and what `speakerd plugins` says about each backend's device), the built binary.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadBinding } from '../packages/plugin-alsa/src/binding.js';
import { REPO, runSpeakerd, tempDir } from './helpers/cli.js';
import { haveCapability } from './helpers/tools.js';

const alsa = haveCapability('ALSA', loadBinding().binding !== undefined, loadBinding().why ?? '');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A temp dir with a socket directory of its own (0700) and `config` (plus that socket) as speakerrc.json. */
function setup(config: Record<string, unknown>, socketDirMode = 0o700): { dir: string; file: string; run: string } {
  const { dir, cleanup } = tempDir('speakerd-doctor-');
  cleanups.push(cleanup);
  const run = join(dir, 'run');
  mkdirSync(run);
  chmodSync(run, socketDirMode);
  const file = join(dir, 'speakerrc.json');
  writeFileSync(file, JSON.stringify({ socket: join(run, 'decoders.sock'), ...config }, null, 2));
  return { dir, file, run };
}

/** An even UDP port whose successor is free too, for the rtp section (so no other test's receiver is in the way). */
async function freeRtpPort(): Promise<number> {
  for (;;) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    s.close();
    if (port % 2 === 0 && port < 65534) return port;
  }
}

async function doctor(file: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}, bin?: string) {
  const r = await runSpeakerd(['doctor', '--allow-root', '--config', file, ...extra], { env, timeoutMs: 20000, bin });
  const lines = r.stdout.trim().split('\n');
  const line = (name: string) => lines.find((l) => new RegExp(`^(ok|warn|fail) +${name}: `).test(l));
  return { ...r, lines, line };
}

describe('speakerd doctor', () => {
  it('a configuration that is fine (command backend): exit 0, one line per check', async () => {
    const port = await freeRtpPort();
    const { file, run } = setup({ backend: 'command', command: { run: 'cat > /dev/null' }, rtp: { port } });
    const r = await doctor(file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const checks = r.lines.slice(0, -1);
    for (const l of checks) expect(l).toMatch(/^(ok {2}|warn|fail) [a-z][a-z ]*: \S/);
    expect(checks.filter((l) => l.startsWith('fail'))).toEqual([]);
    expect(r.line('config')).toBe(`ok   config: ${file} (backend "command")`);
    expect(r.line('user')).toBe('ok   user: root (--allow-root given)');
    expect(r.line('output')).toBe('ok   output: the command backend (/bin/sh) can play');
    expect(r.line('socket')).toBe(`ok   socket: ${run} (mode 700) for ${join(run, 'decoders.sock')}`);
    expect(r.line('rtp port')).toBe(
      `ok   rtp port: UDP ${port} and ${port + 1} are free on 127.0.0.1 for a local receiver`,
    );
    expect(r.line('loopback')).toMatch(/^ok {3}loopback: a UDP datagram to 127\.0\.0\.1 arrives/);
    for (const name of ['alsa addon', 'libasound', 'rtp addon', 'ffmpeg', 'ffprobe', 'sox'])
      expect(r.line(name), name).toBeDefined();
    // not the backend: a missing addon or tool is at most a warning
    for (const l of checks.filter((x) => x.startsWith('warn'))) expect(l).toContain(' — ');
    expect(r.lines.at(-1)).toMatch(/^speakerd doctor: nothing fails/);
  });

  it.skipIf(!alsa)(
    'an alsa device that does not open: exit 1, a fail line naming the device and what to do',
    async () => {
      const { file } = setup({ backend: 'alsa', alsa: { device: 'speakerd_no_such_pcm' } });
      const r = await doctor(file);
      expect(r.code).toBe(1);
      expect(r.line('alsa addon')).toMatch(/^ok {3}alsa addon: built \(.*speakerd_alsa\.node\)$/);
      expect(r.line('libasound')).toBe('ok   libasound: libasound.so.2 loads');
      expect(r.line('output')).toBe(
        'fail output: the alsa device "speakerd_no_such_pcm" does not open — cannot open "speakerd_no_such_pcm": No ' +
          'such file or directory (libasound: Unknown PCM speakerd_no_such_pcm): set "alsa.device" to a PCM that ' +
          'exists ("aplay -L" lists them)',
      );
      expect(r.lines.at(-1)).toBe('speakerd doctor: 1 check failed');
      // and `speakerd plugins` says the same of the backend, while the others can play
      const list = await runSpeakerd(['plugins', '--allow-root', '--config', file]);
      expect(list.code).toBe(0);
      const status = (name: string) =>
        list.stdout
          .split('\n')
          .find((l) => l.startsWith(`${name}\t`) || l.startsWith(`${name} (backend)\t`))
          ?.split('\t')[4];
      expect(status('alsa')).toMatch(/^cannot play: cannot open "speakerd_no_such_pcm": No such file or directory/);
      expect(status('command')).toBe('available');
    },
  );

  it.skipIf(!alsa)('an alsa device that opens: ok, and `speakerd plugins` says available', async () => {
    const { dir, file } = setup({});
    const device = `speakerd_capture:${join(dir, 'out.raw')}`;
    writeFileSync(file, JSON.stringify({ backend: 'alsa', alsa: { device }, socket: join(dir, 'run', 'd.sock') }));
    const r = await doctor(file);
    expect(r.line('output')).toBe(`ok   output: the alsa device "${device}" opens`);
    const list = await runSpeakerd(['plugins', '--allow-root', '--config', file]);
    expect(list.stdout).toMatch(/^alsa \(backend\)\t[^\t]+\tbuiltin\t[^\t]+\tavailable\t/m);
  });

  it('a socket directory writable by other users: a fail line with the chmod to run', async () => {
    const { file, run } = setup({ backend: 'command' }, 0o777);
    chmodSync(run, 0o777); // past the umask
    const r = await doctor(file);
    expect(r.code).toBe(1);
    expect(r.line('socket')).toBe(
      `fail socket: the socket directory ${run} is writable by other users (mode 777) — chmod go-w ${run}, or set ` +
        '"socket" in speakerrc to a path in a directory of your own',
    );
  });

  it('a socket directory that does not exist yet: fine (speakerd makes it), and doctor does not make it', async () => {
    const { dir, file } = setup({ backend: 'command' });
    const socket = join(dir, 'later', 'deeper', 'decoders.sock');
    writeFileSync(file, JSON.stringify({ backend: 'command', socket }));
    const r = await doctor(file);
    expect(r.line('socket')).toBe(
      `ok   socket: ${join(dir, 'later', 'deeper')} does not exist yet; speakerd makes it (mode 0700) at start, for ${socket}`,
    );
    expect(existsSync(join(dir, 'later'))).toBe(false);
  });

  it('a configuration that does not validate: exit 1, the key and what to do', async () => {
    const { file } = setup({ backend: 'command', rtp: { port: 'abc' } });
    const r = await doctor(file);
    expect(r.code).toBe(1);
    expect(r.line('config')).toMatch(
      /^fail config: the configuration does not load: .*rtp\.port: .* — fix the key named above/,
    );
    expect(r.line('output')).toBe(
      'fail output: not checked: the configuration does not load — fix the configuration first (above)',
    );
  });

  it('tools missing from PATH are warnings with the package to install; --json gives the same checks', async () => {
    const port = await freeRtpPort();
    const { file } = setup({ backend: 'command', rtp: { port } });
    const r = await doctor(file, ['--json'], { PATH: '/nonexistent' });
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      checks: { name: string; level: string; found: string; fix?: string }[];
    };
    expect(report.ok).toBe(true);
    const ffmpeg = report.checks.find((c) => c.name === 'ffmpeg');
    expect(ffmpeg).toEqual({
      name: 'ffmpeg',
      level: 'warn',
      found: 'not found on PATH (speakerd play decodes every format with it; without it, only WAV files play)',
      fix: 'apt-get install ffmpeg',
    });
    expect(report.checks.map((c) => c.name)).toEqual([
      'config',
      'user',
      'alsa addon',
      'libasound',
      'rtp addon',
      'output',
      'ffmpeg',
      'ffprobe',
      'sox',
      'socket',
      'rtp port',
      'loopback',
    ]);
  });

  it("a checkout whose addons were never built: the plugins' own reason and fix on each line, and rtp falls back", async () => {
    const port = await freeRtpPort();
    const { dir, file } = setup({ backend: 'rtp', rtp: { destination: '127.0.0.1', port } });
    // a copy of the checkout by hard links, without the two addons (what `npm ci --ignore-scripts` leaves)
    const root = join(dir, 'checkout');
    mkdirSync(root);
    for (const part of ['package.json', 'node_modules', 'packages'])
      execFileSync('cp', ['-al', join(REPO, part), join(root, part)]);
    for (const p of ['plugin-alsa', 'plugin-rtp'])
      rmSync(join(root, 'packages', p, 'build'), { recursive: true, force: true });
    const r = await doctor(file, [], {}, join(root, 'packages', 'host', 'bin', 'speakerd.js'));
    const alsaNode = join(root, 'packages', 'plugin-alsa', 'build', 'Release', 'speakerd_alsa.node');
    const rtpNode = join(root, 'packages', 'plugin-rtp', 'build', 'Release', 'speakerd_rtp.node');
    const compiler = 'install a C++ compiler, make and python3 (apt-get install g++ make python3)';
    expect(r.line('alsa addon'), r.stdout).toBe(
      `warn alsa addon: the native addon is not built (${alsaNode} is missing) — ${compiler}, then run "npm rebuild @speakerd/plugin-alsa"`,
    );
    expect(r.line('libasound')).toBe(
      'warn libasound: not checked: the alsa addon loads it — make the alsa addon load first (above)',
    );
    expect(r.line('rtp addon')).toBe(
      `warn rtp addon: the native addon is not built (${rtpNode} is missing); rtp sends from JavaScript timers ` +
        `instead (less even packet timing) — ${compiler}, then run "npm rebuild @speakerd/plugin-rtp"`,
    );
    // the rtp backend plays without it: no fail line, exit 0
    expect(
      r.lines.filter((l) => l.startsWith('fail')),
      r.stdout,
    ).toEqual([]);
    expect(r.code).toBe(0);
  });
});
