import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSpeakerd, tempDir } from './helpers/cli.js';
import { noise } from './helpers/pcm.js';
import { decoder, Speakerd } from './helpers/speakerd.js';

// Issue 11's findings 2, 6 and 7, through the built binary: a truncated config file, plugin names that are not
// plugins, and memory bounded across tracks.
const CD = { encoding: 's16le', rate: 44100, channels: 2 } as const;
const SECOND = 44100 * 4;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The output is `expected` exactly, after the silence the stream may open with while the first track starts. */
function expectPlayed(out: Buffer, expected: Buffer): void {
  const lead = out.length - expected.length;
  expect(lead).toBeGreaterThanOrEqual(0);
  expect(out.subarray(0, lead).every((b) => b === 0)).toBe(true);
  expect(Buffer.compare(out.subarray(lead), expected)).toBe(0);
}

async function start(config: Record<string, unknown>) {
  // `>>`: the command restarts when nothing plays between tracks. finished when the end is audible
  // (earlyFinishMs 0), so that closing speakerd after it cuts nothing off
  const s = await Speakerd.start({
    backend: 'command',
    command: { run: 'cat >> out.raw' },
    earlyFinishMs: 0,
    ...config,
  });
  cleanups.push(() => s.dispose());
  return s;
}

describe('a configuration file truncated by an editor', () => {
  it('empty or whitespace only: a config error, not "all defaults" (check-config exits 2)', async () => {
    const { dir, cleanup } = tempDir('speakerd-limits-');
    cleanups.push(cleanup);
    for (const text of ['', '  \n\t\n']) {
      writeFileSync(join(dir, '.speakerrc.json'), text);
      const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${join(dir, '.speakerrc.json')}: (top level): the file is empty`);
    }
  });

  it('emptied before a reload: the reload is refused and the backend in force keeps playing', async () => {
    const s = await start({});
    // the helper starts speakerd with --config <dir>/speakerrc.json: empty it, as an editor truncating it would
    writeFileSync(join(s.dir, 'speakerrc.json'), '');
    s.send({ type: 'reload', seq: 1 });
    const answer = await s.waitFor((e) => e.seq === 1);
    expect(answer).toMatchObject({ type: 'error', code: 'config' });
    expect(answer.message).toContain('the file is empty');
    expect((await s.status()).backend).toBe('command');
    const pcm = noise(SECOND / 2, 3);
    expect((await decoder(s.socket, { id: 'a', ...CD }, pcm)).reply).toEqual({ ok: true });
    s.send({ type: 'play', id: 'a' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'a', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.close()).toBe(0);
    expectPlayed(readFileSync(join(s.dir, 'out.raw')), Buffer.from(pcm));
  });
});

describe('plugin specifiers', () => {
  it('a Node built-in name is refused before anything is imported; ./fs.js in the working directory never runs', async () => {
    const { dir, cleanup } = tempDir('speakerd-limits-');
    cleanups.push(cleanup);
    writeFileSync(
      join(dir, 'fs.js'),
      `import { writeFileSync } from 'node:fs'; writeFileSync('RAN', 'x'); export default {};`,
    );
    for (const spec of ['fs', 'node:fs', 'child_process']) {
      writeFileSync(join(dir, '.speakerrc.json'), JSON.stringify({ backend: 'command', plugins: [spec] }));
      const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`plugins: "${spec}" is a Node.js built-in module, not a plugin`);
    }
    writeFileSync(join(dir, '.speakerrc.json'), JSON.stringify({ backend: 'command', plugins: ['lib/x.js'] }));
    const r = await runSpeakerd(['check-config', '--allow-root'], { cwd: dir });
    expect(r.stderr).toContain('"lib/x.js" is neither a package name nor a path: start a path with ./, ../ or /');
    expect(existsSync(join(dir, 'RAN'))).toBe(false);
  });
});

describe('memory bounded across tracks', () => {
  it('maxBufferMB holds back the decoders of tracks that wait; played in turn, every byte arrives', async () => {
    const s = await start({ maxBufferMB: 1, bufferMs: 60_000 });
    // three tracks of 3 s each (529 KB): 1.6 MB in all, connected and not played
    const pcms = [1, 2, 3].map((seed) => noise(3 * SECOND, seed));
    const sent = pcms.map((pcm, i) => decoder(s.socket, { id: `t${i}`, ...CD }, pcm, { chunk: 16_384 }));
    await new Promise((r) => setTimeout(r, 1500));
    const st = await s.status();
    const buffered = st.tracks.reduce((n: number, t: { bufferedSeconds: number }) => n + t.bufferedSeconds, 0);
    // at most the cap (1 MiB = 5.94 s of CD audio), plus what a socket read in flight adds per track (64 KiB)
    expect(buffered).toBeGreaterThan(5);
    expect(buffered).toBeLessThanOrEqual((1024 * 1024 + 3 * 65_536) / SECOND);
    expect(st.tracks.some((t: { eof: boolean }) => !t.eof)).toBe(true);
    // play them on each finished: nothing lost, in order
    for (let i = 0; i < 3; i++) {
      s.send({ type: 'play', id: `t${i}` });
      await s.waitFor((e) => e.type === 'finished' && e.id === `t${i}`, 20_000);
    }
    for (const r of await Promise.all(sent)) expect(r.reply).toEqual({ ok: true });
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.close()).toBe(0);
    expectPlayed(readFileSync(join(s.dir, 'out.raw')), Buffer.concat(pcms.map((p) => Buffer.from(p))));
  });

  it('a connected track nobody plays is dropped after unplayedTimeoutMs, with an error naming it', async () => {
    const s = await start({ unplayedTimeoutMs: 500 });
    const c = decoder(s.socket, { id: 'idle', ...CD }, noise(SECOND, 5), { end: false });
    const e = await s.waitFor((x) => x.type === 'error' && x.id === 'idle', 5000);
    expect(e).toMatchObject({ code: 'not-played' });
    expect(e.message).toContain('not played within unplayedTimeoutMs (500 ms)');
    expect((await c).reply).toEqual({ ok: true }); // answered, then hung up on
    expect((await s.status()).tracks).toEqual([]);
    // one that is played in time is not touched
    const pcm = noise(SECOND / 4, 6);
    expect((await decoder(s.socket, { id: 'played', ...CD }, pcm)).reply).toEqual({ ok: true });
    s.send({ type: 'play', id: 'played' });
    await s.waitFor((x) => x.type === 'finished' && x.id === 'played', 10_000);
    await new Promise((r) => setTimeout(r, 700));
    expect(s.events.filter((x) => x.type === 'error')).toHaveLength(1);
    expect(await s.close()).toBe(0);
  });
});
