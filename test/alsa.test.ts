// End-to-end: the built speakerd binary with `backend: "alsa"` on libasound's `file` PCM (test/fixtures/alsa,
// through ALSA_CONFIG_PATH set in test/global-setup.ts), driven the way a music server drives it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { noise as sdkNoise } from '@speakerd/plugin-sdk/testing';
import { loadBinding } from '../packages/plugin-alsa/src/binding.js';
import { readCapture } from '../packages/plugin-alsa/test/helpers.js';
import { decoder, Speakerd, type Event } from './helpers/speakerd.js';
import { haveCapability } from './helpers/tools.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const why = loadBinding().why;
const ok =
  haveCapability('ALSA', !why, why ?? '') &&
  haveCapability(
    'the ALSA test PCMs',
    (process.env.ALSA_CONFIG_PATH ?? '').includes('fixtures/alsa'),
    'ALSA_CONFIG_PATH',
  );

let running: Speakerd[] = [];
afterEach(async () => {
  for (const s of running) await s.dispose();
  running = [];
});
// the fault-injection command exists only with this variable; the speakerd children inherit it
beforeAll(() => void (process.env.SPEAKERD_ALSA_TEST_HOOKS = '1'));
afterAll(() => void delete process.env.SPEAKERD_ALSA_TEST_HOOKS);

const noise = (bytes: number, seed: number) => Buffer.from(sdkNoise(bytes, seed));
const capture = readCapture;

async function start(device = 'speakerd_capture', format: SampleFormat = CD) {
  // speakerd runs in its own temp dir (Speakerd.start), so the capture file "./out.raw" lands there
  const s = await Speakerd.start(
    { backend: 'alsa', alsa: { device: `${device}:./out.raw` }, format },
    { waitReady: false },
  );
  running.push(s);
  return s;
}

async function startIn(device: string, format: SampleFormat = CD): Promise<{ s: Speakerd; file: string }> {
  const s = await start(device, format);
  await s
    .waitFor((e) => e.type === 'ready', 15000)
    .catch((err: unknown) => {
      throw new Error(`${String(err)}\n${s.stderr}`);
    });
  return { s, file: join(s.dir, 'out.raw') };
}

