import { describe, expect, it } from 'vitest';
import { Timeline } from '../src/timeline.js';

describe('Timeline: the one catch-up and marker rule of both senders', () => {
  const make = () => {
    const t = new Timeline(65535, 0xfffffff0);
    t.configure(1000, 1); // 1 frame a ms
    t.anchor(100);
    return t;
  };

  it('a packet is due at anchor + frames / rate; advance moves sequence (wrapping) and timestamp, clears the marker', () => {
    const t = make();
    expect(t.due(100, 50)).toBe(100);
    expect(t.markNext).toBe(true);
    t.advance(10);
    expect(t.seq).toBe(0);
    expect(t.markNext).toBe(false);
    expect(t.deadline()).toBe(110);
    const h = Buffer.alloc(12);
    t.header(h, 10, 7);
    expect(h.readUInt16BE(2)).toBe(0);
    expect(h.readUInt32BE(4)).toBe(0xfffffffa);
    expect(h[1]).toBe(10); // no marker
  });

  it('a stall within catchUpMs is caught up (due in the past), a longer one moves the schedule to now with a marker', () => {
    const t = make();
    t.advance(10);
    expect(t.due(150, 50)).toBe(110); // 40 ms late: caught up
    expect(t.markNext).toBe(false);
    expect(t.due(200, 50)).toBe(200); // 90 ms late: now, the timestamp skips 90 frames
    expect(t.markNext).toBe(true);
    expect(t.cursor).toBe(100);
    expect(t.timestampAt(250)).toBe(0xfffffff0 + 150);
  });

  it('rewind takes back unsent packets and their marker; anchor after a gap moves the timestamp by the gap', () => {
    const t = make();
    t.advance(10);
    t.advance(10);
    t.rewind(2, 20, true);
    expect(t.seq).toBe(65535);
    expect(t.cursor).toBe(0);
    expect(t.markNext).toBe(true);
    t.advance(10); // ends at 110
    t.anchor(500); // restarts 390 ms after the end
    expect(t.cursor).toBe(400);
    expect(t.deadline()).toBe(500);
  });

  it('restart: a dry spell back within catchUpMs keeps the schedule and no marker; a longer one, or a pause, starts a talkspurt', () => {
    const t = make();
    t.advance(10); // ends at 110
    t.restart(150, true, 50); // dry, back 40 ms late: caught up
    expect(t.markNext).toBe(false);
    expect(t.cursor).toBe(10);
    expect(t.due(150, 50)).toBe(110);
    t.advance(10); // ends at 120
    t.restart(171, true, 50); // dry, 51 ms: a new talkspurt, the timestamp skips the 51 frames
    expect(t.markNext).toBe(true);
    expect(t.cursor).toBe(71);
    t.advance(10); // ends at 181
    t.restart(190, false, 50); // after a pause: a talkspurt however short
    expect(t.markNext).toBe(true);
    expect(t.cursor).toBe(90);
  });
});
