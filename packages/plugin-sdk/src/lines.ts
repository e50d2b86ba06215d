/**
 * Splits a byte stream into lines of at most `maxBytes` bytes (not counting the newline). A longer line is
 * reported once through `onTooLong`, with its first `maxBytes` bytes, and discarded up to its newline without
 * buffering the rest: memory stays bounded whatever the peer sends. Lines are bytes, so a multi-byte UTF-8
 * character split across chunks arrives whole; decode each line (`line.toString('utf8')`) or check it
 * (`isUtf8` from node:buffer) as the protocol needs. A trailing `\r` is left to the caller.
 *
 * The host reads its control channel with it; plugins use it for a child's stderr or a line protocol.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #length = 0;
  #discarding = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onTooLong: (head: Buffer) => void = () => {},
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < 1)
      throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.#discarding) {
        if (nl === -1) return;
        this.#discarding = false;
        start = nl + 1;
        continue;
      }
      const piece = end - start;
      if (this.#length + piece > this.maxBytes) {
        const head = Buffer.concat([...this.#parts, chunk.subarray(start, start + this.maxBytes - this.#length)]);
        this.#parts = [];
        this.#length = 0;
        this.onTooLong(head);
        if (nl === -1) {
          this.#discarding = true;
          return;
        }
        start = nl + 1;
        continue;
      }
      if (nl === -1) {
        this.#parts.push(chunk.subarray(start));
        this.#length += piece;
        return;
      }
      const line =
        this.#parts.length === 0
          ? chunk.subarray(start, end)
          : Buffer.concat([...this.#parts, chunk.subarray(start, end)]);
      this.#parts = [];
      this.#length = 0;
      this.onLine(line);
      start = nl + 1;
    }
  }

  /** The stream ended: an unfinished last line (not one being discarded) goes to `onLine`. */
  end(): void {
    const parts = this.#parts;
    const discarding = this.#discarding;
    this.#parts = [];
    this.#length = 0;
    this.#discarding = false;
    if (!discarding && parts.length > 0) this.onLine(Buffer.concat(parts));
  }

  /** Bytes of an unfinished line held so far (never more than `maxBytes`). */
  get pending(): number {
    return this.#length;
  }
}
