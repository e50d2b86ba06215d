// The play loop as a whole (queue, feeder, scheduler, reporter and driver together) on a virtual clock.
import { describe, expect, it } from 'vitest';
import { RealtimePacer, VirtualClock, type SampleFormat } from '@speakerd/plugin-sdk';
import { Track } from '../../src/playback/track.js';
import {
  DeepQueueBackend,
  F,
  FB,
  FlushingBackend,
  K,
  RecordingBackend,
  pcm,
  ramp,
  setup,
  type Recorded,
} from './helpers.js';

const ids = (events: Recorded[], type: string) => events.filter((e) => e.type === type).map((e) => e.id);

describe('play loop on a virtual clock', () => {
  it('starts the next track at the exact frame after the current one ends', async () => {
    const { backend, track, play, run, events } = setup();
    track('a', pcm(700 * K, 1));
    track('b', pcm(500 * K, 2));
    play('a');
    play('b');
    await run(1500);
    const out = backend.output();
    expect(out.length).toBe(1200 * K);
    expect(out.subarray(0, 700 * K).every((v) => v === 1)).toBe(true);
    expect(out.subarray(700 * K).every((v) => v === 2)).toBe(true);
    expect(ids(events, 'finished')).toEqual(['a', 'b']);
    // each track is announced once, at position 0, when its sound starts; b after a is finished
    const starts = events.filter((e) => e.type === 'playing' && e.position === 0);
    expect(starts.map((e) => [e.id, e.at])).toEqual([
      ['a', 0],
      ['b', 700],
    ]);
    const order = events.map((e) => `${e.type}:${e.id}`);
    expect(order.indexOf('finished:a')).toBeLessThan(order.indexOf('playing:b'));
  });

  it('reports finished within earlyFinishMs of the end being audible, not before', async () => {
    const { track, play, run, events } = setup({ earlyFinishMs: 200 });
    track('a', pcm(1000 * K, 1));
    play('a');
    await run(1500);
    const fin = events.find((e) => e.type === 'finished')!;
    // the end of a becomes audible at t = 1000 ms
    expect(fin.at).toBeGreaterThanOrEqual(800 - 1);
    expect(fin.at).toBeLessThanOrEqual(800 + 10);
    expect(events.filter((e) => e.id === 'a' && e.type === 'playing' && e.at > fin.at)).toEqual([]);
  });

  it('a short next track is reported finished once what plays ahead of it is within earlyFinishMs too', async () => {
    const { track, play, run, events } = setup({ earlyFinishMs: 200 });
    track('a', pcm(500 * K, 1));
    track('short', pcm(100 * K, 2));
    play('a');
    play('short');
    await run(1000);
    const fa = events.find((e) => e.type === 'finished' && e.id === 'a')!;
    const fs = events.find((e) => e.type === 'finished' && e.id === 'short')!;
    // a ends audibly at 500, short at 600: each reported 200 ms before (within a tick)
    expect(fa.at).toBeGreaterThanOrEqual(299);
    expect(fa.at).toBeLessThanOrEqual(310);
    expect(fs.at).toBeGreaterThanOrEqual(399);
    expect(fs.at).toBeLessThanOrEqual(410);
    // short ended before its sound started: it is announced just before its finished, once
    const mine = events.filter((e) => e.id === 'short').map((e) => e.type);
    expect(mine).toEqual(['playing', 'finished']);
  });

  it('late pause: a pause after finished lets that track play out; the next track starts paused', async () => {
    const { backend, player, track, play, run, events } = setup({ earlyFinishMs: 200 });
    track('a', pcm(500 * K, 1));
    track('b', pcm(300 * K, 2));
    play('a');
    await run(350); // a is finished (reported at ~300 ms) but still playing
    expect(events.some((e) => e.type === 'finished' && e.id === 'a')).toBe(true);
    player.pause();
    play('b');
    await run(500);
    const out = backend.output();
    expect(out.length).toBe(500 * K); // all of a, none of b
    const pausedB = events.find((e) => e.type === 'paused' && e.id === 'b') as { position: number; at: number };
    expect(pausedB.position).toBe(0);
    expect(pausedB.at).toBeGreaterThanOrEqual(500); // once a had played out
    player.resume();
    await run(600);
    const out2 = backend.output();
    expect(out2.length).toBe(800 * K);
    expect(out2.subarray(500 * K).every((v) => v === 2)).toBe(true);
  });

  it('pause on a backend that can take audio back replays it after resume; positions never decrease', async () => {
    const { backend, player, track, play, run, events } = setup({ backend: (c) => new FlushingBackend(c, 50 * K) });
    const input = ramp(1000 * K);
    track('a', input);
    play('a');
    await run(300);
    player.pause();
    const paused = events.find((e) => e.type === 'paused') as { position: number };
    expect(backend.dropped).toBeGreaterThan(0);
    await run(300);
    player.resume();
    await run(1500);
    expect(Buffer.compare(backend.bytes(), input)).toBe(0);
    expect(paused.position).toBeGreaterThan(0.2);
    const positions = events.flatMap((e) => (e.type === 'playing' || e.type === 'paused' ? [e.position] : []));
    for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeGreaterThanOrEqual(positions[i - 1]!);
  });

  it('plays silence while a played track has no audio yet, at real time, then the track', async () => {
    const { backend, player, play, run, events } = setup();
    play('w');
    await run(200);
    const silent = backend.output().length;
    // real time, plus at most the guard and one step held ahead
    expect(silent).toBeGreaterThan(190 * K);
    expect(silent).toBeLessThanOrEqual(221 * K);
    expect(backend.output().every((v) => v === 0)).toBe(true);
    expect(events.filter((e) => e.type === 'playing')).toEqual([]);
    const t = player.queue.get('w')!;
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    t.pushInput(pcm(400 * K, 7));
    t.endInput();
    player.inputChanged(t);
    await run(700);
    const out = backend.output();
    expect(out.length).toBe(silent + 400 * K);
    expect(out.subarray(silent).every((v) => v === 7)).toBe(true);
    expect(events.find((e) => e.type === 'playing')).toMatchObject({ id: 'w', position: 0 });
  });

  it('runs for a long simulated time without drift: frames handed out track the clock', async () => {
    const { backend, track, play, run } = setup({ earlyFinishMs: 0 });
    track('long', pcm(60_000 * K, 3));
    play('long');
    await run(30_000);
    const n = backend.output().length;
    expect(n).toBeGreaterThanOrEqual(30_000 * K);
    expect(n).toBeLessThanOrEqual((30_000 + 20 + 10) * K);
  });
});

