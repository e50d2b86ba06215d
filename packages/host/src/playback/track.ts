import { bytesPerFrame, sameFormat, type SampleFormat } from '@speakerd/plugin-sdk';
import { createConverter, type Converter } from '../convert/index.js';
import type { BufferBudget } from './budget.js';

/** How a track stands, as `status` reports it; `finished` tracks are no longer reported. */
export type TrackRole = 'connected' | 'waiting' | 'current' | 'next' | 'finished';

/** The decoder side of a track, as the track sees it: flow control and hang-up. */
export interface TrackInput {
  pause(): void;
  resume(): void;
  destroy(): void;
}

/**
 * One track: PCM from its decoder, buffered in its own format (at most `bufferMs` of it, with back-pressure on the
 * decoder), converted to the output format as the play loop reads it. Chunks are kept as they arrived; nothing is
 * copied until conversion, and not even then when the track already is in the output format.
 */
export class Track {
  #role: TrackRole;
  /** The decoder's format; undefined until its header (or WAV fmt chunk) has been read. */
  input: SampleFormat | undefined;
  connection: TrackInput | undefined;
  /** The decoder has closed (or failed): no more input will come. */
  eof = false;

  /** Output frames handed to the backend. */
  handed = 0;
  /** Output frames of this track that are audible by now. */
  audible = 0;
  /** Highest position reported, so reports never go backwards. */
  reported = 0;
  /** The first frame has been handed to the backend. */
  started = false;
  /** Where the first frame stands in the output stream (the ledger's count before it): audible once that many are. */
  startFrame = 0;
  /** `playing` (or, for a track that starts paused, `paused`) has been sent since the track became current. */
  announced = false;
  /** `finished` or `stillborn` has been sent. */
  answered = false;
  /** A decoder connection has been accepted for this id (its format may still be unknown: a WAV header). */
  attached = false;
  /** Times the track ran dry while playing and silence had to be written (the decoder fell behind). */
  underruns = 0;
  /** Frames of silence written while this track was playing and had no audio. */
  silenceFrames = 0;
  /** Silence was written since this track's last frame was handed out (the current underrun, if any). */
  inUnderrun = false;

  #chunks: Buffer[] = [];
  #head = 0; // offset into #chunks[0]
  #inputBytes = 0;
  #carry: Buffer | undefined;
  #inputFrameBytes = 0;

  #output: SampleFormat | undefined;
  #outFrameBytes = 0;
  #converter: Converter | undefined;
  #converterEnded = false;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #paused = false;
  /** Bytes last reported to the budget. */
  #counted = 0;
  /** Waiting for the budget to have room (held back by it, not by bufferMs). */
  #heldByBudget = false;
  #bufferMs: number;

  constructor(
    readonly id: string,
    role: TrackRole,
    bufferMs: number,
    /** The budget across tracks (maxBufferMB); without one, only bufferMs bounds the track. */
    private readonly budget?: BufferBudget,
  ) {
    this.#role = role;
    this.#bufferMs = bufferMs;
  }

  /** The most audio this track buffers, in ms (back-pressure on its decoder). */
  get bufferMs(): number {
    return this.#bufferMs;
  }

  /** A new bound (a reload): back-pressure follows at once, pausing or resuming the decoder as the new bound says. */
  set bufferMs(ms: number) {
    this.#bufferMs = ms;
    this.#flowControl();
  }

  get role(): TrackRole {
    return this.#role;
  }

  /** A new role; a track promoted to current or next is no longer held back by the budget. */
  set role(role: TrackRole) {
    this.#role = role;
    this.#flowControl();
  }

  /** A decoder connection is accepted for this track (its format may follow later, from a WAV header). */
  attach(connection: TrackInput): void {
    this.attached = true;
    this.connection = connection;
  }

  /** Set the decoder's format (from the header line, or from the WAV `fmt ` chunk). */
  setInput(format: SampleFormat, connection?: TrackInput): void {
    if (connection) this.attach(connection);
    this.input = format;
    this.#inputFrameBytes = bytesPerFrame(format);
  }

