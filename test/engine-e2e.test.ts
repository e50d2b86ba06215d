import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';
import { createConverter } from '../packages/host/src/convert/index.js';
import { tempDir } from './helpers/cli.js';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { firstDifference, testSignal, wavHeader } from './helpers/pcm.js';

const OUT: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
let running: Speakerd[] = [];
afterEach(async () => {
  for (const s of running) await s.dispose();
  running = [];
});

async function start(config: Record<string, unknown> = {}) {
  const s = await Speakerd.start({
    backend: 'command',
    command: { run: 'cat >> out.raw', leadMs: 20 },
    format: OUT,
    ...config,
  });
  running.push(s);
  return s;
}

function convertAll(input: SampleFormat, pcm: Uint8Array): Uint8Array {
  const c = createConverter(input, OUT);
  const a = Buffer.from(c.convert(pcm));
  const b = Buffer.from(c.end());
  return Buffer.concat([a, b]);
}

/** Wait until status says the decoder for `id` has delivered everything. */
async function untilEof(s: Speakerd, id: string) {
  for (let i = 0; i < 200; i++) {
    const st = await s.status();
    if (st.tracks.some((t: any) => t.id === id && t.eof)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`decoder for ${id} never reached EOF`);
}

async function outputSettles(file: string, expectBytes: number, timeoutMs = 10000) {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (existsSync(file) && statSync(file).size >= expectBytes) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('end to end through the command backend', () => {
  it('plays five tracks in different formats back to back: output is exactly convert(A)+…+convert(E)', async () => {
    const s = await start();
    const tracks: { id: string; format: SampleFormat; frames: number }[] = [
      { id: 'a-s16le-stereo', format: { encoding: 's16le', rate: 44100, channels: 2 }, frames: 11025 },
      { id: 'b-u8-mono', format: { encoding: 'u8', rate: 44100, channels: 1 }, frames: 8820 },
      { id: 'c-f32le-stereo', format: { encoding: 'f32le', rate: 44100, channels: 2 }, frames: 13230 },
      { id: 'd-s24be-mono', format: { encoding: 's24be', rate: 44100, channels: 1 }, frames: 4410 },
      { id: 'e-s16le-48k', format: { encoding: 's16le', rate: 48000, channels: 2 }, frames: 12000 },
    ];
    const inputs = tracks.map((t, i) => testSignal(t.format, t.frames, i + 1));
    const expected = Buffer.concat(tracks.map((t, i) => convertAll(t.format, inputs[i]!)));
    // every decoder connects and delivers in full before play, so no silence precedes a track
    const replies = await Promise.all(
      tracks.map((t, i) => decoder(s.socket, { id: t.id, ...t.format }, inputs[i]!, { chunk: 3001 })),
    );
    for (const r of replies) expect(r.reply).toEqual({ ok: true });
    for (const t of tracks) await untilEof(s, t.id);
    const arrived = s.events.filter((e) => e.type === 'arrived').map((e) => e.id);
    expect(arrived.sort()).toEqual(tracks.map((t) => t.id).sort());

    // the music server's loop: play the first two; on each finished, play the following one
    s.send({ type: 'play', id: tracks[0]!.id });
    s.send({ type: 'play', id: tracks[1]!.id });
    for (let i = 0; i < tracks.length; i++) {
      await s.waitFor((e) => e.type === 'finished' && e.id === tracks[i]!.id, 15000);
      if (i + 2 < tracks.length) s.send({ type: 'play', id: tracks[i + 2]!.id });
    }
    const file = join(s.dir, 'out.raw');
    await outputSettles(file, expected.length);
    expect(await s.close()).toBe(0);
    const out = readFileSync(file);
    expect(firstDifference(out, expected)).toBe(-1);
    expect(out.length).toBe(expected.length);

    // each track: finished exactly once, nothing about it after that; the first track announced at its start
    // (a track shorter than earlyFinishMs may be reported finished as soon as it becomes current)
    // (its position is the audible one when it is sent: on a busy machine a few ms may already have played)
    const first = s.events.find((e) => e.type === 'playing');
    expect(first).toMatchObject({ id: tracks[0]!.id });
    expect(first!.position).toBeGreaterThanOrEqual(0);
    expect(first!.position).toBeLessThan(0.05);
    for (const t of tracks) {
      const mine = s.events.filter((e) => e.id === t.id && ['playing', 'paused', 'finished'].includes(e.type));
      expect(mine.filter((e) => e.type === 'finished')).toHaveLength(1);
      expect(mine[mine.length - 1]!.type).toBe('finished');
    }
    expect(existsSync(s.socket)).toBe(false);
  });

  it('a track already in the output format reaches the command bit-exact, from a WAV stream too', async () => {
    const s = await start();
    const pcm = testSignal(OUT, 22050, 7);
    const wav = Buffer.concat([wavHeader(OUT, pcm.length), pcm, Buffer.from('LIST\x04\x00\x00\x00junk', 'latin1')]);
    const r = await decoder(s.socket, { id: 'w', encoding: 'wav' }, wav, { chunk: 10 });
    expect(r.reply).toEqual({ ok: true });
    const arrived = await s.waitFor((e) => e.type === 'arrived' && e.id === 'w');
    expect(arrived.format).toEqual(OUT);
    await untilEof(s, 'w');
    s.send({ type: 'play', id: 'w' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'w');
    const file = join(s.dir, 'out.raw');
    await outputSettles(file, pcm.length);
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(file), Buffer.from(pcm))).toBe(0);
  });
});

describe('control channel', () => {
  it('answers every kind of bad line with its error code and carries on', async () => {
    const s = await start();
    const from = s.events.length;
    s.send('this is not json');
    s.send('[1,2]');
    s.send('{"seq": 5}');
    s.send('{"type": "dance", "seq": 6}');
    s.send('{"type": "play", "seq": 7}');
    s.send('{"type": "play", "id": "bad\\u0001id", "seq": 8}');
    s.send(JSON.stringify({ type: 'play', id: 'x'.repeat(65), seq: 9 }));
    s.send('{"type": "volume", "volume": 101, "seq": 10}');
    s.send('{"type": "status", "seq": "eleven"}');
    s.send('{"type": "status", "pad": "' + 'y'.repeat(70000) + '"}');
    s.send({ type: 'cancel', id: 'nobody', seq: 12 });
    const st = await s.status();
    const errors = s.events.slice(from).filter((e) => e.type === 'error');
    expect(errors.map((e) => [e.code, e.seq])).toEqual([
      ['bad-json', undefined],
      ['bad-command', undefined],
      ['bad-command', 5],
      ['unknown-command', 6],
      ['bad-command', 7],
      ['bad-command', 8],
      ['bad-command', 9],
      ['bad-command', 10],
      ['bad-command', undefined],
      ['line-too-long', undefined],
    ]);
    expect(s.events.find((e) => e.type === 'unknown' && e.id === 'nobody')?.seq).toBe(12);
    expect(st.type).toBe('status');
    expect(st.backend).toBe('command');
    expect(st.format).toEqual(OUT);
    expect(await s.close()).toBe(0);
  });

  it('sends ready first with protocol, version, backend and format', async () => {
    const s = await start();
    expect(s.events[0]).toMatchObject({ type: 'ready', protocol: 1, backend: 'command', format: OUT });
    expect(typeof s.events[0]!.version).toBe('string');
    expect(await s.close()).toBe(0);
  });

  it('play of the current or next id, or with a next set, is busy; nothing else changes', async () => {
    const s = await start();
    s.send({ type: 'play', id: 'one' });
    s.send({ type: 'play', id: 'two' });
    const busy1 = await s.request({ type: 'play', id: 'one' });
    const busy2 = await s.request({ type: 'play', id: 'two' });
    const busy3 = await s.request({ type: 'play', id: 'three' });
    for (const b of [busy1, busy2, busy3]) expect(b).toMatchObject({ type: 'error', code: 'busy' });
    const st = await s.status();
    expect([st.current, st.next]).toEqual(['one', 'two']);
    expect(st.tracks.map((t: any) => [t.id, t.state])).toEqual([
      ['one', 'current'],
      ['two', 'next'],
    ]);
    expect(await s.close()).toBe(0);
  });

  it('cancel answers finished for the current track, stillborn for next and connected ones, unknown after', async () => {
    const s = await start();
    const pcm = testSignal(OUT, 44100 * 3, 3);
    void decoder(s.socket, { id: 'cur', ...OUT }, pcm);
    void decoder(s.socket, { id: 'conn', ...OUT }, pcm.subarray(0, 4000));
    await untilEof(s, 'conn');
    s.send({ type: 'play', id: 'cur' });
    s.send({ type: 'play', id: 'nxt' }); // played, decoder never connects
    await s.waitFor((e) => e.type === 'playing' && e.id === 'cur');
    expect(await s.request({ type: 'cancel', id: 'nxt' })).toMatchObject({ type: 'stillborn', id: 'nxt' });
    expect(await s.request({ type: 'cancel', id: 'conn' })).toMatchObject({ type: 'stillborn', id: 'conn' });
    expect(await s.request({ type: 'cancel', id: 'cur' })).toMatchObject({ type: 'finished', id: 'cur' });
    expect(await s.request({ type: 'cancel', id: 'cur' })).toMatchObject({ type: 'unknown', id: 'cur' });
    expect(await s.request({ type: 'cancel', id: 'nxt' })).toMatchObject({ type: 'unknown', id: 'nxt' });
    const st = await s.status();
    expect(st.current).toBeNull();
    expect(st.tracks).toEqual([]);
    // every cancel answered exactly once
    expect(s.events.filter((e) => ['finished', 'stillborn', 'unknown'].includes(e.type)).length).toBe(5);
    expect(await s.close()).toBe(0);
  });

  it('pause stops the position, resume continues it; reports carry the audible position', async () => {
    const s = await start({ reportIntervalMs: 100 });
    void decoder(s.socket, { id: 'p', ...OUT }, testSignal(OUT, 44100 * 4, 5));
    s.send({ type: 'play', id: 'p' });
    await s.waitFor((e) => e.type === 'playing' && e.id === 'p' && e.position >= 0.3);
    s.send({ type: 'pause' });
    const paused = await s.waitFor((e) => e.type === 'paused' && e.id === 'p');
    await new Promise((r) => setTimeout(r, 500));
    const during = s.events.filter((e) => e.type === 'paused' && e.id === 'p');
    expect(during.length).toBeGreaterThanOrEqual(3); // reported while paused
    const last = during[during.length - 1]!.position;
    // a pipe cannot take audio back: at most the lead (20 ms) plays out after the pause
    expect(last - paused.position).toBeLessThanOrEqual(0.05);
    const st = await s.status();
    expect(st.paused).toBe(true);
    s.send({ type: 'resume' });
    const resumed = await s.waitFor((e) => e.type === 'playing' && e.id === 'p', 5000, s.events.length);
    expect(resumed.position).toBeGreaterThanOrEqual(last);
    await s.waitFor((e) => e.type === 'playing' && e.id === 'p' && e.position >= last + 0.2);
    const positions = s.events
      .filter((e) => (e.type === 'playing' || e.type === 'paused') && e.id === 'p')
      .map((e) => e.position);
    for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeGreaterThanOrEqual(positions[i - 1]);
    expect(await s.close()).toBe(0);
  });

  it('volume replies with the value in force and scales samples by (v/100)^3', async () => {
    const s = await start();
    expect(await s.request({ type: 'volume', volume: 50 })).toMatchObject({ type: 'volume', volume: 50 });
    const pcm = new Uint8Array(4 * 4410);
    new DataView(pcm.buffer).setInt16(0, 8000, true);
    for (let i = 0; i < pcm.length; i += 2) new DataView(pcm.buffer).setInt16(i, 8000, true);
    await decoder(s.socket, { id: 'v', ...OUT }, pcm);
    await untilEof(s, 'v');
    s.send({ type: 'play', id: 'v' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'v');
    const file = join(s.dir, 'out.raw');
    await outputSettles(file, pcm.length);
    expect((await s.status()).volume).toBe(50);
    expect(await s.close()).toBe(0);
    const out = readFileSync(file);
    expect(out.length).toBe(pcm.length);
    for (let i = 0; i < out.length; i += 2) expect(out.readInt16LE(i)).toBe(1000); // 8000 * 0.125
  });

  it('reload re-reads the configuration, keeps the queue, and keeps the old one on error', async () => {
    const s = await start();
    s.send({ type: 'play', id: 'kept' });
    const cfgFile = join(s.dir, 'speakerrc.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, earlyFinishMs: 500 }));
    expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, rtp: { port: 'abc' } }));
    const bad = await s.request({ type: 'reload' });
    expect(bad).toMatchObject({ type: 'error', code: 'config' });
    expect(bad.message).toContain('rtp.port');
    const st = await s.status();
    expect(st.current).toBe('kept');
    expect(await s.close()).toBe(0);
  });

  for (const [name, render] of [
    ['speaker.config.mjs', (c: object) => `export default ${JSON.stringify(c)};\n`],
    ['speaker.config.cjs', (c: object) => `module.exports = ${JSON.stringify(c)};\n`],
  ] as const) {
    it(`reload re-reads an edited ${name}: the module is loaded anew, not taken from Node's module cache`, async () => {
      const dir = tempDir('speakerd-e2e-').dir; // removed by dispose
      const cfg = {
        socket: join(dir, 'run', 'decoders.sock'),
        backend: 'command',
        command: { run: 'cat >> out.raw', leadMs: 20 },
        format: OUT,
      };
      const file = join(dir, name);
      writeFileSync(file, render(cfg));
      const s = await Speakerd.start(cfg, { dir, args: ['--config', file] });
      running.push(s);
      expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
      writeFileSync(file, render({ ...cfg, rtp: { port: 'abc' } }));
      const bad = await s.request({ type: 'reload' });
      expect(bad).toMatchObject({ type: 'error', code: 'config' });
      expect(bad.message).toContain('rtp.port');
      writeFileSync(file, render({ ...cfg, bufferMs: 1500 }));
      expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
      expect(await s.close()).toBe(0);
    });
  }

  it('reload with new backend settings restarts the backend and keeps playing from the queue', async () => {
    const s = await start();
    const pcm1 = testSignal(OUT, 8820, 11);
    const pcm2 = testSignal(OUT, 8820, 12);
    await decoder(s.socket, { id: 'r1', ...OUT }, pcm1);
    await untilEof(s, 'r1');
    s.send({ type: 'play', id: 'r1' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'r1');
    const cfgFile = join(s.dir, 'speakerrc.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, command: { ...cfg.command, run: 'cat >> out2.raw' } }));
    expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
    await decoder(s.socket, { id: 'r2', ...OUT }, pcm2);
    await untilEof(s, 'r2');
    s.send({ type: 'play', id: 'r2' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'r2');
    await outputSettles(join(s.dir, 'out2.raw'), pcm2.length);
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(join(s.dir, 'out.raw')), Buffer.from(pcm1))).toBe(0);
    expect(Buffer.compare(readFileSync(join(s.dir, 'out2.raw')), Buffer.from(pcm2))).toBe(0);
  });

  it('reload with a new output format: tracks not yet started are converted to it, the backend restarted with it', async () => {
    const s = await start({
      command: { run: 'echo "$SPEAKERD_ENCODING/$SPEAKERD_RATE/$SPEAKERD_CHANNELS" >> formats.log; cat >> out.raw' },
    });
    const a = testSignal(OUT, 4410, 71);
    await decoder(s.socket, { id: 'fa', ...OUT }, a);
    await untilEof(s, 'fa');
    s.send({ type: 'play', id: 'fa' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'fa');
    const cfgFile = join(s.dir, 'speakerrc.json');
    const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
    const MONO: SampleFormat = { encoding: 's16be', rate: 44100, channels: 1 };
    writeFileSync(cfgFile, JSON.stringify({ ...cfg, format: MONO }));
    expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
    const b = testSignal(OUT, 4410, 72);
    await decoder(s.socket, { id: 'fb', ...OUT }, b);
    await untilEof(s, 'fb');
    s.send({ type: 'play', id: 'fb' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'fb');
    const c = createConverter(OUT, MONO);
    const bMono = Buffer.concat([Buffer.from(c.convert(b)), Buffer.from(c.end())]);
    const file = join(s.dir, 'out.raw');
    await outputSettles(file, a.length + bMono.length);
    expect((await s.status()).format).toEqual(MONO);
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(file), Buffer.concat([Buffer.from(a), bMono]))).toBe(0);
    expect(readFileSync(join(s.dir, 'formats.log'), 'utf8')).toBe('s16le/44100/2\ns16be/44100/1\n');
  });

  it('a decoder that vanishes mid-track ends that track with what arrived; the next plays on', async () => {
    const s = await start();
    const part = testSignal(OUT, 4410, 81);
    const next = testSignal(OUT, 4410, 82);
    // connect, send part of the audio, then drop the connection without a clean end
    const { connect } = await import('node:net');
    const sock = connect(s.socket);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(JSON.stringify({ id: 'gone', ...OUT }) + '\n');
    sock.write(part);
    await s.waitFor((e) => e.type === 'arrived' && e.id === 'gone');
    await new Promise((r) => setTimeout(r, 100));
    sock.destroy();
    await untilEof(s, 'gone');
    await decoder(s.socket, { id: 'after', ...OUT }, next);
    await untilEof(s, 'after');
    s.send({ type: 'play', id: 'gone' });
    s.send({ type: 'play', id: 'after' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'after');
    const file = join(s.dir, 'out.raw');
    await outputSettles(file, part.length + next.length);
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(file), Buffer.concat([Buffer.from(part), Buffer.from(next)]))).toBe(0);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal}, stopping the backend, and removes its socket`, async () => {
      const s = await start({ command: { run: 'cat >> out.raw; echo closed >> out.log' } });
      expect(existsSync(s.socket)).toBe(true);
      expect(statSync(dirname(s.socket)).mode & 0o777).toBe(0o700);
      void decoder(s.socket, { id: 'sig', ...OUT }, testSignal(OUT, 44100, 3));
      s.send({ type: 'play', id: 'sig' });
      await s.waitFor((e) => e.type === 'playing');
      s.child.kill(signal);
      expect(await s.exited).toBe(0);
      expect(existsSync(s.socket)).toBe(false);
      // the command saw EOF on its stdin (the backend was closed, not abandoned)
      expect(readFileSync(join(s.dir, 'out.log'), 'utf8')).toBe('closed\n');
    });
  }
});

describe('decoder connections', () => {
  it('refuses every kind of bad header with its code, reports it, and carries on', async () => {
    const s = await start({ headerTimeoutMs: 300, maxTracks: 3 });
    const cases: [Record<string, unknown> | string, string][] = [
      ['not json\n', 'bad-header'],
      ['[]\n', 'bad-header'],
      [{ encoding: 's16le', rate: 44100, channels: 2 }, 'bad-header'],
      [{ id: '', encoding: 's16le', rate: 44100, channels: 2 }, 'bad-header'],
      [{ id: 'a\u0085b', encoding: 's16le', rate: 44100, channels: 2 }, 'bad-header'],
      [{ id: 'z'.repeat(65), encoding: 's16le', rate: 44100, channels: 2 }, 'bad-header'],
      [{ id: 'e', encoding: 's17le', rate: 44100, channels: 2 }, 'bad-header'],
      [{ id: 'r', encoding: 's16le', rate: 7999, channels: 2 }, 'bad-header'],
      [{ id: 'r', encoding: 's16le', rate: 1e12, channels: 2 }, 'bad-header'],
      [{ id: 'r', encoding: 's16le', rate: 44100.5, channels: 2 }, 'bad-header'],
      [{ id: 'c', encoding: 's16le', rate: 44100, channels: 9 }, 'bad-header'],
      [{ id: 'c', encoding: 's16le', rate: 44100, channels: 0 }, 'bad-header'],
      [{ id: 'w', encoding: 'wav', rate: 44100 }, 'bad-header'],
      [{ id: 'u', encoding: 's16le', rate: 44100, channels: 2, extra: 1 }, 'bad-header'],
      ['{"id":"long","pad":"' + 'x'.repeat(5000) + '"}\n', 'bad-header'],
      ['{"id":"partial"', 'header-timeout'],
    ];
    for (const [header, code] of cases) {
      const r = await decoder(s.socket, header, new Uint8Array(0), {
        end: typeof header !== 'string' || header.endsWith('\n') ? true : false,
      });
      expect(r.reply, JSON.stringify(header).slice(0, 80)).toMatchObject({ ok: false, code });
      expect(typeof r.reply!.message).toBe('string');
    }
    // a bad WAV stream: the header line is answered at once, the RIFF header is reported afterwards (with the id)
    const badWav = await decoder(s.socket, { id: 'bw', encoding: 'wav' }, Buffer.from('RIFX....WAVEjunkjunkjunk'));
    expect(badWav.reply).toEqual({ ok: true });
    expect(await s.waitFor((e) => e.type === 'error' && e.id === 'bw')).toMatchObject({ code: 'bad-header' });
    // duplicates and the track limit
    const keep = decoder(s.socket, { id: 'd1', ...OUT }, new Uint8Array(400), { end: false });
    await s.waitFor((e) => e.type === 'arrived' && e.id === 'd1');
    const dup = await decoder(s.socket, { id: 'd1', ...OUT });
    expect(dup.reply).toMatchObject({ ok: false, code: 'duplicate-id' });
    await decoder(s.socket, { id: 'd2', ...OUT }, new Uint8Array(4));
    // bw, d1 and d2 are the 3 tracks maxTracks allows
    const tooMany = await decoder(s.socket, { id: 'd3', ...OUT });
    expect(tooMany.reply).toMatchObject({ ok: false, code: 'too-many-tracks' });
    const errors = s.events.filter((e) => e.type === 'error').map((e) => e.code);
    expect(errors).toHaveLength(cases.length + 3);
    expect(errors.filter((c) => c === 'header-timeout')).toHaveLength(1);
    // still alive and well
    const st = await s.status();
    // bw stays a known track with no audio (as one whose decoder sent nothing) until played or cancelled
    expect(st.tracks.map((t: any) => t.id).sort()).toEqual(['bw', 'd1', 'd2']);
    void keep;
    expect(await s.close()).toBe(0);
  });

  it('a flood of silent connections each gets header-timeout while commands are still answered', async () => {
    const s = await start({ headerTimeoutMs: 400 });
    const conns = Array.from({ length: 100 }, () => decoder(s.socket, '', new Uint8Array(0), { end: false }));
    const st = await s.status(); // answered while 100 headers are pending
    expect(st.type).toBe('status');
    const replies = await Promise.all(conns);
    expect(replies.every((r) => r.reply?.code === 'header-timeout')).toBe(true);
    expect(s.events.filter((e) => e.type === 'error' && e.code === 'header-timeout')).toHaveLength(100);
    // and decoders are still served afterwards
    const ok = await decoder(s.socket, { id: 'after', ...OUT }, new Uint8Array(8));
    expect(ok.reply).toEqual({ ok: true });
    expect(await s.close()).toBe(0);
  });

  it('holds at most bufferMs of a track, slowing a fast decoder down, and loses nothing', async () => {
    const s = await start({ bufferMs: 300 });
    const pcm = testSignal(OUT, 44100 * 2, 13); // 2 s, written as fast as the socket takes it
    const conn = decoder(s.socket, { id: 'bp', ...OUT }, pcm, { chunk: 16384 });
    await new Promise((r) => setTimeout(r, 600));
    const t = (await s.status()).tracks.find((x: any) => x.id === 'bp');
    expect(t.eof).toBe(false); // held back: it cannot have delivered 2 s into a 0.3 s buffer
    // at most one socket read (64 KiB = 0.37 s here) beyond the limit
    expect(t.bufferedSeconds).toBeLessThanOrEqual(0.3 + 0.372);
    expect(t.bufferedSeconds).toBeGreaterThanOrEqual(0.29);
    s.send({ type: 'play', id: 'bp' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'bp', 15000);
    await conn;
    const file = join(s.dir, 'out.raw');
    await outputSettles(file, pcm.length);
    expect(await s.close()).toBe(0);
    expect(Buffer.compare(readFileSync(file), Buffer.from(pcm))).toBe(0);
  });

  it('a decoder for an id that was played first becomes that track; a trailing partial frame is dropped', async () => {
    const s = await start();
    s.send({ type: 'play', id: 'late' });
    await new Promise((r) => setTimeout(r, 200));
    const pcm = testSignal(OUT, 4410, 9);
    const r = await decoder(s.socket, { id: 'late', ...OUT }, Buffer.concat([pcm, Buffer.from([1, 2, 3])]));
    expect(r.reply).toEqual({ ok: true });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'late');
    const file = join(s.dir, 'out.raw');
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.close()).toBe(0);
    const out = readFileSync(file);
    // silence while waiting for the decoder (a clock-paced backend), then exactly the track
    const frame = bytesPerFrame(OUT);
    expect(out.length % frame).toBe(0);
    const tail = out.subarray(out.length - pcm.length);
    expect(Buffer.compare(tail, Buffer.from(pcm))).toBe(0);
    expect(out.subarray(0, out.length - pcm.length).every((b) => b === 0)).toBe(true);
    expect(out.length - pcm.length).toBeGreaterThan(0);
  });

  it('refuses to start on a live socket, replaces a stale one', async () => {
    const a = await start();
    const b = await Speakerd.start(
      { backend: 'command', command: { run: 'cat > /dev/null' }, socket: a.socket },
      { waitReady: false },
    );
    running.push(b);
    expect(await b.exited).not.toBe(0);
    expect(b.stderr).toContain('another process is listening');
    a.kill();
    await a.exited;
    expect(existsSync(a.socket)).toBe(true); // SIGKILL leaves it behind
    const c = await Speakerd.start({ backend: 'command', command: { run: 'cat > /dev/null' }, socket: a.socket });
    running.push(c);
    expect(c.events[0]!.type).toBe('ready');
    expect(statSync(a.socket).mode & 0o777).toBe(0o600);
    expect(await c.close()).toBe(0);
  });
});
