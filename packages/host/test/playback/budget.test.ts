// BufferBudget and Track: one bound on the audio buffered across the tracks that wait to play (maxBufferMB).
import { describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { BufferBudget } from '../../src/playback/budget.js';
import { Track } from '../../src/playback/track.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const SECOND = 44100 * 4;

/** A decoder connection that records pause/resume. */
function conn() {
  const c = { paused: false, pauses: 0, resumes: 0 };
  return {
    c,
    input: {
      pause: () => ((c.paused = true), c.pauses++),
      resume: () => ((c.paused = false), c.resumes++),
      destroy: () => {},
    },
  };
}

function track(id: string, budget: BufferBudget, role: 'connected' | 'waiting' | 'current' = 'connected') {
  const t = new Track(id, role, 60_000, budget);
  const k = conn();
  t.setInput(CD, k.input);
  return { t, c: k.c };
}

describe('BufferBudget across tracks', () => {
  it('counts what every track holds, and stops the waiting ones once the total reaches the cap', () => {
    const budget = new BufferBudget(2 * SECOND);
    const a = track('a', budget);
    const b = track('b', budget);
    a.t.pushInput(Buffer.alloc(SECOND));
    expect(budget.used).toBe(SECOND);
    expect(a.c.paused).toBe(false);
    b.t.pushInput(Buffer.alloc(SECOND));
    expect(budget.used).toBe(2 * SECOND);
    expect(b.c.paused).toBe(true); // the one that filled it stops; the other stops at its next read
    a.t.pushInput(Buffer.alloc(4));
    expect(a.c.paused).toBe(true);
  });

  it('the current (and next) track is never held back by it: only by its own bufferMs', () => {
    const budget = new BufferBudget(SECOND);
    const w = track('w', budget);
    w.t.pushInput(Buffer.alloc(SECOND));
    expect(w.c.paused).toBe(true);
    const cur = track('cur', budget, 'current');
    cur.t.pushInput(Buffer.alloc(SECOND));
    expect(cur.c.paused).toBe(false);
    expect(budget.used).toBe(2 * SECOND);
  });

  it('a track held back reads again when the others drain below 90 %, or when it is promoted', () => {
    const budget = new BufferBudget(2 * SECOND);
    const cur = track('cur', budget, 'current');
    cur.t.setOutput(CD);
    cur.t.pushInput(Buffer.alloc(2 * SECOND));
    const w = track('w', budget);
    w.t.pushInput(Buffer.alloc(4));
    expect(w.c.paused).toBe(true);
    // the current track plays: what it held leaves the budget
    while (budget.used > 1.7 * SECOND) cur.t.read(4096);
    expect(w.c.paused).toBe(false);
    expect(w.c.resumes).toBe(1);
    // full again; then promoted: it reads at once
    cur.t.pushInput(Buffer.alloc(SECOND));
    w.t.pushInput(Buffer.alloc(4));
    expect(w.c.paused).toBe(true);
    w.t.role = 'next';
    expect(w.c.paused).toBe(false);
  });

  it('a discarded track gives back what it held and stops waiting', () => {
    const budget = new BufferBudget(SECOND);
    const a = track('a', budget);
    a.t.pushInput(Buffer.alloc(SECOND));
    expect(a.c.paused).toBe(true);
    a.t.discard();
    expect(budget.used).toBe(0);
  });
});
