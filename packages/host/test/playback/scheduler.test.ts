// Scheduler: the play loop's one timer, on the virtual clock. `armed` counts the clock timers it set.
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '@speakerd/plugin-sdk';
import { Scheduler, type Deadline } from '../../src/playback/scheduler.js';

/** A scheduler whose handler takes what is due (no slack) and records it. */
function make(onFire?: (s: Scheduler, now: number) => void) {
  const clock = new VirtualClock();
  const fired: { at: number; took: Deadline[] }[] = [];
  const s: Scheduler = new Scheduler(clock, () => {
    const now = clock.now();
    const took = (['step', 'report'] as const).filter((k) => s.take(k, now, 0));
    fired.push({ at: now, took });
    onFire?.(s, now);
  });
  return { clock, s, fired };
}

describe('Scheduler', () => {
  it('arms one timer for the earliest deadline and fires it then', () => {
    const { clock, s, fired } = make();
    s.set('report', 300);
    s.set('step', 100);
    expect(clock.pending).toBe(1);
    clock.advanceTo(99);
    expect(fired).toEqual([]);
    clock.advanceTo(100);
    expect(fired).toEqual([{ at: 100, took: ['step'] }]);
    clock.advanceTo(300);
    expect(fired).toEqual([
      { at: 100, took: ['step'] },
      { at: 300, took: ['report'] },
    ]);
    expect(clock.pending).toBe(0);
  });

  it('a deadline moved later does not re-arm: the pending timer fires, finds nothing due, then arms for the rest', () => {
    const { clock, s, fired } = make();
    s.set('step', 100);
    expect(s.armed).toBe(1);
    s.set('step', 250); // later
    s.atLatest('report', 400);
    expect(s.armed).toBe(1);
    expect(clock.pending).toBe(1);
    clock.advanceTo(100);
    expect(fired).toEqual([{ at: 100, took: [] }]);
    expect(s.armed).toBe(2); // armed again once it fired, for what is left
    clock.advanceTo(250);
    expect(fired.at(-1)).toEqual({ at: 250, took: ['step'] });
    expect(s.armed).toBe(3);
    clock.advanceTo(400);
    expect(fired.at(-1)).toEqual({ at: 400, took: ['report'] });
    expect(s.armed).toBe(3);
  });

  it('a deadline moved earlier re-arms once; the timer it replaces never fires', () => {
    const { clock, s, fired } = make();
    s.set('step', 200);
    expect(s.armed).toBe(1);
    s.set('step', 100);
    expect(s.armed).toBe(2);
    s.set('step', 100); // the same again
    s.atLatest('step', 150); // not sooner than what is due
    s.set('report', 180); // later than the timer
    expect(s.armed).toBe(2);
    expect(clock.pending).toBe(1);
    clock.advanceTo(100);
    expect(fired).toEqual([{ at: 100, took: ['step'] }]);
    clock.advanceTo(1000);
    // nothing at 200: the replaced timer was cleared
    expect(fired.map((f) => f.at)).toEqual([100, 180]);
  });

  it('atLatest only ever brings a deadline forward; set moves it either way, Infinity unschedules', () => {
    const { s } = make();
    s.atLatest('step', 100);
    s.atLatest('step', 200);
    expect(s.dueAt('step')).toBe(100);
    s.atLatest('step', 50);
    expect(s.dueAt('step')).toBe(50);
    s.set('step', 500);
    expect(s.dueAt('step')).toBe(500);
    s.set('step', Infinity);
    expect(s.dueAt('step')).toBe(Infinity);
    expect(s.dueAt('report')).toBe(Infinity);
  });

  it('take says due within the slack and takes the deadline off; not before', () => {
    const { s } = make();
    s.set('step', 100);
    expect(s.take('step', 94, 5)).toBe(false);
    expect(s.dueAt('step')).toBe(100);
    expect(s.take('step', 95, 5)).toBe(true);
    expect(s.dueAt('step')).toBe(Infinity);
    expect(s.take('step', 1000, 5)).toBe(false); // taken: not due again
    s.set('report', 100);
    expect(s.take('report', 99.9, 0)).toBe(false);
    expect(s.take('report', 100, 0)).toBe(true);
  });

  it('nothing fires after close, and nothing is armed after it', () => {
    const { clock, s, fired } = make();
    s.set('step', 100);
    s.close();
    expect(clock.pending).toBe(0);
    s.set('step', 50);
    s.atLatest('report', 60);
    expect(s.armed).toBe(1);
    clock.advanceTo(10_000);
    expect(fired).toEqual([]);
  });

  it('close inside the handler: nothing is armed after it', () => {
    const { clock, s, fired } = make((sch, now) => {
      sch.set('step', now + 10);
      sch.close();
    });
    s.set('step', 100);
    clock.advanceTo(10_000);
    expect(fired.map((f) => f.at)).toEqual([100]);
    expect(clock.pending).toBe(0);
  });

  it('arming inside the handler happens once, after it, for the earliest of what is left', () => {
    let during: { armed: number; pending: number } | undefined;
    const { clock, s, fired } = make((sch, now) => {
      if (now !== 100) return;
      sch.set('step', now + 30);
      sch.set('step', now + 10); // earlier
      sch.atLatest('report', now + 20);
      sch.set('report', now + 5); // earlier still
      during = { armed: sch.armed, pending: clock.pending };
    });
    s.set('step', 100);
    clock.advanceTo(100);
    expect(during).toEqual({ armed: 1, pending: 0 }); // nothing armed while the handler runs
    expect(s.armed).toBe(2); // once, after it
    expect(clock.pending).toBe(1);
    expect(clock.nextDeadline()).toBe(105);
    clock.advanceTo(200);
    expect(fired.map((f) => [f.at, f.took])).toEqual([
      [100, ['step']],
      [105, ['report']],
      [110, ['step']],
    ]);
  });

  it('a deadline already past fires at once (no negative wait)', () => {
    const { clock, s, fired } = make();
    clock.advanceTo(500);
    s.set('step', 400);
    expect(clock.nextDeadline()).toBe(500);
    clock.advance(0);
    expect(fired).toEqual([{ at: 500, took: ['step'] }]);
  });
});
