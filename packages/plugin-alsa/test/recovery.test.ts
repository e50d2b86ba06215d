import { afterEach, describe, expect, it } from 'vitest';
import { errnoNumber } from '../src/index.js';
import { CD, binding, feed, haveAlsa, makeBackend, noise, readCapture, until, type Harness } from './helpers.js';

const ok = haveAlsa();
const E = Object.fromEntries(
  ['EPIPE', 'ESTRPIPE', 'ENODEV', 'EBUSY', 'EBADFD'].map((n) => [n, errnoNumber(n)!]),
) as Record<'EPIPE' | 'ESTRPIPE' | 'ENODEV' | 'EBUSY' | 'EBADFD', number>;
const harnesses: Harness[] = [];
afterEach(async () => {
  binding()?.clearFaults();
  for (const h of harnesses.splice(0)) await h.backend.close();
});

/** Play `seconds` of noise with `fault` injected after the first quarter; returns the harness and the data. */
async function playWithFault(fault: Parameters<ReturnType<typeof binding>['injectFault']>[0]) {
  const h = makeBackend();
  harnesses.push(h);
  const data = noise(44100 * 4 * 2, 11);
  await h.backend.activate(CD);
  await feed(h, data.subarray(0, data.length / 4), CD);
  binding().injectFault(fault);
  await feed(h, data.subarray(data.length / 4), CD);
  await until(() => h.backend.delay() === 0, 10_000, 'everything played');
  // the writer's events come through a thread-safe function, on a later turn of the event loop; idle() releases
  // the stream, after which its events are ignored. A writer on a null PCM (a real-time one above all) can play
  // everything out before they arrive: let them in first
  await new Promise((r) => setTimeout(r, 50));
  await h.backend.idle();
  return { h, data };
}

describe.skipIf(!ok)('alsa recovery (fault injection through the addon test hook)', () => {
  it('xrun (EPIPE): prepares and goes on, nothing lost, no backend event, logged', async () => {
    const { h, data } = await playWithFault({ write: E.EPIPE, writeCount: 1 });
    expect(Buffer.compare(readCapture(h.file), Buffer.from(data))).toBe(0);
    expect(h.events.states).toEqual([]);
    expect(h.log.entries.some((e) => e.level === 'warn' && /underrun/.test(e.msg))).toBe(true);
  });

  it('suspend (ESTRPIPE): resume or prepare, reported as recovering then ok', async () => {
    const { h, data } = await playWithFault({ write: E.ESTRPIPE, writeCount: 1 });
    expect(Buffer.compare(readCapture(h.file), Buffer.from(data))).toBe(0);
    expect(h.events.states.map((s) => s.state)).toEqual(['recovering', 'ok']);
    expect(h.events.states[0]!.message).toMatch(/suspended/);
  });

  for (const name of ['ENODEV', 'EBUSY', 'EBADFD'] as const) {
    it(`device lost (${name}) then back: lost, queue keeps what the host writes, reopened with backoff, ok`, async () => {
      // the write fails, and so do the next two reopens (250 ms, then 500 ms later)
      const { h, data } = await playWithFault({ write: E[name], writeCount: 1, open: E.ENODEV, openCount: 2 });
      expect(h.events.states.map((s) => s.state)).toEqual(['lost', 'ok']);
      expect(h.events.states[0]!.message).toMatch(/failed while writing/);
      expect(h.events.states[1]!.message).toMatch(/is back/);
      // the null PCM holds nothing, and the file plugin writes out its buffer on drop: nothing is lost
      expect(Buffer.compare(readCapture(h.file), Buffer.from(data))).toBe(0);
    });
  }

  it('a device busy when playback starts: activate resolves, lost, then ok when it can be opened', async () => {
    const h = makeBackend();
    harnesses.push(h);
    binding().injectFault({ open: E.EBUSY, openCount: 2 });
    const data = noise(44100 * 4, 12);
    await h.backend.activate(CD);
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
    // while lost the bounded queue fills and then takes nothing more: the host keeps buffering
    const first = h.backend.write(data);
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(data.length / 4);
    expect(h.backend.writable()).toBe(0);
    await feed(h, data.subarray(first * 4), CD);
    await until(() => h.events.states.length === 2, 5000, 'ok');
    await h.backend.idle();
    expect(h.events.states.map((s) => s.state)).toEqual(['lost', 'ok']);
    expect(Buffer.compare(readCapture(h.file), Buffer.from(data))).toBe(0);
  });
});

describe.skipIf(!ok)('alsa: the event loop stays free while the writer thread blocks', () => {
  it('a timer keeps ticking while every write sleeps', async () => {
    const h = makeBackend();
    harnesses.push(h);
    await h.backend.activate(CD);
    const data = noise(44100 * 4 * 2, 13);
    // the writer thread sleeps 400 ms before each of its next 3 writes, as if stuck in a blocking write
    binding().injectFault({ sleepMs: 400, sleepCount: 3 });
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 5);
    let sawFull = false;
    const started = performance.now();
    const fed = feed(h, data, CD).then(() => performance.now());
    while (performance.now() - started < 1000) {
      if (h.backend.writable() === 0) sawFull = true;
      await new Promise((r) => setTimeout(r, 20));
    }
    const fedAt = await fed;
    clearInterval(timer);
    await h.backend.idle();
    const maxGap = Math.max(...gaps);
    console.log(
      `event loop while the writer blocked 3 x 400 ms: ${gaps.length} ticks, max gap ${maxGap.toFixed(1)} ms, ` +
        `all queued after ${(fedAt - started).toFixed(0)} ms`,
    );
    expect(sawFull).toBe(true); // back-pressure: the bounded queue filled and said so
    expect(h.events.wakes).toBeGreaterThan(0); // and room, once the writer went on, came back through the TSFN
    expect(gaps.length).toBeGreaterThan(20);
    expect(maxGap).toBeLessThan(300); // far below the 400 ms each write was blocked
    expect(Buffer.compare(readCapture(h.file), Buffer.from(data))).toBe(0);
  });
});
