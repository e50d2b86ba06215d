// Test doubles and a harness for the play loop's parts on a virtual clock. The backends here are real Backend
// implementations (paced by the SDK's RealtimePacer on the virtual clock), recording what they are given and when.
import {
  RealtimePacer,
  VirtualClock,
  bytesPerFrame,
  type Backend,
  type BackendMethod,
  type Clock,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { MemoryLogger } from '@speakerd/plugin-sdk/testing';
import { BackendDriver, type BackendReport, type DriverTiming } from '../../src/playback/driver.js';
import { Player, type PlayerEvent, type PlayerOptions } from '../../src/playback/player.js';
import { Track } from '../../src/playback/track.js';

export const K = 8; // frames per ms
export const F: SampleFormat = { encoding: 's16le', rate: 1000 * K, channels: 1 };
export const FB = bytesPerFrame(F);

/** A clock-paced backend that records what it is given and when (a pipe at real time plus a lead). */
export class RecordingBackend implements Backend {
  readonly pacing: 'clock' | 'device' = 'clock';
  pacer: RealtimePacer;
  writes: { at: number; bytes: Uint8Array }[] = [];
  calls: BackendMethod[] = [];
  constructor(
    readonly clock: VirtualClock,
    readonly leadFrames = 20 * K,
  ) {
    this.pacer = new RealtimePacer(clock, F.rate, leadFrames);
  }
  async activate(_format?: SampleFormat) {
    this.calls.push('activate');
    this.pacer.start();
  }
  writable() {
    return this.pacer.writable();
  }
  write(data: Uint8Array) {
    const frames = data.length / FB;
    this.writes.push({ at: this.clock.now(), bytes: Uint8Array.from(data) });
    this.pacer.wrote(frames);
    return frames;
  }
  delay() {
    return this.pacer.queued();
  }
  async idle() {
    this.calls.push('idle');
    this.pacer.stop();
  }
  async close() {
    this.calls.push('close');
  }
  output(): Int16Array {
    const all = Buffer.concat(this.writes.map((w) => w.bytes));
    return new Int16Array(all.buffer, all.byteOffset, all.length / 2);
  }
  bytes(): Buffer {
    return Buffer.concat(this.writes.map((w) => w.bytes));
  }
}

/** Take the last `bytes` bytes back out of a record of writes (what a flush drops: the newest audio). */
export function dropTail(writes: { bytes: Uint8Array }[], bytes: number): void {
  while (bytes > 0 && writes.length) {
    const last = writes[writes.length - 1]!;
    if (last.bytes.length <= bytes) {
      writes.pop();
      bytes -= last.bytes.length;
    } else {
      last.bytes = last.bytes.subarray(0, last.bytes.length - bytes);
      bytes = 0;
    }
  }
}

/** A backend that can take audio back (like ALSA's drop, or a send queue). */
export class FlushingBackend extends RecordingBackend {
  dropped = 0;
  flush() {
    const q = this.pacer.queued();
    dropTail(this.writes, q * FB);
    this.dropped += q;
    this.pacer.start();
    return q;
  }
  resume() {
    this.pacer.start();
  }
}

/**
 * A deep send queue, like the native RTP sender: it takes up to `depthMs` ahead of real time and says so in
 * delay(); it is filled once a second (tickMs 1000).
 */
export class DeepQueueBackend extends RecordingBackend {
  readonly tickMs = 1000;
  constructor(clock: VirtualClock, depthMs = 1100) {
    super(clock, depthMs * K);
  }
}

export function pcm(frames: number, value: number): Buffer {
  const b = Buffer.alloc(frames * FB);
  for (let i = 0; i < frames; i++) b.writeInt16LE(value, i * FB);
  return b;
}

/** A ramp, so that any lost, repeated or reordered frame shows. */
export function ramp(frames: number, start = 0): Buffer {
  const b = Buffer.alloc(frames * FB);
  for (let i = 0; i < frames; i++) b.writeInt16LE(((start + i) % 65536) - 32768, i * FB);
  return b;
}

export const OPTS: PlayerOptions = {
  earlyFinishMs: 200,
  reportIntervalMs: 100,
  bufferMs: 60_000,
  startThresholdMs: 50,
  tickMs: 10,
  silenceGuardMs: 10,
  volume: 100,
};

/** A driver around `backend` on `clock`, with what it reports recorded. */
export function makeDriver(
  backend: Backend,
  clock: Clock,
  opts: {
    log?: MemoryLogger;
    timing?: DriverTiming;
    onWake?: () => void;
    onFailed?: (m: BackendMethod, retaken: number | undefined) => void;
  } = {},
) {
  const reports: (BackendReport & { at: number })[] = [];
  const log = opts.log ?? new MemoryLogger();
  const wakes = { count: 0 };
  const driver = new BackendDriver(
    backend,
    'test',
    {
      clock,
      log,
      report: (r) => reports.push({ ...r, at: clock.now() }),
      wake: () => {
        wakes.count++;
        opts.onWake?.();
      },
      failed: (m, retaken) => opts.onFailed?.(m, retaken),
    },
    opts.timing,
  );
  return { driver, reports, log, wakes };
}

export type Recorded = PlayerEvent & { at: number };

/** A player on a virtual clock around `backend`, the way the engine builds one. */
export function setup<B extends Backend = RecordingBackend>(
  opts: Partial<PlayerOptions> & { backend?: (c: VirtualClock) => B } = {},
) {
  const clock = new VirtualClock();
  const backend = (opts.backend ? opts.backend(clock) : new RecordingBackend(clock)) as B;
  const events: Recorded[] = [];
  const log = new MemoryLogger();
  const ref: { player?: Player } = {};
  const { driver, reports } = makeDriver(backend, clock, {
    log,
    onWake: () => queueMicrotask(() => ref.player?.kick()),
    onFailed: (m, retaken) => ref.player?.backendFailed(driver, m, retaken),
  });
  const player = (ref.player = new Player(clock, log, (e) => events.push({ ...e, at: clock.now() }), driver, F, {
    ...OPTS,
    ...opts,
  }));
  /** A track whose decoder has connected and (by default) delivered everything. */
  const track = (id: string, data: Uint8Array, eof = true, format: SampleFormat = F) => {
    const t = new Track(id, 'connected', 60_000);
    t.setInput(format, { pause() {}, resume() {}, destroy() {} });
    t.pushInput(Buffer.from(data));
    if (eof) t.endInput();
    player.add(t);
    return t;
  };
  const play = (id: string) => player.play(id, () => new Track(id, 'waiting', 60_000));
  /** Advance the virtual clock ms by ms, letting promises (activate, idle) settle in between. */
  const run = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      for (let j = 0; j < 4; j++) await Promise.resolve();
      clock.advance(1);
    }
    for (let j = 0; j < 4; j++) await Promise.resolve();
  };
  return { clock, backend, events, player, driver, reports, log, track, play, run };
}

/** Let every pending promise callback run (the virtual clock does not move). */
export async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A promise with its resolve and reject at hand, to hold a backend's operation pending. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A track whose decoder has connected in `format` and delivered `data` (and, by default, closed). */
export function fedTrack(id: string, data: Uint8Array, eof = true, format: SampleFormat = F, bufferMs = 60_000): Track {
  const t = new Track(id, 'connected', bufferMs);
  t.setInput(format, { pause() {}, resume() {}, destroy() {} });
  if (data.length > 0) t.pushInput(Buffer.from(data));
  if (eof) t.endInput();
  return t;
}
