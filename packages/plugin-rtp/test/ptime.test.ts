import { describe, expect, it } from 'vitest';
import { SpeakerdError } from '@speakerd/plugin-sdk';
import { IP_UDP_OVERHEAD, MAX_UDP_PAYLOAD, RTP_HEADER, framesPerPacket } from '../src/payload.js';
import { options } from '../src/options.js';
import { FakeTransport, feeder, makeBackend, parseRtp } from './helpers.js';

const defaults = options.parse({});
const ms = (frames: number, rate: number): number => (frames * 1000) / rate;

describe('packet size: the MTU, then rtp.minPtimeMs / rtp.maxPtimeMs', () => {
  it('defaults to 1 ms .. 20 ms (RFC 3551 4.2: 20 ms is the default packet time)', () => {
    expect(defaults).toMatchObject({ minPtimeMs: 1, maxPtimeMs: 20, mtu: 1500 });
  });

  it('8 kHz mono L16: 160 frames (20 ms; the MTU alone would give 720, 90 ms)', () => {
    const f = { encoding: 's16be', rate: 8000, channels: 1 } as const;
    expect(framesPerPacket(f, 1500)).toBe(720);
    expect(framesPerPacket(f, 1500, defaults)).toBe(160);
    expect(ms(160, 8000)).toBe(20);
  });

  it('44.1 kHz stereo L16: 360 frames (8.16 ms, 1,500-byte IP packets) as before; 882 (20 ms) at mtu 9000', () => {
    const f = { encoding: 's16be', rate: 44100, channels: 2 } as const;
    expect(framesPerPacket(f, 1500, defaults)).toBe(360);
    expect(IP_UDP_OVERHEAD + RTP_HEADER + 360 * 4).toBe(1500);
    expect(framesPerPacket(f, 9000)).toBe(2235);
    expect(framesPerPacket(f, 9000, defaults)).toBe(882);
  });

  it('768 kHz: 768 frames (1 ms, 1,000 packets/s, IP fragments) instead of 720 mono / 360 stereo (1,067 / 2,133 a second)', () => {
    const mono = { encoding: 's16be', rate: 768000, channels: 1 } as const;
    const stereo = { ...mono, channels: 2 } as const;
    expect(framesPerPacket(mono, 1500)).toBe(720);
    expect(framesPerPacket(stereo, 1500)).toBe(360);
    expect(framesPerPacket(mono, 1500, defaults)).toBe(768);
    expect(framesPerPacket(stereo, 1500, defaults)).toBe(768);
    // with no minimum the MTU decides again
    expect(framesPerPacket(stereo, 1500, { minPtimeMs: 0, maxPtimeMs: 20 })).toBe(360);
  });

  it('never more than one UDP datagram, never less than one frame; min above max is a config error', () => {
    const f = { encoding: 's24be', rate: 768000, channels: 8 } as const;
    const n = framesPerPacket(f, 65535, { minPtimeMs: 1000, maxPtimeMs: 1000 });
    expect(RTP_HEADER + n * 24).toBeLessThanOrEqual(MAX_UDP_PAYLOAD);
    expect(RTP_HEADER + (n + 1) * 24).toBeGreaterThan(MAX_UDP_PAYLOAD);
    expect(
      framesPerPacket({ encoding: 's16be', rate: 8000, channels: 1 }, 1500, { minPtimeMs: 0, maxPtimeMs: 0 }),
    ).toBe(1);
    expect(() => framesPerPacket(f, 1500, { minPtimeMs: 30, maxPtimeMs: 20 })).toThrow(SpeakerdError);
    expect(() => options.parse({ maxPtimeMs: 2000 })).toThrow();
  });

  it('the backend sends 20 ms packets at 8 kHz mono and announces a=ptime:20', async () => {
    const sizes: number[] = [];
    const transport = new FakeTransport((buf) => sizes.push(parseRtp(buf).payload.length));
    const h = await makeBackend({}, { encoding: 's16le', rate: 8000, channels: 1 }, () => transport);
    expect(h.backend.packetInfo).toMatchObject({ frames: 160, ms: 20 });
    expect(h.backend.sdp).toContain('a=ptime:20\r\n');
    await h.backend.activate(h.format);
    feeder(h, () => new Uint8Array(3200)).fill();
    h.clock.advance(1000);
    expect(sizes.length).toBeGreaterThanOrEqual(45);
    expect(sizes.every((s) => s === 320)).toBe(true);
    await h.backend.close();
    h.cleanup();
  });

  it('logs a format whose packets the MTU cannot hold', async () => {
    const h = await makeBackend({}, { encoding: 's16le', rate: 768000, channels: 2 }, () => new FakeTransport());
    expect(h.backend.packetInfo).toMatchObject({ frames: 768, ms: 1 });
    expect(h.log.entries.some((e) => /3132-byte packets .* exceed rtp\.mtu 1500/.test(e.msg))).toBe(true);
    await h.backend.close();
    h.cleanup();
  });
});
