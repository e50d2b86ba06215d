import { MAX_CHANNELS, MAX_RATE, MIN_CHANNELS, MIN_RATE, type Encoding, type SampleFormat } from '@speakerd/plugin-sdk';

/** How far into a stream the `data` chunk may start (other chunks, such as LIST, are skipped up to this). */
export const MAX_WAV_HEADER_BYTES = 65536;

export type WavHeader =
  | { kind: 'more' }
  | { kind: 'error'; message: string }
  | {
      kind: 'ok';
      format: SampleFormat;
      /** Offset of the first PCM byte. */
      dataOffset: number;
      /** Bytes of PCM the header announces, or undefined for a streamed WAV (size 0 or 0xFFFFFFFF). */
      dataBytes: number | undefined;
    };

const KSDATAFORMAT_PCM = '0100000000001000800000aa00389b71';
const KSDATAFORMAT_FLOAT = '0300000000001000800000aa00389b71';

/** What {@link WavHeaderReader.push} says once the header is complete: the format, and the PCM bytes that followed. */
export type WavHeaderDone = {
  kind: 'ok';
  format: SampleFormat;
  dataBytes: number | undefined;
  /** Bytes after the `data` chunk header in the pushed input (the first PCM). */
  rest: Buffer;
};

/**
 * Reads a RIFF/WAVE header incrementally from a stream, in chunks of any size: linear in the bytes pushed, and it
 * keeps at most one chunk header or one `fmt ` body (≤ 1024 bytes), never the header whole. Chunks other than
 * `fmt ` (LIST, fact, …) are skipped by counting, up to {@link MAX_WAV_HEADER_BYTES}. A header dripped one byte at a
 * time costs what it costs in one piece (a re-parse of the whole buffer per byte was quadratic).
 */
export class WavHeaderReader {
  /** Stream offset of the next byte to be pushed. */
  #offset = 0;
  /** Bytes of the current item (the RIFF preamble, a chunk header, a fmt body) collected so far. */
  #item = Buffer.alloc(12);
  #itemBytes = 0;
  #want: 'riff' | 'chunk' | 'fmt' | 'skip' = 'riff';
  /** Body bytes of a skipped chunk still to come. */
  #skip = 0;
  #format: SampleFormat | undefined;
  #done: WavHeaderDone | { kind: 'error'; message: string } | undefined;

  /** Bytes held between pushes (at most 1024: one fmt body). */
  get retainedBytes(): number {
    return this.#itemBytes;
  }

  /** Bytes consumed so far (the stream offset). */
  get offset(): number {
    return this.#offset;
  }

