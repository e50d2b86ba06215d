import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_TRACKS, demoPcm, demoWav } from '../packages/host/src/demo.js';
import { useColor } from '../packages/host/src/logger.js';
import { outputOverrides } from '../packages/host/src/play.js';
import { REPO, SPEAKERD, hasStackTrace, runSpeakerd, tempDir } from './helpers/cli.js';
import { haveTool } from './helpers/tools.js';
import { exitOf, ffmpegReceiver, freePortPair, udpBound } from './helpers/udp.js';

// What a person new to speakerd runs into, and the text they read. Each error is driven through the built binary.
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});
function dir(): string {
  const t = tempDir('speakerd-newcomer-');
  cleanups.push(t.cleanup);
  return t.dir;
}
/** An environment whose user and system config directories are empty: only the test's files count. */
function env(d: string): NodeJS.ProcessEnv {
  mkdirSync(join(d, 'xdg'), { recursive: true });
  mkdirSync(join(d, 'run'), { recursive: true, mode: 0o700 });
  // the default socket goes under XDG_RUNTIME_DIR: each test its own, so tests running at once never share one
  return { XDG_CONFIG_HOME: join(d, 'xdg'), XDG_RUNTIME_DIR: join(d, 'run') };
}
const command = (d: string) => ({ backend: 'command', command: { run: 'cat > /dev/null' }, socket: join(d, 's.sock') });

describe('errors a person understands', () => {
  it('a file that is not there: its name and "no such file", exit 2, nothing started', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify(command(d)));
    const r = await runSpeakerd(['play', 'nope.flac', '--allow-root'], { cwd: d, env: env(d) });
    expect(r.stderr.trim()).toBe('speakerd play: nope.flac: no such file');
    expect(r.code).toBe(2);
  });

  it('a JSON syntax error: file, line and column, the reason, and the line with a caret', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), '{\n  "backend": "command",\n  "command": { "run": "cat" ,, }\n}\n');
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: d, env: env(d) });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'speakerd: invalid configuration\n' +
        `${join(d, '.speakerrc.json')}:3:30: does not parse: Expected double-quoted property name\n` +
        '    "command": { "run": "cat" ,, }\n' +
        '                               ^\n',
    );
  });

  it('a YAML syntax error: file, line and column', async () => {
    const d = dir();
    writeFileSync(join(d, 'speakerrc.yaml'), 'backend: command\ncommand:\n  run: "cat\n');
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: d, env: env(d) });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /speakerrc\.yaml:4:1: does not parse: unexpected end of the stream within a double quoted scalar/,
    );
  });

  it('a typo in the backend: did you mean, and the real package name to install', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ backend: 'comand' }));
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: d, env: env(d) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no plugin named "comand"');
    expect(r.stderr).toContain('Did you mean "command"?');
    expect(r.stderr).toContain('npm install speakerd-plugin-comand');
    expect(r.stderr).not.toMatch(/npm install comand\b/);
  });

  it('a typo in the subcommand: did you mean, not "too many arguments"', async () => {
    const r = await runSpeakerd(['paly', 'x.wav', '--allow-root']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^speakerd: unknown command "paly"\. Did you mean "play"\?/);
  });

  it('a socket path that cannot be made fails at once, in one line with the fix, no stack trace', async () => {
    const d = dir();
    writeFileSync(
      join(d, '.speakerrc.json'),
      JSON.stringify({ ...command(d), socket: '/proc/speakerd-test-no-such/s.sock' }),
    );
    const t0 = Date.now();
    const r = await runSpeakerd(['--allow-root'], { cwd: d, env: env(d), timeoutMs: 10_000 });
    expect(Date.now() - t0).toBeLessThan(8000); // it used to loop on mkdir for ever
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'speakerd: SPEAKERD_ERR_SOCKET: cannot create the directory /proc/speakerd-test-no-such: ENOENT',
    );
    expect(r.stderr).toContain('set "socket" in speakerrc to a path in a directory of your own');
    expect(hasStackTrace(r.stderr)).toBe(false);
    expect(r.stderr).not.toContain('"level":60'); // no FATAL record
  });

  it('a bad --output says what it takes', async () => {
    expect(outputOverrides({ output: 'speaker' })).toBe(
      '--output: expected alsa:DEVICE, command:CMD, file:PATH, rtp:HOST[:PORT] or auto, got "speaker"',
    );
    expect(outputOverrides({ output: 'alsa:' })).toBe(
      '--output alsa: needs a device after the colon (e.g. --output alsa:hw:0,0)',
    );
    expect(outputOverrides({ output: 'rtp:[::1]:5006' })).toEqual({
      backend: 'rtp',
      rtp: { destination: '::1', port: 5006 },
    });
    const r = await runSpeakerd(['play', 'x.wav', '--output', 'speaker', '--allow-root']);
    expect(r.code).toBe(2);
  });

  it('a checkout under a path with a space finds its own built-in plugins and plays', async () => {
    const d = dir();
    const root = join(d, 'my music', 'speakerd');
    mkdirSync(root, { recursive: true });
    // a copy of the checkout, by hard links (cheap): what speakerd needs to run, at a path with a space
    for (const part of ['package.json', 'node_modules', 'packages', 'examples'])
      execFileSync('cp', ['-al', join(REPO, part), join(root, part)]);
    const out = join(d, 'out.raw');
    const r = await runSpeakerd(['demo', '--allow-root', '--output', `file:${out}`], {
      cwd: d,
      env: { ...env(d), SPEAKERD_BIN: '' },
      timeoutMs: 30_000,
      bin: join(root, 'packages', 'host', 'bin', 'speakerd.js'),
    });
    expect(r.stderr).not.toContain('is not installed next to speakerd');
    expect(r.code, r.stderr).toBe(0);
    // every chord (a little silence may lead, or none: the test of the demo below checks the bytes)
    expect(readFileSync(out).length, r.stderr).toBeGreaterThanOrEqual(
      DEMO_TRACKS.length * demoPcm(DEMO_TRACKS[0].tones).length,
    );
  });

  it('NO_COLOR turns colours off, FORCE_COLOR on', () => {
    expect(useColor({})).toBe(true);
    expect(useColor({ NO_COLOR: '1' })).toBe(false);
    expect(useColor({ NO_COLOR: '' })).toBe(true); // no-color.org: only a non-empty value counts
    expect(useColor({ FORCE_COLOR: '0' })).toBe(false);
    expect(useColor({ NO_COLOR: '1', FORCE_COLOR: '1' })).toBe(false);
  });
});

