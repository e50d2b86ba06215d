import type { OutputLedger } from './ledger.js';
import type { TrackQueue } from './queue.js';
import type { Track } from './track.js';

/** Events the play loop sends to the music server. */
export type PlayerEvent =
  | { type: 'playing' | 'paused'; id: string; position: number }
  | { type: 'finished'; id: string; seq?: number }
  | { type: 'stillborn' | 'unknown'; id: string; seq?: number };

export interface ReporterOptions {
  earlyFinishMs: number;
  reportIntervalMs: number;
}

/** What the reporter is told about the loop when it settles. */
export interface SettleContext {
  queue: TrackQueue;
  ledger: OutputLedger;
  /** The output rate (frames per second). */
  rate: number;
  paused: boolean;
  /** The backend is active: what it holds is playing out at real time. */
  playing: boolean;
  now: number;
  /**
   * The pause has reached the current track before its sound started: take back what the backend holds of it,
   * let the backend know (its pause hook); returns the track's position.
   */
  startPaused(track: Track): number;
}

/**
 * What the music server hears about tracks: `playing` when a track's sound starts (position 0) and `paused` for a
 * track that starts paused, `finished` once a current track's end is within `earlyFinishMs` of being audible —
 * counting everything queued ahead of it, earlier tracks and silence included — and the periodic
 * `playing`/`paused` reports with the audible position.
 */
export class Reporter {
  constructor(
    private readonly emit: (e: PlayerEvent) => void,
    private readonly position: (track: Track) => number,
    private readonly opts: ReporterOptions,
  ) {}

  /**
   * Announce starts and decide `finished` (the next track, promoted, may be finished at once too). Returns when
   * the next such decision falls due if nothing else happens (clock ms; Infinity when none is pending).
   */
  settle(ctx: SettleContext): number {
    const { queue, ledger, rate } = ctx;
    let nextAt = Infinity;
    const done = (t: Track) => t.exhausted && t.audible >= t.handed;
    queue.prune(done); // first: a pause waiting for them reaches the current track now
    for (;;) {
      const cur = queue.current;
      if (!cur) break;
      const pauseInEffect = ctx.paused && queue.draining.length === 0;
      if (!cur.announced) {
        if (pauseInEffect) {
          // the pause reached a track that had not started: it starts paused
          cur.announced = true;
          this.emit({ type: 'paused', id: cur.id, position: ctx.startPaused(cur) });
        } else if (cur.started) {
          // its sound starts (or, paused behind tracks playing out, the pause reaches it) once all before it is
          // heard, and any latency the backend reports beyond what it holds has passed too
          const ahead = cur.startFrame - ledger.listenerEdge;
          if (ahead > 0) nextAt = Math.min(nextAt, ctx.now + (ahead * 1000) / rate);
          else if (!ctx.paused) this.#announce(cur);
        }
      }
      if (!cur.eof) break;
      if (pauseInEffect && !cur.exhausted) break;
      // a pause waiting for the tracks playing out applies to this one, which will start paused: not finished yet
      if (ctx.paused && !cur.started && cur.handed === 0 && !cur.exhausted) break;
      const aheadFrames = this.framesUntilEnd(queue, ledger, rate);
      // nothing plays out while the backend is not active: only a track with nothing to play ends then
      if (!ctx.playing && aheadFrames > 0) break;
      const ms = (aheadFrames * 1000) / rate;
      if (ms > this.opts.earlyFinishMs) {
        nextAt = Math.min(nextAt, ctx.now + ms - this.opts.earlyFinishMs);
        break;
      }
      this.#finish(ctx, cur);
    }
    queue.prune(done);
    return nextAt;
  }

  /**
   * Output frames until the current track's last frame is audible: everything handed out and not yet heard, what
   * the tracks playing out still hold, and what the current track still holds (an estimate at the output rate when
   * it is resampled).
   */
  framesUntilEnd(queue: TrackQueue, ledger: OutputLedger, rate: number): number {
    let frames = ledger.unheard;
    for (const t of queue.draining) frames += t.remainingOutputFrames(rate);
    if (queue.current) frames += queue.current.remainingOutputFrames(rate);
    return frames;
  }

  /** The periodic report for the current track (`paused` once the pause has reached it). */
  report(queue: TrackQueue, paused: boolean): void {
    const cur = queue.current;
    if (!cur || !cur.announced) return;
    const pauseInEffect = paused && queue.draining.length === 0;
    this.emit({ type: pauseInEffect ? 'paused' : 'playing', id: cur.id, position: this.position(cur) });
  }

  /** The start of a track's sound: `playing` at position 0, once. */
  #announce(track: Track): void {
    track.announced = true;
    this.emit({ type: 'playing', id: track.id, position: 0 });
  }

  #finish(ctx: SettleContext, track: Track): void {
    // a track that makes sound is announced once, even when it ends before its sound starts (a short track)
    const makesSound = track.handed > 0 || !track.exhausted;
    if (!track.announced && makesSound && !ctx.paused) this.#announce(track);
    ctx.queue.finish(track, !track.exhausted || track.audible < track.handed);
    this.emit({ type: 'finished', id: track.id });
    ctx.queue.promote();
  }
}
