import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addonProblem, loadAddon, type RealtimeOutcome } from '@speakerd/plugin-sdk';

/** Events the writer thread sends back (through a ThreadSafeFunction). */
export type NativeEventType = 'open' | 'state' | 'room' | 'drained' | 'closed' | 'log' | 'xrun';

/** The options of one native stream. `format` is an ALSA `snd_pcm_format_t` value. */
export interface NativeStreamOptions {
  device: string;
  format: number;
  rate: number;
  channels: number;
  bufferUs: number;
  periodUs: number;
  /** Capacity of the bounded queue in front of the writer thread, in frames. */
  queueFrames: number;
  frameBytes: number;
  /** Let alsa-lib resample (off by default: the granted rate must be the requested one). */
  allowResample?: boolean;
  /** The writer asks for SCHED_FIFO priority 20 and 1 ns timer slack on itself. */
  realtime?: boolean;
}

export interface NativeStreamInfo {
  phase: 'open' | 'lost' | 'closed';
  bufferFrames: number;
  periodFrames: number;
  queuedFrames: number;
  capacityFrames: number;
  deviceDelayFrames: number;
  framesWritten: number;
  xruns: number;
}

/** One PCM stream with its writer thread (native/writer.h, native/binding_stream.cc). */
export interface NativeStream {
  open(): void;
  write(data: Uint8Array): number;
  /** Room in the queue, in frames. A query: changes nothing. */
  writable(): number;
  /** The host's fill is done: with the queue (nearly) full, the writer posts `room` once it has room again. */
  endFill(): void;
  delay(): number;
  flush(): number;
  drain(close: boolean): void;
  close(drain: boolean): void;
  info(): NativeStreamInfo;
  join(): void;
  /** How the writer's real-time scheduling went (it set it on itself before the constructor returned). */
  realtime(): RealtimeOutcome;
}

export interface NativeMixer {
  setVolume(volume: number): void;
  close(): void;
}

/** A fault for the next writes, opens or thread creations (the test addon only). */
export interface FaultSpec {
  /** errno (positive) the next `writeCount` writes fail with. */
  write?: number;
  writeCount?: number;
  /** errno the next `openCount` opens fail with. */
  open?: number;
  openCount?: number;
  /** The writer sleeps this long before each of the next `sleepCount` writes, as if blocked in the device. */
  sleepMs?: number;
  sleepCount?: number;
  /** errno the next `threadCount` thread creations (writer, probe) fail with, as std::thread would. */
  thread?: number;
  threadCount?: number;
}

export interface ProbeResult {
  ok: boolean;
  errno: number;
  /** The device opened and refuses the format (as opposed to busy or absent). */
  fatal: boolean;
  message: string;
}

export type ProbeOptions = Pick<NativeStreamOptions, 'device' | 'format' | 'rate' | 'channels' | 'allowResample'>;

export interface Binding {
  /** dlopen libasound.so.2; returns why it failed, or undefined. */
  load(): string | undefined;
  setLogHandler(fn: ((level: number, message: string) => void) | null): void;
  /**
   * Can the device play this format exactly? On a thread of its own (an open can wait on a sound server or a
   * Bluetooth link): `done` is called on the event loop with the result. It does not keep the process alive;
   * bound the wait.
   */
  probeAsync(opts: ProbeOptions, done: (result: ProbeResult) => void): void;
  Stream: new (
    opts: NativeStreamOptions,
    cb: (type: NativeEventType, code: number, text: string, a: number, b: number, msg: string) => void,
  ) => NativeStream;
  /** Opens the control on the calling thread: the addon's one blocking call (README, "Hardware volume"). */
  Mixer: new (card: string, control: string, index: number) => NativeMixer;
}

/** The test addon (build/Release/speakerd_alsa_test.node): the production binding plus hooks only tests use. */
export interface TestBinding extends Binding {
  testHooks: true;
  injectFault(spec: FaultSpec): void;
  clearFaults(): void;
  /** probeAsync's work on the calling thread. */
  probe(opts: ProbeOptions): ProbeResult;
}