describe('an output that cannot play', () => {
  it('speakerd play gives up within 10 s, exit 1, with the reason', async () => {
    const d = dir();
    const wav = join(d, 'x.wav');
    writeFileSync(wav, demoWav(DEMO_TRACKS[0].tones));
    const t0 = Date.now();
    const r = await runSpeakerd(['play', wav, '--allow-root', '--output', 'alsa:speakerd_no_such_pcm'], {
      cwd: d,
      env: env(d),
      timeoutMs: 20_000,
    });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/speakerd play: the output cannot play: alsa: cannot open "speakerd_no_such_pcm"/);
  });
});

describe('config discovery a person can follow', () => {
  it('finds a plain "speakerrc" (YAML or JSON), and check-config names it', async () => {
    const d = dir();
    writeFileSync(join(d, 'speakerrc'), JSON.stringify(command(d)));
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: d, env: env(d) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ file: join(d, 'speakerrc'), backend: 'command' });
  });

  it('then $XDG_CONFIG_HOME/speakerd/; the working directory comes first', async () => {
    const d = dir();
    const e = env(d);
    mkdirSync(join(d, 'xdg', 'speakerd'));
    writeFileSync(join(d, 'xdg', 'speakerd', 'speakerrc.yaml'), 'backend: rtp\n');
    mkdirSync(join(d, 'work'));
    let r = await runSpeakerd(['check-config', '--allow-root'], { cwd: join(d, 'work'), env: e });
    expect(JSON.parse(r.stdout)).toMatchObject({ file: join(d, 'xdg', 'speakerd', 'speakerrc.yaml'), backend: 'rtp' });
    writeFileSync(join(d, 'work', '.speakerrc.json'), JSON.stringify(command(d)));
    r = await runSpeakerd(['check-config', '--allow-root'], { cwd: join(d, 'work'), env: e });
    expect(JSON.parse(r.stdout)).toMatchObject({ file: join(d, 'work', '.speakerrc.json'), backend: 'command' });
  });

  it('with none found, check-config says where it looked; the daemon logs which file it used', async () => {
    const d = dir();
    const e = env(d);
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: d, env: e });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.file).toBe(null);
    expect(out.searched).toEqual([d, join(d, 'xdg', 'speakerd'), '/etc/speakerd']);
    expect(r.stderr).toContain(`speakerd: no configuration file found (looked in ${d}, ${join(d, 'xdg', 'speakerd')}`);
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify(command(d)));
    const daemon = await runSpeakerd(['--allow-root'], { cwd: d, env: e, input: '' });
    expect(daemon.code).toBe(0);
    expect(daemon.stderr).toContain(`"msg":"configuration from ${join(d, '.speakerrc.json')}"`);
    // ready carries the decoder socket's path
    expect(JSON.parse(daemon.stdout.split('\n')[0]!)).toMatchObject({ type: 'ready', socket: join(d, 's.sock') });
  });
});

