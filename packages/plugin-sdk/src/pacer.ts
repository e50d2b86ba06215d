import type { Clock } from './clock.js';

/**
 * Real-time pacing for clock-paced backends: how many frames may have been handed out by now, given that the
 * stream started at `start` and may run `leadFrames` ahead of real time.
 *
 * It never lets a backend burst to catch up: if the writer fell behind (a starved decoder, a stalled process, a
 * clock jump) by more than the lead, the schedule is moved so the stream continues at real time from now.
 */
export class RealtimePacer {
  #start = 0;
  #written = 0;
  #running = false;

  constructor(
    private readonly clock: Clock,
    private readonly rate: number,
    private readonly leadFrames: number,
  ) {}

  /** (Re)start the schedule now, with nothing written. */
  start(): void {
    this.#start = this.clock.now();
    this.#written = 0;
    this.#running = true;
  }

  /** Stop pacing (idle or paused); {@link start} begins a new schedule. */
  stop(): void {
    this.#running = false;
  }

  get running(): boolean {
    return this.#running;
  }

  /** Frames that real time has consumed since start (what a listener has heard by now). */
  elapsedFrames(): number {
    if (!this.#running) return this.#written;
    return Math.floor(((this.clock.now() - this.#start) * this.rate) / 1000);
  }

  /**
   * Frames that may be written now. A query: it moves nothing. Behind schedule (the writer had nothing to write
   * for longer than the lead), the answer is the lead: the stream continues at real time from now, and
   * {@link wrote} moves the schedule there.
   */
  writable(): number {
    if (!this.#running) return 0;
    const elapsed = this.elapsedFrames();
    if (elapsed > this.#written) return this.leadFrames;
    return Math.max(0, elapsed + this.leadFrames - this.#written);
  }

  /**
   * Record that `frames` were written. Behind schedule, the schedule first moves to now (never a burst to catch
   * up): the frames written start at real time from here.
   */
  wrote(frames: number): void {
    if (this.#running) {
      const elapsed = this.elapsedFrames();
      if (elapsed > this.#written) this.#start += ((elapsed - this.#written) * 1000) / this.rate;
    }
    this.#written += frames;
  }

  /** Frames written since start. */
  get written(): number {
    return this.#written;
  }

  /** Frames written but not yet due (queued ahead of the listener). */
  queued(): number {
    return Math.max(0, this.#written - this.elapsedFrames());
  }

  /** Milliseconds until the writer may write at least `frames` more (0 when it may now). */
  msUntilWritable(frames: number): number {
    if (!this.#running) return Infinity;
    const need = this.#written + frames - this.leadFrames;
    const at = this.#start + (need * 1000) / this.rate;
    return Math.max(0, at - this.clock.now());
  }
}
