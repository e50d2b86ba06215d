import { describe, expect, it } from 'vitest';
import { FrameRing } from '../src/ring.js';

const frames = (...v: number[]) => Uint8Array.from(v.flatMap((x) => [x, x + 100])); // 2 bytes a frame

describe('FrameRing: the host frames not yet sent', () => {
  it('takes whole frames up to its room, and gives them back in order across the wrap', () => {
    const r = new FrameRing();
    r.configure(4, 2);
    expect(r.write(frames(1, 2, 3), undefined)).toBe(3);
    expect(r.write(frames(4, 5, 6), undefined)).toBe(1); // room for one
    expect(r.write(new Uint8Array(1), undefined)).toBe(0); // no whole frame
    const out = Buffer.alloc(2 + 3 * 2);
    r.take(out, 2, 3);
    expect([...out.subarray(2)]).toEqual([1, 101, 2, 102, 3, 103]);
    expect(r.write(frames(5, 6, 7), undefined)).toBe(3); // wraps
    expect(r.count).toBe(4);
    const meta = new Float64Array(4);
    r.span(4, meta, 1); // frames 4 (at byte 6) then 5 6 7 from the start
    expect([...meta]).toEqual([0, 6, 2, 6]);
    expect([...r.buf]).toEqual([5, 105, 6, 106, 7, 107, 4, 104]);
    expect(r.count).toBe(0);
    expect(r.room).toBe(4);
  });

  it('reorders channels as frames enter, and clear drops what is queued', () => {
    const r = new FrameRing();
    r.configure(2, 6); // 3 channels of 2 bytes
    expect(r.write(Uint8Array.from([1, 1, 2, 2, 3, 3]), [0, 2, 1])).toBe(1);
    expect([...r.buf.subarray(0, 6)]).toEqual([1, 1, 3, 3, 2, 2]);
    expect(r.clear()).toBe(1);
    expect(r.count).toBe(0);
  });
});
