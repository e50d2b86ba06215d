// BackendDriver: every call into a backend (serialization, contract checks, failure policy, state reports), with
// small hand-written backends on a virtual clock. Rules from packages/plugin-sdk/src/backend.ts.
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  SpeakerdError,
  VirtualClock,
  type Backend,
  type BackendMethod,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { MemoryLogger } from '@speakerd/plugin-sdk/testing';
import type { DriverTiming } from '../../src/playback/driver.js';
import { F, FB, deferred, makeDriver, pcm, settle } from './helpers.js';

const G: SampleFormat = { encoding: 's16le', rate: 16000, channels: 2 };
const CONTRACT = ErrorCodes.BACKEND_CONTRACT;
const BACKEND = ErrorCodes.BACKEND;

type Impl = { [K in keyof Backend]?: unknown };

/**
 * A backend from plain functions: every method call is recorded by name in `calls` (before it runs). Defaults: a
 * clock-paced backend that takes everything offered.
 */
function probe(impl: Impl = {}) {
  const calls: string[] = [];
  const all: Impl = {
    pacing: 'clock',
    activate: async () => {},
    writable: () => 1000,
    write: (d: Uint8Array) => d.length / FB,
    delay: () => 0,
    idle: async () => {},
    close: async () => {},
    ...impl,
  };
  const b: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(all)) {
    b[k] =
      typeof v === 'function'
        ? (...args: unknown[]) => {
            calls.push(k);
            return (v as (...a: unknown[]) => unknown)(...args);
          }
        : v;
  }
  return { backend: b as unknown as Backend, calls };
}

/** A driver on a fresh virtual clock around `impl`, activated in F. */
async function active(impl: Impl = {}, opts: { log?: MemoryLogger; timing?: DriverTiming } = {}) {
  const clock = new VirtualClock();
  const p = probe(impl);
  const failed: BackendMethod[] = [];
  const h = makeDriver(p.backend, clock, { ...opts, onFailed: (m) => failed.push(m) });
  expect(await h.driver.activate(F)).toBe(true);
  await settle();
  return { ...h, ...p, clock, failed };
}

/** Reports without their time stamp. */
const plain = (reports: { at: number }[]) => reports.map(({ at: _at, ...r }) => r);

/** Run the virtual clock to `t`, timer by timer, letting promises settle in between. */
async function runTo(clock: VirtualClock, t: number) {
  await settle();
  for (;;) {
    const next = clock.nextDeadline();
    if (next === undefined || next > t) break;
    clock.advanceTo(next);
    await settle();
  }
  clock.advanceTo(t);
  await settle();
}

/**
 * A stand-in for the play loop: on every wake-up it activates the backend when it may, and writes when it can;
 * it also looks every 100 ms. Records when the backend's activate() was called.
 */
function loop(impl: Impl, opts: { timing?: DriverTiming; log?: MemoryLogger } = {}) {
  const clock = new VirtualClock();
  const activations: number[] = [];
  const p = probe({
    ...impl,
    activate: (format: SampleFormat) => {
      activations.push(clock.now());
      return impl.activate ? (impl.activate as (f: SampleFormat) => unknown)(format) : Promise.resolve();
    },
  });
  const failed: BackendMethod[] = [];
  const step = () => {
    const d = h.driver;
    if (d.phase === 'closed') return;
    if (d.phase === 'inactive') {
      void d.activate(F);
      return;
    }
    if (!d.ready) return;
    const n = d.writable();
    if (n > 0) d.write(pcm(Math.min(n, 80), 1));
    d.delay();
  };
  const h = makeDriver(p.backend, clock, {
    ...opts,
    onWake: () => queueMicrotask(step),
    onFailed: (m) => failed.push(m),
  });
  const tick = () => {
    step();
    clock.setTimeout(tick, 100);
  };
  clock.setTimeout(tick, 100);
  step();
  return { ...h, ...p, clock, activations, failed, runTo: (t: number) => runTo(clock, t) };
}

const gaps = (xs: number[]) => xs.slice(1).map((x, i) => x - xs[i]!);

// ---------------------------------------------------------------------------------------------------------------