/** A decoder delivering `data` into `t` at `speed`× real time in chunks of `chunkFrames`, on the virtual clock. */
function deliver(
  clock: VirtualClock,
  t: Track,
  data: Buffer,
  speed: number,
  chunkFrames: number,
  changed: () => void,
  format: SampleFormat = F,
) {
  const fb = data.length / (data.length / FB);
  const chunkMs = (chunkFrames * 1000) / format.rate / speed;
  const start = clock.now();
  let k = 0;
  const next = () => {
    const off = k * chunkFrames * fb;
    if (off >= data.length) {
      t.endInput();
      changed();
      return;
    }
    t.pushInput(data.subarray(off, off + chunkFrames * fb));
    changed();
    k++;
    clock.setTimeout(next, start + k * chunkMs - clock.now());
  };
  next();
}

describe('decoders that deliver only a little faster than real time', () => {
  for (const [name, make] of [
    ['a pipe (20 ms lead)', (c: VirtualClock) => new RecordingBackend(c)],
    ['a deep send queue (1.1 s, filled once a second)', (c: VirtualClock) => new DeepQueueBackend(c)],
  ] as const) {
    it(`${name}: no silence inside or between tracks, played on finished, at 1.1x in 4096-frame chunks`, async () => {
      const { clock, backend, player, play, run, events } = setup({
        backend: make,
        earlyFinishMs: 1000,
        startThresholdMs: 250,
      });
      const inputs = [ramp(3000 * K, 0), ramp(2500 * K, 7), ramp(2000 * K, 13)];
      const tracks = inputs.map((_, i) => {
        const t = new Track(`t${i}`, 'connected', 60_000);
        t.setInput(F, { pause() {}, resume() {}, destroy() {} });
        return t;
      });
      // the first decoder connects, play is sent at once; each next decoder connects when the previous finishes
      player.add(tracks[0]!);
      play('t0');
      deliver(clock, tracks[0]!, inputs[0]!, 1.1, 4096, () => player.inputChanged(tracks[0]!));
      let n = 1;
      const onFinished = () => {
        const i = n++;
        if (i >= tracks.length) return;
        player.add(tracks[i]!);
        play(`t${i}`);
        deliver(clock, tracks[i]!, inputs[i]!, 1.1, 4096, () => player.inputChanged(tracks[i]!));
      };
      const seen = new Set<string>();
      for (let ms = 0; ms < 12_000; ms += 10) {
        await run(10);
        for (const e of events) {
          if (e.type !== 'finished' || seen.has(e.id)) continue;
          seen.add(e.id);
          onFinished();
        }
      }
      const out = backend.bytes();
      const expected = Buffer.concat(inputs);
      // zeros while waiting for the first track, then exactly the tracks: nothing inserted
      const lead = out.length - expected.length;
      expect(lead % FB).toBe(0);
      expect(out.subarray(0, lead).every((b) => b === 0)).toBe(true);
      expect(Buffer.compare(out.subarray(lead), expected)).toBe(0);
      expect(lead).toBeLessThanOrEqual(260 * K * FB);
      for (const t of tracks) expect([t.id, t.underruns]).toEqual([t.id, 0]);
      expect(ids(events, 'finished')).toEqual(['t0', 't1', 't2']);
    });
  }

  it('a decoder that stalls mid-track gets silence only once the backend runs low, counted as an underrun', async () => {
    const { clock, backend, player, play, run } = setup({ backend: (c) => new DeepQueueBackend(c) });
    const t = new Track('s', 'connected', 60_000);
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    player.add(t);
    t.pushInput(pcm(1000 * K, 5));
    play('s');
    void clock;
    // 1 s of audio is handed out at once (the backend takes 1.1 s ahead); then the decoder stalls until 2100:
    // the backend plays what it holds until ~990 ms, and only then gets silence (down to the 10 ms guard)
    await run(2100);
    t.pushInput(pcm(500 * K, 6));
    t.endInput();
    player.inputChanged(t);
    await run(2000);
    const out = backend.output();
    const firstZero = out.indexOf(0);
    expect(firstZero).toBe(1000 * K); // all of the first part came out before any silence
    const zeros = out.filter((v) => v === 0).length;
    expect(zeros / K).toBeGreaterThanOrEqual(2100 - 990 - 2);
    expect(zeros / K).toBeLessThanOrEqual(2100 - 990 + 25); // at most the guard and a step held ahead
    expect(out.subarray(out.length - 500 * K).every((v) => v === 6)).toBe(true);
    expect(t.underruns).toBe(1);
    expect(Math.round(t.silenceFrames / K)).toBe(zeros / K);
  });
});

