import { describe, expect, it } from 'vitest';
import {
  RealtimePacer,
  VirtualClock,
  bytesPerFrame,
  type Backend,
  type Clock,
  type Logger,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { Player, type PlayerEvent } from '../src/engine/player.js';
import { Track } from '../src/engine/track.js';

const K = 8; // frames per ms
const F: SampleFormat = { encoding: 's16le', rate: 1000 * K, channels: 1 };
const FB = bytesPerFrame(F);

const quiet: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  fatal: () => {},
  child: () => quiet,
};

/** A clock-paced backend that records what it is given and when (a test double for a pipe at real time). */
class RecordingBackend implements Backend {
  readonly pacing = 'clock' as const;
  pacer: RealtimePacer;
  writes: { at: number; bytes: Uint8Array }[] = [];
  constructor(
    readonly clock: VirtualClock,
    leadFrames = 20 * K,
  ) {
    this.pacer = new RealtimePacer(clock, F.rate, leadFrames);
  }
  async activate() {
    this.pacer.start();
  }
  writable() {
    return this.pacer.writable();
  }
  write(data: Uint8Array) {
    const frames = data.length / FB;
    this.writes.push({ at: this.clock.now(), bytes: Uint8Array.from(data) });
    this.pacer.wrote(frames);
    return frames;
  }
  delay() {
    return this.pacer.queued();
  }
  async idle() {
    this.pacer.stop();
  }
  async close() {}
  output(): Int16Array {
    const all = Buffer.concat(this.writes.map((w) => w.bytes));
    return new Int16Array(all.buffer, all.byteOffset, all.length / 2);
  }
}

/** A device-paced backend that can take audio back (like ALSA's drop). */
class DeviceBackend extends RecordingBackend {
  override readonly pacing = 'clock' as const;
  dropped = 0;
  flush() {
    const q = this.pacer.queued();
    // remove the last q frames from the record and restart pacing
    let bytes = q * FB;
    while (bytes > 0 && this.writes.length) {
      const last = this.writes[this.writes.length - 1]!;
      if (last.bytes.length <= bytes) {
        this.writes.pop();
        bytes -= last.bytes.length;
      } else {
        last.bytes = last.bytes.subarray(0, last.bytes.length - bytes);
        bytes = 0;
      }
    }
    this.dropped += q;
    this.pacer.start();
    return q;
  }
  resume() {
    this.pacer.start();
  }
}

function pcm(frames: number, value: number): Buffer {
  const b = Buffer.alloc(frames * FB);
  for (let i = 0; i < frames; i++) b.writeInt16LE(value, i * FB);
  return b;
}

function setup(
  opts: {
    earlyFinishMs?: number;
    reportIntervalMs?: number;
    backend?: (c: VirtualClock) => RecordingBackend;
  } = {},
) {
  const clock = new VirtualClock();
  const backend = opts.backend ? opts.backend(clock) : new RecordingBackend(clock);
  const events: (PlayerEvent & { at: number })[] = [];
  /** The player's own timers: when each was armed for, and when each fired. */
  const timers = { armed: 0, fired: [] as number[] };
  const playerClock: Clock = {
    now: () => clock.now(),
    wallNow: () => clock.wallNow(),
    setTimeout: (fn, ms) => {
      timers.armed++;
      return clock.setTimeout(() => {
        timers.fired.push(clock.now());
        fn();
      }, ms);
    },
    clearTimeout: (h) => clock.clearTimeout(h),
  };
  const player = new Player(
    playerClock,
    quiet,
    (e) => events.push({ ...e, at: clock.now() }),
    () => {},
    { backend, format: F },
    {
      earlyFinishMs: opts.earlyFinishMs ?? 200,
      reportIntervalMs: opts.reportIntervalMs ?? 100,
      bufferMs: 60_000,
      startThresholdMs: 50,
      tickMs: 10,
      volume: 100,
    },
  );
  const track = (id: string, frames: number, value: number, eof = true) => {
    const t = new Track(id, 'connected', 60_000);
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    t.pushInput(pcm(frames, value));
    if (eof) t.endInput();
    player.tracks.set(id, t);
    return t;
  };
  const run = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      await Promise.resolve();
      await Promise.resolve();
      clock.advance(1);
    }
    await Promise.resolve();
  };
  return { clock, backend, events, player, track, run, timers };
}

