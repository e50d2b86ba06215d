/** A packet buffer of the JS sender, and the sends of it the kernel has not completed. */
export interface PoolEntry {
  buf: Buffer;
  /** Sends of this buffer that have not completed (the kernel may still read it). */
  pending: number;
  done: (err: Error | null) => void;
}

/** Buffers made at most: beyond this many a busy one is reused rather than another made. */
const MAX_POOL = 256;
/** Buffers made per format. */
const INITIAL = 16;

/**
 * The JS sender's packet buffers, preallocated per format and used in turn: a buffer whose send the kernel has
 * not completed is never overwritten (another is made beside it, up to MAX_POOL), so nothing is allocated per
 * packet in the steady state.
 */
export class PacketPool {
  #entries: PoolEntry[] = [];
  #next = 0;
  #size = 0;

  constructor(
    /** A send of a pool buffer failed. */
    private readonly onError: (err: Error) => void,
  ) {}

  /** Buffers of `size` bytes (header + a full packet's payload). */
  configure(size: number): void {
    this.#size = size;
    this.#entries = [];
    for (let i = 0; i < INITIAL; i++) this.#entries.push(this.#make());
    this.#next = 0;
  }

  /** The next buffer to build a packet in. */
  next(): PoolEntry {
    let e = this.#entries[this.#next]!;
    if (e.pending > 0 && this.#entries.length < MAX_POOL) {
      // the kernel has not taken this one yet (a send queued in libuv): never overwrite it
      e = this.#make();
      this.#entries.splice(this.#next, 0, e);
    }
    this.#next = (this.#next + 1) % this.#entries.length;
    return e;
  }

  #make(): PoolEntry {
    const entry: PoolEntry = {
      buf: Buffer.alloc(this.#size),
      pending: 0,
      done: (err) => {
        entry.pending--;
        if (err) this.onError(err);
      },
    };
    return entry;
  }
}