/**
 * The `code` of the errors the addon's entry points throw (native/args.h): a TypeError for a missing argument or
 * one of the wrong type, a RangeError for a value out of range, an Error for a closed handle or a thread that
 * could not start (with `errno`), a failed mixer (with `errno`), or libasound not loaded.
 */
export const NativeErrorCodes = {
  ARGUMENT: 'SPEAKERD_ERR_ALSA_ARGUMENT',
  RANGE: 'SPEAKERD_ERR_ALSA_RANGE',
  CLOSED: 'SPEAKERD_ERR_ALSA_CLOSED',
  THREAD: 'SPEAKERD_ERR_ALSA_THREAD',
  MIXER: 'SPEAKERD_ERR_ALSA_MIXER',
  UNAVAILABLE: 'SPEAKERD_ERR_BACKEND_UNAVAILABLE',
} as const;

/** Set to "1": the test addon is loaded (and the backend gets its `alsa.test-fault` command). For tests only. */
export const TEST_HOOKS_ENV = 'SPEAKERD_ALSA_TEST_HOOKS';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Where `node-gyp rebuild` puts the addon. */
export const ADDON_PATH = join(packageDir, 'build', 'Release', 'speakerd_alsa.node');
/** The test addon, built beside it (binding.gyp): loaded instead when SPEAKERD_ALSA_TEST_HOOKS=1. */
export const TEST_ADDON_PATH = join(packageDir, 'build', 'Release', 'speakerd_alsa_test.node');

/**
 * The addon with libasound loaded, or why not: `why` (what is missing and how to get it, the whole message),
 * its halves `problem` and `fix`, and which `part` failed (the addon itself, or libasound that it loads).
 */
export type LoadedBinding =
  | { binding: Binding; why?: undefined; problem?: undefined; fix?: undefined; part?: undefined }
  | { binding?: undefined; why: string; problem: string; fix?: string; part: 'addon' | 'libasound' };

let cached: LoadedBinding | undefined;

/** The addon with libasound loaded, or why not (a message saying what is missing and how to get it). */
export function loadBinding(): LoadedBinding {
  if (cached) return cached;
  const test = process.env[TEST_HOOKS_ENV] === '1';
  const path = test ? TEST_ADDON_PATH : ADDON_PATH;
  const loaded = loadAddon<Binding>({
    packageName: '@speakerd/plugin-alsa',
    path,
    // an addon built from older sources (a stale build/ directory) lacks what the backend calls, or (before the
    // test hooks had an addon of their own) has them
    check: (b) =>
      typeof b.Stream?.prototype?.endFill !== 'function'
        ? 'it has no Stream.endFill'
        : typeof b.Stream.prototype.realtime !== 'function'
          ? 'it has no Stream.realtime'
          : typeof b.probeAsync !== 'function'
            ? 'it has no probeAsync'
            : !test && 'injectFault' in b
              ? 'it has test hooks'
              : test && !('testHooks' in b)
                ? 'it has no test hooks'
                : undefined,
  });
  if (!loaded.addon) {
    cached = { ...addonProblem(loaded.problem, loaded.fix), part: 'addon' };
    return cached;
  }
  const binding = loaded.addon;
  const problem = binding.load();
  if (problem) {
    cached = {
      ...addonProblem(
        `libasound.so.2 cannot be loaded (${problem})`,
        'install the ALSA library (apt-get install libasound2, or alsa-lib on other distributions)',
      ),
      part: 'libasound',
    };
    return cached;
  }
  cached = { binding };
  return cached;
}

/** The test addon, for tests (SPEAKERD_ALSA_TEST_HOOKS=1 must be set before the first loadBinding()). */
export function loadTestBinding(): { binding?: TestBinding; why?: string } {
  const r = loadBinding();
  if (r.binding && !('testHooks' in r.binding))
    return { why: `the production addon is loaded: set ${TEST_HOOKS_ENV}=1 before the first loadBinding()` };
  return r as { binding?: TestBinding; why?: string };
}
