// Reporter: `playing` when a track's sound starts, `finished` within earlyFinishMs of its end being audible
// (counting everything queued ahead), periodic reports; with a TrackQueue, an OutputLedger and tracks set up by hand.
import { describe, expect, it } from 'vitest';
import { OutputLedger } from '../../src/playback/ledger.js';
import { TrackQueue } from '../../src/playback/queue.js';
import { Reporter, type PlayerEvent, type SettleContext } from '../../src/playback/reporter.js';
import { Track } from '../../src/playback/track.js';
import { F, FB, K, fedTrack, pcm } from './helpers.js';

const EARLY = 200;

function setup() {
  const queue = new TrackQueue();
  const ledger = new OutputLedger(false, FB);
  const events: PlayerEvent[] = [];
  let startedPaused = 0;
  const reporter = new Reporter(
    (e) => events.push(e),
    (t) => t.audible / F.rate,
    { earlyFinishMs: EARLY, reportIntervalMs: 100 },
  );
  const ctx = (over: Partial<SettleContext> = {}): SettleContext => ({
    queue,
    ledger,
    rate: F.rate,
    paused: false,
    playing: true,
    now: 0,
    startPaused: (t) => {
      startedPaused++;
      return t.audible / F.rate;
    },
    ...over,
  });
  const settle = (over: Partial<SettleContext> = {}) => reporter.settle(ctx(over));
  /** Hand up to `frames` of `t` to the "backend", the way the feeder does (starting it at the ledger's count). */
  const hand = (t: Track, frames = 1e9) => {
    if (!t.started) {
      t.setOutput(F);
      t.started = true;
      t.startFrame = ledger.total;
    }
    let left = frames;
    while (left > 0) {
      const chunk = t.read(left);
      if (!chunk) break;
      const n = chunk.length / FB;
      ledger.append(t, n, chunk);
      t.handed += n;
      left -= n;
    }
  };
  /** The backend says `frames` are still queued ahead of the listener. */
  const queued = (frames: number) => ledger.advance(frames);
  const play = (t: Track) => {
    queue.add(t);
    queue.play(t.id, () => t);
    return t;
  };
  const types = () => events.map((e) => `${e.type}:${e.id}`);
  return { queue, ledger, events, reporter, settle, hand, queued, play, types, startedPaused: () => startedPaused };
}

describe('playing when the sound starts', () => {
  it('at position 0 once the first frame is audible; before that, the time it will be', () => {
    const s = setup();
    s.ledger.append(undefined, 10 * K, undefined); // 10 ms of silence ahead of the track
    const a = s.play(fedTrack('a', pcm(1000 * K, 1), false));
    s.hand(a, 100 * K);
    expect(a.startFrame).toBe(10 * K);
    s.queued(s.ledger.total); // nothing audible yet
    expect(s.settle({ now: 1000 })).toBe(1000 + 10);
    s.queued(s.ledger.total - (10 * K - 1)); // one frame short of the track's first
    expect(s.settle({ now: 1000 })).toBe(1000 + 1000 / F.rate);
    expect(s.events).toEqual([]);
    s.queued(s.ledger.total - 10 * K); // ledger.audibleTotal === startFrame
    expect(s.ledger.audibleTotal).toBe(a.startFrame);
    expect(s.settle({ now: 1010 })).toBe(Infinity); // not eof: no finished pending
    expect(s.events).toEqual([{ type: 'playing', id: 'a', position: 0 }]);
    s.queued(0);
    s.settle({ now: 1100 });
    expect(s.events).toHaveLength(1); // once
  });

  it('the first track of a run waits for latency the backend reports beyond what it holds (a buffer downstream)', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(2000 * K, 1), false));
    s.hand(a, 250 * K);
    expect(a.startFrame).toBe(0);
    // delay(): the 250 ms handed out, plus 1000 ms of a downstream buffer (snapserver's): nothing is heard yet
    s.queued(s.ledger.total + 1000 * K);
    expect(s.settle({ now: 0 })).toBe(1000);
    expect(s.events).toEqual([]);
    s.hand(a, 500 * K);
    s.queued(1000 * K + 250 * K); // 500 ms later: 500 ms were taken, the buffer is the same
    expect(s.settle({ now: 500 })).toBe(1000);
    expect(s.events).toEqual([]);
    s.hand(a, 500 * K);
    s.queued(1250 * K + 1); // one frame of the buffer still ahead of the listener: not yet
    expect(s.settle({ now: 1000 })).toBe(1000 + 1000 / F.rate);
    expect(s.events).toEqual([]);
    s.queued(1250 * K); // 1000 ms after the first hand-over: the first frame reaches the listener
    s.settle({ now: 1000 });
    expect(s.events).toEqual([{ type: 'playing', id: 'a', position: 0 }]);
  });

  it('not for a track that has not started (no frame handed out), nor while paused', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(100 * K, 1), false));
    expect(s.settle()).toBe(Infinity);
    expect(s.events).toEqual([]);
    s.hand(a, 10 * K);
    // the pause took effect before: no playing (the loop would have made it `paused`)
    a.announced = true;
    s.settle({ paused: true });
    expect(s.events).toEqual([]);
  });

  it('a track that has not been announced when the pause reaches it starts paused', () => {
    const s = setup();
    s.play(fedTrack('a', pcm(100 * K, 1), false));
    s.settle({ paused: true });
    expect(s.events).toEqual([{ type: 'paused', id: 'a', position: 0 }]);
    expect(s.startedPaused()).toBe(1);
    s.settle({ paused: true });
    expect(s.events).toHaveLength(1);
  });
});

