// The native clock-out path (native/rtp_sender.cc) on the real clock and real UDP on 127.0.0.1. Skipped, with
// the reason printed, when the addon is not built. No timed performance assertions: pacing is in the benchmark.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RealClock, bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';
import { FLUSHED, NATIVE_ERRORS, loadNative } from '../src/native.js';
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

async function setup(raw: Record<string, unknown>, configure = true): Promise<Harness> {
  const h = await makeBackend(raw, CD, undefined, new RealClock() as unknown as never, { configure });
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
  const writeAll = () => {
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
  // like the host, fill on every tick, with or without frames, and end every fill: on the native path that is
  // the batch
  const fill = () => {
    writeAll();
    h.backend.endFill();
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
    // RTP send failures (an RTCP failure is logged on its own, with `what`, and is no loss of the output)
    const warns = h.log.entries.filter(
      (e) => e.level === 'warn' && e.fields.code === 'ECONNREFUSED' && e.fields.what === undefined,
    );
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
    // the last compound packet is SR + SDES + BYE (it sent within the last two intervals), and the SR counts
    // exactly what was sent (SR octet 20: sender's packet count), the packets the thread still held not among them
    expect(last[1], 'the BYE packet opens with a sender report').toBe(200);
    expect(last[0]! >> 6, 'RTP version 2').toBe(2);
    expect(last.readUInt32BE(4), "the SR's SSRC is the stream's").toBe(rx.rtp[0]!.ssrc);
    expect(last.readUInt32BE(20)).toBe(n);
    // octet count: the payload bytes of the packets sent (header excluded, RFC 3550 6.4.1)
    expect(last.readUInt32BE(24)).toBe(rx.rtp.reduce((a, p) => a + p.payload.length, 0));
    // its RTP timestamp lies at or after the last packet's (it is taken when the report is built)
    expect((last.readUInt32BE(16) - rx.rtp[n - 1]!.ts) >>> 0).toBeLessThan(44100);
  });

  it('rtp.native: false forces the JavaScript sender, and says why', async () => {
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    // a 200 ms lead (the JS sender's ring holds lead + 4 packets): a busy machine's stalls do not run it dry
    const h = await setup({ port: rx.port, native: false, leadMs: 200 });
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

/** The host's s16le → s16be conversion (the negotiated format): every sample's two bytes swapped. */
function swap16(b: Uint8Array): Buffer {
  return Buffer.from(b).swap16();
}

/** A small seeded generator (xorshift32) for chunk sizes and pauses: failures reproduce. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const allZero = (b: Buffer): boolean => b.every((x) => x === 0);

describe('rtp native sender: queries are queries, endFill() is the hand-over', () => {
  it('writable(), delay() and write() hand the thread nothing: packets go out only after endFill()', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4, 11); // 1 s
    // a fill the host has not ended yet: 0.5 s in chunks, as writable() allows
    const room = h.backend.writable();
    let off = 0;
    while (off < 22050) off += h.backend.write(pcm.subarray(off * 4, Math.min(off + 4096, 22050) * 4));
    for (let i = 0; i < 1000; i++) {
      expect(h.backend.writable()).toBe(room - off);
      expect(h.backend.delay()).toBe(off);
    }
    await sleep(300); // far past the first packet's deadline (50 ms after the first write)
    expect(rx.rtp).toHaveLength(0);
    expect(h.backend.delay()).toBe(off); // all of it still in the ring: nothing reached the thread
    h.backend.endFill();
    await until(() => rx.rtp.length > 0);
    const hst = host(h, pcm.subarray(off * 4));
    hst.fill();
    await until(hst.done);
    await rx.settle();
    checkStream(rx, pcm, [0]);
  });

  it('negotiate() while streaming leaves the thread, the payload and the SDP file alone', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port, sdp: 'stream.sdp' });
    const file = join(h.dir, 'stream.sdp');
    const sdp = readFileSync(file, 'utf8');
    expect(sdp).toContain('a=rtpmap:10 L16/44100/2');
    rmSync(file); // whatever writes it from now on makes it appear again
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4, 12); // 1 s
    const hst = host(h, pcm);
    hst.fill();
    await sleep(300);
    const other: SampleFormat = { encoding: 's24le', rate: 48000, channels: 2 };
    for (let i = 0; i < 1000; i++) {
      expect(h.backend.negotiate(CD)).toEqual(h.format);
      expect(h.backend.negotiate(other)).toEqual({ encoding: 's24be', rate: 48000, channels: 2 });
    }
    expect(h.backend.packetInfo).toMatchObject({ frames: 360, payloadType: 10, encodingName: 'L16' });
    expect(h.backend.sdp).toBe(sdp);
    expect(existsSync(file)).toBe(false);
    expect(h.backend.delay()).toBeGreaterThan(0); // the thread still holds its batch (a reconfigure drops it)
    await until(hst.done);
    await rx.settle();
    // nothing was dropped or re-timed: the whole source, once, in one talkspurt
    checkStream(rx, pcm, [0]);
    expect(existsSync(file)).toBe(false);
  });

  it('negotiate() alone writes no SDP file and sends nothing; configure() writes it', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port, sdp: 'stream.sdp' }, false);
    const file = join(h.dir, 'stream.sdp');
    for (let i = 0; i < 100; i++)
      expect(h.backend.negotiate(CD)).toEqual({ encoding: 's16be', rate: 44100, channels: 2 });
    expect(existsSync(file)).toBe(false);
    expect(h.backend.sdp).toBeUndefined();
    expect(h.backend.packetInfo).toBeUndefined();
    await h.backend.configure(h.format);
    expect(readFileSync(file, 'utf8')).toContain(`m=audio ${rx.port} RTP/AVP 10\r\n`);
    expect(h.backend.packetInfo).toMatchObject({ frames: 360, payloadType: 10 });
    await sleep(100);
    expect(rx.rtp).toHaveLength(0);
  });

  it('pauseMode "silence": every fill\'s endFill() keeps silence going while paused; no marker on resume', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port, pauseMode: 'silence' });
    await h.backend.activate(h.format);
    const pcm = pattern(44100 * 4, 13); // 1 s
    const hst = host(h, pcm);
    hst.fill();
    await sleep(400);
    hst.pause();
    expect(h.backend.writable()).toBe(0);
    await sleep(1500); // longer than one batch (1000 + 20 + 100 ms ahead): only endFill() can keep it going
    hst.resume();
    await until(hst.done);
    await rx.settle();
    const p = rx.rtp;
    for (let i = 1; i < p.length; i++) {
      expect(p[i]!.seq).toBe((p[i - 1]!.seq + 1) & 0xffff);
      expect((p[i]!.ts - p[i - 1]!.ts) >>> 0).toBe(p[i - 1]!.payload.length / 4);
    }
    expect(p.filter((x) => x.marker).map((x) => p.indexOf(x))).toEqual([0]);
    const silent = p.filter((x) => allZero(x.payload));
    expect((silent.length * 360) / 44100).toBeGreaterThan(1.2); // about the 1.5 s of pause
    expect(Buffer.concat(p.filter((x) => !allZero(x.payload)).map((x) => x.payload)).equals(wire(pcm))).toBe(true);
  });

  it('stays gapless across tracks written in irregular chunks and fills: one marker, +1 sequence, timestamps +frames', async () => {
    if (!haveNative()) return;
    const rx = await Receiver.open();
    cleanups.push(() => rx.close());
    const h = await setup({ port: rx.port });
    await h.backend.activate(h.format);
    // three tracks (s16le from the decoders) whose ends fall inside packets (360 frames each)
    const lengths = [39_700 + 7, 26_460 + 123, 48_510 + 301];
    const input = lengths.map((n, i) => pattern(n * 4, 20 + i));
    const tracks = input.map(swap16); // what the host writes: the negotiated s16be
    const rnd = rng(42);
    const target = Math.round(0.4 * 44100); // kept queued ahead: every pause below is shorter (at most 120 ms)
    let track = 0;
    let off = 0;
    let fills = 0;
    let joinedInFill = 0;
    let joinedAcrossFills = 0;
    while (track < tracks.length) {
      let budget = Math.max(0, target - h.backend.delay()) + rnd(4000);
      let room = h.backend.writable();
      while (budget > 0 && room > 0 && track < tracks.length) {
        const n = Math.min(1 + rnd(4096), lengths[track]! - off, budget, room);
        const took = h.backend.write(tracks[track]!.subarray(off * 4, (off + n) * 4));
        if (took === 0) break;
        off += took;
        budget -= took;
        room -= took;
        if (off === lengths[track]) {
          track++;
          off = 0;
          if (track === tracks.length) break;
          // the next track right behind in this fill, or in the next fill shortly after
          if (rnd(2) === 0) {
            joinedAcrossFills++;
            break;
          }
          joinedInFill++;
        }
      }
      h.backend.endFill();
      fills++;
      await sleep(5 + rnd(116));
    }
    expect(joinedInFill + joinedAcrossFills).toBe(2);
    // the host keeps ending fills while the queue plays out; the last short packet leaves from the hold timer
    const tick = setInterval(() => h.backend.endFill(), 100);
    cleanups.push(() => clearInterval(tick));
    await until(() => h.backend.delay() === 0);
    await rx.settle();
    checkStream(rx, swap16(Buffer.concat(input)), [0]);
    // whole packets all along: a track's end and the next one's start share a packet; only the very last is short
    const sizes = rx.rtp.map((x) => x.payload.length);
    expect(sizes.slice(0, -1).filter((n) => n !== 360 * 4)).toEqual([]);
    const total = lengths.reduce((a, b) => a + b, 0);
    expect(sizes[sizes.length - 1]).toBe((total % 360) * 4);
    expect(fills).toBeGreaterThan(10);
  });
});

describe('native sender entry points', () => {
  it('addRecipient on a closed sender refuses (ECLOSED) and leaves no socket open', () => {
    const { binding } = loadNative();
    if (!haveNative() || !binding) return;
    const sender = new binding.Sender(() => {}, false);
    sender.close();
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    let code: unknown;
    for (let i = 0; i < 20; i++) {
      try {
        sender.addRecipient('127.0.0.1', 9, 0, 1, false, '', 'x');
      } catch (err) {
        code = (err as { code?: unknown }).code;
      }
    }
    expect(code).toBe('ECLOSED');
    expect(fds()).toBe(before);
  });

  it('every entry point checks its arguments: a coded TypeError or RangeError, never a crash or a silent 0', () => {
    const { binding } = loadNative();
    if (!haveNative() || !binding) return;
    type Loose = Record<string, (...a: unknown[]) => unknown>;
    const thrown = (f: () => unknown): { name: string; code: unknown; message: string } => {
      try {
        f();
      } catch (err) {
        const e = err as Error & { code?: unknown };
        return { name: e.name, code: e.code, message: e.message };
      }
      return { name: 'none', code: undefined, message: '' };
    };
    const type = (message: RegExp) => ({
      name: 'TypeError',
      code: NATIVE_ERRORS.argument,
      message: expect.stringMatching(message),
    });
    const range = (message: RegExp) => ({
      name: 'RangeError',
      code: NATIVE_ERRORS.range,
      message: expect.stringMatching(message),
    });
    const Ctor = binding.Sender as unknown as new (...a: unknown[]) => unknown;
    expect(thrown(() => new Ctor())).toEqual(type(/^Sender\(onError, realtime\): expected 2 arguments, got 0$/));
    expect(thrown(() => new Ctor('x', false))).toEqual(type(/argument 1 must be a function, got a string/));
    expect(thrown(() => new Ctor(() => {}, 1))).toEqual(type(/argument 2 must be a boolean, got a number/));
    const sender = new binding.Sender(() => {}, false);
    cleanups.push(() => sender.close());
    const s = sender as unknown as Loose;
    const call = (name: string, ...a: unknown[]) => thrown(() => s[name]!.call(sender, ...a));
    expect(call('configure', 4)).toEqual(type(/^configure\(slots, slotBytes\): expected 2 arguments, got 1$/));
    expect(call('configure', '4', 100)).toEqual(type(/argument 1 must be an integer, got a string/));
    expect(call('configure', 0, 100)).toEqual(range(/argument 1 must be an integer in 1\.\.65536, got 0/));
    expect(call('configure', 4, 1.5)).toEqual(range(/argument 2 must be an integer in 12\.\.65535/));
    expect(call('addRecipient', '127.0.0.1', 9, 0, 1)).toEqual(type(/expected 5\.\.7 arguments, got 4/));
    expect(call('addRecipient', 127, 9, 0, 1, false)).toEqual(type(/argument 1 must be a string, got a number/));
    expect(call('addRecipient', '127.0.0.1', 70000, 0, 1, false)).toEqual(
      range(/argument 2 must be an integer in 1\.\.65535/),
    );
    expect(call('addRecipient', '127.0.0.1', 9, 3, 1, false)).toEqual(range(/argument 3 must be an integer in 0\.\.2/));
    expect(call('addRecipient', '127.0.0.1', 9, 0, 256, false)).toEqual(
      range(/argument 4 must be an integer in 0\.\.255/),
    );
    expect(call('addRecipient', '127.0.0.1', 9, 0, 1, 1)).toEqual(type(/argument 5 must be a boolean/));
    expect(call('addRecipient', '127.0.0.1', 9, 0, 1, false, 7)).toEqual(type(/argument 6 must be a string/));
    expect(call('removeRecipient')).toEqual(type(/^removeRecipient\(id\): expected 1 argument, got 0$/));
    expect(call('removeRecipient', -1)).toEqual(range(/argument 1 must be an integer in 0\.\./));
    const u8 = new Uint8Array(64);
    const meta = new Float64Array(12);
    expect(call('enqueue', u8, u8, meta, 0)).toEqual(type(/expected 5 arguments, got 4/));
    expect(call('enqueue', u8, u8, new Uint8Array(8), 0, 1)).toEqual(
      type(/argument 3 must be a Float64Array, got another typed array/),
    );
    expect(call('enqueue', [], u8, meta, 0, 1)).toEqual(type(/argument 1 must be a Uint8Array, got an object/));
    expect(call('enqueue', u8, u8, meta, -1, 1)).toEqual(range(/argument 4 must be an integer/));
    expect(call('flush')).toEqual(type(/^flush\(out\): expected 1 argument, got 0$/));
    expect(call('flush', new Float64Array(3))).toEqual(range(/argument 1 must have at least 4 elements, got 3/));
    expect(call('stats', new Float64Array(8))).toEqual(range(/argument 1 must have at least 9 elements, got 8/));
    expect(call('stats', null)).toEqual(type(/argument 1 must be a Float64Array, got null/));
    expect(call('realtime', 1)).toEqual(type(/^realtime\(\): expected 0 arguments, got 1$/));
    expect(call('close', 1)).toEqual(type(/^close\(\): expected 0 arguments, got 1$/));
    // and the well-formed calls work
    expect(call('configure', 4, 100).name).toBe('none');
    expect(sender.flush(new Float64Array(FLUSHED.length))).toBe(0);
    expect(sender.removeRecipient(12345)).toBe(false);
  });
});

describe('payload copies per packet (the ring holds the only copy between the host and the wire)', () => {
  for (const native of [false, true])
    it(`${native ? 'native thread' : 'JS timers'}: each payload byte is copied twice, into the ring and out of it once`, async () => {
      if (native && !haveNative()) return;
      const rx = await Receiver.open();
      cleanups.push(() => rx.close());
      const h = await setup({ port: rx.port, native });
      expect(h.backend.sender.path).toBe(native ? 'native' : 'js');
      await h.backend.activate(h.format);
      const pcm = pattern(44100 * 4, 7); // 1 s in 4096-frame chunks
      const hst = host(h, pcm);
      hst.fill();
      await until(hst.done);
      await rx.settle();
      checkStream(rx, pcm, [0]);
      const sent = rx.rtp.reduce((n, p) => n + p.payload.length, 0);
      expect(sent).toBe(pcm.length);
      const c = h.backend.copies;
      // in: the host's write; out of the ring by exactly one of the two (JS into its packet, or the thread into
      // its slot, straight from the ring: no stage in between)
      expect(c).toEqual(native ? { in: sent, out: 0, thread: sent } : { in: sent, out: sent, thread: 0 });
      expect(c.in + c.out + c.thread).toBe(2 * sent);
    });
});