describe('one call at a time', () => {
  it('while activate() is pending, queries and writes answer 0/undefined without calling the backend', async () => {
    const clock = new VirtualClock();
    const act = deferred();
    const { backend, calls } = probe({ activate: () => act.promise, flush: () => 0, endFill: () => {} });
    const { driver } = makeDriver(backend, clock);
    const activated = driver.activate(F);
    expect(calls).toEqual(['activate']);
    expect(driver.ready).toBe(false);
    expect(driver.writable()).toBe(0);
    expect(driver.write(pcm(10, 1))).toBe(0);
    expect(driver.delay()).toBeUndefined();
    expect(driver.flush()).toBe(0);
    driver.endFill();
    await settle();
    expect(calls).toEqual(['activate']);
    act.resolve();
    expect(await activated).toBe(true);
    await settle();
    expect(driver.ready).toBe(true);
    expect(driver.writable()).toBe(1000);
    expect(calls).toEqual(['activate', 'writable']);
  });

  it('once activate() resolves true, the backend may be written at once', async () => {
    const { backend, calls } = probe();
    const { driver } = makeDriver(backend, new VirtualClock());
    expect(await driver.activate(F)).toBe(true);
    expect(driver.phase).toBe('active');
    expect(driver.ready).toBe(true);
    expect(driver.write(pcm(10, 1))).toBe(10);
    expect(calls).toEqual(['activate', 'write']);
  });

  it('operations queued meanwhile run after it, in order, each waiting for the one before', async () => {
    const clock = new VirtualClock();
    const act = deferred();
    const pau = deferred();
    const { backend, calls } = probe({
      activate: () => act.promise,
      pause: () => pau.promise,
      resume: () => {},
      setVolume: async () => {},
    });
    const { driver } = makeDriver(backend, clock);
    void driver.activate(F);
    driver.pause();
    driver.resume();
    const vol = driver.setVolume(40);
    const idled = driver.idle();
    await settle();
    expect(calls).toEqual(['activate']);
    act.resolve();
    await settle();
    expect(calls).toEqual(['activate', 'pause']); // pause() is pending: nothing else yet
    expect(driver.ready).toBe(false);
    expect(driver.writable()).toBe(0);
    expect(driver.write(pcm(10, 1))).toBe(0);
    expect(driver.delay()).toBeUndefined();
    expect(calls).toEqual(['activate', 'pause']);
    pau.resolve();
    await vol;
    await idled;
    expect(calls).toEqual(['activate', 'pause', 'resume', 'setVolume', 'idle']);
    expect(driver.phase).toBe('inactive');
  });

  it('while idle() is pending nothing is called; an activate() asked for meanwhile comes after it', async () => {
    const idl = deferred();
    const { driver, calls } = await active({ idle: () => idl.promise });
    const idled = driver.idle();
    const again = driver.activate(F);
    expect(driver.phase).toBe('idling');
    expect(driver.writable()).toBe(0);
    expect(driver.write(pcm(10, 1))).toBe(0);
    expect(driver.delay()).toBeUndefined();
    await settle();
    expect(calls).toEqual(['activate', 'idle']);
    idl.resolve();
    await idled;
    expect(await again).toBe(true);
    expect(calls).toEqual(['activate', 'idle', 'activate']);
    expect(driver.phase).toBe('active');
  });

  it('a synchronous pause hook holds nothing up', async () => {
    const { driver, calls } = await active({ pause: () => {} });
    driver.pause();
    expect(driver.ready).toBe(true);
    expect(driver.writable()).toBe(1000);
    expect(calls).toEqual(['activate', 'pause', 'writable']);
  });

  it('formatFor() is not called into the backend while another operation is pending', async () => {
    const clock = new VirtualClock();
    const act = deferred();
    const { backend, calls } = probe({ activate: () => act.promise, formatFor: () => undefined });
    const { driver } = makeDriver(backend, clock);
    void driver.activate(F);
    driver.formatFor(G);
    expect(calls).toEqual(['activate']);
    act.resolve();
    await settle();
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('returns are checked', () => {
  const badCounts: [string, () => unknown, string][] = [
    ['4095.5', () => 4095.5, 'returned 4095.5, not a whole number of frames ≥ 0'],
    ['-1', () => -1, 'returned -1, not a whole number of frames ≥ 0'],
    ['NaN', () => NaN, 'returned NaN, not a whole number of frames ≥ 0'],
    ['"7"', () => '7', 'returned "7", not a whole number of frames ≥ 0'],
    ['a promise', () => Promise.resolve(7), 'returned a promise; it must answer at once'],
  ];
  const methods = [
    { method: 'writable', call: (d: ReturnType<typeof makeDriver>['driver']) => d.writable(), answer: 0 },
    { method: 'delay', call: (d: ReturnType<typeof makeDriver>['driver']) => d.delay(), answer: undefined },
    { method: 'flush', call: (d: ReturnType<typeof makeDriver>['driver']) => d.flush(), answer: 0 },
  ] as const;
  for (const { method, call, answer } of methods) {
    for (const [name, value, problem] of badCounts) {
      it(`${method}() returning ${name} is a contract failure naming the method`, async () => {
        const { driver, reports, failed, calls } = await active({ [method]: value });
        expect(call(driver)).toBe(answer);
        expect(plain(reports)).toEqual([
          { state: 'lost', code: CONTRACT, plugin: 'test', method, message: `test: ${method}() ${problem}` },
        ]);
        expect(failed).toEqual([method]);
        expect(driver.phase).toBe('failed');
        await settle();
        expect(calls).toContain('idle');
      });
    }
  }

  it('valid frame counts pass through', async () => {
    const { driver, reports } = await active({ writable: () => 0, delay: () => 12, flush: () => 3 });
    expect(driver.writable()).toBe(0);
    expect(driver.delay()).toBe(12);
    expect(driver.flush()).toBe(3);
    expect(driver.write(pcm(10, 1))).toBe(10);
    expect(reports).toEqual([]);
  });

  const badWrites: [string, unknown, string][] = [
    ['11 for 10 offered', 11, 'returned 11 for 10 frames offered'],
    ['the bytes (20) for 10 frames', 20, 'returned 20 for 10 frames offered (bytes instead of frames?)'],
    ['2.5', 2.5, 'returned 2.5, not a whole number of frames ≥ 0 (offered 10)'],
    ['-1', -1, 'returned -1, not a whole number of frames ≥ 0 (offered 10)'],
  ];
  for (const [name, value, problem] of badWrites) {
    it(`write() returning ${name} is a contract failure`, async () => {
      const { driver, reports } = await active({ write: () => value });
      expect(driver.write(pcm(10, 1))).toBe(0);
      expect(plain(reports)).toEqual([
        { state: 'lost', code: CONTRACT, plugin: 'test', method: 'write', message: `test: write() ${problem}` },
      ]);
    });
  }

  it('write() returning fewer frames than offered (a short write) is fine', async () => {
    const { driver, reports } = await active({ write: () => 3 });
    expect(driver.write(pcm(10, 1))).toBe(3);
    expect(driver.write(pcm(10, 1))).toBe(3);
    expect(reports).toEqual([]);
  });

  it('formatFor() returning a non-format is a contract failure; undefined and a valid format are answers', async () => {
    let answer: unknown = undefined;
    const { driver, reports } = await active({ formatFor: () => answer });
    expect(driver.formatFor(G)).toBeUndefined();
    answer = { ...G, extra: 1 };
    expect(driver.formatFor(G)).toEqual(G);
    expect(reports).toEqual([]);
    answer = 's16le';
    expect(driver.formatFor(G)).toBeUndefined();
    expect(plain(reports)).toEqual([
      {
        state: 'lost',
        code: CONTRACT,
        plugin: 'test',
        method: 'formatFor',
        message: 'test: formatFor() returned "s16le", not a format',
      },
    ]);
  });

  it('formatFor() returning a format with a bad rate is a contract failure', async () => {
    const { driver, reports } = await active({ formatFor: () => ({ encoding: 's16le', rate: 44100.5, channels: 2 }) });
    expect(driver.formatFor(G)).toBeUndefined();
    expect(reports[0]).toMatchObject({
      code: CONTRACT,
      method: 'formatFor',
      message: 'test: formatFor() returned a format with rate 44100.5',
    });
  });

  it('negotiate() returning a non-format throws a contract violation at start-up, naming plugin and method', () => {
    for (const [value, problem] of [
      [null, 'returned null, not a format'],
      [{ encoding: 's17le', rate: 44100, channels: 2 }, 'returned a format with encoding "s17le"'],
      [{ encoding: 's16le', rate: 44100, channels: 0 }, 'returned a format with channels 0'],
    ] as const) {
      const { driver, reports } = makeDriver(probe({ negotiate: () => value }).backend, new VirtualClock());
      let err: unknown;
      try {
        driver.negotiate(F);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SpeakerdError);
      expect(err).toMatchObject({ code: CONTRACT, plugin: 'test', method: 'negotiate' });
      expect((err as Error).message).toBe(`negotiate() ${problem}`);
      expect(reports).toEqual([]);
    }
  });

  it('negotiate() returns a clean copy of a valid format, and the requested format when absent', () => {
    const { driver } = makeDriver(probe({ negotiate: () => ({ ...G, junk: true }) }).backend, new VirtualClock());
    expect(driver.negotiate(F)).toEqual(G);
    const { driver: plainDriver } = makeDriver(probe().backend, new VirtualClock());
    expect(plainDriver.negotiate(F)).toEqual(F);
  });

  it('negotiate()/init()/configure() errors are thrown at start-up stamped with the plugin and the method', async () => {
    const { driver, reports } = makeDriver(
      probe({
        init: async () => {
          throw new Error('no card');
        },
        negotiate: () => {
          throw new SpeakerdError('TEST_NO_FORMAT', 'nothing fits');
        },
        configure: () => Promise.reject(new Error('cannot write the SDP file')),
      }).backend,
      new VirtualClock(),
    );
    await expect(driver.init()).rejects.toMatchObject({ code: BACKEND, plugin: 'test', message: 'init(): no card' });
    expect(() => driver.negotiate(F)).toThrow(
      expect.objectContaining({ code: 'TEST_NO_FORMAT', plugin: 'test', message: 'negotiate(): nothing fits' }),
    );
    await expect(driver.configure(F)).rejects.toMatchObject({
      code: BACKEND,
      plugin: 'test',
      message: 'configure(): cannot write the SDP file',
    });
    expect(reports).toEqual([]);
    expect(driver.phase).toBe('inactive');
  });

  it('a synchronous throw from configure() is stamped the same way', async () => {
    const { driver } = makeDriver(
      probe({
        configure: () => {
          throw new Error('bad device');
        },
      }).backend,
      new VirtualClock(),
    );
    await expect(driver.configure(F)).rejects.toMatchObject({ plugin: 'test', message: 'configure(): bad device' });
  });

  it('a pacing that is neither "clock" nor "device" is refused when the driver is made', () => {
    expect(() => makeDriver(probe({ pacing: 'fast' }).backend, new VirtualClock())).toThrow(
      expect.objectContaining({ code: CONTRACT, plugin: 'test' }),
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('failure policy', () => {
  it('a throw in write(): one lost report, idle() called, the backend may be activated again after 1000 ms', async () => {
    const { driver, reports, failed, calls, clock } = await active({
      write: () => {
        throw new Error('broken pipe');
      },
    });
    expect(driver.write(pcm(10, 1))).toBe(0);
    expect(plain(reports)).toEqual([
      { state: 'lost', code: BACKEND, plugin: 'test', method: 'write', message: 'test: write() threw: broken pipe' },
    ]);
    expect(driver.state).toBe('lost');
    expect(failed).toEqual(['write']);
    await settle();
    expect(calls).toEqual(['activate', 'write', 'idle']);
    // during the back-off the backend is not activated
    expect(await driver.activate(F)).toBe(false);
    clock.advance(999);
    expect(driver.phase).toBe('failed');
    expect(await driver.activate(F)).toBe(false);
    expect(calls.filter((c) => c === 'activate')).toHaveLength(1);
    clock.advance(1);
    expect(driver.phase).toBe('inactive');
    expect(await driver.activate(F)).toBe(true);
    expect(calls.filter((c) => c === 'activate')).toHaveLength(2);
    expect(reports).toHaveLength(1); // still lost: nothing was accepted yet
  });

  it('a SpeakerdError thrown keeps its code; an activate() rejection is a failure too', async () => {
    const clock = new VirtualClock();
    const { backend } = probe({ activate: () => Promise.reject(new SpeakerdError('TEST_GONE', 'device vanished')) });
    const { driver, reports } = makeDriver(backend, clock);
    expect(await driver.activate(F)).toBe(false);
    expect(plain(reports)).toEqual([
      {
        state: 'lost',
        code: 'TEST_GONE',
        plugin: 'test',
        method: 'activate',
        message: 'test: activate() failed: device vanished',
      },
    ]);
    expect(driver.phase).toBe('failed');
  });

  it('a pause() hook that throws is a failure of the output', async () => {
    const { driver, reports } = await active({
      pause: () => {
        throw new Error('cannot pause');
      },
    });
    driver.pause();
    await settle();
    expect(reports[0]).toMatchObject({ state: 'lost', method: 'pause', message: 'test: pause() threw: cannot pause' });
  });

  it('while it keeps failing, activate() comes again after 1000, 2000, 4000 … ms, capped at 30000', async () => {
    const l = loop({
      write: () => {
        throw new Error('broken pipe');
      },
    });
    await l.runTo(100_000);
    expect(l.activations[0]).toBe(0);
    expect(gaps(l.activations).slice(0, 7)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(l.reports).toHaveLength(1); // lost once: the state did not change
    expect(l.calls.filter((c) => c === 'idle')).toHaveLength(l.activations.length);
  });

  it('while activate() keeps rejecting, the back-off doubles the same way', async () => {
    const l = loop({ activate: () => Promise.reject(new Error('no device')) });
    await l.runTo(40_000);
    expect(gaps(l.activations).slice(0, 5)).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(plain(l.reports)).toEqual([
      {
        state: 'lost',
        code: BACKEND,
        plugin: 'test',
        method: 'activate',
        message: 'test: activate() failed: no device',
      },
    ]);
  });

  it('failing again soon after a recovery continues the back-off (2000 ms, then 4000)', async () => {
    // write throws before 500 ms, plays from then on, and throws again from 3000 ms on
    const l = loop({
      write: (d: Uint8Array) => {
        const now = l.clock.now();
        if (now < 500 || now >= 3000) throw new Error('broken pipe');
        return d.length / FB;
      },
    });
    await l.runTo(10_000);
    expect(l.activations.slice(0, 4)).toEqual([0, 1000, 3000 + 2000, 3000 + 2000 + 4000]);
    expect(l.reports.map((r) => [r.state, r.at])).toEqual([
      ['lost', 0],
      ['ok', 1000],
      ['lost', 3000],
    ]);
  });

  it('after 10 s of playing since the recovery, the back-off starts again from 1000 ms', async () => {
    const l = loop({
      write: (d: Uint8Array) => {
        const now = l.clock.now();
        if (now < 500 || (now >= 2000 && now < 2500) || (now >= 14_000 && now < 14_500)) throw new Error('broken pipe');
        return d.length / FB;
      },
    });
    await l.runTo(20_000);
    // fails at 0 (wait 1000), recovers at 1000, fails at 2000 (wait 2000), recovers at 4000, plays 10 s,
    // fails at 14000: wait 1000 again
    expect(l.activations.slice(0, 4)).toEqual([0, 1000, 4000, 15_000]);
    expect(l.reports.map((r) => [r.state, r.at])).toEqual([
      ['lost', 0],
      ['ok', 1000],
      ['lost', 2000],
      ['ok', 4000],
      ['lost', 14_000],
      ['ok', 15_000],
    ]);
  });

  it('ok is reported only when a write is accepted again, once the step is over', async () => {
    let mode: 'throw' | 'zero' | 'take' = 'throw';
    const { driver, reports, clock } = await active({
      write: (d: Uint8Array) => {
        if (mode === 'throw') throw new Error('broken pipe');
        return mode === 'zero' ? 0 : d.length / FB;
      },
    });
    driver.write(pcm(10, 1));
    await settle();
    clock.advance(1000);
    expect(await driver.activate(F)).toBe(true);
    await settle();
    expect(reports.map((r) => r.state)).toEqual(['lost']); // active again, but nothing accepted yet
    mode = 'zero';
    expect(driver.write(pcm(10, 1))).toBe(0);
    await settle();
    expect(reports.map((r) => r.state)).toEqual(['lost']);
    mode = 'take';
    expect(driver.write(pcm(10, 1))).toBe(10);
    expect(reports.map((r) => r.state)).toEqual(['lost']); // not within the step
    await Promise.resolve();
    expect(plain(reports)[1]).toEqual({ state: 'ok', plugin: 'test', message: 'test: playing again' });
    expect(driver.state).toBe('ok');
    expect(driver.failure).toBeUndefined();
    driver.write(pcm(10, 1));
    await settle();
    expect(reports).toHaveLength(2); // ok once
  });

  it('no ok when something fails again within the same step as the accepted write', async () => {
    let broken = true;
    const { driver, reports, clock } = await active({
      write: (d: Uint8Array) => {
        if (broken) throw new Error('broken pipe');
        return d.length / FB;
      },
      delay: () => (broken ? 0 : -1), // once writes are taken again, delay() breaks the contract
    });
    driver.write(pcm(10, 1));
    await settle();
    clock.advance(1000);
    await driver.activate(F);
    await settle();
    broken = false;
    expect(driver.write(pcm(10, 1))).toBe(10);
    expect(driver.delay()).toBeUndefined();
    await settle();
    expect(plain(reports)).toEqual([
      { state: 'lost', code: BACKEND, plugin: 'test', method: 'write', message: 'test: write() threw: broken pipe' },
    ]);
    expect(driver.failure?.method).toBe('delay');
    expect(driver.phase).toBe('failed');
  });

  it('a state is only reported when it changes, and plugin reports are combined with failures', async () => {
    let broken = false;
    const { driver, reports, clock } = await active({
      write: (d: Uint8Array) => {
        if (broken) throw new Error('broken pipe');
        return d.length / FB;
      },
    });
    driver.pluginState('lost', 'cable unplugged');
    driver.pluginState('lost', 'cable unplugged');
    expect(plain(reports)).toEqual([{ state: 'lost', plugin: 'test', message: 'test: cable unplugged' }]);
    driver.pluginState('recovering', 'reconnecting');
    driver.pluginState('ok', '');
    driver.pluginState('ok', 'fine');
    expect(plain(reports).slice(1)).toEqual([
      { state: 'recovering', plugin: 'test', message: 'test: reconnecting' },
      { state: 'ok', plugin: 'test', message: 'test: playing again' },
    ]);
    driver.pluginState('weird' as never, 'x'); // not a state: ignored
    expect(reports).toHaveLength(3);

    // the driver fails: lost; a plugin's ok while failed is not reported
    broken = true;
    driver.write(pcm(10, 1));
    expect(reports.at(-1)).toMatchObject({ state: 'lost', method: 'write' });
    driver.pluginState('ok', 'back');
    driver.pluginState('lost', 'gone again');
    expect(reports).toHaveLength(4);
    await settle();
    clock.advance(1000);
    await driver.activate(F);
    await settle();
    broken = false;
    driver.pluginState('ok', 'back');
    expect(reports).toHaveLength(4);
    expect(driver.write(pcm(10, 1))).toBe(10);
    await settle();
    expect(plain(reports).slice(4)).toEqual([{ state: 'ok', plugin: 'test', message: 'test: back' }]);
  });

  it('after a recovery the plugin’s own lost state stands: no ok is reported', async () => {
    let broken = true;
    const { driver, reports, clock } = await active({
      write: (d: Uint8Array) => {
        if (broken) throw new Error('broken pipe');
        return d.length / FB;
      },
    });
    driver.write(pcm(10, 1));
    driver.pluginState('lost', 'no recipients');
    await settle();
    clock.advance(1000);
    await driver.activate(F);
    await settle();
    broken = false;
    expect(driver.write(pcm(10, 1))).toBe(10);
    await settle();
    expect(driver.failure).toBeUndefined(); // the driver recovered
    expect(reports.map((r) => r.state)).toEqual(['lost']);
    expect(driver.state).toBe('lost');
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('idle() and close()', () => {
  for (const [name, fn, how] of [
    [
      'throwing',
      () => {
        throw new Error('nope');
      },
      'threw',
    ],
    ['rejecting', () => Promise.reject(new Error('nope')), 'failed'],
  ] as const) {
    it(`idle() ${name} is logged, never a failure report`, async () => {
      const { driver, reports, log, failed } = await active({ idle: fn });
      await driver.idle();
      expect(driver.phase).toBe('inactive');
      expect(reports).toEqual([]);
      expect(failed).toEqual([]);
      expect(log.entries.filter((e) => e.level === 'error').map((e) => e.msg)).toEqual([
        `test: idle() ${how} (ignored): nope`,
      ]);
      expect(await driver.activate(F)).toBe(true);
    });

    it(`close() ${name} is logged, never a failure report`, async () => {
      const { driver, reports, log } = await active({ close: fn });
      await driver.close();
      expect(driver.phase).toBe('closed');
      expect(reports).toEqual([]);
      expect(log.count(new RegExp(`^test: close\\(\\) ${how} \\(ignored\\): nope$`))).toBe(1);
    });
  }

  it('idle() failing after a failure changes nothing: one lost report', async () => {
    const { driver, reports, calls } = await active({
      write: () => {
        throw new Error('broken pipe');
      },
      idle: () => Promise.reject(new Error('also broken')),
    });
    driver.write(pcm(10, 1));
    await settle();
    expect(calls).toContain('idle');
    expect(reports).toHaveLength(1);
    expect(driver.phase).toBe('failed');
  });

  it('close() cancels a pending retry: no wake-up, no activation after it', async () => {
    const { driver, calls, clock, wakes } = await active({
      write: () => {
        throw new Error('broken pipe');
      },
    });
    driver.write(pcm(10, 1));
    await settle();
    await driver.close();
    await settle();
    const woken = wakes.count;
    clock.advance(60_000);
    await settle();
    expect(wakes.count).toBe(woken);
    expect(driver.phase).toBe('closed');
    expect(clock.pending).toBe(0);
    expect(await driver.activate(F)).toBe(false);
    expect(calls.filter((c) => c === 'activate')).toHaveLength(1);
  });

  it('close() while activate() is pending waits for it, then nothing else is called', async () => {
    const clock = new VirtualClock();
    const act = deferred();
    const { backend, calls } = probe({ activate: () => act.promise, pause: () => {}, resume: () => {} });
    const { driver } = makeDriver(backend, clock);
    const activated = driver.activate(F);
    driver.pause();
    void driver.idle();
    const closed = driver.close();
    driver.resume();
    await settle();
    expect(calls).toEqual(['activate']);
    act.resolve();
    await activated;
    await closed;
    await settle();
    expect(calls).toEqual(['activate', 'close']);
  });

  it('nothing is called after close()', async () => {
    const { driver, calls, reports } = await active({
      pause: () => {},
      resume: () => {},
      endFill: () => {},
      flush: () => 0,
      formatFor: () => undefined,
    });
    await driver.close();
    const before = calls.length;
    expect(await driver.activate(F)).toBe(false);
    expect(await driver.activate(G, { fallback: true })).toBe(false);
    driver.pause();
    driver.resume();
    expect(driver.writable()).toBe(0);
    expect(driver.write(pcm(10, 1))).toBe(0);
    expect(driver.delay()).toBeUndefined();
    expect(driver.flush()).toBe(0);
    driver.endFill();
    expect(driver.formatFor(G)).toBeUndefined();
    await driver.idle();
    await driver.close();
    driver.pluginState('lost', 'late');
    await settle();
    expect(calls.slice(before)).toEqual([]);
    expect(reports).toEqual([]);
  });

  it('setVolume() after close() does not call the backend', async () => {
    const { driver, calls } = await active({ setVolume: () => {} });
    await driver.close();
    const before = calls.length;
    await driver.setVolume(20).catch(() => {});
    await settle();
    expect(calls.slice(before)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('rate-limited logs', () => {
  it('50 failures in a minute produce at most a handful of error log lines; the next one tells how many were not', async () => {
    const log = new MemoryLogger();
    const l = loop(
      {
        write: () => {
          throw new Error('broken pipe');
        },
        idle: () => Promise.reject(new Error('idle broken too')),
      },
      { log, timing: { backoffMinMs: 1000, backoffMaxMs: 1000, stableMs: 10_000 } },
    );
    await l.runTo(50_500);
    expect(l.activations.length).toBeGreaterThanOrEqual(50);
    const errors = () => log.entries.filter((e) => e.level === 'error');
    expect(errors().length).toBeGreaterThanOrEqual(1);
    expect(errors().length).toBeLessThanOrEqual(5);
    expect(errors()[0]!.msg).toBe('test: write() threw: broken pipe; trying again in 1000 ms');
    expect(l.reports).toHaveLength(1);
    await l.runTo(62_500);
    const late = errors().find((e) => typeof e.fields['suppressed'] === 'number');
    expect(late?.fields['suppressed']).toBeGreaterThan(40);
  });
});

// ---------------------------------------------------------------------------------------------------------------

describe('setVolume and per-track activation', () => {
  it('a setVolume() rejection rejects the returned promise with a stamped error; it is no failure', async () => {
    const { driver, reports, failed } = await active({
      setVolume: () => Promise.reject(new Error('mixer gone')),
    });
    expect(driver.hasHardwareVolume).toBe(true);
    await expect(driver.setVolume(30)).rejects.toMatchObject({
      code: BACKEND,
      plugin: 'test',
      message: 'setVolume(): mixer gone',
    });
    expect(reports).toEqual([]);
    expect(failed).toEqual([]);
    expect(driver.phase).toBe('active');
    expect(driver.writable()).toBe(1000);
  });

  it('a setVolume() that throws a SpeakerdError keeps its code', async () => {
    const { driver, reports } = await active({
      setVolume: () => {
        throw new SpeakerdError('TEST_MIXER', 'no such control');
      },
    });
    await expect(driver.setVolume(30)).rejects.toMatchObject({
      code: 'TEST_MIXER',
      plugin: 'test',
      message: 'setVolume(): no such control',
    });
    expect(reports).toEqual([]);
  });

  it('setVolume() hands the value to the backend and resolves', async () => {
    const got: unknown[] = [];
    const { driver } = await active({ setVolume: async (v: number) => void got.push(v) });
    await driver.setVolume(42.5);
    expect(got).toEqual([42.5]);
  });

  for (const [name, fn] of [
    ['rejects', () => Promise.reject(new Error('16 kHz refused'))],
    [
      'throws',
      () => {
        throw new Error('16 kHz refused');
      },
    ],
  ] as const) {
    it(`activate(format, {fallback: true}) that ${name}: false, inactive, no failure report`, async () => {
      const clock = new VirtualClock();
      const { backend, calls } = probe({
        activate: (f: SampleFormat) => (f.rate === 16000 ? fn() : Promise.resolve()),
      });
      const log = new MemoryLogger();
      const { driver, reports } = makeDriver(backend, clock, { log });
      expect(await driver.activate(F)).toBe(true);
      expect(await driver.activate(G, { fallback: true })).toBe(false);
      expect(driver.phase).toBe('inactive');
      expect(driver.failure).toBeUndefined();
      expect(reports).toEqual([]);
      expect(log.entries.filter((e) => e.level === 'error')).toEqual([]);
      expect(await driver.activate(F)).toBe(true);
      expect(driver.format).toEqual(F);
      expect(calls.filter((c) => c === 'activate')).toHaveLength(3);
    });
  }

  it('activate(format, {fallback: true}) that resolves switches the format', async () => {
    const { driver } = await active();
    expect(await driver.activate(G, { fallback: true })).toBe(true);
    expect(driver.format).toEqual(G);
    expect(driver.phase).toBe('active');
  });
});

describe('wake-ups', () => {
  it('the plugin’s wake() reaches the loop only while active; a finished operation wakes it', async () => {
    const clock = new VirtualClock();
    const { backend } = probe();
    const { driver, wakes } = makeDriver(backend, clock);
    driver.pluginWake();
    expect(wakes.count).toBe(0);
    await driver.activate(F);
    await settle();
    const afterActivate = wakes.count;
    expect(afterActivate).toBeGreaterThanOrEqual(1);
    driver.pluginWake();
    expect(wakes.count).toBe(afterActivate + 1);
  });
});
