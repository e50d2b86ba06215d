/**
 * Splits a byte stream into lines of at most `maxBytes` bytes (not counting the newline). A longer line is
 * reported once through `onTooLong` and discarded up to its newline, without buffering it: memory stays bounded
 * whatever the peer sends.
 */
export class LineSplitter {
  #parts: Buffer[] = [];
  #length = 0;
  #discarding = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onTooLong: () => void,
  ) {}

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
        this.#parts = [];
        this.#length = 0;
        this.onTooLong();
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

  /** Bytes of an unfinished line held so far. */
  get pending(): number {
    return this.#length;
  }
}
