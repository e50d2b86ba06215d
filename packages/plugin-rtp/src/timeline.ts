import { writeRtpHeader } from './payload.js';

/**
 * The stream's place in time (RFC 3550 5.1): sequence number, RTP timestamp, marker, and the anchor that maps
 * frames to deadlines on the monotonic clock. Both senders (JS timers, native thread) ask it when the next packet
 * is due and tell it what they sent, so the catch-up rule and the marker rule are written once, here.
 */
export class Timeline {
  /** Sequence number of the next packet. */
  seq: number;
  /** Frames since the stream began, gaps included: the 64-bit RTP timestamp before the random base. */
  cursor = 0;
  /** The next packet starts a talkspurt (RFC 3551 4.1: marker bit). */
  markNext = true;
  #anchorMs = 0;
  #anchorFrame = 0;
  #anchored = false;
  #rate = 44100;
  /** RTP timestamp units per frame: 1, or the channel count in DisOrder-compatible mode. */
  #tsPerFrame = 1;

  constructor(
    firstSeq: number,
    /** The random base of the RTP timestamp. */
    private readonly tsBase: number,
  ) {
    this.seq = firstSeq;
  }

  configure(rate: number, tsPerFrame: number): void {
    this.#rate = rate;
    this.#tsPerFrame = tsPerFrame;
  }

  /** Deadline of frame `frame` (default: the next packet's first) on the monotonic clock. */
  deadline(frame = this.cursor): number {
    return this.#anchorMs + ((frame - this.#anchorFrame) * 1000) / this.#rate;
  }

  /** The stream (re)starts at `at`: the timestamp moves on by the time that passed since the last frame's end. */
  anchor(at: number): void {
    if (!this.#anchored) {
      this.#anchorMs = at;
      this.#anchorFrame = this.cursor;
      this.#anchored = true;
    } else {
      const end = this.deadline();
      if (at > end) this.#reanchor(at, end);
    }
  }

  /**
   * The stream starts again at `at`: after activate, a pause, or (`dry`) a sender that ran out of frames while
   * playing. A dry spell that ends within `catchUpMs` of the schedule is a stall like any other — the host's fill
   * came late (a timer that fired late drains the ring before the fill it asked for can run) — and is caught up:
   * the same schedule, its packets due at once, no marker, no gap in the timestamps. Otherwise a new talkspurt:
   * the marker, and the timestamp moved on by the time that passed.
   */
  restart(at: number, dry: boolean, catchUpMs: number): void {
    if (this.#anchored && dry && at - this.deadline() <= catchUpMs) return;
    this.anchor(at);
    this.markNext = true;
  }

  /**
   * When the next packet is due, seen at `now`. After a stall longer than `catchUpMs` (a blocked event loop, a
   * suspended machine, a clock jump) the schedule moves to now: the timestamp skips the frames real time
   * consumed, the packet carries the marker, and it is due now; never a burst to catch up. A shorter stall is
   * caught up (its packets are due already).
   */
  due(now: number, catchUpMs: number): number {
    const due = this.deadline();
    if (now - due <= catchUpMs) return due;
    this.#reanchor(now, due);
    this.markNext = true;
    return now;
  }

  /** Write the next packet's RTP header into `buf`. */
  header(buf: Buffer, payloadType: number, ssrc: number): void {
    writeRtpHeader(buf, this.markNext, payloadType, this.seq, this.tsBase + this.cursor * this.#tsPerFrame, ssrc);
  }

  /** A packet of `frames` went out (or to the thread): the sequence number +1, the timestamp +frames, no marker. */
  advance(frames: number): void {
    this.seq = (this.seq + 1) & 0xffff;
    this.cursor += frames;
    this.markNext = false;
  }

  /** `packets` packets of `frames` in all were taken back unsent; `marker`: the first of them had the marker. */
  rewind(packets: number, frames: number, marker: boolean): void {
    this.seq = (this.seq - packets + 0x10000) & 0xffff;
    this.cursor -= frames;
    if (marker) this.markNext = true;
  }

  /** The RTP timestamp (64-bit count) for the monotonic instant `now`. */
  timestampAt(now: number): number {
    const frames = this.#anchored
      ? this.#anchorFrame + Math.floor(((now - this.#anchorMs) * this.#rate) / 1000)
      : this.cursor;
    return this.tsBase + frames * this.#tsPerFrame;
  }

  /** Move the schedule to `now`: the frames real time consumed since `due` are skipped in the timestamp. */
  #reanchor(now: number, due: number): void {
    this.cursor += Math.round(((now - due) * this.#rate) / 1000);
    this.#anchorMs = now;
    this.#anchorFrame = this.cursor;
  }
}