describe('finished', () => {
  it('when the track’s end is within earlyFinishMs of audible, and the due time returned is exactly then', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(1000 * K, 1)));
    s.hand(a, 400 * K);
    s.queued(300 * K); // 100 ms heard, 300 ms queued, 600 ms still in the track: 900 ms ahead
    const due = s.settle({ now: 5000 });
    expect(s.types()).toEqual(['playing:a']);
    expect(due).toBe(5000 + 900 - EARLY);
    // 700 ms later: the rest was handed out, and what is queued is one frame more than earlyFinishMs
    s.hand(a);
    expect(a.remainingOutputFrames(F.rate)).toBe(0);
    s.queued(EARLY * K + 1);
    expect(s.settle({ now: 5700 })).toBe(5700 + 1000 / F.rate);
    expect(s.types()).toEqual(['playing:a']);
    s.queued(EARLY * K);
    expect(s.settle({ now: 5700.125 })).toBe(Infinity);
    expect(s.types()).toEqual(['playing:a', 'finished:a']);
    expect(s.queue.current).toBeUndefined();
    expect(s.queue.draining).toEqual([a]); // still playing out
  });

  it('counts what draining tracks still hold and silence queued ahead', () => {
    const s = setup();
    const d = s.play(fedTrack('d', pcm(400 * K, 1)));
    s.hand(d, 100 * K);
    d.announced = true;
    s.queue.finish(d, true); // reported finished with 300 ms not handed out yet
    s.queued(0);
    const c = s.play(fedTrack('c', pcm(100 * K, 2)));
    expect(s.queue.current).toBe(c);
    expect(s.settle({ now: 0 })).toBe(300 + 100 - EARLY);
    expect(s.events).toEqual([]);

    const t = setup();
    t.ledger.append(undefined, 150 * K, undefined); // silence queued, not heard yet
    const e = t.play(fedTrack('e', pcm(100 * K, 2)));
    expect(t.settle({ now: 0 })).toBe(150 + 100 - EARLY);
    expect(t.events).toEqual([]);
    expect(t.queue.current).toBe(e);
  });

  it('only a current track whose input has ended: a short next track waits for it', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(10 * K, 1), false)); // still streaming
    s.hand(a);
    s.play(fedTrack('b', pcm(10 * K, 2)));
    s.queued(0);
    expect(s.settle()).toBe(Infinity);
    expect(s.types()).toEqual(['playing:a']);
  });

  it('chains: a promoted short track is finished in the same settle when it qualifies', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(50 * K, 1)));
    s.hand(a);
    a.announced = true;
    s.play(fedTrack('b', pcm(100 * K, 2)));
    s.queued(50 * K); // a: 50 ms to go; b: 100 ms more, all within 200 ms
    expect(s.settle()).toBe(Infinity);
    // b ended before its sound started: announced just before its finished
    expect(s.events).toEqual([
      { type: 'finished', id: 'a' },
      { type: 'playing', id: 'b', position: 0 },
      { type: 'finished', id: 'b' },
    ]);
    expect(s.queue.current).toBeUndefined();
    expect(s.queue.draining.map((t) => t.id)).toEqual(['a', 'b']);
  });

  it('chains stop at a promoted track that does not qualify yet, returning when it will', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(50 * K, 1)));
    s.hand(a);
    a.announced = true;
    const b = s.play(fedTrack('b', pcm(300 * K, 2)));
    s.queued(50 * K);
    expect(s.settle({ now: 100 })).toBe(100 + 50 + 300 - EARLY);
    expect(s.types()).toEqual(['finished:a']);
    expect(s.queue.current).toBe(b);
  });

  it('a track that ends before its sound started gets playing 0 just before finished', () => {
    const s = setup();
    s.ledger.append(undefined, 100 * K, undefined);
    const a = s.play(fedTrack('a', pcm(50 * K, 1)));
    s.hand(a);
    s.queued(s.ledger.total); // none of a audible: its sound starts in 100 ms
    s.settle();
    expect(s.events).toEqual([
      { type: 'playing', id: 'a', position: 0 },
      { type: 'finished', id: 'a' },
    ]);
  });

  it('a track with no audio (input ended, nothing came) gets finished alone', () => {
    for (const t of [new Track('w', 'waiting', 60_000), fedTrack('e', new Uint8Array(0))]) {
      const s = setup();
      t.endInput();
      s.play(t);
      s.settle();
      expect(s.events).toEqual([{ type: 'finished', id: t.id }]);
      expect(s.queue.draining).toEqual([]);
    }
  });

  it('not while paused, unless the track is exhausted', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(100 * K, 1)));
    s.hand(a, 50 * K);
    a.announced = true;
    s.queued(0);
    expect(s.settle({ paused: true })).toBe(Infinity); // 50 ms left in it, but paused
    expect(s.events).toEqual([]);
    s.hand(a);
    s.queued(50 * K); // all handed out: what the backend holds plays out (or was taken back)
    s.settle({ paused: true });
    expect(s.types()).toEqual(['finished:a']);
  });

  it('after a late pause, a short next track is not finished behind the one playing out: it starts paused', () => {
    // PROTOCOL.md, pause: "the pause then applies to the next track to start, which starts paused"
    const s = setup();
    const d = s.play(fedTrack('d', pcm(50 * K, 1)));
    s.hand(d);
    d.announced = true;
    s.queue.finish(d, true); // d reported finished; then pause; then play c
    const c = s.play(fedTrack('c', pcm(50 * K, 2)));
    s.queued(50 * K);
    s.settle({ paused: true });
    expect(s.types()).toEqual([]); // c's sound has not started and the pause applies to it
    s.queued(0); // d has played out: the pause reaches c
    s.settle({ paused: true });
    expect(s.types()).toEqual(['paused:c']);
    expect(s.queue.current).toBe(c);
  });

  it('not while the backend is not playing, unless nothing is ahead', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(50 * K, 1)));
    s.hand(a);
    a.announced = true;
    s.queued(50 * K);
    expect(s.settle({ playing: false })).toBe(Infinity);
    expect(s.events).toEqual([]);
    s.queued(0); // all of it audible
    s.settle({ playing: false });
    expect(s.types()).toEqual(['finished:a']);
    const w = setup();
    const t = new Track('w', 'waiting', 60_000);
    t.endInput();
    w.play(t);
    w.settle({ playing: false });
    expect(w.types()).toEqual(['finished:w']);
  });

  it('tracks playing out leave once their last frame is audible', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(50 * K, 1)));
    s.hand(a);
    s.queued(50 * K);
    s.settle();
    expect(s.queue.draining).toEqual([a]);
    s.queued(1);
    s.settle();
    expect(s.queue.draining).toEqual([a]);
    s.queued(0);
    s.settle();
    expect(s.queue.draining).toEqual([]);
    expect(s.types()).toEqual(['playing:a', 'finished:a']); // nothing more about a
  });
});

describe('periodic reports', () => {
  it('playing with the position; paused once the pause has reached the track; nothing before the track is announced', () => {
    const s = setup();
    const a = s.play(fedTrack('a', pcm(1000 * K, 1), false));
    s.reporter.report(s.queue, false);
    expect(s.events).toEqual([]); // not announced yet
    s.hand(a, 500 * K);
    s.queued(250 * K);
    s.settle();
    s.reporter.report(s.queue, false);
    s.reporter.report(s.queue, true);
    expect(s.events).toEqual([
      { type: 'playing', id: 'a', position: 0 },
      { type: 'playing', id: 'a', position: 0.25 },
      { type: 'paused', id: 'a', position: 0.25 },
    ]);
  });

  it('playing while paused when the pause has not reached the current track yet; nothing without a current one', () => {
    const s = setup();
    s.reporter.report(s.queue, false);
    const d = s.play(fedTrack('d', pcm(100 * K, 1)));
    s.hand(d);
    s.queue.finish(d, true);
    const c = s.play(fedTrack('c', pcm(100 * K, 2), false));
    c.announced = true;
    s.reporter.report(s.queue, true);
    expect(s.events).toEqual([{ type: 'playing', id: 'c', position: 0 }]);
  });
});
