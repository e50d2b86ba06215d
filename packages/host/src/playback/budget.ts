/**
 * One budget for the audio buffered across the tracks that wait to play (`maxBufferMB`): the per-track `bufferMs`
 * bounds each track, this bounds them all, so that many connected decoders of a large format cannot take the
 * machine's memory. Tracks report every change of what they hold; a track that the budget holds back waits to be
 * told when there is room again.
 */
export class BufferBudget {
  #used = 0;
  #waiting = new Set<() => void>();

  constructor(public capBytes: number) {}

  /** Bytes held by all tracks. */
  get used(): number {
    return this.#used;
  }

  /** At or over the cap: tracks that wait to play stop reading their decoders. */
  get full(): boolean {
    return this.#used >= this.capBytes;
  }

  /** Below 90 % of the cap: tracks held back may read again (a margin, so they do not stop and start per read). */
  get roomy(): boolean {
    return this.#used < this.capBytes * 0.9;
  }

  /** A track's holding changed by `delta` bytes. */
  change(delta: number): void {
    this.#used += delta;
    if (delta < 0 && this.#waiting.size > 0 && this.roomy) for (const fn of [...this.#waiting]) fn();
  }

  /** Call `fn` when there is room again (until {@link unwait}). */
  wait(fn: () => void): void {
    this.#waiting.add(fn);
  }

  unwait(fn: () => void): void {
    this.#waiting.delete(fn);
  }

  /** A new cap (a reload); tracks held back are told if there is room now. */
  setCap(capBytes: number): void {
    this.capBytes = capBytes;
    if (this.roomy) for (const fn of [...this.#waiting]) fn();
  }
}
