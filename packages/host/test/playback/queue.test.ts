// TrackQueue: the roles of tracks and what `play` and `cancel` mean (PROTOCOL.md section 2).
import { describe, expect, it } from 'vitest';
import { TrackQueue } from '../../src/playback/queue.js';
import { Track } from '../../src/playback/track.js';

const waiting = (id: string) => new Track(id, 'waiting', 60_000);
const connected = (id: string) => new Track(id, 'connected', 60_000);

/** A `make` that records that it was called. */
function maker() {
  const made: string[] = [];
  return {
    made,
    make: (id: string) => () => {
      made.push(id);
      return waiting(id);
    },
  };
}

/** What the queue holds, for comparing before and after. */
const snapshot = (q: TrackQueue) => ({
  current: q.current?.id,
  next: q.next?.id,
  tracks: [...q.tracks.keys()],
  roles: [...q.tracks.values()].map((t) => `${t.id}:${t.role}`),
  draining: q.draining.map((t) => t.id),
});

describe('TrackQueue.play', () => {
  it('makes the first track current and the second next, creating a track only for an unknown id', () => {
    const q = new TrackQueue();
    const { made, make } = maker();
    const b = connected('b');
    q.add(b);
    expect(q.play('a', make('a'))).toBe('current');
    expect(q.play('b', make('b'))).toBe('next');
    expect(made).toEqual(['a']); // b's decoder had connected: that track is used
    expect(q.current?.id).toBe('a');
    expect(q.current?.role).toBe('current');
    expect(q.next).toBe(b);
    expect(b.role).toBe('next');
    expect(q.get('a')).toBe(q.current);
    expect(q.size).toBe(2);
  });

  it('a play for the id already current, already next, or while a next is set is busy and changes nothing', () => {
    const q = new TrackQueue();
    const { made, make } = maker();
    q.play('a', make('a'));
    // already current (nothing next yet)
    const before1 = snapshot(q);
    const r1 = q.play('a', make('a'));
    expect(r1).toEqual({ busy: expect.stringContaining('"a" is already current') });
    expect(snapshot(q)).toEqual(before1);

    q.play('b', make('b'));
    const c = connected('c');
    q.add(c);
    const before = snapshot(q);
    const r2 = q.play('b', make('b'));
    expect(r2).toEqual({ busy: expect.stringContaining('"b" is already next') });
    const r3 = q.play('c', make('c'));
    expect(r3).toEqual({ busy: expect.stringContaining('next track is already set') });
    const r4 = q.play('d', make('d'));
    expect(typeof r4).toBe('object');
    expect(snapshot(q)).toEqual(before);
    expect(c.role).toBe('connected');
    expect(q.get('d')).toBeUndefined();
    expect(made).toEqual(['a', 'b']); // a refused play never makes a track
  });
});

describe('TrackQueue.cancel', () => {
  it('of a current track that has started is finished, also one whose decoder never came', () => {
    const q = new TrackQueue();
    q.play('w', () => waiting('w')); // never connected, nothing draining
    const r = q.cancel('w');
    expect(r.answer).toBe('finished');
    expect(r.wasCurrent).toBe(true);
    expect(r.track?.id).toBe('w');
    expect(r.track?.answered).toBe(true);
    expect(q.current).toBeUndefined();
    expect(q.get('w')).toBeUndefined();
  });

  it('of the current track does not promote the next one itself (that is the caller’s step)', () => {
    const q = new TrackQueue();
    q.play('a', () => waiting('a'));
    q.play('b', () => waiting('b'));
    expect(q.cancel('a').answer).toBe('finished');
    expect(q.current).toBeUndefined();
    expect(q.next?.id).toBe('b');
    expect(q.promote()?.id).toBe('b');
  });

  it('of a next or a connected track is stillborn', () => {
    const q = new TrackQueue();
    q.add(connected('c'));
    q.play('a', () => waiting('a'));
    q.play('b', () => waiting('b'));
    const rb = q.cancel('b');
    expect(rb).toMatchObject({ answer: 'stillborn', wasCurrent: false });
    expect(q.next).toBeUndefined();
    expect(q.current?.id).toBe('a');
    expect(q.cancel('c').answer).toBe('stillborn');
    expect(q.get('c')).toBeUndefined();
    // the next slot is free again
    expect(q.play('d', () => waiting('d'))).toBe('next');
  });

  it('of the current track behind one reported finished and still playing out is stillborn until announced', () => {
    const q = new TrackQueue();
    q.play('a', () => waiting('a'));
    const a = q.current!;
    q.finish(a, true); // a reported finished, still to be heard
    q.play('b', () => waiting('b'));
    expect(q.current?.id).toBe('b');
    expect(q.cancel('b').answer).toBe('stillborn');

    q.play('c', () => waiting('c'));
    q.current!.announced = true; // `playing` was sent for c
    expect(q.cancel('c').answer).toBe('finished');
  });

  it('of an unknown id, or one already answered (cancelled or finished), is unknown', () => {
    const q = new TrackQueue();
    expect(q.cancel('nope')).toEqual({ answer: 'unknown', wasCurrent: false });
    q.add(connected('c'));
    expect(q.cancel('c').answer).toBe('stillborn');
    expect(q.cancel('c').answer).toBe('unknown');
    q.play('a', () => waiting('a'));
    q.finish(q.current!, true);
    expect(q.cancel('a').answer).toBe('unknown');
    expect(q.draining.map((t) => t.id)).toEqual(['a']); // its audio still plays out
  });
});

