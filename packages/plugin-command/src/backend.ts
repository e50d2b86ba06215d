import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { execa } from 'execa';
import {
  ErrorCodes,
  RateLimitedLog,
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
  type BackendState,
  type Clock,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import type { CommandOptions } from './options.js';

/** A command that ran at least this long before failing starts the restart back-off again from `restartMinMs`. */
export const STABLE_AFTER_MS = 10_000;
/** A restarted command that is still running this long after it started is reported `ok`. */
export const CONFIRM_AFTER_MS = 500;
/** The shortest time the pipe may stay backed up, while the command is expected to read, before it is killed. */
export const MIN_STALL_MS = 2000;
/** Longest stderr line logged as is (longer ones are cut). */
const MAX_STDERR_LINE = 4096;

/** What we know about one run of the command. */
interface Proc {
  readonly seq: number;
  readonly child: ChildProcess;
  readonly stdin: Writable;
  readonly format: SampleFormat;
  readonly startedAt: number;
  /** The 'spawn' event came. */
  spawned: boolean;
  /** It exited (or failed to start, or we gave up waiting for it). */
  exited: boolean;
  /** Audio may be written to its stdin. */
  open: boolean;
  /** We are ending it on purpose (idle, close, new format): its exit is no failure. */
  stopping: boolean;
  /** We killed it because it misbehaved (stopped reading): why. */
  failure: string | undefined;
  /** stdin.write returned false and 'drain' has not come yet. */
  backedUp: boolean;
  backedUpAt: number;
  stallTimer: TimerHandle | undefined;
  confirmTimer: TimerHandle | undefined;
  /** The stop escalation is running: cancels its pending step. */
  killTimer: (() => void) | undefined;
  readonly started: Promise<void>;
  readonly done: Promise<void>;
  resolveStarted(): void;
  resolveDone(): void;
}

function message(err: unknown): string {
  if (err instanceof Error) return (err as { shortMessage?: string }).shortMessage ?? err.message;
  return String(err);
}

function describeExit(code: number | null | undefined, signal: string | null | undefined, err?: unknown): string {
  if (err !== undefined) return `the command could not be started: ${message(err)}`;
  if (signal) return `the command was killed by ${signal}`;
  if (code === 127) return 'the command exited with code 127 (command not found?)';
  if (typeof code === 'number') return `the command exited with code ${code}`;
  return 'the command ended';
}

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

  /** The current run of the command, if any (also while it is being killed after a stall). */
  #proc: Proc | undefined;
  /** Every run that has not exited yet (an old one may still be ending while a new one starts). */
  readonly #procs = new Set<Proc>();
  #seq = 0;
  #restartTimer: TimerHandle | undefined;
  #backoff: number;
  #state: BackendState = 'ok';

  /** Frames accepted while no command was taking them (dropped at real-time pace). */
  #dropped = 0;
  #dropping = false;
  /** Host frames written since the last silence frame (so that delay() never counts silence). */
  #hostSinceSilence = 0;

  #silenceTimer: TimerHandle | undefined;
  #silenceBuf: Uint8Array = new Uint8Array(0);
  readonly #stderrLimit: RateLimitedLog;

  constructor(
    @inject(TOKENS.Options) private readonly opts: CommandOptions,
    @inject(TOKENS.Logger) private readonly log: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Events) private readonly events: HostEvents,
    @inject(TOKENS.Context) private readonly context: PluginContext,
  ) {
    this.#backoff = Math.min(opts.restartMinMs, opts.restartMaxMs);
    this.#stderrLimit = new RateLimitedLog(() => this.clock.now(), 20, 10_000);
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

    const running = this.#proc;
    if (running && !sameFormat(running.format, format)) {
      this.log.info(
        { from: formatToString(running.format), to: formatToString(format) },
        'format changed: restarting the command',
      );
      await this.#stop(running);
    }
    if (!this.#active || this.#closed) return; // idle() or close() came while we waited
    if (!this.#proc && this.#restartTimer === undefined) await this.#startProcess();

    if (this.#paused && this.opts.pauseMode === 'silence') this.#startSilence();
    const proc = this.#proc;
    if (proc?.backedUp) {
      proc.backedUpAt = this.clock.now();
      this.#armStall(proc);
    }
  }

  /** A query: frames that may be written now. Writes nothing, spawns nothing, moves no schedule. */
  writable(): number {
    const pacer = this.#pacer;
    if (!this.#active || this.#paused || !pacer) return 0;
    const proc = this.#proc;
    const up = proc !== undefined && proc.open;
    if (up && proc.backedUp) return 0;
    if (this.opts.unpaced && up) {
      // As much as the pipe accepts: up to the stream's high-water mark (at least one frame, so that a write
      // always either goes through or sets needDrain, which guarantees a 'drain' and a wake()).
      const room = proc.stdin.writableHighWaterMark - proc.stdin.writableLength;
      return Math.max(1, Math.floor(room / this.#bpf));
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
    const proc = this.#proc;
    if (proc !== undefined && proc.open) {
      // Buffer.from(Uint8Array) copies: the host reuses its buffers. Whole frames only, in one write, so the
      // pipe never sees a partial frame from us.
      this.#send(proc, Buffer.from(data.subarray(0, n * this.#bpf)));
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
    const proc = this.#proc;
    const up = proc !== undefined && proc.open;
    // Known to be still in our own stream buffer (not yet in the pipe).
    const buffered = up ? Math.floor(proc.stdin.writableLength / this.#bpf) : 0;
    if (this.opts.unpaced && up) return Math.min(buffered, this.#hostSinceSilence);
    return Math.min(Math.max(pacer.queued(), buffered), this.#hostSinceSilence);
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    if (!this.#active) return;
    const proc = this.#proc;
    if (this.opts.pauseMode === 'suspend') {
      // The reader just waits; it is not expected to read, so a full pipe is no stall now.
      this.#pacer?.stop();
      if (proc) this.#clearStall(proc);
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
      const proc = this.#proc;
      if (proc?.backedUp) {
        proc.backedUpAt = this.clock.now();
        this.#armStall(proc);
      }
    }
  }

  async idle(): Promise<void> {
    this.#active = false;
    this.#stopSilence();
    this.#pacer?.stop();
    if (this.#proc) this.#clearStall(this.#proc);
    this.#logDropped();
    if (this.opts.keepRunning && !this.#closed) return;
    this.#cancelRestart();
    if (this.#proc) await this.#stop(this.#proc);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#active = false;
    this.#stopSilence();
    this.#pacer?.stop();
    this.#cancelRestart();
    this.#logDropped();
    await Promise.all([...this.#procs].map((p) => this.#stop(p)));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Writing

  #send(proc: Proc, bytes: Uint8Array): void {
    if (this.#dropping) {
      this.#dropping = false;
      this.#logDropped();
    }
    const ok = proc.stdin.write(bytes);
    if (!ok && !proc.backedUp) {
      proc.backedUp = true;
      proc.backedUpAt = this.clock.now();
      this.#armStall(proc);
    }
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
    const proc = this.#proc;
    const up = proc !== undefined && proc.open;
    if (up && proc.backedUp) return;
    const n = pacer.writable();
    if (n <= 0) return;
    if (up) this.#send(proc, this.#silence(n));
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

  // ---------------------------------------------------------------------------------------------------------------
  // The process

  #wantRunning(): boolean {
    return !this.#closed && (this.#active || (this.opts.keepRunning && this.#format !== undefined));
  }

  /** Spawn the command for the current format; resolves once it has started or failed to. */
  #startProcess(): Promise<void> {
    const format = this.#format;
    if (!format) return Promise.resolve();
    const seq = ++this.#seq;
    let child: ChildProcess & { stdin: Writable; stderr: Readable };
    try {
      child = execa('sh', ['-c', this.opts.run], {
        cwd: this.context.configDir,
        env: {
          SPEAKERD_ENCODING: format.encoding,
          SPEAKERD_RATE: String(format.rate),
          SPEAKERD_CHANNELS: String(format.channels),
        },
        stdin: 'pipe',
        stdout: 'ignore',
        stderr: 'pipe',
        buffer: false,
        reject: false,
        // Its own process group, so that SIGTERM/SIGKILL reach everything the shell started.
        detached: true,
      }) as unknown as ChildProcess & { stdin: Writable; stderr: Readable };
    } catch (err) {
      this.#failed(undefined, describeExit(undefined, undefined, err));
      return Promise.resolve();
    }

    let resolveStarted!: () => void;
    let resolveDone!: () => void;
    const started = new Promise<void>((r) => (resolveStarted = r));
    const done = new Promise<void>((r) => (resolveDone = r));
    const proc: Proc = {
      seq,
      child,
      stdin: child.stdin,
      format,
      startedAt: this.clock.now(),
      spawned: false,
      exited: false,
      open: true,
      stopping: false,
      failure: undefined,
      backedUp: false,
      backedUpAt: 0,
      stallTimer: undefined,
      confirmTimer: undefined,
      killTimer: undefined,
      started,
      done,
      resolveStarted,
      resolveDone,
    };
    this.#proc = proc;
    this.#procs.add(proc);

    // EPIPE and friends when the command goes away: never fatal, the 'exit' handler does the rest.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (proc.open && !proc.stopping) this.log.debug({ code: err.code }, `the command's stdin failed: ${err.message}`);
      proc.open = false;
    });
    child.stdin.on('drain', () => this.#onDrain(proc));
    this.#readStderr(proc, child.stderr);
    child.on('spawn', () => this.#onSpawn(proc));
    child.on('error', (err: Error) => {
      if (!proc.spawned) this.#onExit(proc, undefined, undefined, err);
      else this.log.debug(`command process error: ${err.message}`);
    });
    child.on('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#onExit(proc, code, signal));
    // execa's promise (never rejects with reject:false): the only sign of an early failure, where execa hands
    // back a dummy subprocess that emits neither 'spawn' nor 'exit'.
    void (child as unknown as Promise<{ failed: boolean; exitCode?: number; signal?: string; message?: string }>).then(
      (result) => {
        if (!proc.exited && !proc.spawned)
          this.#onExit(proc, result.exitCode, result.signal, result.failed ? new Error(result.message) : undefined);
      },
      () => undefined,
    );
    return started;
  }

  #onSpawn(proc: Proc): void {
    proc.spawned = true;
    proc.resolveStarted();
    this.log.info({ pid: proc.child.pid, format: formatToString(proc.format) }, `command started: ${this.opts.run}`);
    if (this.#state !== 'ok' && proc === this.#proc) {
      proc.confirmTimer = this.clock.setTimeout(() => {
        proc.confirmTimer = undefined;
        if (proc !== this.#proc || proc.exited || !proc.open || this.#state === 'ok') return;
        this.#state = 'ok';
        this.events.backendState('ok', `command running again (pid ${proc.child.pid})`);
      }, CONFIRM_AFTER_MS);
    }
  }

  #onDrain(proc: Proc): void {
    if (!proc.backedUp) return;
    proc.backedUp = false;
    this.#clearStall(proc);
    if (proc === this.#proc && proc.open && this.#active) this.events.wake();
  }

  #onExit(proc: Proc, code: number | null | undefined, signal: string | null | undefined, err?: unknown): void {
    if (proc.exited) return;
    proc.exited = true;
    proc.open = false;
    this.#clearStall(proc);
    if (proc.confirmTimer !== undefined) this.clock.clearTimeout(proc.confirmTimer);
    proc.killTimer?.();
    proc.confirmTimer = proc.killTimer = undefined;
    // Nothing reads it any more: discard what is still buffered for it.
    proc.stdin.destroy();
    this.#procs.delete(proc);
    proc.resolveStarted();
    proc.resolveDone();
    if (proc !== this.#proc) return;
    this.#proc = undefined;
    if (proc.stopping && proc.failure === undefined) {
      this.log.info({ code, signal }, 'command ended');
      return;
    }
    const why = proc.failure ?? describeExit(code, signal, err);
    this.#failed(proc, why);
  }

  /** A run failed (exited, did not start, was killed for not reading): report, and restart after the back-off. */
  #failed(proc: Proc | undefined, why: string): void {
    this.log.warn({ pid: proc?.child.pid }, why);
    this.#reportLost(why);
    if (proc?.spawned && this.clock.now() - proc.startedAt >= STABLE_AFTER_MS)
      this.#backoff = Math.min(this.opts.restartMinMs, this.opts.restartMaxMs);
    this.#scheduleRestart();
  }

  #reportLost(why: string): void {
    if (this.#state === 'lost') return;
    this.#state = 'lost';
    this.events.backendState('lost', why);
  }

  #scheduleRestart(): void {
    if (!this.#wantRunning() || this.#restartTimer !== undefined || this.#proc) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(delay * 2, this.opts.restartMaxMs);
    this.log.info({ delayMs: delay }, `restarting the command in ${delay} ms`);
    this.#restartTimer = this.clock.setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#wantRunning() && !this.#proc) void this.#startProcess();
    }, delay);
  }

  #cancelRestart(): void {
    if (this.#restartTimer !== undefined) this.clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  // --- stall detection

  /** Whether pacing expects the command to be reading now. */
  #expectingReads(): boolean {
    return this.#active && (!this.#paused || this.opts.pauseMode === 'silence');
  }

  /** How long the pipe may stay backed up while the command should be reading. */
  #stallLimitMs(proc: Proc): number {
    let limit = Math.max(MIN_STALL_MS, 10 * this.opts.leadMs);
    if (this.opts.unpaced) {
      // Unpaced, up to a high-water mark of audio sits in our buffer behind a full pipe: allow 4× its duration.
      const frames = proc.stdin.writableHighWaterMark / bytesPerFrame(proc.format);
      limit = Math.max(limit, 4 * msForFrames(frames, proc.format));
    }
    return limit;
  }

  #armStall(proc: Proc): void {
    if (proc.stallTimer !== undefined || !proc.backedUp || proc.exited || !this.#expectingReads()) return;
    const left = this.#stallLimitMs(proc) - (this.clock.now() - proc.backedUpAt);
    proc.stallTimer = this.clock.setTimeout(() => this.#checkStall(proc), Math.max(0, left));
  }

  #clearStall(proc: Proc): void {
    if (proc.stallTimer !== undefined) this.clock.clearTimeout(proc.stallTimer);
    proc.stallTimer = undefined;
  }

  #checkStall(proc: Proc): void {
    proc.stallTimer = undefined;
    if (proc !== this.#proc || !proc.open || !proc.backedUp || !this.#expectingReads()) return;
    const ms = this.clock.now() - proc.backedUpAt;
    if (ms < this.#stallLimitMs(proc)) return this.#armStall(proc);
    proc.failure = `the command stopped reading its input (pipe full for ${Math.round(ms)} ms)`;
    this.log.warn({ pid: proc.child.pid }, `${proc.failure}: killing it`);
    this.#reportLost(proc.failure);
    proc.open = false;
    proc.stdin.destroy();
    this.#escalate(proc, 'SIGTERM');
  }

  // --- stopping

  #signal(proc: Proc, signal: NodeJS.Signals): void {
    const pid = proc.child.pid;
    if (pid === undefined || proc.exited) return;
    try {
      process.kill(-pid, signal); // the whole process group (detached: the shell leads its own group)
    } catch {
      try {
        proc.child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  /**
   * Run `fn` once, `ms` from now on the injected clock, or after `ms` of real time, whichever comes first. Only
   * for ending processes: they live in real time, and close() must stay bounded even on a virtual clock that
   * nobody advances (with the real clock both deadlines are the same). Returns a cancel function.
   */
  #after(ms: number, fn: () => void): () => void {
    let fired = false;
    const once = (): void => {
      if (fired) return;
      fired = true;
      this.clock.clearTimeout(virtual);
      clearTimeout(real);
      fn();
    };
    const virtual = this.clock.setTimeout(once, ms);
    const real = setTimeout(once, ms);
    real.unref();
    return () => {
      fired = true;
      this.clock.clearTimeout(virtual);
      clearTimeout(real);
    };
  }

  /**
   * The bounded way out: from `step`, wait `stopTimeoutMs` for the exit, then go on to the next step. After
   * SIGKILL and one more wait the run is given up for dead, so nothing ever waits for it forever.
   */
  #escalate(proc: Proc, step: 'wait' | 'SIGTERM' | 'SIGKILL' | 'give-up'): void {
    if (proc.exited) return;
    proc.killTimer?.();
    proc.killTimer = undefined;
    const ms = this.opts.stopTimeoutMs;
    switch (step) {
      case 'wait':
        proc.killTimer = this.#after(ms, () => {
          this.log.warn({ pid: proc.child.pid }, `the command did not exit ${ms} ms after its input closed: SIGTERM`);
          this.#escalate(proc, 'SIGTERM');
        });
        return;
      case 'SIGTERM':
        this.#signal(proc, 'SIGTERM');
        proc.killTimer = this.#after(ms, () => {
          this.log.warn({ pid: proc.child.pid }, `the command did not exit ${ms} ms after SIGTERM: SIGKILL`);
          this.#escalate(proc, 'SIGKILL');
        });
        return;
      case 'SIGKILL':
        this.#signal(proc, 'SIGKILL');
        proc.killTimer = this.#after(ms, () => this.#escalate(proc, 'give-up'));
        return;
      case 'give-up':
        this.log.error({ pid: proc.child.pid }, `the command did not exit ${ms} ms after SIGKILL: giving up on it`);
        this.#onExit(proc, null, 'SIGKILL');
        return;
    }
  }

  /** End a run on purpose: close its stdin (what is buffered is still delivered), then escalate. */
  async #stop(proc: Proc): Promise<void> {
    if (proc.exited) return;
    proc.stopping = true;
    proc.open = false;
    this.#clearStall(proc);
    if (proc.confirmTimer !== undefined) this.clock.clearTimeout(proc.confirmTimer);
    proc.confirmTimer = undefined;
    if (proc.killTimer === undefined) {
      proc.stdin.end();
      this.#escalate(proc, 'wait');
    }
    await proc.done;
  }

  // --- stderr

  #readStderr(proc: Proc, stream: Readable): void {
    const decoder = new StringDecoder('utf8');
    let partial = '';
    const emit = (line: string): void => {
      const text = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (text === '') return;
      const { log, suppressed } = this.#stderrLimit.shouldLog();
      if (!log) return;
      if (suppressed > 0) this.log.warn({ stream: 'stderr', suppressed }, `(${suppressed} stderr lines not logged)`);
      this.log.warn({ stream: 'stderr', pid: proc.child.pid }, text);
    };
    stream.on('data', (chunk: Buffer) => {
      partial += decoder.write(chunk);
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        emit(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
      if (partial.length > MAX_STDERR_LINE) {
        emit(`${partial.slice(0, MAX_STDERR_LINE)}…`);
        partial = '';
      }
    });
    stream.on('end', () => {
      partial += decoder.end();
      if (partial !== '') emit(partial);
      partial = '';
    });
    stream.on('error', () => undefined);
  }
}