describe('play loop on a virtual clock', () => {
  it('starts the next track at the exact frame after the current one ends', async () => {
    const { backend, player, track, run, events } = setup();
    track('a', 700 * K, 1);
    track('b', 500 * K, 2);
    player.play('a', () => undefined as never);
    player.play('b', () => undefined as never);
    await run(1500);
    const out = backend.output();
    expect(out.length).toBe(1200 * K);
    expect(Array.from(out.subarray(0, 700 * K)).every((v) => v === 1)).toBe(true);
    expect(Array.from(out.subarray(700 * K)).every((v) => v === 2)).toBe(true);
    expect(events.filter((e) => e.type === 'finished').map((e) => e.id)).toEqual(['a', 'b']);
    // b is announced playing after a is finished
    const order = events.filter((e) => e.type !== 'playing' || e.position === 0).map((e) => `${e.type}:${e.id}`);
    expect(order.indexOf('finished:a')).toBeLessThan(order.indexOf('playing:b'));
  });

  it('reports finished within earlyFinishMs of the end being audible, not before', async () => {
    const { player, track, run, events } = setup({ earlyFinishMs: 200 });
    track('a', 1000 * K, 1);
    player.play('a', () => undefined as never);
    await run(1500);
    const fin = events.find((e) => e.type === 'finished')!;
    // the end of a becomes audible at t = 1000 ms
    expect(fin.at).toBeGreaterThanOrEqual(800 - 1);
    expect(fin.at).toBeLessThanOrEqual(800 + 10);
    expect(events.filter((e) => e.id === 'a' && e.type === 'playing' && e.at > fin.at)).toEqual([]);
  });

  it('a next track shorter than earlyFinishMs is reported finished as soon as it becomes current', async () => {
    const { player, track, run, events } = setup({ earlyFinishMs: 200 });
    track('a', 500 * K, 1);
    track('short', 100 * K, 2);
    player.play('a', () => undefined as never);
    player.play('short', () => undefined as never);
    await run(1000);
    const fa = events.find((e) => e.type === 'finished' && e.id === 'a')!;
    const fs = events.find((e) => e.type === 'finished' && e.id === 'short')!;
    expect(fs.at).toBe(fa.at);
  });

  it('late pause: a pause after finished lets that track play out; the next track starts paused', async () => {
    const { backend, player, track, run, events } = setup({ earlyFinishMs: 200 });
    track('a', 500 * K, 1);
    track('b', 300 * K, 2);
    player.play('a', () => undefined as never);
    await run(350); // a is finished (reported at ~300 ms) but still playing
    expect(events.some((e) => e.type === 'finished' && e.id === 'a')).toBe(true);
    player.pause();
    player.play('b', () => undefined as never);
    await run(500);
    const out = backend.output();
    expect(out.length).toBe(500 * K); // all of a, none of b
    const pausedB = events.find((e) => e.type === 'paused' && e.id === 'b') as { position: number };
    expect(pausedB.position).toBe(0);
    player.resume();
    await run(600);
    const out2 = backend.output();
    expect(out2.length).toBe(800 * K);
    expect(Array.from(out2.subarray(500 * K)).every((v) => v === 2)).toBe(true);
  });

  it('pause on a backend that can take audio back replays it after resume; positions never decrease', async () => {
    const { backend, player, track, run, events } = setup({
      backend: (c) => new DeviceBackend(c, 50 * K),
    });
    const a = track('a', 1000 * K, 0);
    // a ramp, so that any lost or repeated frame shows
    a.discard();
    const t = new Track('a', 'connected', 60_000);
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    const ramp = Buffer.alloc(1000 * K * FB);
    for (let i = 0; i < 1000 * K; i++) ramp.writeInt16LE(i, i * FB);
    t.pushInput(ramp);
    t.endInput();
    player.tracks.set('a', t);
    player.play('a', () => undefined as never);
    await run(300);
    player.pause();
    const paused = events.find((e) => e.type === 'paused') as { position: number };
    expect((backend as DeviceBackend).dropped).toBeGreaterThan(0);
    await run(300);
    player.resume();
    await run(1500);
    const out = backend.output();
    expect(Array.from(out)).toEqual(Array.from({ length: 1000 * K }, (_, i) => i));
    expect(paused.position).toBeGreaterThan(0.2);
    const positions = events
      .filter((e) => e.type === 'playing' || e.type === 'paused')
      .map((e) => (e as { position: number }).position);
    for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThanOrEqual(positions[i - 1]!);
  });

  it('plays silence while a played track has no audio yet, then the track', async () => {
    const { backend, player, run, events } = setup();
    player.play('w', () => new Track('w', 'waiting', 60_000));
    await run(200);
    const silent = backend.output().length;
    expect(silent).toBeGreaterThan(150 * K);
    expect(Array.from(backend.output()).every((v) => v === 0)).toBe(true);
    expect(events.filter((e) => e.type === 'playing')).toEqual([]);
    const t = player.tracks.get('w')!;
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    t.pushInput(pcm(400 * K, 7));
    t.endInput();
    player.inputChanged(t);
    await run(700);
    const out = backend.output();
    expect(Array.from(out.subarray(out.length - 400 * K)).every((v) => v === 7)).toBe(true);
    expect(events.find((e) => e.type === 'playing')).toMatchObject({ id: 'w', position: 0 });
  });

  it('runs for a long simulated time without drift: frames handed out track the clock', async () => {
    const { backend, player, track, run } = setup({ earlyFinishMs: 0 });
    track('long', 60_000 * K, 3);
    player.play('long', () => undefined as never);
    await run(30_000);
    const n = backend.output().length;
    expect(n).toBeGreaterThanOrEqual(30_000 * K);
    expect(n).toBeLessThanOrEqual((30_000 + 20 + 10) * K);
  });
});

