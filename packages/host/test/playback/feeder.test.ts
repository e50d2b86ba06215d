// Feeder: one fill of the backend (start rule, silence rule, short writes, underruns, volume, per-track formats),
// with a hand-written backend whose room and queue the test sets, through a real BackendDriver.
import { describe, expect, it, vi } from 'vitest';
import { VirtualClock, formatToString, type Backend, type Pacing, type SampleFormat } from '@speakerd/plugin-sdk';
import { MemoryLogger } from '@speakerd/plugin-sdk/testing';
import * as convert from '../../src/convert/index.js';
import { Feeder, MAX_WRITES_PER_FILL, type FillContext } from '../../src/playback/feeder.js';
import { OutputLedger } from '../../src/playback/ledger.js';
import { TrackQueue } from '../../src/playback/queue.js';
import { Track } from '../../src/playback/track.js';
import { F, FB, K, fedTrack, makeDriver, pcm, ramp, settle } from './helpers.js';

// count the work of software volume (the real function runs)
vi.mock('../../src/convert/index.js', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../src/convert/index.js')>();
  return { ...mod, applyVolume: vi.fn(mod.applyVolume) };
});
const applyVolume = vi.mocked(convert.applyVolume);

const G16: SampleFormat = { encoding: 's16le', rate: 16000, channels: 1 };
const GUARD = 10 * K; // silenceGuardMs 10
const STEP = 10 * K; // silenceStepMs 10

/** A backend with a set room (writable) and queue (delay), taking at most `perCall` frames per write. */
class Sink implements Backend {
  room = 100_000;
  queued = 0;
  perCall = Infinity;
  offered: number[] = [];
  out: Uint8Array[] = [];
  want: ((f: SampleFormat) => SampleFormat | undefined) | undefined;
  constructor(readonly pacing: Pacing = 'clock') {}
  async activate() {}
  writable() {
    return this.room;
  }
  write(d: Uint8Array) {
    const frames = d.length / FB;
    this.offered.push(frames);
    const n = Math.min(frames, this.perCall, this.room);
    this.out.push(Uint8Array.from(d.subarray(0, n * FB)));
    this.room -= n;
    this.queued += n;
    return n;
  }
  delay() {
    return this.queued;
  }
  formatFor(f: SampleFormat) {
    return this.want?.(f);
  }
  async close() {}
  bytes(): Buffer {
    return Buffer.concat(this.out);
  }
  samples(): Int16Array {
    const b = this.bytes();
    return new Int16Array(b.buffer, b.byteOffset, b.length / 2);
  }
}

class HardwareVolumeSink extends Sink {
  setVolume() {}
}

async function setup(opts: { sink?: Sink; keepBytes?: boolean } = {}) {
  const sink = opts.sink ?? new Sink();
  const log = new MemoryLogger();
  const { driver, reports } = makeDriver(sink, new VirtualClock(), { log });
  expect(await driver.activate(F)).toBe(true);
  await settle();
  const queue = new TrackQueue();
  const ledger = new OutputLedger(opts.keepBytes ?? false, FB);
  const feeder = new Feeder({ startThresholdMs: 50, silenceGuardMs: 10, silenceStepMs: 10 }, log);
  const fill = (over: Partial<FillContext> = {}) =>
    feeder.fill({
      queue,
      driver,
      ledger,
      format: F,
      baseFormat: F,
      paused: false,
      holdBoundary: false,
      refused: new Set(),
      volume: 100,
      ...over,
    });
  const play = (t: Track) => {
    queue.add(t);
    expect(typeof queue.play(t.id, () => t)).toBe('string');
    return t;
  };
  return { sink, log, driver, reports, queue, ledger, feeder, fill, play };
}

const zeros = (a: Int16Array) => a.every((v) => v === 0);
const all = (a: Int16Array, v: number) => a.length > 0 && a.every((x) => x === v);

