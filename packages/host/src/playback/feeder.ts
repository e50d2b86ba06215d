import {
  bytesPerFrame,
  formatToString,
  framesForMs,
  sameFormat,
  type Logger,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { applyVolume, silence } from '../convert/index.js';
import type { BackendDriver } from './driver.js';
import type { OutputLedger } from './ledger.js';
import type { TrackQueue } from './queue.js';
import type { Track } from './track.js';

/** At most this many `write()` calls in one fill (a backend taking a frame at a time still plays at real time). */
export const MAX_WRITES_PER_FILL = 8192;

export interface FeederOptions {
  /** A track starts once this much of it is buffered (or its input has ended). */
  startThresholdMs: number;
  /**
   * Silence is written only when what a clock-paced backend holds ahead of the listener falls below this: the
   * output never gets silence while it still holds audio.
   */
  silenceGuardMs: number;
  /** While a track has no audio, silence tops the backend up to the guard plus this (until the next look). */
  silenceStepMs: number;
}

/** What one fill did. */
export interface FillResult {
  /** Frames handed to the backend, silence included. */
  frames: number;
  /** Of which silence. */
  silence: number;
  /** A source had nothing to give right now (and is not done); the fill stopped there. */
  starved: Track | undefined;
  /** The next track to start wants the backend in this format (the switch waits until all is audible). */
  switchTo: SampleFormat | undefined;
  /** The fill stopped at MAX_WRITES_PER_FILL calls with room left: fill again at once. */
  capped: boolean;
}

/** What the feeder is told about the loop for one fill. */
export interface FillContext {
  queue: TrackQueue;
  driver: BackendDriver;
  ledger: OutputLedger;
  /** The format the backend is active in. */
  format: SampleFormat;
  /** The negotiated output format (for tracks the backend does not want in their own format). */
  baseFormat: SampleFormat;
  paused: boolean;
  /** A backend change waits for the next track boundary: start no new track. */
  holdBoundary: boolean;
  /** Track formats the backend refused to be activated in (`formatFor` asked, `activate` said no): convert. */
  refused: ReadonlySet<string>;
  volume: number;
}

/**
 * One fill of the backend: offers frames from the sources in order (tracks playing out, the current one, the
 * next one), the next starting at the exact frame after the current one ends; applies software volume; writes
 * silence on a clock-paced backend only to keep it from running dry; records everything in the ledger.
 */
export class Feeder {
  #scratch = new Uint8Array(0);
  #silence: { format: SampleFormat; bytes: Uint8Array } | undefined;
  #slowWarned = false;

  constructor(
    private readonly opts: FeederOptions,
    private readonly log: Logger,
  ) {}

  fill(ctx: FillContext): FillResult {
    const { queue, driver, format } = ctx;
    const fb = bytesPerFrame(format);
    const result: FillResult = { frames: 0, silence: 0, starved: undefined, switchTo: undefined, capped: false };
    let budget = driver.writable();
    let calls = 0;
    outer: for (const src of queue.sources()) {
      if (budget <= 0 || !driver.ready) break;
      if (src.exhausted) continue;
      const pauseHere = ctx.paused && src.role !== 'finished';
      if (!src.started) {
        if (pauseHere || ctx.holdBoundary) break;
        if (!src.input || !src.ready(this.opts.startThresholdMs)) {
          result.starved = src;
          break;
        }
        let want = driver.formatFor(src.input) ?? ctx.baseFormat;
        if (!driver.ready) break;
        if (ctx.refused.has(formatToString(want))) want = ctx.baseFormat;
        if (!sameFormat(want, format)) {
          result.switchTo = want;
          break;
        }
        src.setOutput(format);
        src.started = true;
        src.startFrame = ctx.ledger.total;
      } else if (pauseHere) {
        break;
      }
      while (budget > 0) {
        if (calls >= MAX_WRITES_PER_FILL) {
          result.capped = true;
          break outer;
        }
        const chunk = src.read(budget);
        if (!chunk) {
          if (!src.exhausted) {
            result.starved = src;
            break outer;
          }
          continue outer;
        }
        const frames = chunk.length / fb;
        const { accepted, calls: used } = this.#write(ctx, chunk, src, MAX_WRITES_PER_FILL - calls);
        calls += used;
        src.handed += accepted;
        budget -= accepted;
        result.frames += accepted;
        if (accepted > 0) src.inUnderrun = false;
        if (accepted < frames) {
          src.unread(chunk.subarray(accepted * fb));
          if (calls >= MAX_WRITES_PER_FILL && driver.ready) result.capped = true;
          break outer; // the backend is full (or failed, or the call budget is spent)
        }
      }
    }
    // the budget may have run out exactly as a source ran dry: the first source still to play tells
    if (!result.starved && !result.switchTo && driver.ready) result.starved = this.#dry(ctx);
    if (result.capped && !this.#slowWarned) {
      this.#slowWarned = true;
      this.log.warn(
        { plugin: driver.plugin, calls: MAX_WRITES_PER_FILL },
        `${driver.plugin}: write() takes very few frames per call (${MAX_WRITES_PER_FILL} calls in one fill); this costs CPU`,
      );
    }
    const starved = result.starved;
    if (starved && driver.pacing === 'clock' && driver.ready && budget > 0) {
      const n = this.#silenceNeeded(ctx, budget);
      if (n > 0) {
        const { accepted } = this.#writeBytes(ctx, this.#silenceOf(format, n), undefined, 64);
        result.silence = accepted;
        result.frames += accepted;
        if (accepted > 0 && starved.started) this.#underrun(starved, accepted, format);
      }
    }
    return result;
  }

  /** The first source still to play, if it has nothing to give now (a track not ready to start counts). */
  #dry(ctx: FillContext): Track | undefined {
    for (const src of ctx.queue.sources()) {
      if (src.exhausted) continue;
      if (ctx.paused && src.role !== 'finished') return undefined;
      if (!src.started) return !src.input || !src.ready(this.opts.startThresholdMs) ? src : undefined;
      return src.hasAudio ? undefined : src;
    }
    return undefined;
  }

  /**
   * Frames of silence to write now: none while the backend holds at least the guard ahead of the listener;
   * below it, enough to reach the guard plus one step.
   */
  #silenceNeeded(ctx: FillContext, budget: number): number {
    const queued = ctx.driver.delay() ?? ctx.ledger.unheard;
    const guard = framesForMs(this.opts.silenceGuardMs, ctx.format);
    if (queued >= guard) return 0;
    const target = guard + framesForMs(this.opts.silenceStepMs, ctx.format);
    return Math.max(0, Math.min(budget, target - queued));
  }

  /** How long until a starved clock-paced backend must be looked at again (ms), given what it holds. */
  msUntilGuard(queuedFrames: number, format: SampleFormat): number {
    return Math.max(0, (queuedFrames * 1000) / format.rate - this.opts.silenceGuardMs);
  }

  #underrun(track: Track, frames: number, format: SampleFormat): void {
    track.silenceFrames += frames;
    if (track.inUnderrun) return;
    track.inUnderrun = true;
    track.underruns++;
    if (track.underruns === 1)
      this.log.warn(
        { id: track.id, format: formatToString(format) },
        `track ${JSON.stringify(track.id)} ran dry while playing (its decoder fell behind real time): silence was written until its audio came; status counts it as underruns`,
      );
  }

  /** Write a track's chunk: volume applied on a copy, offered again at once after a short write. */
  #write(ctx: FillContext, chunk: Uint8Array, track: Track, maxCalls: number): { accepted: number; calls: number } {
    const hardware = ctx.driver.hasHardwareVolume;
    if (ctx.volume === 100 || hardware) return this.#writeBytes(ctx, chunk, track, maxCalls);
    if (this.#scratch.length < chunk.length) this.#scratch = new Uint8Array(Math.max(chunk.length, 16384));
    const out = this.#scratch.subarray(0, chunk.length);
    out.set(chunk);
    applyVolume(out, ctx.format, ctx.volume);
    return this.#writeBytes(ctx, out, track, maxCalls, chunk);
  }

  /**
   * Hand `out` to the backend, offering the rest again while it keeps taking some (at most `maxCalls` calls).
   * The ledger records `original` (the bytes before volume; `out` itself when there is none).
   */
  #writeBytes(
    ctx: FillContext,
    out: Uint8Array,
    track: Track | undefined,
    maxCalls: number,
    original: Uint8Array = out,
  ): { accepted: number; calls: number } {
    const fb = bytesPerFrame(ctx.format);
    const frames = out.length / fb;
    let done = 0;
    let calls = 0;
    while (done < frames && calls < maxCalls && ctx.driver.ready) {
      const n = ctx.driver.write(done === 0 ? out : out.subarray(done * fb));
      calls++;
      if (n <= 0) break;
      ctx.ledger.append(track, n, track ? original.subarray(done * fb, (done + n) * fb) : undefined);
      done += n;
    }
    return { accepted: done, calls };
  }

  /** Silence at most `frames` long, from a buffer made once per format and grown as needed. */
  #silenceOf(format: SampleFormat, frames: number): Uint8Array {
    const fb = bytesPerFrame(format);
    const cached = this.#silence;
    if (!cached || !sameFormat(cached.format, format) || cached.bytes.length < frames * fb)
      this.#silence = { format, bytes: silence(format, Math.max(frames, framesForMs(50, format))) };
    return this.#silence!.bytes.subarray(0, frames * fb);
  }
}