  /** Input frames buffered. */
  get inputFrames(): number {
    return this.#inputFrameBytes === 0 ? 0 : this.#inputBytes / this.#inputFrameBytes;
  }

  /** Seconds of audio buffered (input not yet converted, plus converted output not yet handed). */
  bufferedSeconds(): number {
    let s = this.input ? this.inputFrames / this.input.rate : 0;
    if (this.#output && this.#outFrameBytes > 0) s += this.#pendingBytes / this.#outFrameBytes / this.#output.rate;
    return s;
  }

  /** Output frames still to hand out, estimated at the output rate (exact when no resampling is involved). */
  remainingOutputFrames(outRate: number): number {
    let frames = this.#outFrameBytes > 0 ? this.#pendingBytes / this.#outFrameBytes : 0;
    if (this.input) frames += (this.inputFrames * outRate) / this.input.rate;
    return frames;
  }

  /**
   * Enough is buffered to start without running dry at once: `thresholdMs` (capped at half of `bufferMs`, which
   * back-pressure would otherwise never let it reach), or the input has ended.
   */
  ready(thresholdMs: number): boolean {
    return this.eof || this.bufferedSeconds() * 1000 >= Math.min(thresholdMs, this.#bufferMs / 2);
  }

  /** PCM from the decoder. A trailing partial frame is held until the rest arrives (or dropped at EOF). */
  pushInput(data: Buffer): void {
    if (this.eof || this.#inputFrameBytes === 0 || data.length === 0) return;
    if (this.#carry) {
      data = Buffer.concat([this.#carry, data]);
      this.#carry = undefined;
    }
    const extra = data.length % this.#inputFrameBytes;
    if (extra !== 0) {
      this.#carry = Buffer.from(data.subarray(data.length - extra));
      data = data.subarray(0, data.length - extra);
    }
    if (data.length === 0) return;
    this.#chunks.push(data);
    this.#inputBytes += data.length;
    this.#flowControl();
  }

  /** The decoder is done. A partial frame left over is dropped. */
  endInput(): void {
    this.eof = true;
    this.#carry = undefined;
    this.connection = undefined;
  }

  /** Drop everything and hang up on the decoder. */
  discard(): void {
    this.connection?.destroy();
    this.connection = undefined;
    this.eof = true;
    this.#chunks = [];
    this.#head = 0;
    this.#inputBytes = 0;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#carry = undefined;
    this.#converterEnded = true;
    this.#flowControl();
  }

  /** Fix the output format; called when the track is about to start (a reload may change it before then). */
  setOutput(format: SampleFormat): void {
    // the same format again (a flush took back every frame handed out): keep the converter and its state
    if (this.#output && this.#converter && sameFormat(this.#output, format)) return;
    this.#output = format;
    this.#outFrameBytes = bytesPerFrame(format);
    this.#converter = this.input ? createConverter(this.input, format) : undefined;
    this.#converterEnded = false;
  }

  /**
   * Continue a part-played track in another output format (a reload's backend took over mid-track): what was
   * already converted for the old format and not handed out is dropped; the rest is converted to `format`.
   * Returns the output frames dropped.
   */
  switchOutput(format: SampleFormat): number {
    if (this.#output && sameFormat(this.#output, format)) return 0;
    const dropped = this.#outFrameBytes > 0 ? this.#pendingBytes / this.#outFrameBytes : 0;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#output = undefined;
    this.setOutput(format);
    this.#flowControl();
    return dropped;
  }

  /** Some audio is buffered (input or converted output) and can be handed out now. */
  get hasAudio(): boolean {
    return this.#inputBytes > 0 || this.#pendingBytes > 0 || (this.eof && !!this.#converter && !this.#converterEnded);
  }

  /** All input has been converted and handed out; nothing more will come. */
  get exhausted(): boolean {
    return this.eof && this.#inputBytes === 0 && this.#pendingBytes === 0 && (this.#converterEnded || !this.#converter);
  }

  /**
   * Up to `maxFrames` output frames, contiguous, or undefined when nothing is available right now. The bytes stay
   * valid until the track is read again.
   */
  read(maxFrames: number): Uint8Array | undefined {
    if (!this.#output || maxFrames <= 0) return undefined;
    if (!this.#converter && this.input) this.setOutput(this.#output);
    const fb = this.#outFrameBytes;
    const want = maxFrames * fb;
    while (this.#pendingBytes < want && this.#inputBytes > 0) this.#convertSome(want - this.#pendingBytes);
    if (this.#pendingBytes === 0 && this.eof && this.#inputBytes === 0 && this.#converter && !this.#converterEnded) {
      this.#converterEnded = true;
      const tail = this.#converter.end();
      if (tail.length > 0) this.#pushPending(Buffer.from(tail));
    }
    const first = this.#pending[0];
    if (!first) return undefined;
    if (first.length <= want) {
      this.#pending.shift();
      this.#pendingBytes -= first.length;
      this.#flowControl();
      return first;
    }
    const out = first.subarray(0, want);
    this.#pending[0] = first.subarray(want);
    this.#pendingBytes -= want;
    this.#flowControl();
    return out;
  }

  /** Put output bytes back at the front (the backend took fewer frames, or dropped them on flush). */
  unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pending.unshift(bytes);
    this.#pendingBytes += bytes.length;
    this.#flowControl();
  }

  #pushPending(bytes: Uint8Array): void {
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
  }

  #convertSome(wantOutBytes: number): void {
    const conv = this.#converter!;
    const inFb = this.#inputFrameBytes;
    const inRate = this.input!.rate;
    const outRate = this.#output!.rate;
    // input frames needed for the output wanted, at least one frame, at most 8192 frames per step
    const wantIn = Math.min(8192, Math.max(1, Math.ceil(((wantOutBytes / this.#outFrameBytes) * inRate) / outRate)));
    const chunk = this.#chunks[0]!;
    const avail = chunk.length - this.#head;
    const take = Math.min(avail, wantIn * inFb);
    const slice = chunk.subarray(this.#head, this.#head + take);
    this.#head += take;
    this.#inputBytes -= take;
    if (this.#head >= chunk.length) {
      this.#chunks.shift();
      this.#head = 0;
    }
    const out = conv.convert(slice);
    if (out.length > 0) this.#pushPending(conv.passthrough ? out : Buffer.from(out));
    this.#flowControl();
  }

  /**
   * Stop reading the decoder at `bufferMs`; start again only once a quarter of it (at most a second) has been
   * played, so a full buffer costs one pause/resume per second rather than one per socket read. A track that waits
   * to play (not current, not next) also stops while the budget across tracks is full, and reads again when it
   * has room. Every call first reports what the track holds now to the budget.
   */
  #flowControl(): void {
    const held = this.#inputBytes + this.#pendingBytes;
    if (held !== this.#counted) {
      const delta = held - this.#counted;
      this.#counted = held; // first: the budget may call back into this track
      this.budget?.change(delta);
    }
    const conn = this.connection;
    if (!conn || !this.input) {
      if (this.#heldByBudget) this.budget!.unwait(this.#onRoom);
      this.#heldByBudget = false;
      return;
    }
    const ms = this.bufferedSeconds() * 1000;
    const waits = this.#role === 'connected' || this.#role === 'waiting';
    const budgetFull = waits && !!this.budget?.full;
    if (!this.#paused && (ms >= this.#bufferMs || budgetFull)) {
      this.#paused = true;
      conn.pause();
    } else if (
      this.#paused &&
      ms < this.#bufferMs - Math.min(1000, this.#bufferMs / 4) &&
      (!waits || !this.budget || this.budget.roomy)
    ) {
      this.#paused = false;
      conn.resume();
    }
    const held2 = this.#paused && waits && !!this.budget && !this.budget.roomy;
    if (held2 !== this.#heldByBudget) {
      this.#heldByBudget = held2;
      if (held2) this.budget!.wait(this.#onRoom);
      else this.budget!.unwait(this.#onRoom);
    }
  }

  #onRoom = (): void => this.#flowControl();
}
