// Issue 11 (3), through the built binary: RTCP failures are not the output being lost.
import { afterEach, describe, expect, it } from 'vitest';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { noise } from './helpers/pcm.js';
import { rtpOnly, swap16 } from './helpers/rtp-rx.js';
import { freePortPair } from './helpers/udp.js';

const CD = { encoding: 's16le', rate: 44100, channels: 2 };
let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('rtp: RTCP problems are not the output being lost (issue 11, 3)', () => {
  it('a receiver on the RTP port only: every packet arrives, no backend lost, the RTCP failure is logged', async () => {
    const port = freePortPair();
    const rx = await rtpOnly(cleanups, port);
    // the whole track fits the buffer: the decoder finishes before the play
    const s = await Speakerd.start({ backend: 'rtp', format: CD, bufferMs: 12000, rtp: { port } });
    cleanups.push(() => s.dispose());
    const pcm = noise(44100 * 4 * 10, 71); // 10 s: at least two RTCP reports go to the closed port + 1
    const r = await decoder(s.socket, { id: 'r', ...CD }, pcm);
    expect(r.reply).toEqual({ ok: true });
    s.send({ type: 'play', id: 'r' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'r', 30000);
    await sleep(1500);
    const st = await s.status();
    expect(st.backendState).toBe('ok');
    expect(await s.close()).toBe(0);
    await sleep(200);
    // the RTCP sends did fail (ICMP port unreachable), and said so in the log
    expect(s.stderr).toMatch(/RTCP to 127\.0\.0\.1:\d+ failed/);
    expect(s.events.filter((e) => e.type === 'backend')).toEqual([]);
    const got = Buffer.concat(rx.packets.map((p) => p.subarray(12)));
    expect(got.length).toBe(pcm.length);
    expect(got.equals(swap16(pcm))).toBe(true);
    for (let i = 1; i < rx.packets.length; i++)
      expect(rx.packets[i]!.readUInt16BE(2)).toBe((rx.packets[i - 1]!.readUInt16BE(2) + 1) & 0xffff);
  }, 60000);
});