describe('finished stays honest on backends that queue a lot', () => {
  it('a chain of 30 short tracks on a deep queue: no finished more than earlyFinishMs ahead of its end', async () => {
    const { backend, play, track, run, events } = setup({
      backend: (c) => new DeepQueueBackend(c),
      earlyFinishMs: 1000,
    });
    const N = 30;
    for (let i = 0; i < N; i++) track(`s${i}`, pcm(100 * K, i + 1));
    play('s0');
    const playedAt = [0];
    for (let ms = 0; ms < 6000 && playedAt.length <= N; ms++) {
      await run(1);
      const fins = events.filter((e) => e.type === 'finished').length;
      while (playedAt.length < N && fins >= playedAt.length) {
        playedAt.push(ms + 1);
        play(`s${playedAt.length - 1}`);
      }
    }
    await run(2000);
    // sound starts at 0 (the first write); track i's last frame is audible at (i+1) * 100 ms
    const fins = events.filter((e) => e.type === 'finished');
    expect(fins.map((e) => e.id)).toEqual(Array.from({ length: N }, (_, i) => `s${i}`));
    const end = (i: number) => (i + 1) * 100;
    // never more than earlyFinishMs ahead of the audible end
    for (let i = 0; i < N; i++) expect(end(i) - fins[i]!.at).toBeLessThanOrEqual(1000 + 10);
    // and the music server is never held back: each finished comes as soon as it may (within a tick)
    for (let i = 0; i < N; i++) expect(fins[i]!.at).toBeLessThanOrEqual(Math.max(playedAt[i]!, end(i) - 1000) + 10);
    // gapless: exactly the tracks, in order
    const out = backend.output();
    expect(out.length).toBe(N * 100 * K);
    for (let i = 0; i < N; i++)
      expect(out.subarray(i * 100 * K, (i + 1) * 100 * K).every((v) => v === i + 1)).toBe(true);
  });

  it('gapless on a deep queue: the next track, played on finished, follows at the exact frame', async () => {
    const { backend, track, play, run, events } = setup({
      backend: (c) => new DeepQueueBackend(c),
      earlyFinishMs: 1000,
    });
    track('a', ramp(3000 * K, 1));
    track('b', ramp(2000 * K, 9));
    play('a');
    let playedB = false;
    for (let ms = 0; ms < 6000; ms++) {
      await run(1);
      if (!playedB && events.some((e) => e.type === 'finished' && e.id === 'a')) {
        playedB = true;
        expect(play('b')).toBeUndefined();
      }
    }
    const fa = events.find((e) => e.type === 'finished' && e.id === 'a')!;
    expect(fa.at).toBeGreaterThanOrEqual(2000 - 11);
    expect(fa.at).toBeLessThanOrEqual(2000 + 1);
    expect(Buffer.compare(backend.bytes(), Buffer.concat([ramp(3000 * K, 1), ramp(2000 * K, 9)]))).toBe(0);
    // b's sound starts when a's last frame has played: at 3000 ms
    const pb = events.find((e) => e.type === 'playing' && e.id === 'b')!;
    expect(pb.at).toBeGreaterThanOrEqual(3000);
    expect(pb.at).toBeLessThanOrEqual(3000 + 10);
  });
});

