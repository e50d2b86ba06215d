import { describe, expect, it } from 'vitest';
import { VirtualClock, type SampleFormat } from '@speakerd/plugin-sdk';
import { reorderInto, wireOrder } from '../src/channel-order.js';
import { buildSdp } from '../src/sdp.js';
import { payloadFor } from '../src/payload.js';
import type { Destination } from '../src/transport.js';
import { FakeTransport, feeder, makeBackend, parseRtp, pattern } from './helpers.js';

const fmt = (channels: number, encoding: SampleFormat['encoding'] = 's16le'): SampleFormat => ({
  encoding,
  rate: 48000,
  channels,
});

/** A fake transport that records what goes to sendTo (SAP) and says it sends from `local`. */
class Recording extends FakeTransport {
  sent: { packet: Buffer; dest: Destination }[] = [];
  constructor(
    readonly local: string | undefined,
    onPacket: (p: Buffer) => void = () => {},
  ) {
    super(onPacket);
  }
  // (the base's sendTo takes no arguments: optional here, so this one still overrides it)
  override async sendTo(packet?: Buffer, dest?: Destination): Promise<void> {
    if (packet && dest) this.sent.push({ packet: Buffer.from(packet), dest });
  }
  override localAddress(): string | undefined {
    return this.local;
  }
}

describe('channel order on the wire', () => {
  it('"wav" keeps the host order and names it where a DV order does; "gstreamer-1.22" as GStreamer 1.22 reads it', () => {
    const table = (mode: 'wav' | 'gstreamer-1.22') =>
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => {
        const w = wireOrder(n, mode);
        return [n, w.channelOrder ?? '-', w.map?.join('') ?? 'same'];
      });
    expect(table('wav')).toEqual([
      [1, '-', 'same'],
      [2, '-', 'same'],
      [3, '-', 'same'],
      [4, 'DV.LRLsRs', 'same'],
      [5, '-', 'same'],
      [6, 'DV.LmixRmixTWoQ1Q2', 'same'],
      [7, '-', 'same'],
      [8, '-', 'same'],
    ]);
    expect(table('gstreamer-1.22')).toEqual([
      [1, '-', 'same'],
      [2, '-', 'same'],
      [3, '-', 'same'],
      [4, 'DV.LRLsRs', 'same'],
      [5, 'DV.LRLsRsC', 'same'],
      [6, 'DV.LRLsRsCS', 'same'],
      [7, '-', 'same'],
      [8, 'DV.LRCWoLs1Rs1Ls2Rs2', '01236745'],
    ]);
  });

  it('reorderInto moves whole samples (2 bytes for L16, 3 for L24) and leaves the rest of the ring alone', () => {
    const map = [0, 1, 2, 3, 6, 7, 4, 5];
    for (const bytes of [2, 3]) {
      const frames = 3;
      const src = Uint8Array.from({ length: frames * 8 * bytes }, (_, i) => i);
      const dst = new Uint8Array(src.length + 10).fill(0xee);
      reorderInto(dst, 5, src, map, bytes);
      expect([...dst.subarray(0, 5)]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
      expect([...dst.subarray(5 + src.length)]).toEqual([0xee, 0xee, 0xee, 0xee, 0xee]);
      for (let f = 0; f < frames; f++)
        for (let c = 0; c < 8; c++)
          for (let b = 0; b < bytes; b++)
            expect(dst[5 + (f * 8 + c) * bytes + b]).toBe(src[(f * 8 + map[c]!) * bytes + b]);
    }
  });

  it('buildSdp: a=fmtp:<pt> channel-order=... right after the rtpmap when one is given, none otherwise', () => {
    const base = {
      destination: '127.0.0.1',
      port: 5004,
      ttl: 1,
      multicast: false,
      origin: '192.0.2.2',
      sessionId: 7,
      version: 7,
      ptimeMs: 5,
    };
    const six = buildSdp({ ...base, payload: payloadFor(fmt(6), null), channelOrder: 'DV.LmixRmixTWoQ1Q2' });
    expect(six).toContain('a=rtpmap:96 L16/48000/6\r\na=fmtp:96 channel-order=DV.LmixRmixTWoQ1Q2\r\na=ptime:5\r\n');
    expect(buildSdp({ ...base, payload: payloadFor(fmt(2), null) })).not.toContain('a=fmtp');
  });

  for (const [channels, mode, order, map] of [
    [6, 'wav', 'DV.LmixRmixTWoQ1Q2', [0, 1, 2, 3, 4, 5]],
    [8, 'gstreamer-1.22', 'DV.LRCWoLs1Rs1Ls2Rs2', [0, 1, 2, 3, 6, 7, 4, 5]],
    [8, 'wav', undefined, [0, 1, 2, 3, 4, 5, 6, 7]],
  ] as const) {
    it(`the backend: ${channels} channels, "${mode}": SDP ${order ?? 'without a channel-order'}, packets in that order (L16 and L24)`, async () => {
      for (const encoding of ['s16le', 's24le'] as const) {
        const bytes = encoding === 's16le' ? 2 : 3;
        const payloads: Buffer[] = [];
        const transport = new Recording('192.0.2.2', (b) => payloads.push(Buffer.from(parseRtp(b).payload)));
        const clock = new VirtualClock(1000);
        const h = await makeBackend({ channelOrder: mode }, fmt(channels, encoding), () => transport, clock);
        if (order) expect(h.backend.sdp).toContain(`a=fmtp:96 channel-order=${order}\r\n`);
        else expect(h.backend.sdp).not.toContain('a=fmtp');
        await h.backend.activate(h.format);
        const frames = 4800;
        const pcm = pattern(frames * channels * bytes, channels); // already big-endian: the host's job is done
        feeder(h, pcm).fill();
        for (let i = 0; i < 200 && payloads.reduce((n, p) => n + p.length, 0) < pcm.length; i++) clock.advance(10);
        const got = Buffer.concat(payloads);
        expect(got.length).toBe(pcm.length);
        const want = Buffer.alloc(pcm.length);
        reorderInto(want, 0, pcm, map, bytes);
        expect(got.equals(want)).toBe(true);
        await h.backend.close();
        h.cleanup();
      }
    });
  }
});

