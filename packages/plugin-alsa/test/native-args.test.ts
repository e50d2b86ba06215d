// Every entry point of the addon checks its arguments and state: a missing argument, one of the wrong type, a
// value out of range or a closed handle is a TypeError / RangeError / Error with a `code`
// (NativeErrorCodes), thrown to JavaScript, and the process carries on. Both addons: the production one
// (what speakerd runs) and the test one (its extra entry points too).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  ADDON_PATH,
  NativeErrorCodes as C,
  TEST_ADDON_PATH,
  type Binding,
  type NativeStream,
  type TestBinding,
} from '../src/binding.js';
import { haveCapability } from '../../../test/helpers/tools.js';
import { NULL_STREAM, expectCoded } from './helpers.js';

const require = createRequire(import.meta.url);
const built = existsSync(ADDON_PATH) && existsSync(TEST_ADDON_PATH);
const ok = haveCapability('the ALSA addons', built, `${ADDON_PATH} or ${TEST_ADDON_PATH} is missing`);
const prod = ok ? (require(ADDON_PATH) as Binding) : undefined;
const test = ok ? (require(TEST_ADDON_PATH) as TestBinding) : undefined;
const haveLib = ok && prod!.load() === undefined && test!.load() === undefined;

const OPTS = NULL_STREAM;
const PROBE = { device: 'null', format: 2, rate: 44100, channels: 2 };
const anything = (): void => {};

/** A stream on the null PCM; closed (and its thread reaped) when `use` is done. */
async function withStream(b: Binding, use: (s: NativeStream) => void | Promise<void>): Promise<void> {
  let closed!: () => void;
  const done = new Promise<void>((r) => (closed = r));
  const s: NativeStream = new b.Stream(OPTS, (type) => {
    if (type !== 'closed') return;
    s.join();
    closed();
  });
  try {
    await use(s);
  } finally {
    s.close(false);
    await done;
  }
}