describe('cancel', () => {
  it('of the current track behind one still playing out, before its sound started, is stillborn', async () => {
    const { player, track, play, run, events } = setup({ earlyFinishMs: 500 });
    track('a', pcm(600 * K, 1));
    track('b', pcm(600 * K, 2));
    play('a');
    await run(200); // a finished (its end is 400 ms away), still playing out
    expect(ids(events, 'finished')).toEqual(['a']);
    expect(play('b')).toBeUndefined();
    expect(player.current?.id).toBe('b');
    expect(player.cancel('b')).toBe('stillborn');
    expect(player.cancel('b')).toBe('unknown');
  });

  it('of the current track answers finished, and its audio leaves the output where the backend can take it back', async () => {
    const { backend, player, track, play, run } = setup({ backend: (c) => new FlushingBackend(c, 100 * K) });
    track('a', pcm(2000 * K, 1));
    track('b', pcm(300 * K, 2));
    play('a');
    play('b');
    await run(500);
    expect(player.cancel('a')).toBe('finished');
    await run(600);
    const out = backend.output();
    const ones = out.filter((v) => v === 1).length;
    expect(ones / K).toBeGreaterThanOrEqual(499);
    expect(ones / K).toBeLessThanOrEqual(501); // what was queued ahead was taken back
    expect(out.subarray(out.length - 300 * K).every((v) => v === 2)).toBe(true);
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
    const { player, track, play, run, events } = setup({
      reportIntervalMs: 1000,
      backend: (c) => new BatchBackend(c),
    });
    track('long', pcm(40_000 * K, 3));
    play('long');
    await run(30_000);
    // one wake-up a second (plus the start): fills and reports never wake the loop separately
    expect(player.timersArmed).toBeGreaterThanOrEqual(29);
    expect(player.timersArmed).toBeLessThanOrEqual(33);
    const reports = events.filter((e) => e.type === 'playing').map((e) => e.at);
    expect(reports.length).toBeGreaterThanOrEqual(29);
    for (let i = 2; i < reports.length; i++) {
      const gap = reports[i]! - reports[i - 1]!;
      expect(gap).toBeGreaterThanOrEqual(980);
      expect(gap).toBeLessThanOrEqual(1021);
    }
    const last = events.flatMap((e) => (e.type === 'playing' ? [e.position] : [])).at(-1)!;
    expect(last).toBeGreaterThan(28);
  });

  it('fills the backend wakes for itself never re-arm the loop timer (no clear-and-set per fill)', async () => {
    class PacketBackend extends RecordingBackend {
      readonly tickMs = 300; // a fallback: the backend wakes the host itself
    }
    const { clock, player, track, play, run } = setup({
      reportIntervalMs: 1000,
      backend: (c) => new PacketBackend(c),
    });
    const wake = () => {
      player.kick();
      clock.setTimeout(wake, 8);
    };
    clock.setTimeout(wake, 8);
    track('long', pcm(20_000 * K, 3));
    play('long');
    await run(10_000);
    // about 1250 fills; the loop's own timer is armed about once per tickMs and per report, not once per fill
    expect(player.timersArmed).toBeLessThanOrEqual(10_000 / 300 + 10_000 / 1000 + 5);
    expect(player.timersArmed).toBeGreaterThan(0);
  });
});

