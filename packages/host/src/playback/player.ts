import {
  bytesPerFrame,
  formatToString,
  sameFormat,
  type BackendMethod,
  type Clock,
  type Logger,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import type { BackendDriver } from './driver.js';
import { Feeder } from './feeder.js';
import { OutputLedger } from './ledger.js';
import { TrackQueue, type CancelAnswer, type PlayRefusal } from './queue.js';
import { Reporter, type PlayerEvent } from './reporter.js';
import { Scheduler } from './scheduler.js';
import { Track } from './track.js';

export type { PlayerEvent } from './reporter.js';

export interface PlayerOptions {
  earlyFinishMs: number;
  reportIntervalMs: number;
  bufferMs: number;
  /** A track starts once this much is buffered (or its input has ended). */
  startThresholdMs: number;
  /** How often the loop fills a backend that has not asked for another interval (`tickMs`). */
  tickMs: number;
  /** A clock-paced backend gets silence only when it holds less than this ahead of the listener. */
  silenceGuardMs: number;
  volume: number;
}

/** What the player tells its owner besides events. */
export interface PlayerHooks {
  /** A reload's new backend has taken over (the old one is closed). */
  backendChanged?(driver: BackendDriver): void;
}

/**
 * The play loop: the {@link TrackQueue} (which track plays when), the {@link Feeder} (one fill of the backend),
 * the {@link Scheduler} (the one timer), the {@link Reporter} (`playing`, `paused`, `finished`) and the
 * {@link BackendDriver} (every call into the backend), put together. It knows nothing of sockets or pipes.
 */
export class Player {
  readonly queue = new TrackQueue();
  paused = false;
  volume: number;

  #driver: BackendDriver;
  /** A reload's backend, built and initialised, waiting for a safe point to take over. */
  #pending: { driver: BackendDriver; format: SampleFormat } | undefined;
  #swapping = false;
  /** The negotiated output format. */
  #baseFormat: SampleFormat;
  /** The format the backend is active in (the negotiated one, or a track's own: formatFor). */
  #format: SampleFormat;
  #ledger: OutputLedger;
  readonly #scheduler: Scheduler;
  readonly #feeder: Feeder;
  readonly #reporter: Reporter;
  #switchTo: SampleFormat | undefined;
  #switching = false;
  /** Formats this backend refused for a track (formatFor asked for them): those tracks are converted. */
  #refused = new Set<string>();
  #stepping = false;
  /** Work a failure left for the end of the fill in progress. */
  readonly #afterFill: (() => void)[] = [];
  /** The backend has been told to pause (and not yet to resume). */
  #backendPaused = false;
  /** The last fill stopped for want of input: new input should be written at once. */
  #hungry = false;
  #closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly emit: (event: PlayerEvent) => void,
    driver: BackendDriver,
    format: SampleFormat,
    private readonly opts: PlayerOptions,
    private readonly hooks: PlayerHooks = {},
  ) {
    this.#driver = driver;
    this.#baseFormat = this.#format = format;
    this.volume = opts.volume;
    this.#ledger = new OutputLedger(driver.canFlush, bytesPerFrame(format));
    this.#scheduler = new Scheduler(clock, () => this.#onTimer());
    this.#feeder = new Feeder(
      { startThresholdMs: opts.startThresholdMs, silenceGuardMs: opts.silenceGuardMs, silenceStepMs: opts.tickMs },
      log,
    );
    this.#reporter = new Reporter(
      (e) => this.#emit(e),
      (t) => this.position(t),
      opts,
    );
  }

  get tracks(): ReadonlyMap<string, Track> {
    return this.queue.tracks;
  }
  get current(): Track | undefined {
    return this.queue.current;
  }
  get next(): Track | undefined {
    return this.queue.next;
  }
  get draining(): readonly Track[] {
    return this.queue.draining;
  }
  get format(): SampleFormat {
    return this.#format;
  }
  get driver(): BackendDriver {
    return this.#driver;
  }
  /** Nothing is being played out (the backend is not active). */
  get idle(): boolean {
    const p = this.#driver.phase;
    return p === 'inactive' || p === 'idling' || p === 'closed' || p === 'failed';
  }
  /** Timers the loop has armed (for tests of its wake-ups). */
  get timersArmed(): number {
    return this.#scheduler.armed;
  }

  /** Change timing options after a reload; a new `bufferMs` bounds every track at once, those queued already too. */
  updateOptions(opts: Partial<Pick<PlayerOptions, 'earlyFinishMs' | 'reportIntervalMs' | 'bufferMs'>>): void {
    Object.assign(this.opts, opts);
    const bufferMs = opts.bufferMs;
    if (bufferMs !== undefined) for (const t of this.queue.all()) t.bufferMs = bufferMs;
  }

  /**
   * Send an event. A `playing` or `paused` one also restarts the report interval: reports come about once per
   * `reportIntervalMs` after the last word about the track, never a second report with the same news.
   */
  #emit(e: PlayerEvent): void {
    if ((e.type === 'playing' || e.type === 'paused') && !this.#closed)
      this.#scheduler.set('report', this.clock.now() + this.opts.reportIntervalMs);
    this.emit(e);
  }

  // ---------------------------------------------------------------- commands

  /** A decoder connected for a track that has not been played. */
  add(track: Track): void {
    this.queue.add(track);
  }

  /** `play`: make `id` current, or next; undefined on success, else why it is busy. */
  play(id: string, make: () => Track): PlayRefusal | undefined {
    const r = this.queue.play(id, make);
    if (typeof r === 'object') return r;
    this.#ensureReports();
    this.kick();
    return undefined;
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    const cur = this.queue.current;
    if (this.queue.draining.length > 0 || !cur) return; // applies when the next track starts
    cur.announced = true;
    this.#emit({ type: 'paused', id: cur.id, position: this.#pauseOutput(cur) });
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.#resumeBackend();
    const cur = this.queue.current;
    if (cur && cur.started) this.#emit({ type: 'playing', id: cur.id, position: this.position(cur) });
    else if (cur) cur.announced = false; // `playing` goes out when its sound really starts
    this.#ensureReports();
    this.kick();
  }

  /** `cancel`: the answer to send. The caller sends it before anything this causes (the next track's events). */
  cancel(id: string): CancelAnswer {
    const { answer, track, wasCurrent } = this.queue.cancel(id);
    if (!track) return answer;
    if (track.started) {
      // out of the output at once where the backend can take it back; elsewhere at most its queue plays out
      this.#takeBack();
      this.#ledger.forget(track);
    }
    track.discard();
    if (wasCurrent) this.queue.promote();
    this.kick();
    return answer;
  }

  /**
   * Software volume for what is written from now on. A backend whose flush is seamless gives back what it holds
   * unsent, so the change is heard at once; elsewhere once the backend's queue has played out.
   */
  setVolume(volume: number): void {
    const changed = volume !== this.volume;
    this.volume = volume;
    const d = this.#driver;
    if (!changed || !d.ready || d.hasHardwareVolume || !d.flushIsSeamless) return;
    this.#takeBack();
    this.kick();
  }

  /** Audible position of `track` in seconds, millisecond precision, never decreasing. */
  position(track: Track): number {
    this.#advance();
    if (track.audible > track.reported) track.reported = track.audible;
    return Math.round((track.reported * 1000) / this.#format.rate) / 1000;
  }

  /** A track's decoder delivered data or ended: fill at once when the loop is waiting for it. */
  inputChanged(track: Track): void {
    if (track !== this.queue.current && track !== this.queue.next && !this.queue.draining.includes(track)) return;
    if (this.#hungry || !track.started || track.eof) this.kick();
  }

  // ---------------------------------------------------------------- backend lifecycle

  /**
   * A reload made a new backend (built, initialised, configured): it takes over at the next safe point — now when
   * nothing plays, else once everything handed to the old one is audible and the next track has not started.
   */
  replaceBackend(driver: BackendDriver, format: SampleFormat): void {
    const superseded = this.#pending;
    this.#pending = { driver, format };
    if (superseded) void superseded.driver.close();
    this.kick();
    this.#maybeSwap();
  }

  /**
   * The driver took its backend out of play after a failure. What the backend gave back (`retaken`, the last frames
   * written) goes back to its tracks and plays again once the backend is back; the rest of what was handed out is
   * counted as heard (it may have been, and a backend that cannot say cannot give it back).
   */
  backendFailed(driver: BackendDriver, method: BackendMethod, retaken: number | undefined): void {
    if (driver !== this.#driver) return;
    // inside a fill the feeder still holds what it was offering: it puts that back first, then this runs
    if (this.#stepping) this.#afterFill.push(() => this.#applyFailure(method, retaken));
    else this.#applyFailure(method, retaken);
  }

  #applyFailure(method: BackendMethod, retaken: number | undefined): void {
    const unheard = this.#ledger.unheard;
    if (retaken !== undefined && retaken > 0) this.#ledger.rewind(retaken);
    const lost = this.#ledger.unheard;
    if (lost > 0) this.#ledger.creditAll();
    if (unheard > 0)
      this.log.info(
        { method, retaken: retaken ?? 0, lost },
        'the backend failed: what it gave back will be played again, the rest is counted as played',
      );
    this.#switching = false;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#scheduler.close();
    for (const t of this.queue.all()) t.discard();
    const pending = this.#pending;
    this.#pending = undefined;
    await Promise.all([this.#driver.close(), pending?.driver.close()]);
  }

  /** Fill the backend now (a wake-up, new data, a command). */
  kick(): void {
    if (this.#closed) return;
    this.#step();
  }

  // ---------------------------------------------------------------- the loop

  /** One step: fill, then settle what the music server hears, then decide what the backend does next. */
  #step(): void {
    if (this.#stepping || this.#closed) return;
    this.#stepping = true;
    try {
      this.#stepOnce();
    } catch (err) {
      this.log.error({ err }, 'play loop failed'); // a bug of ours: log it, and keep the process alive
    } finally {
      for (const fn of this.#afterFill.splice(0)) fn(); // a failure outside the fill part of the step
      this.#stepping = false;
    }
  }

  #stepOnce(): void {
    const d = this.#driver;
    const now = this.clock.now();
    let next = Infinity;
    if (d.ready && !this.#switching && !this.#swapping) {
      const r = this.#feeder.fill({
        queue: this.queue,
        driver: d,
        ledger: this.#ledger,
        format: this.#format,
        baseFormat: this.#baseFormat,
        paused: this.paused,
        holdBoundary: this.#pending !== undefined,
        refused: this.#refused,
        volume: this.volume,
      });
      d.endFill();
      for (const fn of this.#afterFill.splice(0)) fn();
      this.#hungry = r.starved !== undefined;
      if (r.switchTo) this.#switchTo = r.switchTo;
      next = now + (d.tickMs ?? this.opts.tickMs);
      if (r.capped) next = now;
      else if (r.starved && d.pacing === 'clock' && this.#wantsOutput()) {
        // a track has no audio now: look again before what the backend holds falls below the guard (to keep it
        // from running dry with silence); new input for the track comes sooner
        const queued = d.delay() ?? this.#ledger.unheard;
        next = Math.min(next, now + Math.max(1, this.#feeder.msUntilGuard(queued, this.#format)));
      }
    }
    this.#advance();
    const due = this.#reporter.settle({
      queue: this.queue,
      ledger: this.#ledger,
      rate: this.#format.rate,
      paused: this.paused,
      // audio flows at real time only from an active backend that is not in a failure it has not recovered from
      playing: d.phase === 'active' && d.failure === undefined,
      now,
      startPaused: (t) => this.#pauseOutput(t),
    });
    next = Math.min(next, due);
    this.#afterStep();
    this.#reportIfDue(this.clock.now());
    this.#scheduler.set('step', this.#driver.phase === 'active' || due !== Infinity ? next : Infinity);
  }

  /** What the backend does next: switch format, hand over to a reload's backend, idle, or start. */
  #afterStep(): void {
    const d = this.#driver;
    if (this.#swapping || this.#switching) return;
    if (this.#pending && this.#maybeSwap()) return;
    if (this.#switchTo && !this.#pending) {
      if (this.#atSafePoint()) void this.#switchFormat(this.#switchTo);
      return;
    }
    if (d.phase === 'active' && !this.queue.hasWork() && this.#ledger.unheard === 0) {
      void d.idle().then(() => this.kick());
      return;
    }
    this.#ensureRunning();
  }

  #ensureRunning(): void {
    const d = this.#driver;
    if (this.#closed || d.phase !== 'inactive' || this.#switching || this.#swapping) return;
    if (!this.queue.hasWork()) return;
    this.#ensureReports();
    void d.activate(this.#format).then((ok) => {
      if (!ok || d !== this.#driver) return;
      // the backend's pause state follows the player's: a resume that came while it was out of play, or a pause
      // that reached the current track before it was active
      if (!this.paused) this.#resumeBackend();
      else if (!this.#backendPaused && this.queue.draining.length === 0 && this.queue.current?.announced) {
        this.#backendPaused = true;
        d.pause();
      }
      this.kick();
    });
  }

  /** Something is to be written now: a source not done that the pause does not hold. */
  #wantsOutput(): boolean {
    for (const src of this.queue.sources()) {
      if (src.exhausted) continue;
      return !this.paused || src.role === 'finished';
    }
    return false;
  }

  /**
   * The pause reaches `cur`: take back what the backend can give back (it plays again after resume), read the
   * position (before the backend's pause hook, which may hold the driver), then tell the backend, once.
   */
  #pauseOutput(cur: Track): number {
    if (cur.started) this.#takeBack();
    const position = this.position(cur);
    if (!this.#backendPaused && this.#driver.phase === 'active') {
      this.#backendPaused = true;
      this.#driver.pause();
    }
    return position;
  }

  /** Tell the backend to continue, if it was told to pause (now, or once it is active again). */
  #resumeBackend(): void {
    if (!this.#backendPaused || this.#driver.phase !== 'active') return;
    this.#backendPaused = false;
    this.#driver.resume();
  }

  /** Credit what has become audible, from the backend's delay. */
  #advance(): void {
    const delay = this.#driver.delay();
    if (delay !== undefined) this.#ledger.advance(delay);
  }

  /** Take back what the backend can give back (flush): those frames go back to their tracks and play again. */
  #takeBack(): void {
    const d = this.#driver;
    if (!d.canFlush || !d.ready) return;
    const dropped = d.flush();
    if (dropped > 0) this.#ledger.rewind(dropped);
  }

  /** Nothing handed out is still unheard, and no source is part-way through. */
  #atSafePoint(): boolean {
    if (this.#ledger.unheard > 0 && this.#driver.phase === 'active') return false;
    for (const src of this.queue.sources()) if (src.started && !src.exhausted) return false;
    return true;
  }

  /** Hand over to the pending backend if now is a safe point (a failed backend is one: nothing plays). */
  #maybeSwap(): boolean {
    if (!this.#pending || this.#swapping || this.#switching) return false;
    const d = this.#driver;
    const safe = d.phase === 'inactive' || d.phase === 'failed' || (d.phase === 'active' && this.#atSafePoint());
    if (!safe) return false;
    void this.#swap();
    return true;
  }

  async #swap(): Promise<void> {
    const next = this.#pending!;
    this.#pending = undefined;
    this.#swapping = true;
    const old = this.#driver;
    try {
      await old.close();
    } finally {
      this.#driver = next.driver;
      this.#backendPaused = false;
      this.#baseFormat = this.#format = next.format;
      this.#switchTo = undefined;
      this.#refused = new Set();
      this.#ledger.reset(next.driver.canFlush, bytesPerFrame(next.format));
      // a track part-way through (the old backend had failed) continues on the new one, in its format
      for (const t of this.queue.sources()) {
        if (!t.started || t.exhausted) continue;
        const dropped = t.switchOutput(next.format);
        if (dropped > 0) this.log.warn({ id: t.id, frames: dropped }, 'converted audio dropped at the backend change');
      }
      this.#swapping = false;
      this.log.info({ backend: next.driver.describe() }, 'the new backend takes over');
      this.hooks.backendChanged?.(next.driver);
    }
    if (this.#pending) this.#maybeSwap();
    this.kick();
  }

  /** Activate the backend in another format between tracks (backends with per-track formats). */
  async #switchFormat(format: SampleFormat): Promise<void> {
    this.#switching = true;
    this.#switchTo = undefined;
    const d = this.#driver;
    let ok = await d.activate(format, { fallback: true });
    if (ok) {
      this.#setFormat(format);
      this.log.info({ format: formatToString(format) }, 'output format switched for the next track');
    } else if (d.phase !== 'failed' && d.phase !== 'closed') {
      this.#refused.add(formatToString(format));
      this.log.info({ format: formatToString(format) }, 'the backend refused the track format; converting instead');
      ok = await d.activate(this.#baseFormat);
      if (ok) this.#setFormat(this.#baseFormat);
    }
    this.#switching = false;
    this.kick();
  }

  #setFormat(format: SampleFormat): void {
    if (sameFormat(format, this.#format)) return;
    this.#format = format;
    this.#ledger.reset(this.#driver.canFlush, bytesPerFrame(format));
  }

  // ---------------------------------------------------------------- reports

  #ensureReports(): void {
    if (this.#scheduler.dueAt('report') === Infinity)
      this.#scheduler.set('report', this.clock.now() + this.opts.reportIntervalMs);
  }

  /** How early a step or report may run to share a wake-up with the other (at least 1 ms: timers fire early). */
  #slack(): number {
    const tick = this.#driver.tickMs ?? this.opts.tickMs;
    return Math.max(1, Math.min(20, 0.02 * Math.min(tick, this.opts.reportIntervalMs)));
  }

  #onTimer(): void {
    const now = this.clock.now();
    if (this.#scheduler.take('step', now, this.#slack())) this.#step();
    this.#reportIfDue(this.clock.now());
  }

  #reportIfDue(now: number): void {
    if (!this.#scheduler.take('report', now, this.#slack())) return;
    this.#reporter.report(this.queue, this.paused);
    if (this.queue.hasWork() || this.queue.next) this.#ensureReports();
  }
}