for (const [name, b] of [
  ['production', prod],
  ['test', test],
] as const) {
  describe.skipIf(!haveLib)(`the ${name} addon's entry points check their arguments`, () => {
    it('load(), setLogHandler(handler)', () => {
      expectCoded(() => (b!.load as (x: unknown) => void)(1), TypeError, C.ARGUMENT, 'load()');
      expectCoded(() => (b!.setLogHandler as () => void)(), TypeError, C.ARGUMENT, 'setLogHandler');
      expectCoded(() => b!.setLogHandler('x' as never), TypeError, C.ARGUMENT, 'must be a function');
      expectCoded(() => b!.setLogHandler({} as never), TypeError, C.ARGUMENT);
      b!.setLogHandler(anything);
      b!.setLogHandler(null);
    });

    it('probeAsync(options, callback)', () => {
      const p = b!.probeAsync as (...a: unknown[]) => void;
      expectCoded(() => p(), TypeError, C.ARGUMENT, 'probeAsync(options, callback): expected 2 arguments, got 0');
      expectCoded(() => p(PROBE), TypeError, C.ARGUMENT);
      expectCoded(() => p('null', anything), TypeError, C.ARGUMENT, 'argument 1 must be an object');
      expectCoded(() => p(PROBE, 'cb'), TypeError, C.ARGUMENT, 'argument 2 must be a function');
      expectCoded(() => p({ ...PROBE, device: 7 }, anything), TypeError, C.ARGUMENT, 'options.device must be a string');
      expectCoded(() => p({ ...PROBE, device: '' }, anything), RangeError, C.RANGE, 'options.device');
      expectCoded(() => p({ ...PROBE, device: 'nu\0ll' }, anything), RangeError, C.RANGE);
      expectCoded(() => p({ ...PROBE, rate: '44100' }, anything), TypeError, C.ARGUMENT, 'options.rate');
      expectCoded(() => p({ ...PROBE, rate: 0 }, anything), RangeError, C.RANGE, 'options.rate');
      expectCoded(() => p({ ...PROBE, rate: 44100.5 }, anything), RangeError, C.RANGE);
      expectCoded(() => p({ ...PROBE, channels: -1 }, anything), RangeError, C.RANGE, 'options.channels');
      expectCoded(() => p({ ...PROBE, format: Number.NaN }, anything), RangeError, C.RANGE, 'got NaN');
      expectCoded(() => p({ ...PROBE, allowResample: 1 }, anything), TypeError, C.ARGUMENT, 'allowResample');
    });

    it('new Stream(options, onEvent)', () => {
      const S = b!.Stream as unknown as new (...a: unknown[]) => NativeStream;
      expectCoded(() => new S(), TypeError, C.ARGUMENT, 'new Stream(options, onEvent): expected 2 arguments');
      expectCoded(() => new S(OPTS), TypeError, C.ARGUMENT);
      expectCoded(() => new S(null, anything), TypeError, C.ARGUMENT, 'argument 1 must be an object, got null');
      expectCoded(() => new S(OPTS, {}), TypeError, C.ARGUMENT, 'argument 2 must be a function');
      const bad: [Record<string, unknown>, ErrorConstructor, string][] = [
        [{ device: undefined }, TypeError, C.ARGUMENT],
        [{ format: -1 }, RangeError, C.RANGE],
        [{ rate: 'fast' }, TypeError, C.ARGUMENT],
        [{ rate: 0 }, RangeError, C.RANGE],
        [{ channels: 0 }, RangeError, C.RANGE],
        [{ bufferUs: 0 }, RangeError, C.RANGE],
        [{ periodUs: Infinity }, RangeError, C.RANGE],
        [{ frameBytes: 0 }, RangeError, C.RANGE],
        [{ queueFrames: 0 }, RangeError, C.RANGE],
        [{ queueFrames: 2 ** 26, frameBytes: 8 }, RangeError, C.RANGE],
        [{ realtime: 'yes' }, TypeError, C.ARGUMENT],
      ];
      for (const [patch, Kind, code] of bad) expectCoded(() => new S({ ...OPTS, ...patch }, anything), Kind, code);
    });

    it('the Stream methods: counts, types, ranges', async () => {
      await withStream(b!, (s) => {
        const m = s as unknown as Record<string, (...a: unknown[]) => unknown>;
        for (const f of ['open', 'writable', 'endFill', 'delay', 'flush', 'info', 'join', 'realtime'])
          expectCoded(() => m[f]!.call(s, 1), TypeError, C.ARGUMENT, `${f}(): expected 0 arguments, got 1`);
        expectCoded(() => m.write!.call(s), TypeError, C.ARGUMENT, 'write(data): expected 1 argument, got 0');
        expectCoded(() => m.write!.call(s, 'abcd'), TypeError, C.ARGUMENT, 'must be a Uint8Array');
        expectCoded(() => m.write!.call(s, new ArrayBuffer(8)), TypeError, C.ARGUMENT);
        expectCoded(() => s.write(new Uint8Array(6)), RangeError, C.RANGE, 'not a whole number of 4-byte frames');
        expectCoded(() => m.drain!.call(s), TypeError, C.ARGUMENT, 'drain(close)');
        expectCoded(() => m.drain!.call(s, 'yes'), TypeError, C.ARGUMENT, 'must be a boolean');
        expectCoded(() => m.close!.call(s), TypeError, C.ARGUMENT, 'close(drain)');
        expectCoded(() => m.close!.call(s, 0), TypeError, C.ARGUMENT, 'must be a boolean');
        // and the right calls work
        s.open();
        expect(s.write(new Uint8Array(4 * 100))).toBe(100);
        // any typed array is taken by its bytes (the binding's type says Uint8Array)
        expect(s.write(new Int16Array(2 * 10) as unknown as Uint8Array)).toBe(10);
        expect(s.writable()).toBeLessThanOrEqual(4096);
        expect(s.info().capacityFrames).toBe(4096);
      });
    });

    it('a closed stream: every call but close, info, realtime and join is SPEAKERD_ERR_ALSA_CLOSED', async () => {
      await new Promise<void>((resolve) => {
        const s: NativeStream = new b!.Stream(OPTS, (type) => {
          if (type !== 'closed') return;
          s.join();
          resolve();
        });
        s.open();
        s.close(false);
        const closed = [
          () => s.open(),
          () => s.write(new Uint8Array(4)),
          () => s.writable(),
          () => s.endFill(),
          () => s.delay(),
          () => s.flush(),
          () => s.drain(true),
        ];
        for (const f of closed) expectCoded(f, Error, C.CLOSED, 'the stream is closed');
        s.close(false); // a second close does nothing
        expect(s.info().capacityFrames).toBe(4096);
        expect(s.realtime().requested).toBe(false);
      });
    });

    it('new Mixer(card, control, index)', () => {
      const M = b!.Mixer as unknown as new (...a: unknown[]) => unknown;
      expectCoded(() => new M(), TypeError, C.ARGUMENT, 'new Mixer(card, control, index): expected 3 arguments');
      expectCoded(() => new M('default', 'Master'), TypeError, C.ARGUMENT);
      expectCoded(() => new M(0, 'Master', 0), TypeError, C.ARGUMENT, 'argument 1 must be a string, got a number');
      expectCoded(() => new M('default', null, 0), TypeError, C.ARGUMENT, 'argument 2');
      expectCoded(() => new M('default', 'Master', -1), RangeError, C.RANGE, 'argument 3');
      expectCoded(() => new M('default', 'Master', 0.5), RangeError, C.RANGE);
      expectCoded(() => new M('default', 'Master', '0'), TypeError, C.ARGUMENT);
      // a card that is not there: the mixer's own coded error, with libasound's errno
      expectCoded(() => new M('hw:speakerd_no_such_card', 'Master', 0), Error, C.MIXER, 'cannot attach the mixer');
    });

    it('the process is alive and the addon still works after all of that', async () => {
      const r = await new Promise<{ ok: boolean }>((resolve) => b!.probeAsync(PROBE, resolve));
      expect(r.ok).toBe(true);
    });
  });
}

describe.skipIf(!haveLib)("the test addon's own entry points check their arguments", () => {
  it('injectFault(spec), clearFaults(), probe(options)', () => {
    const t = test!;
    expectCoded(() => (t.injectFault as () => void)(), TypeError, C.ARGUMENT, 'injectFault(spec)');
    expectCoded(() => t.injectFault(5 as never), TypeError, C.ARGUMENT);
    expectCoded(() => t.injectFault({ write: 'EPIPE' as never }), TypeError, C.ARGUMENT, 'options.write');
    expectCoded(() => t.injectFault({ write: 32, writeCount: -1 }), RangeError, C.RANGE, 'options.writeCount');
    expectCoded(() => t.injectFault({ sleepMs: 1e9 }), RangeError, C.RANGE);
    expectCoded(() => (t.clearFaults as (x: unknown) => void)(1), TypeError, C.ARGUMENT, 'clearFaults()');
    expectCoded(() => (t.probe as unknown as () => void)(), TypeError, C.ARGUMENT, 'probe(options)');
    expectCoded(() => t.probe({ ...PROBE, rate: -5 }), RangeError, C.RANGE);
    expect(t.probe(PROBE).ok).toBe(true);
    t.clearFaults();
  });
});