describe('a device-paced backend', () => {
  /**
   * A sound card: `pacing: 'device'`, a buffer of `bufferMs` that the hardware drains at the rate (here on the
   * virtual clock); writable() is the room in it, delay() what it holds. The host writes it no silence and does
   * not look ahead for it: the card plays silence itself when it runs dry.
   */
  class CardBackend extends RecordingBackend {
    override readonly pacing = 'device' as const;
    constructor(clock: VirtualClock, bufferMs = 50) {
      super(clock, bufferMs * K);
    }
  }

  it('gets no silence from the host while a played track has no audio, and no extra wake-ups for it', async () => {
    const { backend, player, driver, play, run, events } = setup({ backend: (c) => new CardBackend(c) });
    expect(driver.pacing).toBe('device');
    play('w'); // played, no decoder yet
    await run(300);
    expect(backend.calls).toEqual(['activate']);
    expect(backend.output().length).toBe(0); // a clock-paced backend gets 300 ms of silence here
    // the loop looks again once per tick (10 ms), not before what the backend holds falls below the guard
    // (a clock-paced backend holding nothing is looked at every millisecond)
    expect(player.timersArmed).toBeGreaterThanOrEqual(25);
    expect(player.timersArmed).toBeLessThanOrEqual(300 / 10 + 5);
    expect(events.filter((e) => e.type === 'playing')).toEqual([]);
    // the audio, when it comes, starts the output: exactly the track, bounded by the card's buffer
    const t = player.queue.get('w')!;
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    t.pushInput(ramp(400 * K));
    t.endInput();
    player.inputChanged(t);
    await run(600);
    expect(Buffer.compare(backend.bytes(), ramp(400 * K))).toBe(0);
    expect(events.find((e) => e.type === 'playing')).toMatchObject({ id: 'w', position: 0, at: 300 });
    expect(ids(events, 'finished')).toEqual(['w']);
    expect(t.underruns).toBe(0);
  });

  it('a track that runs dry mid-way: the host writes nothing until its audio comes back, and counts no underrun', async () => {
    const { backend, player, track, play, run } = setup({ backend: (c) => new CardBackend(c) });
    const t = track('d', ramp(200 * K), false);
    play('d');
    await run(400); // 200 ms played, then 200 ms dry
    expect(Buffer.compare(backend.bytes(), ramp(200 * K))).toBe(0);
    expect(t.underruns).toBe(0);
    t.pushInput(ramp(100 * K, 200 * K));
    t.endInput();
    player.inputChanged(t);
    await run(300);
    expect(Buffer.compare(backend.bytes(), ramp(300 * K))).toBe(0);
    expect(t.underruns).toBe(0);
  });

  it('the same starved track on a clock-paced backend does get silence (what the two tests above rule out)', async () => {
    const { backend, player, play, run } = setup({ backend: (c) => new RecordingBackend(c, 50 * K) });
    play('w');
    await run(300);
    expect(backend.output().length).toBeGreaterThan(290 * K);
    expect(backend.output().every((v) => v === 0)).toBe(true);
    expect(player.timersArmed).toBeGreaterThan(300 / 10 + 5);
  });
});

