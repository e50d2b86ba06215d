import type { Track } from './track.js';

interface Segment {
  track: Track | undefined; // undefined: silence
  frames: number;
  consumed: number; // frames of it already audible
  bytes: Uint8Array[] | undefined; // what was written (before volume), kept for replay after a flush
}

/**
 * What has been handed to the backend and is not yet audible, in order. From the backend's delay it tells each
 * track's audible position; after a flush it gives back the dropped frames so they can be played again. One ledger
 * lasts the whole run: its counts are frames of the output stream since speakerd started (a format or backend
 * change happens only when nothing is unheard, so the counts stay comparable).
 */
export class OutputLedger {
  #segments: Segment[] = [];
  /** Frames handed to the backend since the stream began (silence included). */
  total = 0;
  #audible = 0;
  /** The part of the backend's last delay beyond everything handed out: latency ahead of the stream's edge. */
  #ahead = 0;

  constructor(
    private keepBytes: boolean,
    private frameBytes: number,
  ) {}

  /** A new output format or backend: only when nothing is unheard. */
  reset(keepBytes: boolean, frameBytes: number): void {
    if (this.unheard > 0) this.creditAll();
    this.keepBytes = keepBytes;
    this.frameBytes = frameBytes;
  }

  /** Whether the pre-volume bytes of unheard frames are kept (the backend can take audio back). */
  get keepsBytes(): boolean {
    return this.keepBytes;
  }

  /** Frames of the stream that are audible by now. */
  get audibleTotal(): number {
    return this.#audible;
  }

  /**
   * Where the listener is in the stream: {@link audibleTotal}, less the latency a backend reports beyond all it
   * was handed (snapserver's buffer, say: its delay() is what it holds plus that buffer). Negative while the first
   * frame of the run has not reached the listener.
   */
  get listenerEdge(): number {
    return this.#audible - this.#ahead;
  }

  /** Count everything handed out as heard (the backend lost what it held and it cannot be played again). */
  creditAll(): void {
    this.advance(0);
  }

  /** Record `frames` written for `track` (undefined: silence); `bytes` are the pre-volume bytes. */
  append(track: Track | undefined, frames: number, bytes: Uint8Array | undefined): void {
    if (frames <= 0) return;
    this.total += frames;
    const last = this.#segments[this.#segments.length - 1];
    const keep = this.keepBytes && bytes ? bytes : undefined;
    if (last && last.track === track) {
      last.frames += frames;
      if (keep) last.bytes?.push(keep);
      return;
    }
    this.#segments.push({ track, frames, consumed: 0, bytes: this.keepBytes ? (keep ? [keep] : []) : undefined });
  }

  /** Frames handed but not yet audible. */
  get unheard(): number {
    return this.total - this.#audible;
  }

  /** The backend says `delay` frames are still queued: credit what has become audible to each track. */
  advance(delay: number): void {
    this.#ahead = Math.max(0, delay - this.total);
    const boundary = Math.max(this.#audible, this.total - Math.max(0, Math.min(delay, this.total)));
    let gain = boundary - this.#audible;
    this.#audible = boundary;
    while (gain > 0) {
      const seg = this.#segments[0];
      if (!seg) break;
      const take = Math.min(gain, seg.frames - seg.consumed);
      seg.consumed += take;
      if (seg.track) seg.track.audible += take;
      if (seg.bytes) dropFront(seg.bytes, take * this.frameBytes);
      gain -= take;
      if (seg.consumed >= seg.frames) this.#segments.shift();
    }
  }

  /**
   * The backend dropped its last `frames` frames (flush). Take them off the ledger and give each track its
   * bytes back, oldest first, so they play again.
   */
  rewind(frames: number): void {
    const frameBytes = this.frameBytes;
    let left = Math.min(frames, this.total - this.#audible);
    this.total -= left;
    while (left > 0) {
      const seg = this.#segments[this.#segments.length - 1];
      if (!seg) break;
      const avail = seg.frames - seg.consumed;
      const take = Math.min(left, avail);
      seg.frames -= take;
      left -= take;
      if (seg.track) {
        seg.track.handed -= take;
        // give back the last `take` frames of this segment's bytes
        let bytesLeft = take * frameBytes;
        const back: Uint8Array[] = [];
        while (bytesLeft > 0 && seg.bytes && seg.bytes.length > 0) {
          const b = seg.bytes[seg.bytes.length - 1]!;
          if (b.length <= bytesLeft) {
            back.unshift(b);
            seg.bytes.pop();
            bytesLeft -= b.length;
          } else {
            back.unshift(b.subarray(b.length - bytesLeft));
            seg.bytes[seg.bytes.length - 1] = b.subarray(0, b.length - bytesLeft);
            bytesLeft = 0;
          }
        }
        for (let i = back.length - 1; i >= 0; i--) seg.track.unread(back[i]!);
        if (seg.track.handed === 0) seg.track.started = false;
      }
      if (seg.frames <= seg.consumed) this.#segments.pop();
    }
  }

  /** Forget every not-yet-audible frame of `track` (cancelled): they will never be heard. */
  forget(track: Track): void {
    for (const seg of this.#segments) if (seg.track === track) seg.track = undefined;
  }
}

function dropFront(chunks: Uint8Array[], bytes: number): void {
  while (bytes > 0 && chunks.length > 0) {
    const b = chunks[0]!;
    if (b.length <= bytes) {
      chunks.shift();
      bytes -= b.length;
    } else {
      chunks[0] = b.subarray(bytes);
      bytes = 0;
    }
  }
}
