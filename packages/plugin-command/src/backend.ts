import {
  ErrorCodes,
  RealtimePacer,
  SpeakerdError,
  TOKENS,
  bytesPerFrame,
  formatToString,
  framesForMs,
  framesIn,
  inject,
  injectable,
  msForFrames,
  sameFormat,
  silence,
  type Backend,
  type Clock,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import type { CommandOptions } from './options.js';
import { CommandSupervisor } from './supervisor.js';

/**
 * The `command` backend: raw PCM in the output format into the stdin of `sh -c "<run>"`, paced at real time
 * plus `leadMs` (or as fast as the pipe takes it with `unpaced`), restarted with exponential back-off when the
 * command exits, fails to start or stops reading. See the package README for the behaviour in full.
 */
@injectable()
export class CommandBackend implements Backend {
  readonly pacing = 'clock' as const;

  #format: SampleFormat | undefined;
  #bpf = 1;
  #pacer: RealtimePacer | undefined;
  #active = false;
  #paused = false;
  #closed = false;

  /** The command's runs: spawn, restarts, stall detection, stopping, stderr. */
  readonly #sup: CommandSupervisor;

  /** Frames accepted while no command was taking them (dropped at real-time pace). */
  #dropped = 0;
  #dropping = false;
  /** Host frames written since the last silence frame (so that delay() never counts silence). */
  #hostSinceSilence = 0;

  #silenceTimer: TimerHandle | undefined;
  #silenceBuf: Uint8Array = new Uint8Array(0);

  constructor(
    @inject(TOKENS.Options) private readonly opts: CommandOptions,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Events) private readonly events: HostEvents,
    @inject(TOKENS.Context) context: PluginContext,
  ) {
    this.#sup = new CommandSupervisor(opts, log, clock, events, context.configDir, {
      format: () => this.#format,
      wantRunning: () => !this.#closed && (this.#active || (this.opts.keepRunning && this.#format !== undefined)),
      // whether pacing expects the command to be reading now
      expectingReads: () => this.#active && (!this.#paused || this.opts.pauseMode === 'silence'),
      drained: () => {
        if (this.#active) this.events.wake();
      },
    });
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Backend contract

  async activate(format: SampleFormat): Promise<void> {
    if (this.#closed) throw new SpeakerdError(ErrorCodes.BACKEND, 'the backend is closed', { plugin: 'command' });
    this.#format = format;
    this.#bpf = bytesPerFrame(format);
    this.#silenceBuf = new Uint8Array(0); // its fill byte depends on the encoding
    this.#pacer = new RealtimePacer(this.clock, format.rate, framesForMs(this.opts.leadMs, format));
    this.#active = true;
    this.#hostSinceSilence = 0;
    if (!this.#paused || this.opts.pauseMode === 'silence') this.#pacer.start();

    const running = this.#sup.format;
    if (running && !sameFormat(running, format)) {
      this.log.info(
        { from: formatToString(running), to: formatToString(format) },
        'format changed: restarting the command',
      );
      await this.#sup.stopCurrent();
    }
    if (!this.#active || this.#closed) return; // idle() or close() came while we waited
    await this.#sup.ensureRunning();

    if (this.#paused && this.opts.pauseMode === 'silence') this.#startSilence();
    this.#sup.resumeStallWatch();
  }

  /** A query: frames that may be written now. Writes nothing, spawns nothing, moves no schedule. */
  writable(): number {
    const pacer = this.#pacer;
    if (!this.#active || this.#paused || !pacer) return 0;
    const up = this.#sup.up;
    if (up && this.#sup.backedUp) return 0;
    if (this.opts.unpaced && up) {
      // As much as the pipe accepts: up to the stream's high-water mark (at least one frame, so that a write
      // always either goes through or sets needDrain, which guarantees a 'drain' and a wake()).
      return Math.max(1, Math.floor(this.#sup.room / this.#bpf));
    }
    return pacer.writable();
  }

  write(data: Uint8Array): number {
    const pacer = this.#pacer;
    if (!this.#active || this.#paused || !pacer || !this.#format) return 0;
    const offered = framesIn(data.byteLength, this.#format);
    if (offered === 0) return 0;
    const n = Math.min(offered, this.writable());
    if (n <= 0) return 0;
    if (this.#sup.up) {
      // Buffer.from(Uint8Array) copies: the host reuses its buffers. Whole frames only, in one write, so the
      // pipe never sees a partial frame from us.
      this.#send(Buffer.from(data.subarray(0, n * this.#bpf)));
      if (!this.opts.unpaced) pacer.wrote(n);
    } else {
      this.#drop(n);
      pacer.wrote(n);
    }
    this.#hostSinceSilence += n;
    return n;
  }

  /** A query: frames written and not yet due, or still in our own stream buffer. */
  delay(): number {
    const pacer = this.#pacer;
    if (!this.#active || this.#paused || !pacer) return 0;
    const up = this.#sup.up;
    // Known to be still in our own stream buffer (not yet in the pipe).
    const buffered = up ? Math.floor(this.#sup.buffered / this.#bpf) : 0;
    if (this.opts.unpaced && up) return Math.min(buffered, this.#hostSinceSilence);
    return Math.min(Math.max(pacer.queued(), buffered), this.#hostSinceSilence);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    if (!this.#active) return;
    if (this.opts.pauseMode === 'suspend') {
      // The reader just waits; it is not expected to read, so a full pipe is no stall now.
      this.#pacer?.stop();
      this.#sup.holdStallWatch();
    } else {
      if (this.opts.unpaced) this.#pacer?.start();
      this.#startSilence();
    }
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#stopSilence();
    if (!this.#active) return;
    if (this.opts.pauseMode === 'silence') {
      // The schedule never stopped: fill the silence up to now, then the host continues where it left off.
      this.#fillSilence();
    } else {
      this.#pacer?.start();
      this.#sup.resumeStallWatch();
    }
  }

  async idle(): Promise<void> {
    this.#active = false;
    this.#stopSilence();
    this.#pacer?.stop();
    this.#sup.holdStallWatch();
    this.#logDropped();
    if (this.opts.keepRunning && !this.#closed) return;
    this.#sup.cancelRestart();
    await this.#sup.stopCurrent();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#active = false;
    this.#stopSilence();
    this.#pacer?.stop();
    this.#sup.cancelRestart();
    this.#logDropped();
    await this.#sup.stopAll();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Writing

  /** To the running command (the supervisor arms its stall watch when the pipe backs up). */
  #send(bytes: Uint8Array): void {
    if (this.#dropping) {
      this.#dropping = false;
      this.#logDropped();
    }
    this.#sup.write(bytes);
  }

  #drop(frames: number): void {
    if (!this.#dropping) {
      this.#dropping = true;
      this.log.warn('the command is not running: dropping audio at real-time pace until it is back');
      // Unpaced, the pacer was not in use: drop at real time from now instead of as fast as the host can go.
      if (this.opts.unpaced && this.#pacer?.running) this.#pacer.start();
    }
    this.#dropped += frames;
  }

  #logDropped(): void {
    if (this.#dropped === 0 || !this.#format) return;
    const seconds = Math.round(msForFrames(this.#dropped, this.#format)) / 1000;
    this.log.warn(
      { frames: this.#dropped, seconds },
      `dropped ${this.#dropped} frames (${seconds} s) while the command was down`,
    );
    this.#dropped = 0;
  }

  #silenceTickMs(): number {
    return Math.max(5, Math.min(50, this.opts.leadMs / 2));
  }

  #startSilence(): void {
    this.#fillSilence();
    if (this.#silenceTimer !== undefined) return;
    const tick = (): void => {
      this.#silenceTimer = undefined;
      if (!this.#active || !this.#paused) return;
      this.#fillSilence();
      this.#silenceTimer = this.clock.setTimeout(tick, this.#silenceTickMs());
    };
    this.#silenceTimer = this.clock.setTimeout(tick, this.#silenceTickMs());
  }

  #stopSilence(): void {
    if (this.#silenceTimer !== undefined) this.clock.clearTimeout(this.#silenceTimer);
    this.#silenceTimer = undefined;
  }

  /** Write silence up to what the pacer allows now (real time plus the lead). */
  #fillSilence(): void {
    const pacer = this.#pacer;
    const format = this.#format;
    if (!this.#active || !pacer || !pacer.running || !format) return;
    const up = this.#sup.up;
    if (up && this.#sup.backedUp) return;
    const n = pacer.writable();
    if (n <= 0) return;
    if (up) this.#send(this.#silence(n));
    else this.#drop(n);
    pacer.wrote(n);
    this.#hostSinceSilence = 0;
  }

  /** `frames` frames of silence (0x80 for u8, zero bytes for everything else). Never mutated once made. */
  #silence(frames: number): Uint8Array {
    const bytes = frames * this.#bpf;
    if (this.#silenceBuf.length < bytes) {
      this.#silenceBuf = silence(this.#format!, Math.max(frames, 4096));
    }
    return this.#silenceBuf.subarray(0, bytes);
  }
}
