import plugin, {
  AlsaBackend,
  TEST_HOOKS_ENV,
  loadTestBinding,
  type AlsaOptions,
  type TestBinding,
} from '../src/index.js';
import type { NativeStreamOptions } from '../src/binding.js';
import { RealClock, type SampleFormat } from '@speakerd/plugin-sdk';
import {
  MemoryLogger,
  RecordingEvents,
  createTestBackend,
  feed as feedBackend,
  noise as sdkNoise,
} from '@speakerd/plugin-sdk/testing';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { expect, onTestFinished } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveCapability } from '../../../test/helpers/tools.js';

// The plugin's own tests inject faults: they run on the test addon (build/Release/speakerd_alsa_test.node), which
// the loader takes instead of the production one with this set (before the first loadBinding(): each test file
// runs in a process of its own). test/alsa-addon.test.ts checks the production addon itself.
process.env[TEST_HOOKS_ENV] = '1';

export const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

/** The options of a native stream on libasound's null PCM, CD audio (for the addon's own tests). */
export const NULL_STREAM: NativeStreamOptions = {
  device: 'null',
  format: 2,
  rate: 44100,
  channels: 2,
  bufferUs: 100_000,
  periodUs: 20_000,
  queueFrames: 4096,
  frameBytes: 4,
};

/** libasound, the addon and the test PCMs (ALSA_CONFIG_PATH from test/global-setup.ts) are all here. */
export function haveAlsa(): boolean {
  const { why } = loadTestBinding();
  if (why) return haveCapability('ALSA', false, why);
  const conf = process.env.ALSA_CONFIG_PATH ?? '';
  return haveCapability(
    'the ALSA test PCMs',
    conf.includes('fixtures/alsa/asound.conf'),
    'ALSA_CONFIG_PATH lacks them',
  );
}

export function binding(): TestBinding {
  return loadTestBinding().binding!;
}

export interface Harness {
  backend: AlsaBackend;
  events: RecordingEvents;
  log: MemoryLogger;
  clock: RealClock;
  dir: string;
  /** The capture file the `speakerd_capture` device writes. */
  file: string;
}

/** A backend made the way the host makes it: a child container with the tokens a plugin gets. */
export function makeBackend(
  options: Partial<AlsaOptions> & { device?: string } = {},
  device = 'speakerd_capture',
): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-alsa-'));
  const file = join(dir, 'out.raw');
  const clock = new RealClock();
  const t = createTestBackend<AlsaBackend>(plugin, {
    options: { device: `${device}:${file}`, ...options },
    clock,
    configDir: dir,
  });
  // whatever the test does, the backend is closed and its capture directory removed when the test ends
  onTestFinished(async () => {
    await t.backend.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });
  return { backend: t.backend, events: t.events, log: t.log, clock, dir, file };
}

/** Deterministic noise: any lost, repeated or reordered byte shows. */
export function noise(bytes: number, seed: number): Uint8Array {
  return sdkNoise(bytes, seed);
}

/** Feed `data` as the host does: what writable() allows, then wait for wake() (or a tick). */
export function feed(h: Harness, data: Uint8Array, format: SampleFormat, chunkFrames = 4096): Promise<void> {
  return feedBackend(h, data, format, { chunkFrames });
}

/** What the capture device received: FILE, then FILE.0001, FILE.0002, ... (one per reopen). */
export function readCapture(file: string): Buffer {
  const parts: Buffer[] = [];
  if (existsSync(file)) parts.push(readFileSync(file));
  for (let i = 1; existsSync(`${file}.${String(i).padStart(4, '0')}`); i++)
    parts.push(readFileSync(`${file}.${String(i).padStart(4, '0')}`));
  return Buffer.concat(parts);
}

export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `fn` throws a `Kind` with `code` (an addon entry point's coded error) whose message contains `names`. */
export function expectCoded(fn: () => unknown, Kind: ErrorConstructor, code: string, names?: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(Kind);
  expect((thrown as { code?: unknown }).code).toBe(code);
  if (names) expect((thrown as Error).message).toContain(names);
}