describe('a reload that changes bufferMs', () => {
  /** A decoder connection that records the back-pressure it is given. */
  const connection = () => {
    const calls: string[] = [];
    return { calls, conn: { pause: () => calls.push('pause'), resume: () => calls.push('resume'), destroy() {} } };
  };

  it('bounds the tracks already queued at once: a raised bound lets a held-back decoder read, a lowered one holds it', () => {
    const { player } = setup();
    const a = new Track('a', 'connected', 1000);
    const ca = connection();
    a.setInput(F, ca.conn);
    player.add(a);
    a.pushInput(pcm(1000 * K, 1)); // full at the old bound
    expect(ca.calls).toEqual(['pause']);
    const b = new Track('b', 'connected', 1000);
    const cb = connection();
    b.setInput(F, cb.conn);
    player.add(b);
    b.pushInput(pcm(600 * K, 2)); // below it
    player.updateOptions({ bufferMs: 5000 });
    expect(a.bufferMs).toBe(5000);
    expect(ca.calls).toEqual(['pause', 'resume']); // it reads again now, not after the track has played
    a.pushInput(pcm(3999 * K, 1));
    expect(ca.calls).toEqual(['pause', 'resume']);
    a.pushInput(pcm(1 * K, 1));
    expect(ca.calls).toEqual(['pause', 'resume', 'pause']); // at the new bound
    player.updateOptions({ bufferMs: 500 });
    expect(cb.calls).toEqual(['pause']); // holds 600 ms: over the new bound, held back at once
    expect([...player.queue.all()].map((t) => t.bufferMs)).toEqual([500, 500]);
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
    const { backend, player, track, play, run } = setup({ backend: (c) => new Switching(c) });
    track('a', pcm(300 * K, 1));
    const bpcm = Buffer.alloc(16000 * 0.2 * 2);
    for (let i = 0; i < bpcm.length / 2; i++) bpcm.writeInt16LE(i % 1000, i * 2);
    track('b', bpcm, true, G);
    play('a');
    play('b');
    await run(1000);
    expect(backend.activations.map((f) => f.rate)).toEqual([8000, 16000]);
    const all = backend.bytes();
    expect(all.length).toBe(300 * K * 2 + bpcm.length);
    expect(Buffer.compare(all.subarray(300 * K * 2), bpcm)).toBe(0);
    const firstB = backend.writes.find(
      (w, i) => i > 0 && Buffer.concat(backend.writes.slice(0, i).map((x) => x.bytes)).length >= 300 * K * 2,
    )!;
    expect(firstB.at).toBeGreaterThanOrEqual(300);
    expect(player.format).toEqual(G);
  });

  it('a track format the backend refuses at activation is converted to the negotiated format instead', async () => {
    const G: SampleFormat = { encoding: 's16le', rate: 16000, channels: 1 };
    class Refusing extends RecordingBackend {
      activations: number[] = [];
      override async activate(format?: SampleFormat) {
        this.activations.push(format!.rate);
        if (format!.rate === 16000) throw new Error('16 kHz refused');
        this.pacer.start();
      }
      formatFor(track: SampleFormat) {
        return track;
      }
    }
    const { backend, track, play, run, reports } = setup({ backend: (c) => new Refusing(c) });
    track('a', pcm(100 * K, 1));
    track('b', Buffer.alloc(16000 * 0.1 * 2, 0x11), true, G);
    play('a');
    play('b');
    await run(1000);
    expect(backend.activations).toEqual([8000, 16000, 8000]);
    expect(backend.output().length).toBe(200 * K); // b converted to 8 kHz: 100 ms
    expect(reports).toEqual([]); // a refusal of a track's own format is no failure of the output
  });
});

describe('flush and replay of a resampled track', () => {
  it('a pause that takes back every frame handed out replays them with the converter state intact', async () => {
    const { createConverter } = await import('../../src/convert/index.js');
    const IN: SampleFormat = { encoding: 's16le', rate: 11025, channels: 1 };
    const { backend, player, track, play, run, clock } = setup({ backend: (c) => new FlushingBackend(c, 50 * K) });
    const input = Buffer.alloc(5512 * 2);
    for (let i = 0; i < input.length / 2; i++) input.writeInt16LE(Math.round(8000 * Math.sin(i / 7)), i * 2);
    const t = track('r', input, true, IN);
    play('r');
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the backend activates
    clock.advance(0);
    expect(t.handed).toBeGreaterThan(0);
    player.pause(); // and is taken back whole
    expect(backend.dropped).toBeGreaterThan(0);
    expect(t.handed).toBe(0);
    player.resume();
    await run(1500);
    const c = createConverter(IN, F);
    const want = Buffer.concat([Buffer.from(c.convert(input)), Buffer.from(c.end())]);
    const got = backend.bytes();
    expect(got.length).toBe(want.length);
    expect(Buffer.compare(got, want)).toBe(0);
  });
});

