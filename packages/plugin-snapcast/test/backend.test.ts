import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SpeakerdError, type SampleFormat } from '@speakerd/plugin-sdk';
import { VirtualClock, createTestBackend, feed, noise, type TestBackend } from '@speakerd/plugin-sdk/testing';
import plugin, { SnapcastErrorCodes, parseSnapFormat, probe } from '../src/index.js';
import type { SnapcastBackend } from '../src/backend.js';
import { settle, sink, trimSilence, type Sink } from './helpers.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const CHUNK = 882; // 20 ms at 44.1 kHz
const BPF = 4;
const dir = mkdtempSync(join(tmpdir(), 'snapcast-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open: { t?: TestBackend<SnapcastBackend>; s?: Sink }[] = [];
afterEach(async () => {
  for (const { t, s } of open.splice(0)) {
    await t?.backend.close();
    await s?.close();
  }
});

async function start(options: Record<string, unknown> = {}, s?: Sink) {
  const server = s ?? (await sink());
  const clock = new VirtualClock();
  const t = createTestBackend<SnapcastBackend>(plugin, {
    options: { port: server.port, sampleFormat: '44100:16:2', control: { enabled: false }, ...options },
    clock,
    configDir: dir,
  });
  open.push({ t, s: server });
  await t.backend.init!();
  const format = t.backend.negotiate!(CD);
  await t.backend.configure!(format);
  return { t, clock, server, conn: await server.nextConnection(0) };
}

/** Wait (real time) until the connection has `bytes` bytes. */
async function received(c: { bytes(): Buffer }, bytes: number) {
  for (let i = 0; i < 200 && c.bytes().length < bytes; i++) await settle(5);
  return c.bytes();
}

describe('sample formats', () => {
  it('maps snapserver formats to speakerd encodings and refuses what it cannot feed, with a coded error', () => {
    expect(parseSnapFormat('48000:16:2', 'x')).toEqual({ encoding: 's16le', rate: 48000, channels: 2 });
    expect(parseSnapFormat('96000:32:6', 'x')).toEqual({ encoding: 's32le', rate: 96000, channels: 6 });
    for (const [text, why] of [
      ['44100:24:2', /4 bytes/],
      ['44100:8:2', /8 bits/],
      ['44100-16-2', /RATE:BITS:CHANNELS/],
      ['1000:16:2', /rate/],
      ['44100:16:9', /channels/],
    ] as const) {
      let err: unknown;
      try {
        parseSnapFormat(text, 'snapcast.sampleFormat');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SpeakerdError);
      expect((err as SpeakerdError).code).toBe(SnapcastErrorCodes.FORMAT);
      expect((err as Error).message).toMatch(why);
    }
  });

  it('negotiates the stream format whatever speakerd was configured with; a 24-bit stream stops start-up', async () => {
    const { t } = await start({ sampleFormat: '48000:16:1' });
    expect(t.backend.negotiate!(CD)).toEqual({ encoding: 's16le', rate: 48000, channels: 1 });
    const bad = createTestBackend<SnapcastBackend>(plugin, {
      options: { sampleFormat: '48000:24:2', control: { enabled: false } },
    });
    await expect(bad.backend.init!()).rejects.toMatchObject({ code: SnapcastErrorCodes.FORMAT });
    expect(() => plugin.options.parse({ sampleFormat: 'cd' })).toThrow(/RATE:BITS:CHANNELS/);
  });
});

describe('the stream', () => {
  it('sends whole chunks only: a track ending mid-chunk is padded with silence, nothing of it lost', async () => {
    const { t, clock, conn } = await start({ idleSilenceMs: 100 });
    await t.backend.activate(CD);
    const pcm = noise(10_000 * BPF, 3); // 11.34 chunks
    await feed(t, pcm, CD);
    await t.backend.idle!();
    clock.advance(1000); // idle silence for 100 ms, then the stream stops
    const out = await received(conn, Math.ceil(10_000 / CHUNK) * CHUNK * BPF);
    await settle();
    expect(out.length % (CHUNK * BPF)).toBe(0);
    expect(Buffer.compare(Buffer.from(trimSilence(out, BPF)), Buffer.from(pcm))).toBe(0);
    const sent = conn.bytes().length;
    clock.advance(5000);
    await settle();
    expect(conn.bytes().length).toBe(sent); // idle: nothing more after idleSilenceMs
    expect(clock.pending).toBe(0);
  });

  it('keeps the stream at real time with silence while paused, and resumes where it was', async () => {
    const { t, clock, conn } = await start();
    await t.backend.activate(CD);
    const a = noise(3000 * BPF, 4);
    await feed(t, a, CD);
    t.backend.pause!();
    expect(t.backend.writable()).toBe(0);
    const before = (await received(conn, 4 * CHUNK * BPF)).length;
    clock.advance(1000); // one second paused: about 50 chunks of silence
    const during = (await received(conn, before + 49 * CHUNK * BPF)).length - before;
    expect(during % (CHUNK * BPF)).toBe(0);
    expect(Math.abs(during / BPF - 44100)).toBeLessThanOrEqual(2 * CHUNK);
    t.backend.resume!();
    const b = noise(2000 * BPF, 5);
    await feed(t, b, CD);
    await t.backend.close();
    await conn.closed;
    const out = conn.bytes();
    expect(out.length % (CHUNK * BPF)).toBe(0);
    // the stream is a, zeros, b: nothing of either lost
    const i = out.indexOf(Buffer.from(a.subarray(0, 64)));
    expect(Buffer.compare(out.subarray(i, i + a.length), Buffer.from(a))).toBe(0);
    const j = out.indexOf(Buffer.from(b.subarray(0, 64)));
    expect(Buffer.compare(out.subarray(j, j + b.length), Buffer.from(b))).toBe(0);
    expect(out.subarray(i + a.length, j).every((x) => x === 0)).toBe(true);
  });

  it("delay() counts snapserver's buffer and drains at the sample rate once the host stops writing", async () => {
    const { t, clock } = await start({ bufferMs: 1000, leadMs: 60 });
    await t.backend.activate(CD);
    expect(t.backend.writable()).toBe(2646 + CHUNK); // leadMs plus one chunk
    t.backend.write(noise(2646 * BPF, 6));
    expect(t.backend.delay!()).toBe(2646 + 44100);
    clock.advance(500);
    expect(t.backend.delay!()).toBeGreaterThanOrEqual(2646 + 44100 - 22050 - CHUNK);
    expect(t.backend.delay!()).toBeLessThanOrEqual(2646 + 44100 - 22050 + CHUNK);
    clock.advance(2000);
    expect(t.backend.delay!()).toBe(0);
  });
});

describe('a snapserver that goes away', () => {
  it('reports lost, reconnects with a doubling back-off, reports ok, and drops audio at real time meanwhile', async () => {
    const s = await sink();
    const port = s.port;
    const { t, clock, conn } = await start({ reconnectMinMs: 100, reconnectMaxMs: 400 }, s);
    await t.backend.activate(CD);
    await feed(t, noise(2000 * BPF, 7), CD);
    await s.close();
    await conn.closed;
    await settle(50);
    expect(t.events.states.map((x) => x.state)).toEqual(['lost']);
    expect(t.events.states[0]!.message).toMatch(/tcp:\/\/127\.0\.0\.1/);
    for (let i = 0; i < 4; i++) {
      clock.advance(400);
      await settle(30);
    }
    const delays = t.log.entries.filter((e) => /again in/.test(e.msg)).map((e) => e.fields?.delayMs);
    expect(delays.slice(0, 3)).toEqual([100, 200, 400]);
    expect(t.backend.writable()).toBeGreaterThan(0); // still paced: the host plays on
    const back = await sink(port);
    open.push({ s: back });
    clock.advance(400);
    const c2 = await back.nextConnection(0);
    await settle();
    expect(c2.ended).toBe(false);
    expect(t.events.states.map((x) => x.state)).toEqual(['lost', 'ok']);
    expect(t.log.count(/dropped \d+ frames/)).toBe(1);
  });

  it('listen mode: a port in use stops start-up with a coded error; snapserver connecting is taken', async () => {
    const s = await sink();
    const bad = createTestBackend<SnapcastBackend>(plugin, {
      options: { mode: 'listen', port: s.port, control: { enabled: false } },
    });
    await expect(bad.backend.init!()).rejects.toMatchObject({ code: SnapcastErrorCodes.LISTEN });
    await s.close();
    const port = await new Promise<number>((r) => {
      const x = createServer().listen(0, '127.0.0.1', () => {
        const p = (x.address() as { port: number }).port;
        x.close(() => r(p));
      });
    });
    const clock = new VirtualClock();
    const t = createTestBackend<SnapcastBackend>(plugin, {
      options: { mode: 'listen', port, sampleFormat: '44100:16:2', control: { enabled: false } },
      clock,
    });
    open.push({ t });
    await t.backend.init!();
    await t.backend.configure!(t.backend.negotiate!(CD));
    await t.backend.activate(CD);
    const { connect } = await import('node:net');
    const chunks: Buffer[] = [];
    const c = connect(port, '127.0.0.1');
    c.on('data', (d: Buffer) => chunks.push(d));
    await new Promise((r) => c.once('connect', r));
    await settle();
    const pcm = noise(CHUNK * 3 * BPF, 8);
    await feed(t, pcm, CD);
    await settle();
    const got = Buffer.concat(chunks);
    expect(got.length % (CHUNK * BPF)).toBe(0);
    expect(got.indexOf(Buffer.from(pcm.subarray(0, 64)))).toBeGreaterThanOrEqual(0);
    c.destroy();
    await settle();
    expect(t.events.states.map((x) => x.state)).toEqual(['lost']);
  });

  it('pipe: waits for the fifo, and drops a fifo nobody reads after stallMs, reporting it lost', async () => {
    const fifo = join(dir, 'snapfifo');
    const clock = new VirtualClock();
    const t = createTestBackend<SnapcastBackend>(plugin, {
      options: {
        source: 'pipe',
        pipe: 'snapfifo',
        sampleFormat: '44100:16:2',
        control: { enabled: false },
        stallMs: 500,
      },
      clock,
      configDir: dir,
    });
    open.push({ t });
    await t.backend.init!();
    expect(t.log.count(/does not exist/)).toBe(1);
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    await t.backend.configure!(t.backend.negotiate!(CD));
    await t.backend.activate(CD);
    clock.advance(100); // the retry opens it
    expect(t.log.count(/streaming to pipe:/)).toBe(1);
    // nobody reads: 64 KiB of fifo fill in ~370 ms, then writes back up; after stallMs the fifo is dropped
    for (let i = 0; i < 100 && t.events.states.length === 0; i++) {
      clock.advance(20);
      await settle(2);
    }
    expect(t.events.states[0]).toMatchObject({ state: 'lost' });
    expect(t.events.states[0]!.message).toMatch(/stopped reading/);
  });

  it('probe says why it cannot play, in one line', async () => {
    writeFileSync(join(dir, 'plain'), '');
    const ctx = { configDir: dir, pluginName: 'snapcast', hostVersion: '0' };
    const o = (x: Record<string, unknown>) => plugin.options.parse(x) as never;
    expect(await probe(o({ source: 'pipe', pipe: 'nope' }), ctx)).toMatch(/does not exist/);
    expect(await probe(o({ source: 'pipe', pipe: 'plain' }), ctx)).toMatch(/not a fifo/);
    const s = await sink();
    expect(await probe(o({ port: s.port }), ctx)).toBeUndefined();
    await s.close();
    expect(await probe(o({ port: s.port }), ctx)).toMatch(/ECONNREFUSED/);
  });
});
