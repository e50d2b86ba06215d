import {
  bytesPerFrame,
  formatToString,
  framesForMs,
  sameFormat,
  type Backend,
  type Clock,
  type Logger,
  type SampleFormat,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import { applyVolume, silence } from '../convert/index.js';
import { OutputLedger } from './ledger.js';
import { Track } from './track.js';

/** Events the play loop sends to the music server. */
export type PlayerEvent =
  | { type: 'playing' | 'paused'; id: string; position: number }
  | { type: 'finished'; id: string; seq?: number }
  | { type: 'stillborn' | 'unknown'; id: string; seq?: number };

export interface PlayerOptions {
  earlyFinishMs: number;
  reportIntervalMs: number;
  bufferMs: number;
  /** A track starts once this much is buffered (or its input has ended). */
  startThresholdMs: number;
  /** How often the loop fills a clock-paced backend. */
  tickMs: number;
  volume: number;
}

/** Where the backend stands in its lifecycle. */
type BackendPhase = 'inactive' | 'activating' | 'active' | 'idling' | 'closing';

/** A backend the player drives, with the output format it was activated in. */
export interface BackendSlot {
  backend: Backend;
  format: SampleFormat;
}

/**
 * The play loop: a current and a next track, plus finished tracks whose last frames are still on their way to
 * the listener. It hands frames to the backend as fast as the backend says it can take them, the next track
 * starting at the exact frame after the current one ends; it knows nothing of sockets or pipes.
 */
export class Player {
  readonly tracks = new Map<string, Track>();
  current: Track | undefined;
  next: Track | undefined;
  /** Reported finished, still playing out (in order). */
  readonly draining: Track[] = [];
  paused = false;
  volume: number;

  #slot: BackendSlot;
  #phase: BackendPhase = 'inactive';
  #frameBytes: number;
  #ledger: OutputLedger;
  /** The loop's one timer: armed for the earlier of the next fill and the next report. */
  #timer: TimerHandle | undefined;
  /** When #timer fires (clock ms). */
  #timerAt = Infinity;
  /** The next fill is due by then (undefined: no fill scheduled). */
  #tickDue: number | undefined;
  /** The next `playing`/`paused` report is due then (undefined: none scheduled). */
  #reportDue: number | undefined;
  #filling = false;
  #closed = false;
  #activateFailures = 0;
  #pendingSwap: (() => Promise<BackendSlot>) | undefined;
  #swapping = false;
  #scratch = new Uint8Array(0);
  /** The last fill stopped for want of input: new data should be written at once. */
  #hungry = false;
  /** The negotiated output format; tracks play in it unless the backend asks for their own (formatFor). */
  #baseFormat: SampleFormat;
  /** A track is waiting for the backend to switch to this format. */
  #formatSwitch: SampleFormat | undefined;
  #switching = false;

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly emit: (event: PlayerEvent) => void,
    private readonly onBackendError: (message: string) => void,
    slot: BackendSlot,
    private readonly opts: PlayerOptions,
  ) {
    this.#slot = slot;
    this.#baseFormat = slot.format;
    this.volume = opts.volume;
    this.#frameBytes = bytesPerFrame(slot.format);
    this.#ledger = new OutputLedger(typeof slot.backend.flush === 'function', this.#frameBytes);
  }

  get format(): SampleFormat {
    return this.#slot.format;
  }

  /** The backend is not active: nothing is being played out. */
  get idle(): boolean {
    return this.#phase === 'inactive' || this.#phase === 'idling' || this.#phase === 'closing';
  }

  get backend(): Backend {
    return this.#slot.backend;
  }

  /** Change timing options after a reload. */
  updateOptions(opts: Partial<PlayerOptions>): void {
    Object.assign(this.opts, opts);
  }

  // ---------------------------------------------------------------- commands

  /** `play`: make `id` current, or next. Returns false (busy) when that is not possible. */
  play(id: string, makeTrack: () => Track): boolean {
    const existing = this.tracks.get(id);
    if (existing && (existing.role === 'current' || existing.role === 'next' || existing.role === 'waiting'))
      return false;
    if (this.current && this.next) return false;
    const track = existing ?? makeTrack();
    this.tracks.set(id, track);
    if (!this.current) {
      track.role = 'current';
      this.current = track;
    } else {
      track.role = 'next';
      this.next = track;
    }
    this.#ensureRunning();
    return true;
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    const cur = this.current;
    if (this.draining.length > 0 || !cur) return; // applies when the next track starts
    if (cur.started) this.#stopOutputForPause();
    cur.announced = true;
    this.emit({ type: 'paused', id: cur.id, position: this.position(cur) });
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.#phase === 'active') void this.#slot.backend.resume?.();
    const cur = this.current;
    if (cur && cur.started) this.emit({ type: 'playing', id: cur.id, position: this.position(cur) });
    else if (cur) cur.announced = false; // `playing` goes out when it really starts
    this.#ensureRunning();
    this.kick();
  }

  /** `cancel`: returns the answer to send. */
  cancel(id: string): 'finished' | 'stillborn' | 'unknown' {
    const track = this.tracks.get(id);
    if (!track) return 'unknown';
    this.tracks.delete(id);
    track.answered = true;
    if (track === this.current) {
      this.#dropFromOutput(track);
      this.current = undefined;
      this.#promote();
      track.role = 'finished';
      track.discard();
      this.kick();
      return 'finished';
    }
    if (track === this.next) {
      this.#dropFromOutput(track);
      this.next = undefined;
    }
    track.role = 'finished';
    track.discard();
    return 'stillborn';
  }

  /**
   * Software volume for what is written from now on. A backend whose flush is seamless gives back what it holds
   * unsent, so the change is heard at once; elsewhere it is heard once the backend's queue has played out.
   */
  setVolume(volume: number): void {
    const changed = volume !== this.volume;
    this.volume = volume;
    const backend = this.#slot.backend;
    if (!changed || this.#phase !== 'active' || backend.setVolume || !backend.flush || !backend.flushIsSeamless) return;
    this.#ledger.rewind(backend.flush());
    this.kick();
  }

  /** Audible position of `track` in seconds, millisecond precision, never decreasing. */
  position(track: Track): number {
    this.#ledger.advance(this.#delay());
    if (track.audible > track.reported) track.reported = track.audible;
    return Math.round((track.reported * 1000) / this.#slot.format.rate) / 1000;
  }

  /**
   * A track's decoder delivered data or ended. The loop is filled at once only when it is waiting for input (or
   * the track has not started, or has ended); a track that is playing from a full buffer needs no extra fill for
   * every socket read.
   */
  inputChanged(track: Track): void {
    if (track !== this.current && track !== this.next && !this.draining.includes(track)) return;
    if (this.#hungry || !track.started || track.eof) this.kick();
  }

  // ---------------------------------------------------------------- backend lifecycle

  /**
   * Replace the backend (after a reload changed it) at the next safe point: now when nothing plays, else at the
   * next track boundary once what was handed out is audible.
   */
  replaceBackend(make: () => Promise<BackendSlot>): void {
    this.#pendingSwap = make;
    if (this.#phase === 'inactive' && !this.#swapping) void this.#swap();
    else this.kick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = this.#tickDue = this.#reportDue = undefined;
    for (const t of this.tracks.values()) t.discard();
    this.#phase = 'closing';
    await this.#slot.backend.close();
  }

  /** Fill the backend now (from a timer, a wake-up, new data). */
  kick(): void {
    if (this.#closed) return;
    if (this.#phase === 'inactive' || this.#phase === 'idling') {
      if (this.#hasWork()) this.#ensureRunning();
      return;
    }
    if (this.#phase !== 'active') return;
    this.#fill();
  }

  #hasWork(): boolean {
    return this.draining.length > 0 || this.current !== undefined;
  }

  #ensureRunning(): void {
    if (this.#closed) return;
    if (this.#phase === 'inactive') void this.#activate();
    if (this.#reportDue === undefined) this.#scheduleReport();
  }

  async #activate(): Promise<void> {
    this.#phase = 'activating';
    try {
      await this.#slot.backend.activate(this.#slot.format);
      if (this.#closed) return;
      this.#phase = 'active';
      if (this.#activateFailures > 0) this.log.info('backend is back');
      this.#activateFailures = 0;
      this.#scheduleTick(0);
    } catch (err) {
      this.#phase = 'inactive';
      this.#activateFailures++;
      const wait = Math.min(30_000, 250 * 2 ** Math.min(7, this.#activateFailures - 1));
      const message = `cannot start the backend: ${err instanceof Error ? err.message : String(err)}; retrying in ${wait} ms`;
      this.log.error({ err }, message);
      this.onBackendError(message);
      this.clock.setTimeout(() => {
        if (!this.#closed && this.#phase === 'inactive' && this.#hasWork()) void this.#activate();
      }, wait);
    }
  }

  /*
   * Timing. Fills and reports share one timer, and that timer is only ever moved earlier, never cleared to be set
   * later: Node keeps its own wake-up for a cleared timer, so "clear and set again" after every fill costs one
   * empty wake-up each time. A fill that happens for another reason (a backend's wake(), new input) only moves
   * #tickDue on; the pending timer then fires, finds nothing due, and is armed for the rest. A report that falls
   * due within #slack of a fill goes out with that fill, so a backend that wakes the host once a second (the
   * native RTP sender) and the default one-second report share one wake-up.
   */

  /** The next fill, `ms` from now, unless one is due sooner. */
  #scheduleTick(ms: number): void {
    if (this.#closed) return;
    const due = this.clock.now() + ms;
    if (this.#tickDue === undefined || due < this.#tickDue) this.#tickDue = due;
    this.#arm();
  }

  /** The next fill, `ms` after this one. */
  #rearmTick(ms: number): void {
    if (this.#closed) return;
    this.#tickDue = this.clock.now() + ms;
    this.#arm();
  }

  #scheduleReport(): void {
    if (this.#closed) return;
    this.#reportDue = this.clock.now() + this.opts.reportIntervalMs;
    this.#arm();
  }

  /** How early a fill or report may run to share a wake-up with the other (at least 1 ms: timers fire early). */
  #slack(): number {
    const tick = this.#slot.backend.tickMs ?? this.opts.tickMs;
    return Math.max(1, Math.min(20, 0.02 * Math.min(tick, this.opts.reportIntervalMs)));
  }

  #arm(): void {
    if (this.#closed) return;
    const due = Math.min(this.#tickDue ?? Infinity, this.#reportDue ?? Infinity);
    if (due === Infinity) return;
    if (this.#timer && this.#timerAt <= due + 0.5) return; // fires in time; finds out then what is due
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    const now = this.clock.now();
    this.#timerAt = Math.max(due, now);
    this.#timer = this.clock.setTimeout(this.#onTimer, Math.max(0, due - now));
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closed) return;
    const now = this.clock.now();
    const slack = this.#slack();
    if (this.#tickDue !== undefined && now >= this.#tickDue - slack) {
      this.#tickDue = undefined;
      this.#fill(); // reports too, when one is due
    }
    this.#reportIfDue(now, slack);
    this.#arm();
  };

  /** Send the periodic `playing`/`paused` report if it is due (within `slack`). */
  #reportIfDue(now: number, slack: number): void {
    if (this.#reportDue === undefined || now < this.#reportDue - slack) return;
    this.#reportDue = undefined;
    const cur = this.current;
    if (cur && cur.announced) {
      const position = this.position(cur);
      this.emit({ type: this.#pauseInEffect() ? 'paused' : 'playing', id: cur.id, position });
    }
    if (this.#hasWork() || this.next) this.#scheduleReport();
  }

  /** The pause has reached the current track (finished tracks play out first). */
  #pauseInEffect(): boolean {
    return this.paused && this.draining.length === 0;
  }

  #delay(): number {
    if (this.#phase !== 'active') return this.#ledger.unheard;
    return Math.max(0, Math.min(this.#ledger.unheard, Math.floor(this.#slot.backend.delay?.() ?? 0)));
  }

  /** The tracks whose frames go out, in order. */
  *#sources(): Generator<Track> {
    yield* this.draining;
    if (this.current) yield this.current;
    if (this.next) yield this.next;
  }

  #fill(): void {
    if (this.#filling || this.#switching || this.#phase !== 'active' || this.#closed) return;
    this.#filling = true;
    try {
      this.#fillOnce();
    } catch (err) {
      this.log.error({ err }, 'play loop failed');
    } finally {
      this.#filling = false;
    }
    this.#afterFill();
  }

  #fillOnce(): void {
    const backend = this.#slot.backend;
    const fb = this.#frameBytes;
    this.#hungry = false;
    let budget = Math.floor(backend.writable());
    for (const src of this.#sources()) {
      if (budget <= 0) break;
      if (src.exhausted) continue;
      const pauseHere = this.paused && src.role !== 'finished';
      if (!src.started) {
        if (pauseHere) break;
        if (this.#pendingSwap) break; // a backend change waits for this boundary
        if (!src.ready(this.opts.startThresholdMs) || !src.input) {
          this.#hungry = true;
          if (src.role === 'current' && backend.pacing === 'clock') budget -= this.#writeSilence(budget);
          break;
        }
        const want = this.#formatForTrack(src.input);
        if (!sameFormat(want, this.#slot.format)) {
          this.#formatSwitch = want; // switched once what was handed out is audible
          break;
        }
        src.setOutput(this.#slot.format);
        src.started = true;
      } else if (pauseHere) {
        break;
      }
      let starved = false;
      while (budget > 0) {
        const chunk = src.read(budget);
        if (!chunk) {
          starved = !src.exhausted;
          break;
        }
        const frames = chunk.length / fb;
        const accepted = this.#write(chunk, src);
        src.handed += accepted;
        budget -= accepted;
        if (accepted < frames) {
          src.unread(chunk.subarray(accepted * fb));
          budget = 0;
        }
      }
      if (starved) {
        this.#hungry = true;
        if (backend.pacing === 'clock' && budget > 0 && (src.role === 'current' || src.role === 'finished'))
          budget -= this.#writeSilence(budget);
        break;
      }
    }
  }

  /** Write output bytes (volume applied on a copy); returns frames accepted. */
  #write(chunk: Uint8Array, track: Track | undefined): number {
    const backend = this.#slot.backend;
    let out = chunk;
    if (this.volume !== 100 && !backend.setVolume && track) {
      if (this.#scratch.length < chunk.length) this.#scratch = new Uint8Array(Math.max(chunk.length, 16384));
      out = this.#scratch.subarray(0, chunk.length);
      out.set(chunk);
      applyVolume(out, this.#slot.format, this.volume);
    }
    const frames = chunk.length / this.#frameBytes;
    const accepted = Math.max(0, Math.min(frames, Math.floor(backend.write(out))));
    this.#ledger.append(track, accepted, accepted > 0 ? chunk.subarray(0, accepted * this.#frameBytes) : undefined);
    return accepted;
  }

  #silence: { format: SampleFormat; bytes: Uint8Array } | undefined;

  /** Silence at most two ticks long, from a buffer made once per format. */
  #writeSilence(frames: number): number {
    const format = this.#slot.format;
    const max = framesForMs(this.opts.tickMs * 2, format) || 1;
    if (!this.#silence || this.#silence.format !== format) this.#silence = { format, bytes: silence(format, max) };
    const n = Math.min(frames, max);
    return this.#write(this.#silence.bytes.subarray(0, n * this.#frameBytes), undefined);
  }

  #afterFill(): void {
    this.#ledger.advance(this.#delay());
    this.#checkFinished();
    // tracks whose last frame is audible leave the queue
    while (this.draining.length > 0) {
      const t = this.draining[0]!;
      if (!(t.exhausted && t.audible >= t.handed)) break;
      this.draining.shift();
    }
    const cur = this.current;
    if (cur && !cur.announced) {
      if (this.paused && this.draining.length === 0) {
        // the pause applies to this track, which starts paused
        cur.announced = true;
        if (this.#phase === 'active') void this.#slot.backend.pause?.();
        this.emit({ type: 'paused', id: cur.id, position: this.position(cur) });
      } else if (!this.paused && cur.handed > 0) {
        cur.announced = true;
        this.emit({ type: 'playing', id: cur.id, position: this.position(cur) });
      }
    }
    if (this.#formatSwitch && !this.#switching && !this.#pendingSwap) {
      if (this.#atSafePoint()) void this.#switchFormat(this.#formatSwitch);
      else this.#scheduleTick(this.#slot.backend.tickMs ?? this.opts.tickMs);
    } else if (this.#pendingSwap && !this.#swapping && this.#atSafePoint()) void this.#swap();
    else if (!this.#hasWork() && this.#ledger.unheard === 0 && this.#phase === 'active') void this.#idle();
    else if (this.#phase === 'active') this.#rearmTick(this.#slot.backend.tickMs ?? this.opts.tickMs);
    this.#reportIfDue(this.clock.now(), this.#slack());
  }

  /** The format a track plays in: the backend's choice (formatFor), else the negotiated output format. */
  #formatForTrack(input: SampleFormat): SampleFormat {
    return this.#slot.backend.formatFor?.(input) ?? this.#baseFormat;
  }

  /** Re-activate the backend in another format between tracks (backends with per-track formats). */
  async #switchFormat(format: SampleFormat): Promise<void> {
    this.#switching = true;
    this.#formatSwitch = undefined;
    const backend = this.#slot.backend;
    try {
      await backend.activate(format);
      this.#setFormat(format);
      this.log.info({ format: formatToString(format) }, 'output format switched for the next track');
    } catch (err) {
      this.log.warn({ err, format: formatToString(format) }, 'format switch refused; converting instead');
      try {
        await backend.activate(this.#baseFormat);
        this.#setFormat(this.#baseFormat);
      } catch (err2) {
        this.onBackendError(`cannot reopen the backend: ${err2 instanceof Error ? err2.message : String(err2)}`);
      }
    } finally {
      this.#switching = false;
    }
    this.kick();
  }

  #setFormat(format: SampleFormat): void {
    this.#slot = { backend: this.#slot.backend, format };
    this.#frameBytes = bytesPerFrame(format);
    this.#ledger = new OutputLedger(typeof this.#slot.backend.flush === 'function', this.#frameBytes);
  }

  /** Nothing handed out is still unheard, and the next source has not started. */
  #atSafePoint(): boolean {
    if (this.#ledger.unheard > 0 && this.#phase === 'active') return false;
    for (const src of this.#sources()) if (src.started && !src.exhausted) return false;
    return true;
  }

  async #swap(): Promise<void> {
    const make = this.#pendingSwap!;
    this.#pendingSwap = undefined;
    this.#swapping = true;
    const old = this.#slot.backend;
    this.#phase = 'closing';
    try {
      await old.close();
    } catch (err) {
      this.log.warn({ err }, 'closing the old backend failed');
    }
    try {
      this.#slot = await make();
      this.#baseFormat = this.#slot.format;
      this.#setFormat(this.#slot.format);
      this.log.info('backend restarted with the new configuration');
    } catch (err) {
      this.log.error({ err }, 'the new backend failed to start');
      this.onBackendError(`the new backend failed to start: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.#swapping = false;
      this.#phase = 'inactive';
    }
    if (this.#hasWork()) this.#ensureRunning();
  }

  async #idle(): Promise<void> {
    this.#phase = 'idling';
    try {
      await this.#slot.backend.idle?.();
    } catch (err) {
      this.log.warn({ err }, 'backend idle failed');
    }
    this.#ledger = new OutputLedger(typeof this.#slot.backend.flush === 'function', this.#frameBytes);
    if (this.#phase === 'idling') this.#phase = 'inactive';
    if (this.#pendingSwap && !this.#swapping) await this.#swap();
    else if (this.#hasWork()) this.#ensureRunning();
  }

  /** Send `finished` for the current track once its end is within earlyFinishMs of being audible. */
  #checkFinished(): void {
    for (;;) {
      const cur = this.current;
      if (!cur || !cur.eof || !cur.input) {
        if (cur && cur.eof && !cur.input)
          this.#finish(cur); // played, decoder ended without a header
        else return;
        continue;
      }
      if (this.#pauseInEffect() && !cur.exhausted) return;
      const rate = this.#slot.format.rate;
      const remaining = cur.remainingOutputFrames(rate) + (cur.handed - cur.audible);
      if ((remaining * 1000) / rate > this.opts.earlyFinishMs) return;
      this.#finish(cur);
    }
  }

  #finish(track: Track): void {
    if (!track.announced && track.handed > 0 && !this.paused) {
      // it started and ends within earlyFinishMs: say it started before saying it finished
      track.announced = true;
      this.emit({ type: 'playing', id: track.id, position: this.position(track) });
    }
    this.tracks.delete(track.id);
    track.role = 'finished';
    track.answered = true;
    this.current = undefined;
    if (!track.exhausted || track.audible < track.handed) this.draining.push(track);
    this.emit({ type: 'finished', id: track.id });
    this.#promote();
  }

  #promote(): void {
    if (this.next) {
      this.current = this.next;
      this.current.role = 'current';
      this.next = undefined;
    }
  }

  /** Pause: take back what the backend can give back, so it plays again after resume. */
  #stopOutputForPause(): void {
    if (this.#phase !== 'active') return;
    const backend = this.#slot.backend;
    if (backend.flush) {
      const dropped = backend.flush();
      this.#ledger.rewind(dropped);
    }
    void backend.pause?.();
  }

  /** A track leaves the output at once (cancelled). */
  #dropFromOutput(track: Track): void {
    if (!track.started || this.#phase !== 'active') return;
    const backend = this.#slot.backend;
    if (backend.flush) {
      const dropped = backend.flush();
      this.#ledger.rewind(dropped);
    }
    this.#ledger.forget(track);
  }
}
