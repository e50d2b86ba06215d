// The native clock-out path (native/rtp_sender.cc) on the real clock and real UDP on 127.0.0.1. Skipped, with
// the reason printed, when the addon is not built. No timed performance assertions: pacing is in the benchmark.
import { afterEach, describe, expect, it } from 'vitest';
import { RealClock, bytesPerFrame } from '@speakerd/plugin-sdk';
import { loadNative } from '../src/native.js';
import { haveCapability } from '../../../test/helpers/tools.js';
import { CD, Receiver, makeBackend, pattern, sleep, type Harness } from './helpers.js';

let cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

function haveNative(): boolean {
  const { why } = loadNative();
  return haveCapability('the native rtp sender', why === undefined, why ?? '');
}

async function setup(raw: Record<string, unknown>): Promise<Harness> {
  const h = await makeBackend(raw, CD, undefined, new RealClock() as unknown as never);
  cleanups.push(async () => {
    await h.backend.close();
    h.cleanup();
  });
  return h;
}

/** The host writes a track's buffered chunks one by one within a fill. */
const CHUNK_FRAMES = 4096;

/** A host stand-in on the real clock: offers frames every 100 ms and on every wake, writing `pcm` while it lasts. */
function host(h: Harness, pcm: Uint8Array) {
  const bpf = bytesPerFrame(h.format);
  let off = 0;
  let paused = false;
  const fill = () => {
    // like the host, offer on every tick, with or without frames: on the native path that is the batch
    const room = h.backend.writable();
    if (paused || room <= 0) return;
    while (off * bpf < pcm.length) {
      const w = h.backend.writable();
      if (w <= 0) return;
      const n = Math.min(w, pcm.length / bpf - off, CHUNK_FRAMES);
      const took = h.backend.write(pcm.subarray(off * bpf, (off + n) * bpf));
      if (took === 0) return;
      off += took;
    }
  };
  h.events.onWake = fill;
  const timer = setInterval(fill, 100);
  cleanups.push(() => clearInterval(timer));
  return {
    fill,
    pause() {
      paused = true;
      const dropped = h.backend.flush();
      off -= dropped;
      h.backend.pause();
      return dropped;
    },
    resume() {
      paused = false;
      h.backend.resume();
      fill();
    },
    done: () => off * bpf >= pcm.length && h.backend.delay() === 0,
  };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(20);
  }
}

/** The backend takes s16be (negotiated): the host's bytes go on the wire as they are. */
const wire = (pcm: Uint8Array): Buffer => Buffer.from(pcm);

function checkStream(rx: Receiver, pcm: Uint8Array, markersAt: number[]): void {
  const p = rx.rtp;
  expect(p.length).toBeGreaterThan(0);
  for (let i = 1; i < p.length; i++) {
    expect(p[i]!.seq).toBe((p[i - 1]!.seq + 1) & 0xffff);
    expect(p[i]!.ssrc).toBe(p[0]!.ssrc);
    if (!markersAt.includes(i)) expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 4);
  }
  expect(p.map((x, i) => (x.marker ? i : -1)).filter((i) => i >= 0)).toEqual(markersAt);
  const got = Buffer.concat(p.map((x) => x.payload));
  const want = wire(pcm);
  if (!got.equals(want)) {
    let i = 0;
    while (i < got.length && got[i] === want[i]) i++;
    const pk = p.map((x) => x.payload.length);
    throw new Error(`payload differs at byte ${i} of ${got.length}/${want.length}; packet sizes ${pk.join(',')}`);
  }
}

