import {
  ContractViolation,
  ErrorCodes,
  RateLimitedLog,
  SpeakerdError,
  bytesPerFrame,
  formatProblem,
  formatToString,
  frameCountProblem,
  isSpeakerdError,
  writeProblem,
  type Backend,
  type BackendMethod,
  type BackendState,
  type Clock,
  type Logger,
  type Pacing,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';

/** Where the backend stands, as the driver drives it. */
export type DriverPhase = 'inactive' | 'activating' | 'active' | 'idling' | 'failed' | 'closed';

/** A change of the output's state, for the music server's `backend` event. */
export interface BackendReport {
  state: BackendState;
  /** `<plugin>: what happened`. */
  message: string;
  plugin: string;
  /** The error code of a failure (`SPEAKERD_ERR_BACKEND`, `SPEAKERD_ERR_BACKEND_CONTRACT`, a plugin's own). */
  code?: string;
  /** The method that failed. */
  method?: BackendMethod;
}

export interface DriverDeps {
  clock: Clock;
  log: Logger;
  /** The output's state changed (only called on a change). */
  report(report: BackendReport): void;
  /** Fill again soon: an operation finished, the back-off is over, the plugin asked. */
  wake(): void;
  /**
   * The backend failed and was taken out of play. `retaken`: the frames it gave back (its `flush()`, asked before
   * `idle()`), the last ones written, to be played again; undefined when it cannot give audio back. Whatever else
   * it held is not coming out.
   */
  failed(method: BackendMethod, retaken: number | undefined): void;
}

export interface DriverTiming {
  /** First wait before a failed backend is activated again; doubles each time, up to {@link backoffMaxMs}. */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** A backend that has played this long since it came back starts the back-off from the beginning again. */
  stableMs: number;
}

export const DEFAULT_TIMING: DriverTiming = { backoffMinMs: 1000, backoffMaxMs: 30_000, stableMs: 10_000 };

const SILENT: unique symbol = Symbol('failed');
type Failed = typeof SILENT;

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return String(err);
  } catch {
    return 'an unprintable value';
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}

/**
 * Every call the host makes into a backend goes through here. The driver
 * - calls one method at a time (a method that returns a promise is waited for before anything else is called),
 * - never lets a throw or a rejection escape, and stamps every error with the plugin's name and the method,
 * - checks what comes back against the contract (whole frame counts ≥ 0, at most what was offered, valid formats),
 *   and turns a violation into a failure rather than silence or corruption,
 * - follows one failure policy (MPD's): report `lost`, take the backend out of play (`idle()`), activate it again
 *   after a back-off (1 s, doubling up to 30 s), report `ok` when it takes audio again,
 * - rate-limits its logs, and sends a `backend` event only when the output's state changes (a plugin's own
 *   reports included).
 */
export class BackendDriver {
  readonly pacing: Pacing;
  /** The backend's own fill interval, if it asked for one (checked: a finite number > 0). */
  readonly tickMs: number | undefined;
  readonly canFlush: boolean;
  readonly flushIsSeamless: boolean;
  readonly hasHardwareVolume: boolean;

  #phase: DriverPhase = 'inactive';
  #format: SampleFormat | undefined;
  #frameBytes = 1;
  #tasks: (() => unknown)[] = [];
  #busy = false;
  /** Waiting for the operation in progress to end. */
  #free: (() => void)[] = [];
  #failure: { message: string; code: string; method: BackendMethod } | undefined;
  #pluginState: { state: BackendState; message: string } = { state: 'ok', message: '' };
  #reported: BackendState = 'ok';
  #lastReport: BackendReport | undefined;
  #backoff: number;
  #retry: TimerHandle | undefined;
  #recoveredAt = -Infinity;
  /** Failures so far (a recovery is confirmed only if none came meanwhile). */
  #failures = 0;
  #confirming = false;
  readonly #errors: RateLimitedLog;