/** `finished` comes up to earlyFinishMs early: wait until the device has it all (the host idles it at the end). */
async function untilCaptured(file: string, bytes: number, ms = 15000): Promise<Buffer> {
  const end = Date.now() + ms;
  for (;;) {
    const got = capture(file);
    if (got.length >= bytes || Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function playTracks(s: Speakerd, tracks: { id: string; pcm: Buffer }[], format: SampleFormat = CD) {
  const conns = tracks.map((t) => decoder(s.socket, { id: t.id, ...format }, t.pcm, { chunk: 7001 }));
  for (const t of tracks) s.send({ type: 'play', id: t.id });
  await s.waitFor((e: Event) => e.type === 'finished' && e.id === tracks[tracks.length - 1]!.id, 20000);
  await Promise.all(conns);
}

describe.skipIf(!ok)('speakerd with the alsa backend', () => {
  it('plays two tracks back to back into the device byte-exact and gapless, and exits 0 at EOF', async () => {
    const { s, file } = await startIn('speakerd_capture');
    const a = noise(44100 * 4 * 2, 21);
    const b = noise(44100 * 4 + 4 * 123, 22);
    await playTracks(s, [
      { id: 'a', pcm: a },
      { id: 'b', pcm: b },
    ]);
    const got = await untilCaptured(file, a.length + b.length);
    expect(await s.close()).toBe(0);
    console.log(`alsa e2e: compared ${got.length} bytes (expected ${a.length + b.length})`);
    expect(got.length).toBe(a.length + b.length);
    expect(Buffer.compare(got, Buffer.concat([a, b]))).toBe(0);
  });

  it('refuses at start-up a rate the device would have to resample (exit 2, coded message)', async () => {
    const s = await start('speakerd_capture48', CD);
    expect(await s.exited).toBe(2);
    expect(s.stderr).toMatch(/SPEAKERD_ERR_ALSA_FORMAT: .*does not play 44100 Hz.*48000 Hz/);
  });

  it('plays s16le at 48000 Hz on a device that widens it to S32_LE, as documented', async () => {
    const fmt: SampleFormat = { encoding: 's16le', rate: 48000, channels: 2 };
    const { s, file } = await startIn('speakerd_capture48', fmt);
    const a = noise(48000 * 4, 23);
    await playTracks(s, [{ id: 'a', pcm: a }], fmt);
    const got = await untilCaptured(file, a.length * 2);
    expect(await s.close()).toBe(0);
    expect(got.length).toBe(a.length * 2);
    for (let i = 0; i < a.length / 2; i++) {
      const want = a.readInt16LE(i * 2) * 65536;
      if (got.readInt32LE(i * 4) !== want) expect(got.readInt32LE(i * 4)).toBe(want);
    }
  });

  it('xrun, suspend, device lost then back: keeps running, reports backend events, loses nothing', async () => {
    const { s, file } = await startIn('speakerd_capture');
    const tracks = [1, 2, 3].map((i) => ({ id: `t${i}`, pcm: noise(44100 * 4, 30 + i) }));
    const seen = (from: number) => s.events.slice(from).filter((e) => e.type === 'backend');

    // xrun: prepared and carried on, no backend event
    let from = s.events.length;
    expect(await s.request({ type: 'alsa.test-fault', write: 'EPIPE' })).toMatchObject({ injected: { write: 32 } });
    await playTracks(s, [tracks[0]!]);
    await untilCaptured(file, 44100 * 4);
    expect(seen(from)).toEqual([]);

    // suspend: recovering, then ok
    from = s.events.length;
    await s.request({ type: 'alsa.test-fault', write: 'ESTRPIPE' });
    await playTracks(s, [tracks[1]!]);
    await untilCaptured(file, 2 * 44100 * 4);
    await s.waitFor((e) => e.type === 'backend' && e.state === 'ok', 10000, from);
    expect(seen(from).map((e) => e.state)).toEqual(['recovering', 'ok']);

    // lost: the write fails with ENODEV and the next two reopens fail too; speakerd keeps buffering
    from = s.events.length;
    await s.request({ type: 'alsa.test-fault', write: 'ENODEV', open: 'ENODEV', openCount: 2 });
    const conn = decoder(s.socket, { id: tracks[2]!.id, ...CD }, tracks[2]!.pcm, { chunk: 7001 });
    s.send({ type: 'play', id: tracks[2]!.id });
    const lost = await s.waitFor((e) => e.type === 'backend' && e.state === 'lost', 10000, from);
    expect(lost.message).toMatch(/^alsa: .*No such device/);
    expect((await s.status()).backendState).toBe('lost');
    const back = await s.waitFor((e) => e.type === 'backend' && e.state === 'ok', 10000, from);
    expect(back.message).toMatch(/is back/);
    await s.waitFor((e) => e.type === 'finished' && e.id === 't3', 20000);
    await conn;
    const got = await untilCaptured(file, 3 * 44100 * 4);
    expect((await s.status()).backendState).toBe('ok');
    expect(s.exitCode).toBeUndefined();
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(got, Buffer.concat(tracks.map((t) => t.pcm)))).toBe(0);
    expect(s.stderr).toMatch(/underrun/);
  });

  it('alsa.format "auto": each track plays in its own format, reopening only where the format changes', async () => {
    const s = await Speakerd.start(
      { backend: 'alsa', alsa: { device: 'speakerd_capture:./out.raw', format: 'auto' }, format: CD },
      { waitReady: true },
    );
    running.push(s);
    const file = join(s.dir, 'out.raw');
    const F48: SampleFormat = { encoding: 's16le', rate: 48000, channels: 2 };
    const a = noise(44100 * 2, 41);
    const b = noise(44100 * 2, 42);
    const c = noise(48000 * 2, 43);
    const conns = [
      decoder(s.socket, { id: 'a', ...CD }, a),
      decoder(s.socket, { id: 'b', ...CD }, b),
      decoder(s.socket, { id: 'c', ...F48 }, c),
    ];
    s.send({ type: 'play', id: 'a' });
    s.send({ type: 'play', id: 'b' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'a', 20000);
    s.send({ type: 'play', id: 'c' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'c', 20000);
    await Promise.all(conns);
    const got = await untilCaptured(file, a.length + b.length + c.length);
    expect((await s.status()).format).toEqual(F48);
    expect(await s.close()).toBe(0);
    // c arrives unconverted (48000 Hz bytes as sent), after a and b, which shared one opening of the device
    expect(Buffer.compare(got, Buffer.concat([a, b, c]))).toBe(0);
    expect(readFileSync(file).length).toBe(a.length + b.length);
  });

  it('pause takes back what the device holds and plays it after resume: nothing lost, nothing repeated', async () => {
    const { s, file } = await startIn('speakerd_capture');
    const a = noise(44100 * 4 * 2, 51);
    const conn = decoder(s.socket, { id: 'p', ...CD }, a, { chunk: 7001 });
    s.send({ type: 'play', id: 'p' });
    await s.waitFor((e) => e.type === 'playing' && e.id === 'p');
    s.send({ type: 'pause' });
    const paused = await s.waitFor((e) => e.type === 'paused' && e.id === 'p');
    await new Promise((r) => setTimeout(r, 200));
    s.send({ type: 'resume' });
    const resumed = await s.waitFor(
      (e) => e.type === 'playing' && e.id === 'p' && e.position >= paused.position,
      5000,
      s.events.length,
    );
    expect(resumed.position).toBeGreaterThanOrEqual(paused.position);
    await s.waitFor((e) => e.type === 'finished' && e.id === 'p', 20000);
    await conn;
    const got = await untilCaptured(file, a.length);
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(got, a)).toBe(0);
  });

  it('without libasound, choosing alsa fails with a message saying what is missing and how to get it', async () => {
    process.env.SPEAKERD_ALSA_LIBRARY = 'libasound-missing.so.2';
    try {
      const s = await start('speakerd_capture', CD);
      expect(await s.exited).toBe(2);
      expect(s.stderr).toMatch(
        /SPEAKERD_ERR_BACKEND_UNAVAILABLE: libasound\.so\.2 cannot be loaded.*apt-get install libasound2/,
      );
    } finally {
      delete process.env.SPEAKERD_ALSA_LIBRARY;
    }
  });
});