describe('TrackQueue: finish, promote, prune, sources', () => {
  it('finish takes the current track out; it drains only while something of it is still to be heard', () => {
    const q = new TrackQueue();
    q.play('a', () => waiting('a'));
    const a = q.current!;
    q.finish(a, true);
    expect(a.role).toBe('finished');
    expect(a.answered).toBe(true);
    expect(q.current).toBeUndefined();
    expect(q.get('a')).toBeUndefined();
    expect(q.draining).toEqual([a]);
    expect(q.hasWork()).toBe(true);

    q.play('b', () => waiting('b'));
    const b = q.current!;
    q.finish(b, false);
    expect(q.draining).toEqual([a]);
    expect([...q.all()]).toEqual([a]);
  });

  it('promote makes the next track current only when there is no current one', () => {
    const q = new TrackQueue();
    expect(q.promote()).toBeUndefined();
    q.play('a', () => waiting('a'));
    q.play('b', () => waiting('b'));
    expect(q.promote()).toBeUndefined(); // a is still current
    expect(q.current?.id).toBe('a');
    q.finish(q.current!, false);
    const b = q.promote();
    expect(b?.id).toBe('b');
    expect(b?.role).toBe('current');
    expect(q.current).toBe(b);
    expect(q.next).toBeUndefined();
    expect(q.promote()).toBeUndefined();
  });

  it('prune drops finished tracks from the front only, in order, while they are done', () => {
    const q = new TrackQueue();
    const done = new Set<string>();
    for (const id of ['x', 'y', 'z']) {
      q.play(id, () => waiting(id));
      q.finish(q.current!, true);
    }
    done.add('y'); // y is done but x before it is not: nothing leaves
    q.prune((t) => done.has(t.id));
    expect(q.draining.map((t) => t.id)).toEqual(['x', 'y', 'z']);
    done.add('x');
    q.prune((t) => done.has(t.id));
    expect(q.draining.map((t) => t.id)).toEqual(['z']);
    done.add('z');
    q.prune((t) => done.has(t.id));
    expect(q.draining).toEqual([]);
    expect(q.hasWork()).toBe(false);
  });

  it('sources are the draining tracks in order, then the current one, then the next one; all() adds the known', () => {
    const q = new TrackQueue();
    q.add(connected('k'));
    for (const id of ['d1', 'd2']) {
      q.play(id, () => waiting(id));
      q.finish(q.current!, true);
    }
    q.play('cur', () => waiting('cur'));
    q.play('nxt', () => waiting('nxt'));
    expect([...q.sources()].map((t) => t.id)).toEqual(['d1', 'd2', 'cur', 'nxt']);
    expect(new Set([...q.all()].map((t) => t.id))).toEqual(new Set(['d1', 'd2', 'k', 'cur', 'nxt']));
    expect(q.hasWork()).toBe(true);
  });

  it('hasWork: connected tracks alone are no work; a current one is', () => {
    const q = new TrackQueue();
    q.add(connected('k'));
    expect(q.hasWork()).toBe(false);
    q.play('a', () => waiting('a'));
    expect(q.hasWork()).toBe(true);
  });
});