  constructor(
    readonly backend: Backend,
    readonly plugin: string,
    private readonly deps: DriverDeps,
    private readonly timing: DriverTiming = DEFAULT_TIMING,
  ) {
    this.#backoff = timing.backoffMinMs;
    this.#errors = new RateLimitedLog(() => deps.clock.now(), 3, 60_000);
    const pacing = this.#read('pacing', () => backend.pacing);
    if (pacing !== 'clock' && pacing !== 'device')
      throw new ContractViolation(plugin, 'pacing', `is ${JSON.stringify(pacing)}, not "clock" or "device"`);
    this.pacing = pacing;
    const tick = this.#read('tickMs', () => backend.tickMs);
    if (tick !== undefined && !(typeof tick === 'number' && Number.isFinite(tick) && tick > 0)) {
      deps.log.warn(`${plugin}: tickMs is ${String(tick)}, not a number of ms > 0; using the host's default`);
      this.tickMs = undefined;
    } else this.tickMs = tick;
    this.canFlush = typeof backend.flush === 'function';
    this.flushIsSeamless = this.canFlush && this.#read('flushIsSeamless', () => backend.flushIsSeamless) === true;
    this.hasHardwareVolume = typeof this.#read('setVolume', () => backend.setVolume) === 'function';
  }

  /** Read a property of the backend at construction (a getter may throw: that is the plugin's error). */
  #read<T>(what: BackendMethod | 'flushIsSeamless', get: () => T): T {
    try {
      return get();
    } catch (err) {
      throw new SpeakerdError(ErrorCodes.BACKEND, `${what}: ${messageOf(err)}`, { plugin: this.plugin, cause: err });
    }
  }

  get phase(): DriverPhase {
    return this.#phase;
  }

  /** Active and not inside an operation: `writable()`/`write()`/`delay()`/`flush()` may be called now. */
  get ready(): boolean {
    return this.#phase === 'active' && !this.#busy;
  }

  /** The format the backend was last activated in. */
  get format(): SampleFormat | undefined {
    return this.#format;
  }

  /** The output's state as reported to the music server. */
  get state(): BackendState {
    return this.#reported;
  }

  /**
   * The last change of state reported (also one made before the engine could send it on: a backend that found
   * its device missing in `configure()`), or undefined while nothing has changed from `ok`.
   */
  get lastReport(): BackendReport | undefined {
    return this.#lastReport;
  }

  /** The failure that took the backend out of play, while it lasts. */
  get failure(): { message: string; code: string; method: BackendMethod } | undefined {
    return this.#failure;
  }

  // ------------------------------------------------------------------ from the plugin (HostEvents)

  /** The plugin reported its own state. */
  pluginState(state: BackendState, message: string): void {
    if (this.#phase === 'closed') return;
    if (state !== 'ok' && state !== 'lost' && state !== 'recovering') return;
    this.#pluginState = { state, message: String(message) };
    this.#report();
  }

  /** The plugin asked to be filled. */
  pluginWake(): void {
    if (this.#phase === 'active') this.deps.wake();
  }

  // ------------------------------------------------------------------ start-up: errors are thrown, stamped

  async init(): Promise<void> {
    if (!this.backend.init) return;
    try {
      await this.backend.init();
    } catch (err) {
      throw this.#stamp('init', err);
    }
  }

  negotiate(requested: SampleFormat): SampleFormat {
    if (!this.backend.negotiate) return requested;
    let out: unknown;
    try {
      out = this.backend.negotiate(requested);
    } catch (err) {
      throw this.#stamp('negotiate', err);
    }
    const why = formatProblem(out);
    if (why) throw new ContractViolation(this.plugin, 'negotiate', why);
    const f = out as SampleFormat;
    return { encoding: f.encoding, rate: f.rate, channels: f.channels };
  }

  async configure(format: SampleFormat): Promise<void> {
    if (!this.backend.configure) return;
    try {
      await this.backend.configure(format);
    } catch (err) {
      throw this.#stamp('configure', err);
    }
  }

  #stamp(method: BackendMethod, err: unknown): SpeakerdError {
    if (err instanceof ContractViolation) return err;
    const code = isSpeakerdError(err) ? err.code : ErrorCodes.BACKEND;
    return new SpeakerdError(code, `${method}(): ${messageOf(err)}`, { plugin: this.plugin, cause: err });
  }

  // ------------------------------------------------------------------ lifecycle: serialized, never throws

  /**
   * Activate in `format`. Resolves true once active, false when it failed — then the failure policy runs, unless
   * `fallback` is set (a per-track format the backend may refuse: the caller falls back to the negotiated one).
   */
  activate(format: SampleFormat, opts: { fallback?: boolean } = {}): Promise<boolean> {
    return new Promise((resolve) => {
      this.#enqueue(() => {
        if (this.#phase === 'closed' || (this.#phase === 'failed' && !opts.fallback)) return resolve(false);
        this.#phase = 'activating';
        const call = opts.fallback
          ? this.#tryActivate(format)
          : this.#async('activate', () => this.backend.activate(format));
        return call.then((r) => {
          if (this.#phase !== 'activating') return resolve(false); // failed or closed meanwhile
          if (r === SILENT) {
            if (opts.fallback) this.#phase = 'inactive';
            return resolve(false);
          }
          this.#format = format;
          this.#frameBytes = bytesPerFrame(format);
          this.#phase = 'active';
          this.#whenFree(() => resolve(true)); // so that a write right after `await activate()` goes through
        });
      });
    });
  }

  /** An activation the backend may refuse (a track's own format): a refusal is logged, not a failure. */
  #tryActivate(format: SampleFormat): Promise<unknown> {
    const refused = (err: unknown) => {
      this.deps.log.info(
        { plugin: this.plugin, format: formatToString(format), err: messageOf(err) },
        `${this.plugin}: activate() refused ${formatToString(format)}`,
      );
      return SILENT;
    };
    try {
      return Promise.resolve(this.backend.activate(format)).then((v) => v, refused);
    } catch (err) {
      return Promise.resolve(refused(err));
    }
  }

  /** Nothing plays for now: release the device (errors are logged, never a failure). */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.#enqueue(() => {
        if (this.#phase !== 'active') return resolve();
        this.#phase = 'idling';
        return this.#release('idle').then(() => {
          if (this.#phase === 'idling') this.#phase = 'inactive';
          resolve();
        });
      });
    });
  }

  /** Stop for good. Cancels any retry; errors are logged. */
  close(): Promise<void> {
    if (this.#retry) this.deps.clock.clearTimeout(this.#retry);
    this.#retry = undefined;
    return new Promise((resolve) => {
      this.#enqueue(() => {
        if (this.#phase === 'closed') return resolve();
        this.#phase = 'closed';
        return this.#release('close').then(() => resolve());
      }, true);
    });
  }

  /** The host stops output (hook). */
  pause(): void {
    this.#hook('pause');
  }

  /** The host continues output (hook). */
  resume(): void {
    this.#hook('resume');
  }

  #hook(method: 'pause' | 'resume'): void {
    const fn = this.backend[method];
    if (typeof fn !== 'function') return;
    this.#enqueue(() => {
      if (this.#phase !== 'active') return;
      let r: unknown;
      try {
        r = fn.call(this.backend);
      } catch (err) {
        return this.#fail(method, err, 'threw');
      }
      // a synchronous hook holds nothing up; a promise is waited for
      if (isThenable(r)) return this.#async(method, () => r);
    });
  }

  /** Hardware volume. Rejects with a stamped error (the `volume` command's answer), never a failure of the output. */
  setVolume(volume: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#enqueue(() => {
        const fn = this.backend.setVolume;
        if (typeof fn !== 'function' || this.#phase === 'closed') return resolve();
        let r: unknown;
        try {
          r = fn.call(this.backend, volume);
        } catch (err) {
          return reject(this.#stamp('setVolume', err));
        }
        return Promise.resolve(r).then(
          () => resolve(),
          (err: unknown) => reject(this.#stamp('setVolume', err)),
        );
      });
    });
  }

  // ------------------------------------------------------------------ queries and writes: only when ready

  /** Frames the backend takes now; 0 when not ready or on a violation. */
  writable(): number {
    if (!this.ready) return 0;
    const n = this.#sync('writable', () => this.backend.writable());
    if (n === SILENT) return 0;
    const why = frameCountProblem(n);
    if (why) return (this.#violation('writable', why), 0);
    return n as number;
  }

  /** Hand `data` (whole frames) to the backend; returns the frames it accepted (0 on a failure). */
  write(data: Uint8Array): number {
    if (!this.ready) return 0;
    const offered = data.length / this.#frameBytes;
    const n = this.#sync('write', () => this.backend.write(data));
    if (n === SILENT) return 0;
    const why = writeProblem(n, offered, this.#frameBytes);
    if (why) return (this.#violation('write', why), 0);
    const accepted = n as number;
    if (accepted > 0 && this.#failure && !this.#confirming) this.#confirmRecovery();
    return accepted;
  }

  /** The fill is over. */
  endFill(): void {
    if (!this.ready || !this.backend.endFill) return;
    this.#sync('endFill', () => this.backend.endFill!());
  }

  /** Frames accepted and not yet audible, or undefined when it cannot be asked now (not ready, a violation). */
  delay(): number | undefined {
    if (!this.ready) return undefined;
    if (!this.backend.delay) return 0;
    const n = this.#sync('delay', () => this.backend.delay!());
    if (n === SILENT) return undefined;
    const why = frameCountProblem(n);
    if (why) return (this.#violation('delay', why), undefined);
    return n as number;
  }

  /** Take back what is queued: frames dropped (0 when it cannot, or on a failure). */
  flush(): number {
    if (!this.ready || !this.backend.flush) return 0;
    const n = this.#sync('flush', () => this.backend.flush!());
    if (n === SILENT) return 0;
    const why = frameCountProblem(n);
    if (why) return (this.#violation('flush', why), 0);
    return n as number;
  }

  /** The format a track should be played in, or undefined for the negotiated one. */
  formatFor(track: SampleFormat): SampleFormat | undefined {
    if (!this.backend.formatFor || !this.ready) return undefined;
    const f = this.#sync('formatFor', () => this.backend.formatFor!(track));
    if (f === SILENT || f === undefined) return undefined;
    const why = formatProblem(f);
    if (why) return (this.#violation('formatFor', why), undefined);
    const g = f as SampleFormat;
    return { encoding: g.encoding, rate: g.rate, channels: g.channels };
  }

  // ------------------------------------------------------------------ machinery

  /** Run `task` after what is queued; a task that returns a promise holds everything else until it settles. */
  #enqueue(task: () => unknown, front = false): void {
    if (front) this.#tasks.unshift(task);
    else this.#tasks.push(task);
    this.#drain();
  }

  #drain(): void {
    while (!this.#busy && this.#tasks.length > 0) {
      const task = this.#tasks.shift()!;
      let r: unknown;
      try {
        r = task();
      } catch (err) {
        this.deps.log.error({ err }, 'backend driver: a task failed'); // a bug of ours, not the plugin's
      }
      if (isThenable(r)) {
        this.#busy = true;
        const done = () => {
          this.#busy = false;
          for (const fn of this.#free.splice(0)) fn();
          this.#drain();
          if (!this.#busy) this.deps.wake();
        };
        r.then(done, done);
      }
    }
  }

  /** Run `fn` once no operation is in progress (at once when none is). */
  #whenFree(fn: () => void): void {
    if (this.#busy) this.#free.push(fn);
    else fn();
  }

  /** Call a synchronous method; a throw is a failure. A returned promise is a violation (these are synchronous). */
  #sync<T>(method: BackendMethod, fn: () => T): T | Failed {
    try {
      const v = fn();
      if (isThenable(v)) {
        (v as PromiseLike<unknown>).then(undefined, () => {}); // not ours to wait for; do not leave it unhandled
        this.#violation(method, 'returned a promise; it must answer at once');
        return SILENT;
      }
      return v;
    } catch (err) {
      this.#fail(method, err, 'threw');
      return SILENT;
    }
  }

  /** Call a method that may return a promise; a throw or rejection is a failure. */
  #async(method: BackendMethod, fn: () => unknown): Promise<unknown> {
    let r: unknown;
    try {
      r = fn();
    } catch (err) {
      this.#fail(method, err, 'threw');
      return Promise.resolve(SILENT);
    }
    return Promise.resolve(r).then(
      (v) => v,
      (err: unknown) => {
        this.#fail(method, err, 'failed');
        return SILENT;
      },
    );
  }

  /** idle()/close(): errors are logged and otherwise ignored. */
  #release(method: 'idle' | 'close'): Promise<void> {
    const fn = this.backend[method];
    if (typeof fn !== 'function') return Promise.resolve();
    let r: unknown;
    try {
      r = fn.call(this.backend);
    } catch (err) {
      this.#logError(`${this.plugin}: ${method}() threw (ignored): ${messageOf(err)}`, err);
      return Promise.resolve();
    }
    return Promise.resolve(r).then(
      () => {},
      (err: unknown) => this.#logError(`${this.plugin}: ${method}() failed (ignored): ${messageOf(err)}`, err),
    );
  }

  #violation(method: BackendMethod, why: string): void {
    this.#fail(method, new ContractViolation(this.plugin, method, why), 'violated');
  }

  /** The failure policy: report, take out of play, activate again after a back-off. */
  #fail(method: BackendMethod, err: unknown, how: 'threw' | 'failed' | 'violated'): void {
    this.#failures++;
    if (this.#phase === 'closed' || this.#phase === 'failed') {
      this.#logError(`${this.plugin}: ${method}() ${how}: ${messageOf(err)}`, err);
      return;
    }
    const code = isSpeakerdError(err) ? err.code : ErrorCodes.BACKEND;
    const text = how === 'violated' ? messageOf(err) : `${method}() ${how}: ${messageOf(err)}`;
    const now = this.deps.clock.now();
    // the back-off starts again only after the backend had recovered and then played for stableMs
    if (!this.#failure && now - this.#recoveredAt >= this.timing.stableMs) this.#backoff = this.timing.backoffMinMs;
    const wait = this.#backoff;
    this.#backoff = Math.min(this.timing.backoffMaxMs, this.#backoff * 2);
    this.#failure = { message: `${this.plugin}: ${text}`, code, method };
    this.#logError(`${this.#failure.message}; trying again in ${wait} ms`, err, { code, method });
    const wasActive = this.#phase === 'active';
    this.#phase = 'failed';
    this.#report();
    this.deps.failed(method, wasActive ? this.#retake(method) : undefined);
    // take it out of play first (whatever it throws), then wait
    this.#enqueue(() => this.#release('idle'), true);
    this.#retry = this.deps.clock.setTimeout(() => {
      this.#retry = undefined;
      if (this.#phase !== 'failed') return;
      this.#phase = 'inactive';
      this.deps.wake();
    }, wait);
  }

  /**
   * Ask a backend that has just failed for what it still holds (its `flush()`), so that exactly that is played
   * again: the host's own idea of it dates from the last `delay()`. Nothing else is called, and whatever this
   * throws or returns wrongly only means nothing is given back.
   */
  #retake(method: BackendMethod): number | undefined {
    if (!this.canFlush || method === 'flush') return undefined;
    try {
      const n: unknown = this.backend.flush!();
      return frameCountProblem(n) ? undefined : (n as number);
    } catch {
      return undefined;
    }
  }

  /**
   * A write was accepted after a failure: it plays again — unless something fails before the step is over (a
   * backend whose `delay()` breaks the contract right after each accepted write is not reported `ok` and `lost`
   * over and over).
   */
  #confirmRecovery(): void {
    this.#confirming = true;
    const failures = this.#failures;
    queueMicrotask(() => {
      this.#confirming = false;
      if (this.#failures !== failures || this.#phase !== 'active' || !this.#failure) return;
      this.#failure = undefined;
      this.#recoveredAt = this.deps.clock.now();
      this.deps.log.info(`${this.plugin}: playing again`);
      this.#report();
    });
  }

  #report(): void {
    const state: BackendState = this.#failure ? 'lost' : this.#pluginState.state;
    if (state === this.#reported) return;
    this.#reported = state;
    const f = this.#failure;
    if (f) {
      this.#lastReport = { state, message: f.message, plugin: this.plugin, code: f.code, method: f.method };
      this.deps.report(this.#lastReport);
      return;
    }
    const said = this.#pluginState.message;
    const message = state === 'ok' && !said ? `${this.plugin}: playing again` : `${this.plugin}: ${said}`;
    this.#lastReport = { state, message, plugin: this.plugin };
    this.deps.report(this.#lastReport);
  }

  #logError(message: string, err: unknown, fields: Record<string, unknown> = {}): void {
    const { log, suppressed } = this.#errors.shouldLog();
    if (!log) return;
    this.deps.log.error(
      { plugin: this.plugin, ...fields, ...(suppressed > 0 ? { suppressed } : {}), err: messageOf(err) },
      message,
    );
  }

  /** For logs: the active format. */
  describe(): string {
    return this.#format ? `${this.plugin} (${formatToString(this.#format)})` : this.plugin;
  }
}
