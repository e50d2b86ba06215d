// The Mixer entry points on a machine without a sound card: the test addon dlopens a stand-in for libasound's
// simple mixer (fixtures/fake-mixer.c, compiled here and linked against the real libasound), so that a control
// opens. Its arguments and state are checked (coded errors), and the volume it sets follows the README's curve.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NativeErrorCodes as C, TEST_ADDON_PATH, type NativeMixer, type TestBinding } from '../src/binding.js';
import { haveCapability } from '../../../test/helpers/tools.js';
import { expectCoded } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'speakerd-fake-mixer-'));
const shim = join(dir, 'fake-mixer.so');
const log = join(dir, 'volume.log');
const source = fileURLToPath(new URL('./fixtures/fake-mixer.c', import.meta.url));
const cc = existsSync(TEST_ADDON_PATH)
  ? spawnSync('cc', ['-shared', '-fPIC', '-o', shim, source, '-Wl,--no-as-needed', '-lasound'], { encoding: 'utf8' })
  : undefined;
const ok = haveCapability(
  'a C compiler and libasound2-dev (for the fake mixer)',
  cc?.status === 0,
  cc ? (cc.error?.message ?? cc.stderr) : `${TEST_ADDON_PATH} is missing`,
);

let b: TestBinding;
beforeAll(() => {
  if (!ok) return;
  // read by the test addon's first load, in this process (each test file has one of its own)
  process.env.SPEAKERD_ALSA_LIBRARY = shim;
  process.env.FAKE_MIXER_LOG = log;
  b = createRequire(import.meta.url)(TEST_ADDON_PATH) as TestBinding;
  expect(b.load()).toBeUndefined();
});
beforeEach(() => writeFileSync(log, ''));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const calls = (): string[] => readFileSync(log, 'utf8').split('\n').filter(Boolean);

describe.skipIf(!ok)('the Mixer entry points (a fake control)', () => {
  it('a control that is not there: SPEAKERD_ERR_ALSA_MIXER', () => {
    expectCoded(() => new b.Mixer('hw:0', 'Master', 0), Error, C.MIXER, '"hw:0" has no mixer control "Master",0');
  });

  it('setVolume(volume) checks count, type and range; close() takes nothing', () => {
    const m = new b.Mixer('hw:0', 'Fake', 0);
    const set = m.setVolume as (...a: unknown[]) => void;
    expectCoded(() => set.call(m), TypeError, C.ARGUMENT, 'setVolume(volume): expected 1 argument, got 0');
    expectCoded(() => set.call(m, 50, 1), TypeError, C.ARGUMENT);
    expectCoded(() => set.call(m, '50'), TypeError, C.ARGUMENT, 'argument 1 must be a number, got a string');
    expectCoded(() => m.setVolume(Number.NaN), RangeError, C.RANGE, 'got NaN');
    expectCoded(() => m.setVolume(100.5), RangeError, C.RANGE, 'in 0..100');
    expectCoded(() => m.setVolume(-1), RangeError, C.RANGE);
    expectCoded(() => (m.close as (x: unknown) => void).call(m, true), TypeError, C.ARGUMENT, 'close()');
    expect(calls()).toEqual([]);
    m.close();
  });

  it('without a dB scale the volume is spread over the raw range', () => {
    const m = new b.Mixer('hw:0', 'Fake', 0);
    for (const v of [0, 50, 100]) m.setVolume(v);
    m.close();
    expect(calls()).toEqual(['raw 0', 'raw 128', 'raw 255']);
  });

  it('with a dB scale: amplitude (v/100)^3, as the software volume', () => {
    process.env.FAKE_MIXER_DB = '1';
    try {
      const m = new b.Mixer('hw:0', 'Fake', 0);
      for (const v of [100, 50, 0]) m.setVolume(v);
      m.close();
    } finally {
      delete process.env.FAKE_MIXER_DB;
    }
    // 20 log10(0.5^3) = -18.06 dB; 0 is the bottom of the range
    expect(calls()).toEqual(['dB 0', 'dB -1806', 'dB -6000']);
  });

  it('a closed mixer: setVolume is SPEAKERD_ERR_ALSA_CLOSED, a second close does nothing', () => {
    const m: NativeMixer = new b.Mixer('hw:0', 'Fake', 0);
    m.close();
    expectCoded(() => m.setVolume(50), Error, C.CLOSED, 'setVolume(volume): the mixer is closed');
    m.close();
    expect(calls()).toEqual([]);
  });
});