describe('wake-ups of the play loop', () => {
  /** Asks for a fill once a second, like the native RTP sender (1 s batches, lead to cover them). */
  class BatchBackend extends RecordingBackend {
    readonly tickMs = 1000;
    constructor(clock: VirtualClock) {
      super(clock, 1500 * K);
    }
  }

  it('a backend filled once a second and the one-second report share one wake-up', async () => {
    const { player, track, run, events, timers } = setup({
      reportIntervalMs: 1000,
      backend: (c) => new BatchBackend(c),
    });
    track('long', 40_000 * K, 3);
    player.play('long', () => undefined as never);
    await run(30_000);
    // one wake-up a second (plus the start): fills and reports never wake the loop separately
    const wakeups = new Set(timers.fired).size;
    expect(wakeups).toBeGreaterThanOrEqual(29);
    expect(wakeups).toBeLessThanOrEqual(32);
    const reports = events.filter((e) => e.type === 'playing').map((e) => e.at);
    expect(reports.length).toBeGreaterThanOrEqual(29);
    for (let i = 2; i < reports.length; i++) {
      const gap = reports[i]! - reports[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(980);
      expect(gap).toBeLessThanOrEqual(1021);
    }
    // positions keep up with the clock: the last report is within a second of the time played
    const last = events.filter((e) => e.type === 'playing').at(-1) as { position: number; at: number };
    expect(last.position).toBeGreaterThan(28);
  });

  it('fills the backend wakes for itself never re-arm the loop timer (no clear-and-set per fill)', async () => {
    class PacketBackend extends RecordingBackend {
      readonly tickMs = 300; // a fallback: the backend wakes the host itself
    }
    const { clock, player, track, run, timers } = setup({
      reportIntervalMs: 1000,
      backend: (c) => new PacketBackend(c),
    });
    // the backend wakes the host every 8 ms (one packet), like the JS RTP sender
    const wake = () => {
      player.kick();
      clock.setTimeout(wake, 8);
    };
    clock.setTimeout(wake, 8);
    track('long', 20_000 * K, 3);
    player.play('long', () => undefined as never);
    await run(10_000);
    // about 1250 fills; the loop's own timer is armed about once per tickMs and per report, not once per fill
    expect(timers.armed).toBeLessThanOrEqual(10_000 / 300 + 10_000 / 1000 + 5);
    expect(timers.armed).toBeGreaterThan(0);
  });
});

describe('per-track formats (formatFor)', () => {
  it('switches the backend between tracks once the first is audible, and plays the second unconverted', async () => {
    const G: SampleFormat = { encoding: 's16le', rate: 16000, channels: 1 };
    class Switching extends RecordingBackend {
      activations: SampleFormat[] = [];
      override async activate(format?: SampleFormat) {
        this.activations.push(format!);
        this.pacer = new RealtimePacer(this.clock, format!.rate, 160);
        this.pacer.start();
      }
      formatFor(track: SampleFormat) {
        return track.rate === 16000 ? track : undefined;
      }
    }
    const { backend, player, track, run } = setup({ backend: (c) => new Switching(c) });
    track('a', 300 * K, 1);
    const b = new Track('b', 'connected', 60_000);
    b.setInput(G, { pause() {}, resume() {}, destroy() {} });
    const bpcm = Buffer.alloc(16000 * 0.2 * 2);
    for (let i = 0; i < bpcm.length / 2; i++) bpcm.writeInt16LE(i % 1000, i * 2);
    b.pushInput(bpcm);
    b.endInput();
    player.tracks.set('b', b);
    player.play('a', () => undefined as never);
    player.play('b', () => undefined as never);
    await run(1000);
    const sw = backend as Switching;
    expect(sw.activations.map((f) => f.rate)).toEqual([8000, 16000]);
    const all = Buffer.concat(sw.writes.map((w) => w.bytes));
    expect(all.length).toBe(300 * K * 2 + bpcm.length);
    expect(Buffer.compare(all.subarray(300 * K * 2), bpcm)).toBe(0);
    // the switch waited until a was audible: no b bytes before a's last frame was due
    const firstB = sw.writes.find(
      (w, i) => i > 0 && Buffer.concat(sw.writes.slice(0, i).map((x) => x.bytes)).length >= 300 * K * 2,
    )!;
    expect(firstB.at).toBeGreaterThanOrEqual(300);
    expect(player.format).toEqual(G);
  });
});

describe('flush and replay of a resampled track', () => {
  it('a pause that takes back every frame handed out replays them with the converter state intact', async () => {
    const { createConverter } = await import('../src/convert/index.js');
    const IN: SampleFormat = { encoding: 's16le', rate: 11025, channels: 1 };
    const { backend, player, run, clock } = setup({ backend: (c) => new DeviceBackend(c, 50 * K) });
    const t = new Track('r', 'connected', 60_000);
    t.setInput(IN, { pause() {}, resume() {}, destroy() {} });
    const input = Buffer.alloc(5512 * 2);
    for (let i = 0; i < input.length / 2; i++) input.writeInt16LE(Math.round(8000 * Math.sin(i / 7)), i * 2);
    t.pushInput(input);
    t.endInput();
    player.tracks.set('r', t);
    player.play('r', () => undefined as never);
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the backend activates
    clock.advance(0); // the first lead goes out, with nothing audible yet
    expect(t.handed).toBeGreaterThan(0);
    player.pause(); // and is taken back whole
    expect((backend as DeviceBackend).dropped).toBeGreaterThan(0);
    expect(t.handed).toBe(0);
    player.resume();
    await run(1500);
    const c = createConverter(IN, F);
    const want = Buffer.concat([Buffer.from(c.convert(input)), Buffer.from(c.end())]);
    const got = Buffer.concat(backend.writes.map((w) => w.bytes));
    expect(got.length).toBe(want.length);
    expect(Buffer.compare(got, want)).toBe(0);
  });
});

describe('volume on a backend whose flush is seamless', () => {
  it('takes back what is queued unsent and rewrites it at the new volume: heard at once, nothing lost', async () => {
    class SendQueue extends DeviceBackend {
      readonly flushIsSeamless = true;
    }
    const { backend, player, track, run } = setup({ backend: (c) => new SendQueue(c, 200 * K) });
    track('v', 1000 * K, 8000);
    player.play('v', () => undefined as never);
    await run(300);
    const queuedAtChange = (backend as SendQueue).pacer.queued();
    expect(queuedAtChange).toBeGreaterThan(100 * K); // 200 ms lead: most of it would still play loud
    const heardBefore = backend.pacer.elapsedFrames();
    player.setVolume(50);
    await run(1500);
    const out = Array.from(backend.output());
    expect(out.length).toBe(1000 * K);
    const firstQuiet = out.indexOf(1000);
    // everything not yet heard when the volume changed comes out at the new volume (8000 * 0.125)
    expect(firstQuiet).toBeLessThanOrEqual(heardBefore + 1);
    expect(out.slice(0, firstQuiet).every((v) => v === 8000)).toBe(true);
    expect(out.slice(firstQuiet).every((v) => v === 1000)).toBe(true);
  });
});