describe('rtp native sender', () => {
  it('is used on the real clock and says so once at info; packets are exact and paced', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port });
    expect(h.backend.sender).toEqual({ path: 'native' });
    const lines = h.log.entries.filter((e) => e.msg.startsWith('rtp sender'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'rtp sender: native thread (CLOCK_MONOTONIC)' });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4, 1); // 1 s
    const t0 = performance.now();
    const hst = host(h, pcm);
    hst.fill();
    await until(hst.done);
    await rx.settle();
    checkStream(rx, pcm, [0]);
    // whole packets, whatever the host's chunks: only the very last one is short
    const sizes = rx.rtp.map((p) => p.payload.length);
    expect(sizes.slice(0, -1).filter((n) => n !== 360 * 4)).toEqual([]);
    // paced, not burst: the packets arrive over about the audio's duration (generous bounds: shared machine)
    const span = rx.rtp[rx.rtp.length - 1]!.at - rx.rtp[0]!.at;
    expect(span).toBeGreaterThan(700);
    expect(rx.rtp[0]!.at - t0).toBeLessThan(500);
  });

  it('flush at pause takes back what the thread had not sent: sequence +1 per packet sent across the pause', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4 * 2, 2); // 2 s
    const hst = host(h, pcm);
    hst.fill();
    await sleep(500);
    const dropped = hst.pause();
    expect(dropped).toBeGreaterThan(0); // the ring and the thread's queue held frames
    await sleep(200);
    const before = rx.rtp.length;
    await sleep(300);
    expect(rx.rtp.length).toBe(before); // nothing is sent while paused
    hst.resume();
    await until(hst.done);
    await rx.settle();
    // the host played the dropped frames again: the payload is the whole source exactly once, in order
    checkStream(rx, pcm, [0, before]);
    // the timestamp moved on by the pause (about 500 ms)
    const gap = ((rx.rtp[before]!.ts - rx.rtp[before - 1]!.ts) >>> 0) / 44100;
    expect(gap).toBeGreaterThan(0.3);
  });

  it('adds and removes recipients at run time on the native path', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    const rx2 = await Receiver.open();
    cleanups.push(() => (rx.close(), rx2.close()));
    const h = await setup({ port: rx.port });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4 * 2, 3);
    const hst = host(h, pcm);
    hst.fill();
    await sleep(300);
    const added = (await h.backend.commands['add-recipient']!({
      type: 'rtp.add-recipient',
      address: '127.0.0.1',
      port: rx2.port,
    })) as { recipients: unknown[] };
    expect(added.recipients).toHaveLength(2);
    await sleep(600);
    const removed = (await h.backend.commands['remove-recipient']!({
      type: 'rtp.remove-recipient',
      address: '127.0.0.1',
      port: rx2.port,
    })) as { recipients: unknown[] };
    expect(removed.recipients).toEqual([{ address: '127.0.0.1', port: rx.port }]);
    const n2 = rx2.rtp.length;
    expect(n2).toBeGreaterThan(10);
    await until(hst.done);
    await rx.settle();
    expect(rx2.rtp.length).toBeLessThanOrEqual(n2 + 1); // at most a send in progress at the removal
    checkStream(rx, pcm, [0]);
    // rx2 got a contiguous middle part of the same stream
    const first = rx.rtp.findIndex((p) => p.seq === rx2.rtp[0]!.seq);
    expect(first).toBeGreaterThan(0);
    for (let i = 0; i < rx2.rtp.length; i++) expect(rx2.rtp[i]!.payload.equals(rx.rtp[first + i]!.payload)).toBe(true);
  });

  it('reports ECONNREFUSED from the thread (backend lost, rate-limited warning) and keeps pacing', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    // a port pair nobody listens on (the receiver's + 2 was free a moment ago, or someone else's: still no RTP)
    const h = await setup({ port: rx.port, mode: 'request' });
    const dead = await Receiver.open();
    const deadPort = dead.port;
    dead.close();
    await h.backend.commands['add-recipient']!({ type: 'rtp.add-recipient', address: '127.0.0.1', port: deadPort });
    await h.backend.commands['add-recipient']!({ type: 'rtp.add-recipient', address: '127.0.0.1', port: rx.port });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4, 4);
    const hst = host(h, pcm);
    hst.fill();
    await until(hst.done);
    await rx.settle();
    expect(h.events.states[0]).toMatchObject({ state: 'lost' });
    expect(h.events.states[0]!.message).toContain('ECONNREFUSED');
    const warns = h.log.entries.filter((e) => e.level === 'warn' && e.fields.code === 'ECONNREFUSED');
    expect(warns.length).toBeGreaterThan(0);
    expect(warns.length).toBeLessThanOrEqual(5);
    expect(warns[0]!.fields.to).toBe(`127.0.0.1:${deadPort}`);
    // the live recipient got everything, paced (not burst, not stalled)
    checkStream(rx, pcm, [0]);
    expect(rx.rtp[rx.rtp.length - 1]!.at - rx.rtp[0]!.at).toBeGreaterThan(700);
  });

  it('close never hangs, with packets queued in the thread, and sends the BYE', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port });
    await h.backend.activate(h.format);
    host(h, pattern(44100 * 4 * 5, 5)).fill();
    await sleep(200);
    expect(h.backend.delay()).toBeGreaterThan(0);
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      h.backend.close().then(() => 'closed'),
      new Promise((r) => (timer = setTimeout(() => r('hung'), 3000))),
    ]);
    clearTimeout(timer);
    expect(result).toBe('closed');
    await h.backend.close(); // idempotent
    await rx.settle();
    const n = rx.rtp.length;
    await sleep(200);
    expect(rx.rtp.length).toBe(n); // the thread is gone
    const last = rx.rtcp[rx.rtcp.length - 1]!;
    expect(last.includes(Buffer.from('speakerd stopped'))).toBe(true);
    // the SR counted what was actually sent (SR octet 20: packet count)
    const sr = rx.rtcp.find((b) => b[1] === 200);
    if (sr) expect(sr.readUInt32BE(20)).toBeLessThanOrEqual(n);
  });

  it('rtp.native: false forces the JavaScript sender, and says why', async () => {
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port, native: false });
    expect(h.backend.sender).toEqual({ path: 'js', why: 'rtp.native is false' });
    expect(h.log.entries.find((e) => e.msg.startsWith('rtp sender'))).toMatchObject({
      level: 'info',
      msg: 'rtp sender: JavaScript timers (rtp.native is false)',
    });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 2, 6);
    const hst = host(h, pcm);
    hst.fill();
    await until(hst.done);
    await rx.settle();
    checkStream(rx, pcm, [0]);
  });

  it('a virtual clock always gets the JavaScript sender', async () => {
    const h = await makeBackend({});
    cleanups.push(async () => {
      await h.backend.close();
      h.cleanup();
    });
    expect(h.backend.sender.path).toBe('js');
    expect(h.backend.sender.why).toMatch(/clock/);
  });
});
