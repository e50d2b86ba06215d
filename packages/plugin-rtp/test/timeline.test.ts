import { describe, expect, it } from 'vitest';
import { VirtualClock } from '@speakerd/plugin-sdk';
import { FakeTransport, feeder, makeBackend, parseRtp } from './helpers.js';

const MONO = { encoding: 's16le', rate: 44100, channels: 1 } as const;

describe('timeline on a virtual clock', () => {
  it('runs 30 simulated hours across the 32-bit timestamp wrap with no jump or stall', async () => {
    // the largest packets keep the run cheap (≈145 000 packets); the arithmetic is the same for any size
    let prev: { seq: number; ts: number; frames: number; at: number } | undefined;
    let packets = 0;
    let wraps = 0;
    let markers = 0;
    let frames = 0;
    let maxLate = 0;
    let minLate = Infinity;
    let t0 = 0;
    let firstTs = 0;
    let bad = '';
    const clock = new VirtualClock(5_000);
    const transport = new FakeTransport((buf) => {
      const p = parseRtp(buf);
      const n = p.payload.length / 2;
      const now = clock.now();
      if (packets === 0) {
        t0 = now;
        firstTs = p.ts;
      }
      if (p.marker) markers++;
      if (prev) {
        if (p.seq !== ((prev.seq + 1) & 0xffff) && !bad) bad = `sequence ${prev.seq} -> ${p.seq} at packet ${packets}`;
        const dts = (p.ts - prev.ts) >>> 0;
        if (dts !== prev.frames && !bad) bad = `timestamp step ${dts} after ${prev.frames} frames at packet ${packets}`;
        if (p.ts < prev.ts) wraps++;
      }
      // each packet leaves at its deadline: t0 + frames sent before it / rate (rounded up to a whole ms)
      const late = now - (t0 + (frames * 1000) / 44100);
      maxLate = Math.max(maxLate, late);
      minLate = Math.min(minLate, late);
      frames += n;
      prev = { seq: p.seq, ts: p.ts, frames: n, at: now };
      packets++;
    });
    const h = await makeBackend({ mtu: 65535, leadMs: 20, maxPtimeMs: 1000 }, MONO, () => transport, clock);
    expect(h.backend.packetInfo!.frames).toBe(32737);
    await h.backend.activate(h.format);
    const silence = new Uint8Array(65536 * 2);
    feeder(h, () => silence).fill();
    const hours = 30;
    for (let i = 0; i < hours * 60; i++) clock.advance(60_000);
    expect(bad).toBe('');
    expect(markers).toBe(1);
    // 30 h is 4.76e9 frames: at least one wrap, two when the random start is high
    expect(wraps).toBeGreaterThanOrEqual(1);
    expect(wraps).toBe(Math.floor((firstTs + frames - prev!.frames) / 2 ** 32));
    const expected = Math.floor((hours * 3600 * 44100) / 32737);
    expect(Math.abs(packets - expected)).toBeLessThanOrEqual(2);
    // never early (beyond EARLY_MS) and never late by more than the whole-ms rounding of the timer
    expect(minLate).toBeGreaterThanOrEqual(-1);
    expect(maxLate).toBeLessThanOrEqual(1);
    expect(frames).toBeGreaterThan(2 ** 32);
    // RTCP went out all along (about every 5 s)
    expect(transport.rtcp.length).toBeGreaterThan((hours * 3600) / 7);
    await h.backend.close();
    h.cleanup();
  });

  it('never bursts after a clock jump: the schedule and the timestamp move on, the sequence does not skip', async () => {
    const sent: { seq: number; ts: number; marker: boolean; frames: number; at: number }[] = [];
    const clock = new VirtualClock(1000);
    const transport = new FakeTransport((buf) => {
      const p = parseRtp(buf);
      sent.push({ seq: p.seq, ts: p.ts, marker: p.marker, frames: p.payload.length / 4, at: clock.now() });
    });
    const h = await makeBackend({}, undefined, () => transport, clock);
    await h.backend.activate(h.format);
    feeder(h, () => new Uint8Array(8192)).fill();
    clock.advance(1000);
    const before = sent.length;
    clock.jump(60_000); // the machine slept for a minute
    clock.advance(100);
    const after = sent.slice(before);
    // 100 ms at 8.16 ms per packet: about 13 packets, not 60 s worth
    expect(after.length).toBeGreaterThanOrEqual(11);
    expect(after.length).toBeLessThanOrEqual(14);
    const last = sent[before - 1]!;
    const first = after[0]!;
    expect(first.seq).toBe((last.seq + 1) & 0xffff);
    expect(first.marker).toBe(true);
    const gap = ((first.ts - last.ts) >>> 0) - last.frames;
    expect(Math.abs(gap - 60 * 44100)).toBeLessThan(441 * 2);
    for (let i = 1; i < after.length; i++) expect((after[i]!.ts - after[i - 1]!.ts) >>> 0).toBe(after[i - 1]!.frames);
    await h.backend.close();
    h.cleanup();
  });

  // 30 ms: within what the ring holds; 70 ms: more than it holds (the lead, 20 ms, and four packets), so the late
  // timer drains it before the fill it asked for can run — a stall all the same, caught up (Timeline.restart)
  for (const stallMs of [30, 70])
    it(`catches up a ${stallMs} ms stall (within catchUpMs) by sending what is due: one marker, timestamps contiguous`, async () => {
      const sent: { ts: number; frames: number; marker: boolean }[] = [];
      const clock = new VirtualClock(1000);
      const transport = new FakeTransport((buf) => {
        const p = parseRtp(buf);
        sent.push({ ts: p.ts, frames: p.payload.length / 4, marker: p.marker });
      });
      const h = await makeBackend({ catchUpMs: 100 }, undefined, () => transport, clock);
      await h.backend.activate(h.format);
      feeder(h, () => new Uint8Array(8192)).fill();
      clock.advance(500);
      clock.jump(stallMs); // the event loop was blocked
      clock.advance(500);
      expect(sent.filter((s) => s.marker).length).toBe(1);
      for (let i = 1; i < sent.length; i++)
        expect((sent[i]!.ts - sent[i - 1]!.ts) >>> 0, `packet ${i}`).toBe(sent[i - 1]!.frames);
      // real time decides how much went out: 1000 ms of audio and the stall, give or take a packet
      const total = sent.reduce((a, s) => a + s.frames, 0);
      expect(Math.abs(total / 44.1 - (1000 + stallMs))).toBeLessThan(20);
      await h.backend.close();
      h.cleanup();
    });

  it('wakes the host about once per four packets, never per packet, and has one timer per packet', async () => {
    let packets = 0;
    const clock = new VirtualClock(1000);
    const transport = new FakeTransport(() => packets++);
    const h = await makeBackend({}, undefined, () => transport, clock);
    await h.backend.activate(h.format);
    feeder(h, () => new Uint8Array(8192)).fill();
    let timers = 0;
    const orig = clock.setTimeout.bind(clock);
    clock.setTimeout = (fn, ms) => {
      timers++;
      return orig(fn, ms);
    };
    clock.advance(10_000);
    expect(packets).toBeGreaterThan(1200);
    // the host is woken when FILL_PACKETS (4) packets' worth has room: 306 wakes for 1,226 packets of 8.16 ms
    // here, about 31 a second of audio; one per packet would be 123 a second, one per two or three 61 or 41
    const audioSeconds = 10;
    expect(h.events.wakes / audioSeconds).toBeLessThanOrEqual(32);
    expect(h.events.wakes).toBeLessThanOrEqual(Math.ceil(packets / 4) + 2);
    expect(timers).toBeLessThanOrEqual(packets + 5); // + RTCP
    await h.backend.close();
    h.cleanup();
  });
});