describe('backend "auto"', () => {
  it('is the default; `speakerd plugins` marks its candidates in order, each with whether it can play', async () => {
    const d = dir();
    writeFileSync(join(d, '.speakerrc.json'), JSON.stringify({ alsa: { device: 'speakerd_no_such_pcm' } }));
    const r = await runSpeakerd(['plugins', '--allow-root'], { cwd: d, env: env(d) });
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    const alsa = lines.find((l) => l.startsWith('alsa'))!.split('\t');
    const rtp = lines.find((l) => l.startsWith('rtp'))!.split('\t');
    expect(alsa[0]).toBe('alsa (backend "auto", choice 1)');
    expect(alsa[4]).toMatch(/^cannot play: cannot open "speakerd_no_such_pcm"/);
    expect(rtp[0]).toBe('rtp (backend "auto", choice 2)');
    expect(rtp[4]).toBe('available');
  });
});

describe('speakerd demo (npm start)', () => {
  it('plays the three demo chords back to back: the bytes through --output file: are exactly theirs', async () => {
    const d = dir();
    const out = join(d, 'demo.raw');
    const r = await runSpeakerd(['demo', '--allow-root', '--output', `file:${out}`], {
      cwd: d,
      env: env(d),
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('speakerd demo: three chords of 2.5 s');
    const expected = Buffer.concat(DEMO_TRACKS.map((t) => demoPcm(t.tones)));
    const got = readFileSync(out);
    // a little silence may lead while the first decoder starts; then the chords, gapless, to the last byte
    const lead = got.length - expected.length;
    expect(lead).toBeGreaterThanOrEqual(0);
    expect(lead).toBeLessThan(44100 * 4 * 0.5);
    expect(got.subarray(0, lead).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(got.subarray(lead), expected)).toBe(0);
  });

  it('a decoder that starts late leaves a gap (the output goes idle): --output file: holds every chord and nothing from before', async () => {
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const d = dir();
    // the real ffmpeg, started 4 s late for the third track: the second ends before the third arrives, so the
    // output goes idle in between (a command that was ended at idle and started again with `cat >` emptied the file)
    const bin = join(d, 'bin');
    mkdirSync(bin);
    const real = execFileSync('sh', ['-c', 'command -v ffmpeg'], { encoding: 'utf8' }).trim();
    writeFileSync(join(bin, 'ffmpeg'), `#!/bin/sh\ncase "$*" in *3-g-major*) sleep 4 ;; esac\nexec ${real} "$@"\n`, {
      mode: 0o755,
    });
    const out = join(d, 'demo.raw');
    writeFileSync(out, 'what was in the file before');
    const r = await runSpeakerd(['demo', '--allow-root', '--output', `file:${out}`], {
      cwd: d,
      env: { ...env(d), PATH: `${bin}:${process.env.PATH}` },
      timeoutMs: 40_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const got = readFileSync(out);
    const chords = DEMO_TRACKS.map((t) => demoPcm(t.tones));
    // silence may lead each run of the command; the chords follow in order, each to its last byte
    let at = 0;
    for (const [i, c] of chords.entries()) {
      const found = got.indexOf(c.subarray(0, 4096), at);
      expect(found, `chord ${i + 1} not found after byte ${at}`).toBeGreaterThanOrEqual(0);
      expect(
        got.subarray(at, found).every((b) => b === 0),
        `only silence before chord ${i + 1}`,
      ).toBe(true);
      expect(Buffer.compare(got.subarray(found, found + c.length), c)).toBe(0);
      at = found + c.length;
    }
    expect(at).toBe(got.length);
  });

  it('with no sound card, auto falls back to RTP, prints how to listen, and an ffmpeg receiver gets the chords', async () => {
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const d = dir();
    const port = freePortPair();
    // the receiver starts first, on an SDP of its own, so that it hears the first packet
    writeFileSync(
      join(d, 'listen.sdp'),
      `v=0\no=- 0 0 IN IP4 127.0.0.1\ns=test\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio ${port} RTP/AVP 10\na=rtpmap:10 L16/44100/2\n`,
    );
    const heard = join(d, 'heard.raw');
    const ff = ffmpegReceiver(join(d, 'listen.sdp'), heard, 's16le').child;
    cleanups.push(() => void ff.kill('SIGKILL'));
    await udpBound(port);
    // a device that does not exist stands for "no sound card" (this machine may have one)
    writeFileSync(
      join(d, '.speakerrc.json'),
      JSON.stringify({ alsa: { device: 'speakerd_no_such_pcm' }, rtp: { port }, socket: join(d, 'run', 's.sock') }),
    );
    const r = await runSpeakerd(['demo', '--allow-root'], { cwd: d, env: env(d), timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const sdp = join(d, 'run', 'stream.sdp');
    expect(r.stderr).toContain(`speakerd: output: rtp to 127.0.0.1:${port} (alsa: `);
    expect(r.stderr).toContain(
      `listen with: ffplay -nodisp -protocol_whitelist file,udp,rtp -i ${sdp} (or open ${sdp} in VLC)`,
    );
    expect(readFileSync(sdp, 'utf8')).toContain(`m=audio ${port} RTP/AVP 10`);
    expect(await exitOf(ff, 15_000)).toBe(0); // speakerd's BYE ends ffmpeg's input
    const expected = Buffer.concat(DEMO_TRACKS.map((t) => demoPcm(t.tones)));
    const got = readFileSync(heard);
    const lead = got.length - expected.length;
    expect(lead).toBeGreaterThanOrEqual(0);
    expect(lead).toBeLessThan(44100 * 4 * 0.5);
    expect(Buffer.compare(got.subarray(lead), expected)).toBe(0);
  });
});

/** Run speakerd in a pseudo-terminal (test/helpers/at_terminal.py), typing `keys` ([s after "keys:", text]). */
function atTerminal(args: string[], keys: [number, string][], cwd: string): { code: number | null; screen: string } {
  const r = spawnSync(
    'python3',
    [
      join(import.meta.dirname, 'helpers', 'at_terminal.py'),
      JSON.stringify(keys),
      '--',
      process.execPath,
      SPEAKERD,
      ...args,
    ],
    { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env(cwd) } },
  );
  // the screen as text: escape sequences out, carriage returns as line ends
  // eslint-disable-next-line no-control-regex -- ESC is what a terminal's escape sequences start with
  const screen = (r.stdout ?? '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '\n');
  return { code: r.status, screen };
}

describe('speakerd demo over RTP that nobody listens to', () => {
  it('plays to the end and exits 0: the audio goes out (the positions move) although the output says lost', async () => {
    const d = dir();
    writeFileSync(
      join(d, '.speakerrc.json'),
      JSON.stringify({ alsa: { device: 'speakerd_no_such_pcm' }, rtp: { port: freePortPair() } }),
    );
    const r = await runSpeakerd(['demo', '--allow-root'], { cwd: d, env: env(d), timeoutMs: 30_000 });
    expect(r.stderr).not.toContain('the output cannot play');
    expect(r.stderr).toContain('speakerd demo: done.');
    expect(r.code).toBe(0);
  });
});

describe('speakerd play at a terminal', () => {
  it('n skips to the next track and the run ends with exit 0; each bar reaches its end', () => {
    if (!haveTool('python3', ['python3', '--version'])) return;
    const d = dir();
    const out = join(d, 'out.raw');
    const { code, screen } = atTerminal(['demo', '--allow-root', '--output', `file:${out}`], [[1.2, 'n']], d);
    expect(code).toBe(0);
    expect(screen).toMatch(/1-c-major\.wav \|[░█]+\| 0:0\d \/ 0:02 \(skipped\)/);
    expect(screen).toMatch(/3-g-major\.wav \|█{30}\| 0:02 \/ 0:02/);
    expect(screen).not.toMatch(/\{(title|pos|dur)\}/); // never the raw template
    const [, two, three] = DEMO_TRACKS.map((t) => demoPcm(t.tones));
    const got = readFileSync(out);
    const rest = Buffer.concat([two!, three!]);
    // what was heard of the first, then the other two exactly
    expect(Buffer.compare(got.subarray(got.length - rest.length), rest)).toBe(0);
    expect(got.length - rest.length).toBeLessThan(demoPcm(DEMO_TRACKS[0].tones).length);
  });

  it('+ and - change the volume, in steps of 5, said above the bar', () => {
    if (!haveTool('python3', ['python3', '--version'])) return;
    const d = dir();
    const { code, screen } = atTerminal(
      ['demo', '--allow-root', '--output', 'file:out.raw'],
      [
        [0.3, '-'],
        [0.5, '-'],
        [0.7, '+'],
      ],
      d,
    );
    expect(code).toBe(0);
    expect(screen).toContain('volume 95');
    expect(screen).toContain('volume 90');
    expect(screen.indexOf('volume 95', screen.indexOf('volume 90'))).toBeGreaterThan(0);
  });
});