describe('when a source starts', () => {
  it('only once startThresholdMs is buffered, at the frame of the stream where it begins', async () => {
    const { sink, ledger, fill, play } = await setup();
    const t = play(fedTrack('a', pcm(40 * K, 3), false));
    const r1 = fill();
    expect(t.started).toBe(false);
    expect(r1.starved).toBe(t);
    expect(r1.silence).toBe(GUARD + STEP); // silence while it is not ready (clock-paced, nothing held)
    expect(t.underruns).toBe(0); // not an underrun: it had not started
    t.pushInput(pcm(10 * K, 3)); // 50 ms now
    const r2 = fill();
    expect(t.started).toBe(true);
    expect(t.startFrame).toBe(GUARD + STEP);
    expect(r2.frames).toBe(50 * K);
    expect(r2.silence).toBe(0); // runs dry now, but the backend holds more than the guard
    expect(ledger.total).toBe(GUARD + STEP + 50 * K);
    const out = sink.samples();
    expect(zeros(out.subarray(0, GUARD + STEP))).toBe(true);
    expect(all(out.subarray(GUARD + STEP), 3)).toBe(true);
    expect(t.handed).toBe(50 * K);
  });

  it('a track whose input has ended starts however little it holds', async () => {
    const { fill, play } = await setup();
    const t = play(fedTrack('a', pcm(5 * K, 1)));
    const r = fill();
    expect(t.started).toBe(true);
    expect(r.frames).toBe(5 * K);
    expect(t.exhausted).toBe(true);
  });

  it('the next track starts at the exact frame after the current one ends, in the same fill', async () => {
    const { sink, queue, fill, play } = await setup();
    const a = play(fedTrack('a', pcm(30 * K, 1)));
    const b = play(fedTrack('b', pcm(20 * K, 2)));
    expect(queue.next).toBe(b);
    const r = fill();
    expect(r).toMatchObject({ frames: 50 * K, silence: 0, starved: undefined, switchTo: undefined, capped: false });
    expect(a.startFrame).toBe(0);
    expect(b.startFrame).toBe(30 * K);
    const out = sink.samples();
    expect(all(out.subarray(0, 30 * K), 1)).toBe(true);
    expect(all(out.subarray(30 * K), 2)).toBe(true);
  });

  it('a next track not ready yet waits; no silence goes in between while the backend holds audio', async () => {
    const { sink, fill, play } = await setup();
    play(fedTrack('a', pcm(30 * K, 1)));
    const b = play(fedTrack('b', pcm(10 * K, 2), false));
    const r = fill();
    expect(r.frames).toBe(30 * K);
    expect(r.starved).toBe(b);
    expect(r.silence).toBe(0);
    expect(b.started).toBe(false);
    expect(sink.samples().length).toBe(30 * K);
  });

  it('holdBoundary: a track under way goes on, no new track starts', async () => {
    const { sink, fill, play } = await setup();
    const a = play(fedTrack('a', pcm(30 * K, 1)));
    const b = play(fedTrack('b', pcm(20 * K, 2)));
    sink.room = 10 * K;
    fill();
    sink.room = 100_000;
    const r = fill({ holdBoundary: true });
    expect(r.frames).toBe(20 * K);
    expect(a.exhausted).toBe(true);
    expect(b.started).toBe(false);
    const c = await setup();
    const d = c.play(fedTrack('d', pcm(30 * K, 1)));
    expect(c.fill({ holdBoundary: true }).frames).toBe(0);
    expect(d.started).toBe(false);
  });

  it('paused: a track reported finished still plays out; the current one is held, with no silence', async () => {
    const { sink, queue, fill, play } = await setup();
    const a = play(fedTrack('a', pcm(30 * K, 1)));
    const b = play(fedTrack('b', pcm(20 * K, 2)));
    sink.room = 10 * K;
    fill();
    expect(a.handed).toBe(10 * K);
    queue.finish(a, true); // reported finished, 20 ms still to go out
    queue.promote();
    sink.room = 100_000;
    sink.queued = 0;
    const r = fill({ paused: true });
    expect(r.frames).toBe(20 * K);
    expect(r.silence).toBe(0);
    expect(a.exhausted).toBe(true);
    expect(b.started).toBe(false);
    sink.queued = 0;
    expect(fill({ paused: true })).toMatchObject({ frames: 0, silence: 0 });
    expect(all(sink.samples(), 1)).toBe(true);
  });
});

