import type { ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import {
  bytesPerFrame,
  formatToString,
  msForFrames,
  OutputState,
  type Clock,
  type HostEvents,
  type Logger,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import type { CommandOptions } from './options.js';
import { StderrLog } from './stderr-log.js';

/** A command that ran at least this long before failing starts the restart back-off again from `restartMinMs`. */
export const STABLE_AFTER_MS = 10_000;
/** A restarted command that is still running this long after it started is reported `ok`. */
export const CONFIRM_AFTER_MS = 500;
/** The shortest time the pipe may stay backed up, while the command is expected to read, before it is killed. */
export const MIN_STALL_MS = 2000;

type Execa = (typeof import('execa'))['execa'];
let execaLoading: Promise<Execa> | undefined;
/**
 * execa, loaded when the first run starts rather than with the plugin: with its dependencies it is 200 KB of
 * JavaScript, a fifth of what a daemon on the command backend compiled before `ready` (docs/benchmarks.md).
 */
export function loadExeca(): Promise<Execa> {
  return (execaLoading ??= import('execa').then((m) => m.execa));
}

/** The options the supervisor uses (the stall limit depends on the pacing: `leadMs`, `unpaced`). */
export type SupervisorOptions = Pick<
  CommandOptions,
  'run' | 'leadMs' | 'unpaced' | 'restartMinMs' | 'restartMaxMs' | 'stopTimeoutMs'
>;

/** What the supervisor asks of its owner (the backend), which knows whether audio should flow. */
export interface SupervisorHooks {
  /** The format a run is started with (read at each start and restart); undefined: none yet, nothing starts. */
  format(): SampleFormat | undefined;
  /** Whether a run should exist now: a failed run is restarted only then. */
  wantRunning(): boolean;
  /** Whether pacing expects the command to be reading now: only then does a full pipe count towards a stall. */
  expectingReads(): boolean;
  /** The current run's pipe drained after a write that backed it up: it takes audio again. */
  drained(): void;
}

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
 * Run `fn` once, `ms` from now on `clock`, or after `ms` of real time, whichever comes first. Only for ending
 * processes: they live in real time, and stopping must stay bounded even on a virtual clock that nobody advances
 * (with the real clock both deadlines are the same). Returns a cancel function.
 */
function afterEither(clock: Clock, ms: number, fn: () => void): () => void {
  let fired = false;
  const once = (): void => {
    if (fired) return;
    fired = true;
    clock.clearTimeout(virtual);
    clearTimeout(real);
    fn();
  };
  const virtual = clock.setTimeout(once, ms);
  const real = setTimeout(once, ms);
  real.unref();
  return () => {
    fired = true;
    clock.clearTimeout(virtual);
    clearTimeout(real);
  };
}

/**
 * The command's process, supervised: `sh -c "<run>"` spawned in its own process group with the format in
 * `SPEAKERD_*`, its stderr logged ({@link StderrLog}); a run that exits, fails to start or stops reading (its pipe
 * backed up longer than the stall limit while its owner expects it to read) is reported `lost` once and
 * restarted after a back-off that doubles from `restartMinMs` to `restartMaxMs` (reset by a run of
 * {@link STABLE_AFTER_MS}); a restarted run still up after {@link CONFIRM_AFTER_MS} is reported `ok`. Stopping is
 * bounded: stdin closed, then SIGTERM, then SIGKILL to the group, `stopTimeoutMs` apart on the injected clock or in
 * real time, whichever comes first. All other timers run on the injected clock.
 *
 * It knows nothing of pacing: its owner writes whole frames with {@link write} and asks {@link up},
 * {@link backedUp}, {@link room} and {@link buffered}.
 */
export class CommandSupervisor {
  /** The current run of the command, if any (also while it is being killed after a stall). */
  #proc: Proc | undefined;
  /** Every run that has not exited yet (an old one may still be ending while a new one starts). */
  readonly #procs = new Set<Proc>();
  #seq = 0;
  #restartTimer: TimerHandle | undefined;
  #backoff: number;
  readonly #output: OutputState;
  readonly #stderr: StderrLog;

  constructor(
    private readonly opts: SupervisorOptions,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly events: Pick<HostEvents, 'backendState'>,
    /** The directory the command runs in. */
    private readonly cwd: string,
    private readonly hooks: SupervisorHooks,
  ) {
    this.#backoff = Math.min(opts.restartMinMs, opts.restartMaxMs);
    this.#stderr = new StderrLog(log, () => this.clock.now());
    this.#output = new OutputState(events);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // What the owner asks and does

  /** The format of the current run (also of one being killed after a stall), if there is one. */
  get format(): SampleFormat | undefined {
    return this.#proc?.format;
  }

  /** The current run takes audio: it is running and its stdin is open. */
  get up(): boolean {
    return this.#proc !== undefined && this.#proc.open;
  }

  /** The current run's pipe is full: a write returned false and 'drain' has not come yet. */
  get backedUp(): boolean {
    return this.#proc?.backedUp ?? false;
  }

  /** Bytes our stream buffer for the current run takes before it is full (its high-water mark less what it holds). */
  get room(): number {
    const stdin = this.#proc?.stdin;
    return stdin ? stdin.writableHighWaterMark - stdin.writableLength : 0;
  }

  /** Bytes in our own stream buffer for the current run, not yet in the pipe. */
  get buffered(): number {
    return this.#proc?.stdin.writableLength ?? 0;
  }

  /** A restart is scheduled (the back-off is running). */
  get restartPending(): boolean {
    return this.#restartTimer !== undefined;
  }

  /** Start a run unless there is one or a restart is pending; resolves once it has started or failed to. */
  async ensureRunning(): Promise<void> {
    if (this.#proc || this.#restartTimer !== undefined) return;
    const execa = await loadExeca();
    // the same question again: another caller may have started a run while execa loaded
    if (!this.#proc && this.#restartTimer === undefined) await this.#startProcess(execa);
  }

  /** Write `bytes` (whole frames) to the current run, if it is up. A write that backs the pipe up arms the stall watch. */
  write(bytes: Uint8Array): void {
    const proc = this.#proc;
    if (proc === undefined || !proc.open) return;
    const ok = proc.stdin.write(bytes);
    if (!ok && !proc.backedUp) {
      proc.backedUp = true;
      proc.backedUpAt = this.clock.now();
      this.#armStall(proc);
    }
  }

  /** The owner stopped expecting reads (pause in suspend mode, idle): a full pipe is no stall now. */
  holdStallWatch(): void {
    if (this.#proc) this.#clearStall(this.#proc);
  }

  /** The owner expects reads again: a pipe still full counts towards a stall from now. */
  resumeStallWatch(): void {
    const proc = this.#proc;
    if (proc?.backedUp) {
      proc.backedUpAt = this.clock.now();
      this.#armStall(proc);
    }
  }

  /** End the current run on purpose (idle, a new format); resolves once it has exited. */
  async stopCurrent(): Promise<void> {
    if (this.#proc) await this.#stop(this.#proc);
  }

  /** End every run that has not exited yet (close); resolves once all have. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#procs].map((p) => this.#stop(p)));
  }

  cancelRestart(): void {
    if (this.#restartTimer !== undefined) this.clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Runs

  /** Spawn the command for the current format; resolves once it has started or failed to. */
  #startProcess(execa: Execa): Promise<void> {
    const format = this.hooks.format();
    if (!format) return Promise.resolve();
    const seq = ++this.#seq;
    let child: ChildProcess & { stdin: Writable; stderr: Readable };
    try {
      child = execa('sh', ['-c', this.opts.run], {
        cwd: this.cwd,
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
    this.#stderr.follow(child.stderr, () => proc.child.pid);
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
    if (this.#output.state !== 'ok' && proc === this.#proc) {
      proc.confirmTimer = this.clock.setTimeout(() => {
        proc.confirmTimer = undefined;
        if (proc !== this.#proc || proc.exited || !proc.open) return;
        this.#output.ok(`command running again (pid ${proc.child.pid})`);
      }, CONFIRM_AFTER_MS);
    }
  }

  #onDrain(proc: Proc): void {
    if (!proc.backedUp) return;
    proc.backedUp = false;
    this.#clearStall(proc);
    if (proc === this.#proc && proc.open) this.hooks.drained();
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
    this.#output.lost(why);
    if (proc?.spawned && this.clock.now() - proc.startedAt >= STABLE_AFTER_MS)
      this.#backoff = Math.min(this.opts.restartMinMs, this.opts.restartMaxMs);
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    if (!this.hooks.wantRunning() || this.#restartTimer !== undefined || this.#proc) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(delay * 2, this.opts.restartMaxMs);
    this.log.info({ delayMs: delay }, `restarting the command in ${delay} ms`);
    this.#restartTimer = this.clock.setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.hooks.wantRunning() && !this.#proc) void this.ensureRunning();
    }, delay);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Stall detection

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
    if (proc.stallTimer !== undefined || !proc.backedUp || proc.exited || !this.hooks.expectingReads()) return;
    const left = this.#stallLimitMs(proc) - (this.clock.now() - proc.backedUpAt);
    proc.stallTimer = this.clock.setTimeout(() => this.#checkStall(proc), Math.max(0, left));
  }

  #clearStall(proc: Proc): void {
    if (proc.stallTimer !== undefined) this.clock.clearTimeout(proc.stallTimer);
    proc.stallTimer = undefined;
  }

  #checkStall(proc: Proc): void {
    proc.stallTimer = undefined;
    if (proc !== this.#proc || !proc.open || !proc.backedUp || !this.hooks.expectingReads()) return;
    const ms = this.clock.now() - proc.backedUpAt;
    if (ms < this.#stallLimitMs(proc)) return this.#armStall(proc);
    proc.failure = `the command stopped reading its input (pipe full for ${Math.round(ms)} ms)`;
    this.log.warn({ pid: proc.child.pid }, `${proc.failure}: killing it`);
    this.#output.lost(proc.failure);
    proc.open = false;
    proc.stdin.destroy();
    this.#escalate(proc, 'SIGTERM');
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Stopping

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
        proc.killTimer = afterEither(this.clock, ms, () => {
          this.log.warn({ pid: proc.child.pid }, `the command did not exit ${ms} ms after its input closed: SIGTERM`);
          this.#escalate(proc, 'SIGTERM');
        });
        return;
      case 'SIGTERM':
        this.#signal(proc, 'SIGTERM');
        proc.killTimer = afterEither(this.clock, ms, () => {
          this.log.warn({ pid: proc.child.pid }, `the command did not exit ${ms} ms after SIGTERM: SIGKILL`);
          this.#escalate(proc, 'SIGKILL');
        });
        return;
      case 'SIGKILL':
        this.#signal(proc, 'SIGKILL');
        proc.killTimer = afterEither(this.clock, ms, () => this.#escalate(proc, 'give-up'));
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
}