  push(chunk: Buffer): { kind: 'more' } | { kind: 'error'; message: string } | WavHeaderDone {
    if (this.#done) return this.#done.kind === 'error' ? this.#done : { kind: 'error', message: 'header already read' };
    let at = 0;
    while (at < chunk.length) {
      if (this.#want === 'skip') {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        this.#offset += n;
        if (this.#skip === 0) this.#expect('chunk', 8);
        continue;
      }
      const n = Math.min(this.#item.length - this.#itemBytes, chunk.length - at);
      chunk.copy(this.#item, this.#itemBytes, at, at + n);
      this.#itemBytes += n;
      at += n;
      this.#offset += n;
      if (this.#itemBytes < this.#item.length) break;
      const r = this.#complete();
      if (r) {
        this.#done = r.kind === 'ok' ? { ...r, rest: chunk.subarray(at) } : r;
        return this.#done;
      }
    }
    return { kind: 'more' };
  }

  #expect(want: 'chunk' | 'fmt', bytes: number): void {
    this.#want = want;
    this.#item = Buffer.alloc(bytes);
    this.#itemBytes = 0;
  }

  /** The current item is complete: act on it; a result ends the header. */
  #complete(): Omit<WavHeaderDone, 'rest'> | { kind: 'error'; message: string } | undefined {
    const item = this.#item;
    if (this.#want === 'riff') {
      const riff = item.toString('latin1', 0, 4);
      if (riff !== 'RIFF' && riff !== 'RF64') return { kind: 'error', message: 'not a RIFF/WAVE stream (no RIFF tag)' };
      if (item.toString('latin1', 8, 12) !== 'WAVE')
        return { kind: 'error', message: 'not a RIFF/WAVE stream (no WAVE tag)' };
      this.#expect('chunk', 8);
      return undefined;
    }
    if (this.#want === 'fmt') {
      const parsed = parseFmt(item);
      if (typeof parsed === 'string') return { kind: 'error', message: parsed };
      this.#format = parsed;
      return this.#pad(item.length);
    }
    // A chunk header.
    const chunkStart = this.#offset - 8;
    if (chunkStart > MAX_WAV_HEADER_BYTES)
      return { kind: 'error', message: `no data chunk in the first ${MAX_WAV_HEADER_BYTES} bytes` };
    const id = item.toString('latin1', 0, 4);
    const size = item.readUInt32LE(4);
    if (id === 'data') {
      if (!this.#format) return { kind: 'error', message: 'data chunk before the fmt chunk' };
      this.#itemBytes = 0;
      return { kind: 'ok', format: this.#format, dataBytes: size === 0 || size === 0xffffffff ? undefined : size };
    }
    if (id === 'fmt ') {
      if (size < 16 || size > 1024) return { kind: 'error', message: `fmt chunk of ${size} bytes` };
      this.#expect('fmt', size);
      return undefined;
    }
    if (this.#offset + size + (size & 1) > MAX_WAV_HEADER_BYTES)
      return { kind: 'error', message: `chunk "${id.replace(/[^\x20-\x7e]/g, '?')}" too large before the data chunk` };
    return this.#pad(size + (size & 1), true);
  }

  /** After a chunk body of `bodyBytes` (skipped when `skip`), and its pad byte for an odd fmt size. */
  #pad(bodyBytes: number, skip = false): undefined {
    const rest = skip ? bodyBytes : bodyBytes & 1;
    this.#itemBytes = 0;
    if (rest > 0) {
      this.#want = 'skip';
      this.#skip = rest;
    } else {
      this.#expect('chunk', 8);
    }
    return undefined;
  }
}

/**
 * Parse a RIFF/WAVE header from the first bytes of a stream (a file's first 64 KB): `fmt ` gives the format, PCM
 * starts at `data`. Handles WAVE_FORMAT_PCM (8/16/24/32-bit), WAVE_FORMAT_IEEE_FLOAT (32-bit) and
 * WAVE_FORMAT_EXTENSIBLE with those sub-formats; a size of 0 or 0xFFFFFFFF (as streaming writers such as ffmpeg
 * emit) means "until EOF". A stream is read with {@link WavHeaderReader}; this is the same parse, in one piece.
 */
export function parseWavHeader(buf: Buffer): WavHeader {
  const r = new WavHeaderReader().push(buf);
  if (r.kind !== 'ok') return r;
  return { kind: 'ok', format: r.format, dataOffset: buf.length - r.rest.length, dataBytes: r.dataBytes };
}

function parseFmt(fmt: Buffer): SampleFormat | string {
  let tag = fmt.readUInt16LE(0);
  const channels = fmt.readUInt16LE(2);
  const rate = fmt.readUInt32LE(4);
  const blockAlign = fmt.readUInt16LE(12);
  const bits = fmt.readUInt16LE(14);
  if (tag === 0xfffe) {
    if (fmt.length < 40) return 'WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes';
    const sub = fmt.subarray(24, 40).toString('hex');
    if (sub === KSDATAFORMAT_PCM) tag = 1;
    else if (sub === KSDATAFORMAT_FLOAT) tag = 3;
    else return `unsupported WAVE_FORMAT_EXTENSIBLE sub-format ${sub}`;
  }
  if (channels < MIN_CHANNELS || channels > MAX_CHANNELS)
    return `${channels} channels (speakerd takes ${MIN_CHANNELS}..${MAX_CHANNELS})`;
  if (rate < MIN_RATE || rate > MAX_RATE) return `sample rate ${rate} (speakerd takes ${MIN_RATE}..${MAX_RATE})`;
  let encoding: Encoding;
  if (tag === 1) {
    if (bits === 8) encoding = 'u8';
    else if (bits === 16) encoding = 's16le';
    else if (bits === 24) encoding = 's24le';
    else if (bits === 32) encoding = 's32le';
    else return `${bits}-bit PCM is not supported`;
  } else if (tag === 3) {
    if (bits !== 32) return `${bits}-bit float is not supported (only 32-bit)`;
    encoding = 'f32le';
  } else {
    return `WAV format tag ${tag} is not PCM or float`;
  }
  if (blockAlign !== (bits / 8) * channels)
    return `block align ${blockAlign} does not match ${channels} channels of ${bits} bits`;
  return { encoding, rate, channels };
}