describe('volume on a backend whose flush is seamless', () => {
  it('takes back what is queued unsent and rewrites it at the new volume: heard at once, nothing lost', async () => {
    class SendQueue extends FlushingBackend {
      readonly flushIsSeamless = true;
    }
    const { backend, player, track, play, run } = setup({ backend: (c) => new SendQueue(c, 200 * K) });
    track('v', pcm(1000 * K, 8000));
    play('v');
    await run(300);
    expect(backend.pacer.queued()).toBeGreaterThan(100 * K);
    const heardBefore = backend.pacer.elapsedFrames();
    player.setVolume(50);
    await run(1500);
    const out = Array.from(backend.output());
    expect(out.length).toBe(1000 * K);
    const firstQuiet = out.indexOf(1000);
    expect(firstQuiet).toBeLessThanOrEqual(heardBefore + 1);
    expect(out.slice(0, firstQuiet).every((v) => v === 8000)).toBe(true);
    expect(out.slice(firstQuiet).every((v) => v === 1000)).toBe(true);
  });
});

describe('regressions found by the property tests', () => {
  it('a flushing backend that fails: what it gave back is played again once, nothing twice, nothing lost', async () => {
    class FailsOnce extends FlushingBackend {
      failAt = 505;
      override write(data: Uint8Array) {
        if (this.clock.now() >= this.failAt) {
          this.failAt = Infinity;
          throw new Error('boom');
        }
        return super.write(data);
      }
    }
    const { backend, track, play, run, reports } = setup({ backend: (c) => new FailsOnce(c, 100 * K) });
    const input = ramp(1000 * K, 3);
    track('a', input);
    play('a');
    await run(4000);
    expect(reports.map((r) => r.state)).toEqual(['lost', 'ok']);
    expect(Buffer.compare(backend.bytes(), input)).toBe(0);
  });

  it('a pause that reaches a track queued behind one playing out takes its audio back: position stays 0', async () => {
    const { backend, player, track, play, run, events } = setup({
      backend: (c) => new FlushingBackend(c, 120 * K),
      earlyFinishMs: 200,
    });
    track('t0', ramp(300 * K, 1));
    track('t1', ramp(500 * K, 5));
    play('t0');
    await run(101); // t0 reported finished at 100
    play('t1'); // queued right behind t0 (120 ms lead)
    await run(149);
    player.pause(); // at 250: t0 plays out, the pause applies to t1
    await run(400);
    const t1 = events.filter((e) => e.id === 't1' && (e.type === 'paused' || e.type === 'playing'));
    expect(t1.length).toBeGreaterThan(0);
    expect(t1.every((e) => e.type === 'paused' && e.position === 0)).toBe(true);
    player.resume();
    await run(1000);
    expect(Buffer.compare(backend.bytes(), Buffer.concat([ramp(300 * K, 1), ramp(500 * K, 5)]))).toBe(0);
  });

  it('the backend gets pause() and resume() in turn: no resume() for a pause that never reached it', async () => {
    class Hooks extends RecordingBackend {
      hooks: string[] = [];
      pause() {
        this.hooks.push('pause');
      }
      resume() {
        this.hooks.push('resume');
      }
    }
    const { backend, player, track, play, run } = setup({ backend: (c) => new Hooks(c), earlyFinishMs: 0 });
    player.pause(); // nothing current: applies to the next track played
    player.resume();
    track('a', pcm(300 * K, 1));
    track('b', pcm(300 * K, 2));
    play('a');
    play('b');
    await run(100);
    player.pause();
    player.cancel('a'); // b becomes current, already paused: no second pause()
    await run(100);
    player.resume();
    await run(1000);
    expect(backend.hooks).toEqual(['pause', 'resume']);
  });
});