describe('SDP o= and SAP: the address the stream leaves from', () => {
  it('o= names the local address of the sending socket, IN IP4 or IN IP6 accordingly, and SAP carries the same', async () => {
    for (const [local, family, aBit] of [
      ['192.0.2.2', 'IP4', 0],
      ['2001:db8::2', 'IP6', 0x10],
    ] as const) {
      const transport = new Recording(local);
      const h = await makeBackend({ sap: true, sapAddress: '239.255.255.255', sapPort: 9875 }, fmt(2), () => transport);
      const o = /^o=- (\d+) (\d+) IN (IP[46]) (\S+)\r$/m.exec(h.backend.sdp!);
      expect(o?.slice(3)).toEqual([family, local]);
      await h.backend.activate(h.format); // the first announcement
      expect(transport.sent).toHaveLength(1);
      const { packet, dest } = transport.sent[0]!;
      expect(dest).toEqual({ address: '239.255.255.255', port: 9875 });
      expect(packet[0]! & 0x10).toBe(aBit);
      const originBytes = packet.subarray(4, aBit ? 20 : 8);
      expect(aBit ? originBytes.toString('hex') : [...originBytes].join('.')).toBe(
        aBit ? '20010db8000000000000000000000002' : local,
      );
      expect(packet.subarray(aBit ? 20 : 8).toString()).toBe(`application/sdp\0${h.backend.sdp}`);
      await h.backend.close();
      h.cleanup();
    }
  });

  it('without a connected socket (request mode) o= falls back to a machine address, never a placeholder', async () => {
    const transport = new Recording(undefined);
    const h = await makeBackend({ mode: 'request' }, fmt(2), () => transport);
    const o = /^o=- \d+ \d+ IN (IP[46]) (\S+)\r$/m.exec(h.backend.sdp!);
    expect(o).not.toBeNull();
    expect(o![2]).not.toMatch(/^(0\.0\.0\.0|::|-)$/);
    await h.backend.close();
    h.cleanup();
  });
});
