import { reorderInto } from './channel-order.js';

/**
 * The host's frames not yet sent, in the wire's channel order: a ring of whole frames, allocated per format.
 * The JS sender copies a packet's frames out of it (`take`); the native sender tells the thread where they lie
 * (`span`) and the thread copies them straight from here into its slot.
 */
export class FrameRing {
  /** The ring's bytes (the native thread reads a packet's payload from here). */
  buf: Buffer = Buffer.alloc(0);
  /**
   * Payload bytes copied so far, by copy: into the ring (the host's write, with the wire's byte and channel order),
   * out of it by JS (`take`, into the JS sender's packet), out of it by the native thread (`span`s handed to it).
   * Each byte the wire carries is copied twice: in, and out by one of the two.
   */
  readonly copied = { in: 0, out: 0, thread: 0 };
  #frames = 0;
  #bpf = 4;
  #head = 0;
  #count = 0;

  /** Room for `frames` frames of `bpf` bytes; empty. */
  configure(frames: number, bpf: number): void {
    this.#frames = frames;
    this.#bpf = bpf;
    this.buf = Buffer.alloc(frames * bpf);
    this.#head = this.#count = 0;
  }

  get capacity(): number {
    return this.#frames;
  }

  /** Frames queued. */
  get count(): number {
    return this.#count;
  }

  /** Frames that fit. */
  get room(): number {
    return this.#frames - this.#count;
  }

  /** Drop what is queued (and start at the ring's beginning with `rewind`); returns the frames dropped. */
  clear(rewind = false): number {
    const n = this.#count;
    this.#count = 0;
    if (rewind) this.#head = 0;
    return n;
  }

  /** Append the whole frames of `data` that fit, reordered by `map` (channel-order.ts) when there is one. */
  write(data: Uint8Array, map: readonly number[] | undefined): number {
    const bpf = this.#bpf;
    const frames = Math.min(Math.floor(data.length / bpf), this.room);
    if (frames <= 0) return 0;
    let tail = this.#head + this.#count;
    if (tail >= this.#frames) tail -= this.#frames;
    const first = Math.min(frames, this.#frames - tail);
    this.#put(first === frames ? data.subarray(0, frames * bpf) : data.subarray(0, first * bpf), tail * bpf, map);
    if (first < frames) this.#put(data.subarray(first * bpf, frames * bpf), 0, map);
    this.#count += frames;
    this.copied.in += frames * bpf;
    return frames;
  }

  /** Move the first `frames` queued frames into `dst` at byte `at` (the ring may wrap). */
  take(dst: Buffer, at: number, frames: number): void {
    const bpf = this.#bpf;
    const first = Math.min(frames, this.#frames - this.#head);
    this.buf.copy(dst, at, this.#head * bpf, (this.#head + first) * bpf);
    if (first < frames) this.buf.copy(dst, at + first * bpf, 0, (frames - first) * bpf);
    this.copied.out += frames * bpf;
    this.#consume(frames);
  }

  /**
   * Where the first `frames` queued frames lie, written into `out` at `i`: their byte offset, the bytes there,
   * and the bytes that follow from the ring's start (it wraps); then they count as taken (the caller copies them
   * before anything writes again).
   */
  span(frames: number, out: Float64Array, i: number): void {
    const off = this.#head * this.#bpf;
    const bytes = frames * this.#bpf;
    const len1 = Math.min(bytes, this.buf.length - off);
    out[i] = off;
    out[i + 1] = len1;
    out[i + 2] = bytes - len1;
    this.copied.thread += bytes;
    this.#consume(frames);
  }

  #consume(frames: number): void {
    this.#head += frames;
    if (this.#head >= this.#frames) this.#head -= this.#frames;
    this.#count -= frames;
  }

  #put(src: Uint8Array, at: number, map: readonly number[] | undefined): void {
    if (map) reorderInto(this.buf, at, src, map, this.#bpf / map.length);
    else this.buf.set(src, at);
  }
}
