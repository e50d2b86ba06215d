import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualClock, type SampleFormat } from '@speakerd/plugin-sdk';
import { CD, makeBackend, pattern, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.backend.close();
  h?.cleanup();
  h = undefined;
});

/** Advance the virtual clock in small steps, letting the real command read in between. */
async function advanceSlowly(clock: VirtualClock, ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.advance(Math.min(step, ms - t));
    await new Promise((r) => setTimeout(r, 1));
  }
}

function concat(...parts: Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

describe('pacing on the virtual clock', () => {
  it('writable is the lead at start, grows with time, and never bursts after a stall', async () => {
    h = makeBackend({ run: 'exec cat > /dev/null', leadMs: 20 });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    expect(b.writable()).toBe(0); // not active yet
    await b.activate(CD);
    expect(b.writable()).toBe(882); // 20 ms at 44.1 kHz
    expect(b.write(pattern(882, CD))).toBe(882);
    expect(b.writable()).toBe(0);
    expect(b.write(pattern(10, CD))).toBe(0); // nothing beyond the lead
    expect(b.delay!()).toBe(882);
    clock.advance(10);
    expect(b.delay!()).toBe(441);
    expect(b.writable()).toBe(441);
    clock.advance(5);
    expect(b.writable()).toBe(661); // floor(15 ms × 44.1) + lead − written
    expect(b.write(pattern(661, CD))).toBe(661);
    expect(b.writable()).toBe(0);
    expect(b.delay!()).toBe(882);
    // the host stalls for a minute: afterwards only the lead, no catching up
    clock.advance(60_000);
    expect(b.writable()).toBe(882);
    clock.jump(3_600_000);
    expect(b.writable()).toBe(882);
    expect(b.write(pattern(882, CD))).toBe(882);
    expect(b.writable()).toBe(0);
  });

  it('uses leadMs and the rate of the active format', async () => {
    h = makeBackend({ run: 'exec cat > /dev/null', leadMs: 100 });
    await h.backend.activate({ encoding: 'f32le', rate: 48000, channels: 6 });
    expect(h.backend.writable()).toBe(4800);
  });

  it('suspend: pause stops writing at once; resume restarts pacing from now', async () => {
    h = makeBackend({ run: 'exec cat > out.raw', pauseMode: 'suspend' });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    await b.activate(CD);
    const a = pattern(882, CD, 1);
    expect(b.write(a)).toBe(882);
    await b.pause!();
    expect(b.writable()).toBe(0);
    expect(b.delay!()).toBe(0); // what is in the pipe plays out; the position includes it
    expect(b.write(pattern(10, CD))).toBe(0);
    clock.advance(1000);
    expect(b.writable()).toBe(0);
    await b.resume!();
    expect(b.writable()).toBe(882);
    const c = pattern(882, CD, 2);
    expect(b.write(c)).toBe(882);
    await b.close();
    expect(Buffer.compare(readFileSync(join(h.dir, 'out.raw')), concat(a, c))).toBe(0);
  });

  it('silence: writes exactly the silence of the time paused (s16le zeros) at real-time pace', async () => {
    h = makeBackend({ run: 'exec cat > out.raw', pauseMode: 'silence' });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    await b.activate(CD);
    const a = pattern(882, CD, 1);
    expect(b.write(a)).toBe(882); // the lead is full when the pause comes
    await b.pause!();
    expect(b.writable()).toBe(0);
    expect(b.delay!()).toBe(0);
    await advanceSlowly(clock, 1000);
    await b.resume!();
    expect(b.writable()).toBe(0); // the silence kept the schedule: no burst after resume
    clock.advance(10);
    expect(b.writable()).toBe(441);
    clock.advance(10);
    expect(b.writable()).toBe(882);
    const c = pattern(882, CD, 2);
    expect(b.write(c)).toBe(882);
    expect(b.delay!()).toBe(882); // only host frames count, not the silence ahead of them
    await b.close();
    const expected = concat(a, new Uint8Array(44100 * 4), c);
    expect(Buffer.compare(readFileSync(join(h.dir, 'out.raw')), expected)).toBe(0);
  });

  it('silence: keeps the stream going in small steps while paused (u8 silence is 0x80)', async () => {
    const u8: SampleFormat = { encoding: 'u8', rate: 48000, channels: 1 };
    h = makeBackend({ run: 'exec cat > out.raw', pauseMode: 'silence', leadMs: 20 });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    await b.activate(u8);
    const a = pattern(960, u8, 5);
    expect(b.write(a)).toBe(960);
    await b.pause!();
    await advanceSlowly(clock, 500, 7);
    await b.resume!();
    clock.advance(20);
    const c = pattern(960, u8, 6);
    expect(b.write(c)).toBe(960);
    await b.close();
    const expected = concat(a, new Uint8Array(24000).fill(0x80), c);
    expect(Buffer.compare(readFileSync(join(h.dir, 'out.raw')), expected)).toBe(0);
  });

  it('pause before activate: the next activation starts paused', async () => {
    h = makeBackend({ run: 'exec cat > /dev/null' });
    const b = h.backend;
    await b.pause!();
    await b.activate(CD);
    expect(b.writable()).toBe(0);
    await b.resume!();
    expect(b.writable()).toBe(882);
  });
});
