import { constants as osConstants } from 'node:os';
import {
  bytesPerFrame,
  ErrorCodes,
  formatToString,
  inject,
  injectable,
  OutputState,
  RateLimitedLog,
  reportRealtime,
  sameFormat,
  SpeakerdError,
  TOKENS,
  type Backend,
  type BackendState,
  type Clock,
  type CommandHandler,
  type HostEvents,
  type Logger,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import {
  TEST_HOOKS_ENV,
  loadBinding,
  type Binding,
  type FaultSpec,
  type NativeMixer,
  type NativeStream,
  type TestBinding,
} from './binding.js';
import { ALSA_FORMATS } from './formats.js';
import type { AlsaOptions } from './options.js';
import { probeDevice, withAdvice } from './probe.js';

/** The device refuses the output format (or the exact rate). */
export const ALSA_ERR_FORMAT = 'SPEAKERD_ERR_ALSA_FORMAT';
/** The configured mixer control cannot be used. */
export const ALSA_ERR_MIXER = 'SPEAKERD_ERR_ALSA_MIXER';

/** Set to "1" to load the test addon and enable the `alsa.test-fault` command (fault injection). Tests only. */
export { TEST_HOOKS_ENV };

const PLUGIN = 'alsa';

/** errno names Node's os.constants.errno leaves out (Linux values), for the test hook. */
const LINUX_ERRNO: Readonly<Record<string, number>> = { ESTRPIPE: 86, EBADFD: 77, ENOTTY: 25 };

/** The number of an errno name (`EPIPE`), or undefined. */
export function errnoNumber(name: string): number | undefined {
  return (osConstants.errno as Record<string, number>)[name] ?? LINUX_ERRNO[name];
}

// libasound's own messages go to the logger of the backend that was made last (the handler is process-wide).
let currentLog: Logger | undefined;
let logHandlerSet = false;
function routeLibraryLog(binding: Binding, log: Logger): void {
  currentLog = log;
  if (logHandlerSet) return;
  logHandlerSet = true;
  binding.setLogHandler((level, message) => logAt(currentLog, level, message));
}

function logAt(log: Logger | undefined, level: number, message: string): void {
  if (!log) return;
  if (level >= 50) log.error(message);
  else if (level >= 40) log.warn(message);
  else if (level >= 30) log.info(message);
  else log.debug(message);
}

/** A native stream with promises around its open/drain/close events. */
class PcmStream {
  readonly native: NativeStream;
  #open: ((r: { errno: number; message: string; fatal: boolean }) => void) | undefined;
  #drains: (() => void)[] = [];
  #closed: (() => void)[] = [];
  #done = false;
  bufferFrames = 0;
  periodFrames = 0;

  constructor(
    binding: Binding,
    opts: ConstructorParameters<Binding['Stream']>[0],
    on: {
      state: (state: BackendState, message: string) => void;
      room: () => void;
      log: (level: number, message: string) => void;
      xrun: (message: string) => void;
    },
  ) {
    this.native = new binding.Stream(opts, (type, code, text, a, b, msg) => {
      switch (type) {
        case 'open':
          if (code === 0) {
            this.bufferFrames = a;
            this.periodFrames = b;
          }
          this.#open?.({ errno: -code, message: text, fatal: a === 1 && code !== 0 });
          this.#open = undefined;
          break;
        case 'state':
          on.state(text as BackendState, msg);
          break;
        case 'room':
          on.room();
          break;
        case 'log':
          on.log(code, text);
          break;
        case 'xrun':
          on.xrun(text);
          break;
        case 'drained':
          for (const r of this.#drains.splice(0)) r();
          break;
        case 'closed':
          this.#done = true;
          this.native.join();
          for (const r of this.#drains.splice(0)) r();
          for (const r of this.#closed.splice(0)) r();
          break;
      }
    });
  }

  open(): Promise<{ errno: number; message: string; fatal: boolean }> {
    return new Promise((resolve) => {
      this.#open = resolve;
      this.native.open();
    });
  }

  /** Stop the writer thread; with `drain`, after playing out what is queued. */
  close(drain: boolean): Promise<void> {
    if (this.#done) return Promise.resolve();
    return new Promise((resolve) => {
      this.#closed.push(resolve);
      this.native.close(drain);
    });
  }
}

/**
 * The `alsa` backend: a sound card through libasound. Device-paced: `writable()` is the room in the bounded
 * queue in front of the writer thread, which calls `wake()` when room frees up.
 */
@injectable()
export class AlsaBackend implements Backend {
  readonly pacing = 'device' as const;
  /** The writer thread wakes the host when there is room; the tick is only a safety net. */
  readonly tickMs = 50;
  readonly setVolume: ((volume: number) => void) | undefined;
  readonly commands: Readonly<Record<string, CommandHandler>> | undefined;

  #stream: PcmStream | undefined;
  #format: SampleFormat | undefined;
  readonly #output: OutputState;
  /** How often the state changed (each change is logged once). */
  #stateChanges = 0;
  #mixer: NativeMixer | undefined;
  #refused = new Set<string>();
  #xrunLog: RateLimitedLog;
  /** The writer's real-time scheduling is logged for the first stream only (each reopen makes a new writer). */
  #realtimeReported = false;
  #closed = false;

  constructor(
    @inject(TOKENS.Options) private readonly opts: AlsaOptions,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Events) private readonly events: HostEvents,
  ) {
    this.#output = new OutputState(events);
    this.#xrunLog = new RateLimitedLog(() => this.clock.now(), 5, 10_000);
    this.setVolume = opts.mixer === null ? undefined : (volume: number) => this.#setHardwareVolume(volume);
    this.commands = process.env[TEST_HOOKS_ENV] === '1' ? { 'test-fault': (m) => this.#testFault(m) } : undefined;
  }

  #binding(): Binding {
    const { binding, why } = loadBinding();
    if (!binding) throw new SpeakerdError(ErrorCodes.BACKEND_UNAVAILABLE, why ?? 'unavailable', { plugin: PLUGIN });
    routeLibraryLog(binding, this.log);
    return binding;
  }

  async init(): Promise<void> {
    this.#binding();
  }

  /** A query: the configured format, unchanged (whether the device plays it is checked in {@link configure}). */
  negotiate(requested: SampleFormat): SampleFormat {
    return requested;
  }

  /**
   * Check that the device plays the output format exactly (alsa-lib's resampler is off, so the rate is never
   * silently different): opens the device, refines the parameters without installing them, closes it (on the
   * addon's own thread, bounded: see probeDevice). A device that is busy or absent now is not an error: it may
   * come later; the output is reported `lost` from the start, with the reason, until it opens.
   */
  async configure(format: SampleFormat): Promise<void> {
    const problem = await this.#probe(format);
    if (problem?.fatal)
      throw new SpeakerdError(
        ALSA_ERR_FORMAT,
        `${problem.message}; set "format" in speakerrc to something the device plays (the host converts every track to it)`,
        { plugin: PLUGIN },
      );
    if (problem) this.#setState('lost', `${withAdvice(this.opts.device, problem)}; will keep trying when playing`);
  }

  /**
   * For `alsa.format: "auto"`: the format a track should be played in. A query (the device is not opened): the
   * track's own format unless the device has refused it before, else undefined (the host converts it to the
   * output format). A refusal is learnt by {@link activate}: it rejects with ALSA_ERR_FORMAT, the host activates
   * the output format again and converts the track, and the next track in that format is converted at once.
   */
  formatFor(track: SampleFormat): SampleFormat | undefined {
    if (this.opts.format !== 'auto') return undefined;
    return this.#refused.has(formatToString(track)) ? undefined : track;
  }

  async #probe(format: SampleFormat): Promise<{ message: string; fatal: boolean; errno: number } | undefined> {
    const binding = this.#binding();
    const r = await probeDevice(binding, {
      device: this.opts.device,
      format: ALSA_FORMATS[format.encoding].code,
      rate: format.rate,
      channels: format.channels,
    });
    return r.ok ? undefined : { message: r.message, fatal: r.fatal, errno: r.errno };
  }

  /**
   * Open the device in `format`. Already open in that very format: nothing to do (the stream stays gapless).
   * In another format: play out what is queued, close, reopen (`alsa.format: "auto"`).
   */
  async activate(format: SampleFormat): Promise<void> {
    if (this.#closed) throw new SpeakerdError(ErrorCodes.BACKEND, 'the backend is closed', { plugin: PLUGIN });
    const binding = this.#binding();
    if (this.#stream && this.#format && sameFormat(this.#format, format)) return;
    if (this.#stream) {
      this.log.info(`format changes from ${formatToString(this.#format!)} to ${formatToString(format)}: reopening`);
      await this.#release(true);
    }
    const frameBytes = bytesPerFrame(format);
    const queueMs = Math.max(this.opts.bufferMs, 4 * this.opts.periodMs, 50);
    const queueFrames = Math.max(256, Math.round((format.rate * queueMs) / 1000));
    const stream: PcmStream = new PcmStream(
      binding,
      {
        device: this.opts.device,
        format: ALSA_FORMATS[format.encoding].code,
        rate: format.rate,
        channels: format.channels,
        bufferUs: this.opts.bufferMs * 1000,
        periodUs: this.opts.periodMs * 1000,
        queueFrames,
        frameBytes,
        realtime: this.opts.realtime !== false,
      },
      {
        state: (state, message) => {
          if (stream === this.#stream) this.#setState(state, message);
        },
        room: () => {
          if (stream === this.#stream) this.events.wake();
        },
        log: (level, message) => logAt(this.log, level, message),
        xrun: (message) => {
          const { log, suppressed } = this.#xrunLog.shouldLog();
          if (log) this.log.warn(suppressed > 0 ? `${message} (${suppressed} more not logged)` : message);
        },
      },
    );
    if (!this.#realtimeReported) {
      this.#realtimeReported = true;
      reportRealtime(this.log, this.opts.realtime, stream.native.realtime(), 'alsa writer thread');
    }
    this.#stream = stream;
    this.#format = format;
    const changes = this.#stateChanges;
    const r = await stream.open();
    if (r.fatal) {
      this.#stream = undefined;
      this.#format = undefined;
      await stream.close(false);
      const key = formatToString(format);
      this.#refused.add(key);
      if (this.opts.format === 'auto')
        this.log.info(`the device does not play ${key} as is (${r.message}); converting`);
      throw new SpeakerdError(ALSA_ERR_FORMAT, r.message, { plugin: PLUGIN });
    }
    if (r.errno !== 0) {
      // busy or absent: reported "lost" (and logged, once, by #setState); the writer keeps retrying, logging one
      // line per attempt, and the queue keeps what the host writes
      if (this.#stateChanges === changes) this.log.info({ device: this.opts.device }, `${r.message}; retrying`);
      return;
    }
    this.log.debug(
      { device: this.opts.device, bufferFrames: stream.bufferFrames, periodFrames: stream.periodFrames, queueFrames },
      `opened in ${formatToString(format)}`,
    );
    this.#setState('ok', `device "${this.opts.device}" is open`);
  }

  /** A query: the room in the queue in front of the writer thread. */
  writable(): number {
    return this.#stream?.native.writable() ?? 0;
  }

  write(data: Uint8Array): number {
    return this.#stream?.native.write(data) ?? 0;
  }

  /** The fill is done: with the queue full, ask the writer thread to wake the host when it has room again. */
  endFill(): void {
    this.#stream?.native.endFill();
  }

  /**
   * A query: frames in the queue, in the chunk being written and in the device (the writer's last snd_pcm_delay,
   * less the time since), not yet audible.
   */
  delay(): number {
    return this.#stream?.native.delay() ?? 0;
  }

  /** snd_pcm_drop: everything not yet audible is dropped at once; returns how many frames that was. */
  flush(): number {
    return this.#stream?.native.flush() ?? 0;
  }

  /** Nothing plays: play out what is left and release the device. */
  async idle(): Promise<void> {
    await this.#release(true);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#release(true);
    this.#mixer?.close();
    this.#mixer = undefined;
  }

  async #release(drain: boolean): Promise<void> {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#format = undefined;
    if (stream) await stream.close(drain);
  }

  #setState(state: BackendState, message: string): void {
    if (state === this.#output.state) return;
    this.#stateChanges++;
    if (state === 'ok') this.log.info(message);
    else this.log.error(message);
    this.#output.report(state, message);
  }

  #setHardwareVolume(volume: number): void {
    const binding = this.#binding();
    const m = this.opts.mixer;
    if (m === null) return;
    const control = typeof m === 'string' ? m : m.control;
    const index = typeof m === 'string' ? 0 : m.index;
    if (!this.#mixer) {
      const card = mixerCard(this.opts.device);
      try {
        this.#mixer = new binding.Mixer(card, control, index);
      } catch (err) {
        throw new SpeakerdError(ALSA_ERR_MIXER, err instanceof Error ? err.message : String(err), { plugin: PLUGIN });
      }
    }
    try {
      this.#mixer.setVolume(volume);
    } catch (err) {
      this.#mixer.close();
      this.#mixer = undefined; // reopen next time (the card may have gone and come back)
      throw new SpeakerdError(ALSA_ERR_MIXER, err instanceof Error ? err.message : String(err), { plugin: PLUGIN });
    }
  }

  /** `alsa.test-fault` (only with SPEAKERD_ALSA_TEST_HOOKS=1): inject faults into the addon. */
  #testFault(message: Readonly<Record<string, unknown>>): Record<string, unknown> {
    const binding = this.#binding() as TestBinding;
    if (message.clear === true) {
      binding.clearFaults();
      return { cleared: true };
    }
    const spec: FaultSpec = {};
    const errno = (v: unknown): number => {
      if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
      const n = typeof v === 'string' ? errnoNumber(v) : undefined;
      if (n === undefined)
        throw new SpeakerdError('bad-command', `expected an errno name such as "EPIPE", got ${JSON.stringify(v)}`, {
          plugin: PLUGIN,
        });
      return n;
    };
    const count = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 1);
    if (message.write !== undefined) {
      spec.write = errno(message.write);
      spec.writeCount = count(message.writeCount);
    }
    if (message.open !== undefined) {
      spec.open = errno(message.open);
      spec.openCount = count(message.openCount);
    }
    if (typeof message.sleepMs === 'number') {
      spec.sleepMs = message.sleepMs;
      spec.sleepCount = count(message.sleepCount);
    }
    binding.injectFault(spec);
    return { injected: spec };
  }
}

/** The control device of the card a PCM name points at (`hw:1,0`, `plughw:CARD=DAC` -> `hw:1`, `hw:DAC`). */
export function mixerCard(device: string): string {
  const m = /^(?:plug)?hw:(?:CARD=)?([^,]+)/.exec(device);
  return m ? `hw:${m[1]}` : 'default';
}