describe('silence on a clock-paced backend', () => {
  it('only when what the backend holds is below the guard, and then up to guard + step', async () => {
    const { sink, fill, play } = await setup();
    const w = play(new Track('w', 'waiting', 60_000)); // played, no decoder yet
    sink.queued = GUARD;
    expect(fill()).toMatchObject({ frames: 0, silence: 0, starved: w });
    sink.queued = GUARD - 1;
    const r = fill();
    expect(r.silence).toBe(STEP + 1);
    expect(r.frames).toBe(STEP + 1);
    expect(sink.queued).toBe(GUARD + STEP);
    expect(zeros(sink.samples())).toBe(true);
    sink.queued = 0;
    expect(fill().silence).toBe(GUARD + STEP);
  });

  it('no more silence than the backend has room for', async () => {
    const { sink, ledger, fill, play } = await setup();
    play(new Track('w', 'waiting', 60_000));
    sink.room = 50;
    expect(fill().silence).toBe(50);
    expect(ledger.total).toBe(50);
    expect(ledger.unheard).toBe(50);
  });

  it('none on a device-paced backend', async () => {
    const { sink, fill, play } = await setup({ sink: new Sink('device') });
    const w = play(new Track('w', 'waiting', 60_000));
    expect(fill()).toMatchObject({ frames: 0, silence: 0, starved: w });
    w.setInput(F, { pause() {}, resume() {}, destroy() {} });
    w.pushInput(pcm(60 * K, 1));
    expect(fill().frames).toBe(60 * K);
    sink.queued = 0; // the device ran dry: still no silence from the host
    expect(fill()).toMatchObject({ frames: 0, silence: 0, starved: w });
    expect(w.underruns).toBe(0);
  });
});

describe('underruns', () => {
  it('a started track that runs dry with the backend below the guard counts one underrun per episode, logs once', async () => {
    const { sink, log, fill, play } = await setup();
    const t = play(fedTrack('s', pcm(60 * K, 5), false));
    expect(fill().frames).toBe(60 * K);
    // dry, but the backend still holds plenty: no silence, no underrun
    expect(fill()).toMatchObject({ frames: 0, silence: 0, starved: t });
    expect(t.underruns).toBe(0);
    // what it held has played out
    sink.queued = GUARD / 2;
    const r1 = fill();
    expect(r1.silence).toBe(GUARD + STEP - GUARD / 2);
    expect(t.underruns).toBe(1);
    expect(t.silenceFrames).toBe(r1.silence);
    sink.queued = 0;
    const r2 = fill(); // the same episode
    expect(t.underruns).toBe(1);
    expect(t.silenceFrames).toBe(r1.silence + r2.silence);
    // audio comes, is written; then it runs dry again: a second episode, not logged again
    t.pushInput(pcm(20 * K, 6));
    expect(fill().frames).toBe(20 * K);
    expect(t.inUnderrun).toBe(false);
    sink.queued = 0;
    fill();
    expect(t.underruns).toBe(2);
    expect(log.entries.filter((e) => e.level === 'warn' && /ran dry while playing/.test(e.msg))).toHaveLength(1);
  });
});

describe('short writes', () => {
  for (const k of [1, 4, 16]) {
    it(`a backend taking ${k} frame(s) per call is offered the rest at once, within the same fill`, async () => {
      const { sink, fill, play } = await setup();
      const input = ramp(100);
      play(fedTrack('a', input));
      sink.perCall = k;
      const r = fill();
      expect(r).toMatchObject({ frames: 100, capped: false, starved: undefined });
      const calls = Math.ceil(100 / k);
      expect(sink.offered).toEqual(Array.from({ length: calls }, (_, i) => 100 - i * k));
      expect(Buffer.compare(sink.bytes(), input)).toBe(0);
    });
  }

  it(`stops at MAX_WRITES_PER_FILL calls (capped, warned once); the next fill goes on exactly`, async () => {
    const { sink, log, fill, play } = await setup();
    const input = ramp(MAX_WRITES_PER_FILL + 1000);
    play(fedTrack('a', input));
    sink.perCall = 1;
    const r1 = fill();
    expect(sink.offered).toHaveLength(MAX_WRITES_PER_FILL);
    expect(r1.capped).toBe(true);
    expect(r1.frames).toBe(MAX_WRITES_PER_FILL);
    const r2 = fill();
    expect(r2.capped).toBe(false);
    expect(r2.frames).toBe(1000);
    expect(Buffer.compare(sink.bytes(), input)).toBe(0);
    expect(log.count(/write\(\) takes very few frames per call/)).toBe(1);
  });

  it('a backend that takes nothing ends the fill: nothing is lost, it is offered again next time', async () => {
    const { sink, fill, play } = await setup();
    const input = ramp(100);
    const a = play(fedTrack('a', input));
    sink.perCall = 0;
    expect(fill().frames).toBe(0);
    expect(sink.offered).toEqual([100]);
    expect(a.handed).toBe(0);
    sink.perCall = Infinity;
    expect(fill().frames).toBe(100);
    expect(Buffer.compare(sink.bytes(), input)).toBe(0);
  });
});

describe('software volume', () => {
  it('is applied to a copy: the track’s bytes are unchanged and the ledger keeps them as they were', async () => {
    const { sink, ledger, fill, play } = await setup({ keepBytes: true });
    const t = new Track('v', 'connected', 60_000);
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    const input = pcm(100, 8000);
    t.pushInput(input);
    t.endInput();
    play(t);
    fill({ volume: 50 });
    // (50/100)^3 = 0.125: 8000 → 1000
    expect(all(sink.samples(), 1000)).toBe(true);
    expect(sink.samples().length).toBe(100);
    expect(Buffer.compare(input, pcm(100, 8000))).toBe(0);
    // what the ledger gives back (after a flush) is the pre-volume audio
    ledger.rewind(100);
    expect(t.handed).toBe(0);
    const back = t.read(100)!;
    expect(Buffer.compare(Buffer.from(back), pcm(100, 8000))).toBe(0);
  });

  it('is applied once per chunk even with short writes: the output is scaled exactly once', async () => {
    const { sink, fill, play } = await setup();
    const input = ramp(100, 20_000);
    const expected = Uint8Array.from(input);
    applyVolume(expected, F, 70);
    applyVolume.mockClear();
    play(fedTrack('a', input));
    sink.perCall = 4;
    const r = fill({ volume: 70 });
    expect(r.frames).toBe(100);
    expect(sink.offered).toHaveLength(25);
    expect(Buffer.compare(sink.bytes(), expected)).toBe(0);
    expect(applyVolume).toHaveBeenCalledTimes(1);
  });

  it('is not applied at 100 (bit-exact) nor when the backend has a hardware mixer', async () => {
    const { sink, fill, play } = await setup({ sink: new HardwareVolumeSink() });
    const input = ramp(100);
    applyVolume.mockClear();
    play(fedTrack('a', input));
    fill({ volume: 30 });
    expect(Buffer.compare(sink.bytes(), input)).toBe(0);
    expect(applyVolume).not.toHaveBeenCalled();

    const s2 = await setup();
    s2.play(fedTrack('b', input));
    s2.fill({ volume: 100 });
    expect(Buffer.compare(s2.sink.bytes(), input)).toBe(0);
    expect(applyVolume).not.toHaveBeenCalled();
  });
});

describe('per-track formats', () => {
  it('a source the backend wants in another format stops the fill with switchTo, after what plays before it', async () => {
    const { sink, fill, play } = await setup();
    sink.want = (f) => (f.rate === 16000 ? f : undefined);
    const a = play(fedTrack('a', pcm(30 * K, 1)));
    const b = play(fedTrack('b', Buffer.alloc(16 * 20 * 2, 0x11), true, G16));
    const r = fill();
    expect(r.switchTo).toEqual(G16);
    expect(r.frames).toBe(30 * K);
    expect(r.silence).toBe(0);
    expect(r.starved).toBeUndefined();
    expect(a.exhausted).toBe(true);
    expect(b.started).toBe(false);
    sink.queued = 0;
    expect(fill()).toMatchObject({ frames: 0, silence: 0, switchTo: G16 });
  });

  it('a format in `refused` is converted to the negotiated one instead, as is one formatFor leaves alone', async () => {
    for (const wantIt of [true, false]) {
      const { sink, fill, play } = await setup();
      sink.want = wantIt ? (f) => f : () => undefined;
      const b = play(fedTrack('b', Buffer.alloc(16 * 20 * 2), true, G16)); // 20 ms at 16 kHz
      const r = fill({ refused: new Set([formatToString(G16)]) });
      expect(r.switchTo).toBeUndefined();
      expect(b.started).toBe(true);
      // converted to 8 kHz: about 20 ms of output
      expect(Math.abs(b.handed - 20 * K)).toBeLessThanOrEqual(2);
      expect(sink.samples().length).toBe(b.handed);
    }
  });
});
