/**
 * PCM format conversion (PROTOCOL.md section 5): sample encoding, channel count and sample rate, plus software
 * volume and silence. See README.md beside this file for the rules (rounding, channel matrices, resampler).
 *
 * Pipeline for one chunk: decode to planar float64 (full scale = 1.0) -> channel mix (first, when it reduces the
 * channel count) -> resample (only when the rates differ) -> channel mix (when it increases the count) -> encode.
 * Identical formats pass the input through untouched; formats that differ only in byte order are byte-swapped
 * (bit-exact, NaN payloads included). s16le to s16le with a rate change and no channel mix (the common case) hands
 * the bytes to the resampler, which decodes and encodes them in its kernel (the same samples as the planes).
 */
import {
  MAX_CHANNELS,
  MAX_RATE,
  MIN_CHANNELS,
  MIN_RATE,
  bytesPerFrame,
  encodingInfo,
  formatToString,
  isEncoding,
  sameFormat,
  swapEndian,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { ChannelMixer } from './channels.js';
import { decode, encode, swapBytes, viewOf } from './pcm.js';
import { Resampler } from './resampler.js';

export { applyVolume, silence } from './pcm.js';

export interface Converter {
  readonly input: SampleFormat;
  readonly output: SampleFormat;
  /** True when input and output formats are identical: convert() returns its input unchanged (same bytes). */
  readonly passthrough: boolean;
  /**
   * Convert whole input frames (input.length is a multiple of the input frame size). Returns output bytes, whole
   * output frames; may be empty while a resampler fills its history.
   *
   * View validity: when {@link passthrough} is true the result is `input` itself. Otherwise the result is a view
   * into a buffer the converter owns and reuses: it is valid only until the next call to convert() or end() on
   * this converter; copy it to keep it longer.
   */
  convert(input: Uint8Array): Uint8Array;
  /**
   * End of input: returns the remaining output (the resampler's tail), so that the total output frame count of the
   * stream is exactly `round(inputFrames * outRate / inRate)`, rounding half up (a tie such as 73.5 gives 74),
   * computed with integers. Without a rate change it returns an empty array. The result is a view with the same
   * validity as convert()'s. end() also resets the converter: the next convert() starts a new stream.
   */
  end(): Uint8Array;
}

/** Frames per internal processing block. */
const BLOCK = 4096;
const EMPTY = new Uint8Array(0);

function checkFormat(what: string, f: SampleFormat): void {
  if (f === null || typeof f !== 'object') throw new TypeError(`${what} format must be an object`);
  if (!isEncoding(f.encoding)) throw new RangeError(`${what} format: unknown encoding ${JSON.stringify(f.encoding)}`);
  if (!Number.isInteger(f.rate) || f.rate < MIN_RATE || f.rate > MAX_RATE) {
    throw new RangeError(`${what} format: rate must be an integer in ${MIN_RATE}..${MAX_RATE}, got ${String(f.rate)}`);
  }
  if (!Number.isInteger(f.channels) || f.channels < MIN_CHANNELS || f.channels > MAX_CHANNELS) {
    throw new RangeError(
      `${what} format: channels must be an integer in ${MIN_CHANNELS}..${MAX_CHANNELS}, got ${String(f.channels)}`,
    );
  }
}

function planes(channels: number, frames: number): Float64Array[] {
  return Array.from({ length: channels }, () => new Float64Array(frames));
}

class PcmConverter implements Converter {
  readonly input: SampleFormat;
  readonly output: SampleFormat;
  readonly passthrough: boolean;
  private readonly inFrame: number;
  private readonly outFrame: number;
  private readonly swapOnly: boolean;
  private readonly mixer: ChannelMixer | null;
  private readonly mixFirst: boolean;
  private readonly resampler: Resampler | null;
  /** s16le in and out, same channels, a rate change: the resampler reads and writes the bytes itself. */
  private readonly s16: boolean;
  private readonly block: number;
  /** Decoded input (input channels). */
  private readonly decoded: Float64Array[] = [];
  /** Mixed before resampling (output channels), when the mix reduces the channel count. */
  private readonly premixed: Float64Array[] = [];
  /** Resampler output. */
  private readonly resampled: Float64Array[] = [];
  /** Mixed after resampling (output channels), when the mix increases the channel count. */
  private readonly postmixed: Float64Array[] = [];
  private out: Uint8Array = EMPTY;
  private outView: DataView = viewOf(EMPTY);
  private outLength = 0;
  /** Input frames since the stream began (for end()'s exact output count). */
  private framesIn = 0;
  /** Output frames since the stream began. */
  private framesOut = 0;

  constructor(input: SampleFormat, output: SampleFormat) {
    checkFormat('input', input);
    checkFormat('output', output);
    this.input = { encoding: input.encoding, rate: input.rate, channels: input.channels };
    this.output = { encoding: output.encoding, rate: output.rate, channels: output.channels };
    this.passthrough = sameFormat(input, output);
    this.inFrame = bytesPerFrame(input);
    this.outFrame = bytesPerFrame(output);
    const sameShape = input.rate === output.rate && input.channels === output.channels;
    this.swapOnly = !this.passthrough && sameShape && swapEndian(input.encoding) === output.encoding;
    const converting = !this.passthrough && !this.swapOnly;
    this.mixer =
      converting && input.channels !== output.channels ? new ChannelMixer(input.channels, output.channels) : null;
    this.mixFirst = output.channels < input.channels;
    const resampledChannels = Math.min(input.channels, output.channels);
    this.resampler =
      converting && input.rate !== output.rate ? new Resampler(input.rate, output.rate, resampledChannels) : null;
    this.s16 =
      this.resampler !== null && this.mixer === null && input.encoding === 's16le' && output.encoding === 's16le';
    this.block = this.resampler ? this.resampler.blockFor(BLOCK) : BLOCK;
    if (converting && !this.s16) {
      this.decoded = planes(input.channels, this.block);
      if (this.mixer && this.mixFirst) this.premixed = planes(output.channels, this.block);
      if (this.resampler) this.resampled = planes(resampledChannels, BLOCK);
      if (this.mixer && !this.mixFirst) this.postmixed = planes(output.channels, this.resampler ? BLOCK : this.block);
    }
  }

  convert(input: Uint8Array): Uint8Array {
    if (this.passthrough) return input;
    if (!(input instanceof Uint8Array)) throw new TypeError('convert() takes a Uint8Array');
    if (input.length % this.inFrame !== 0) {
      throw new RangeError(
        `convert(): ${input.length} bytes is not a whole number of ${formatToString(this.input)} frames (${this.inFrame} bytes each)`,
      );
    }
    const frames = input.length / this.inFrame;
    this.outLength = 0;
    if (this.swapOnly) {
      this.reserve(input.length);
      swapBytes(input, this.out, encodingInfo(this.input.encoding).bytes);
      return this.out.subarray(0, input.length);
    }
    const view = viewOf(input);
    const rs = this.resampler;
    if (rs === null) this.reserve(frames * this.outFrame);
    else this.reserve(rs.maxOutputsFor(frames) * this.outFrame);
    if (this.s16) {
      for (let fed = 0; fed < frames;) {
        const w = Math.min(rs!.space(), frames - fed);
        rs!.writeS16(input.subarray(fed * this.inFrame, (fed + w) * this.inFrame), w);
        fed += w;
        this.drain(Infinity);
      }
      this.framesIn += frames;
      return this.out.subarray(0, this.outLength);
    }
    for (let done = 0; done < frames;) {
      const n = Math.min(this.block, frames - done);
      decode(this.input.encoding, input, view, done * this.inFrame, n, this.input.channels, this.decoded, 0);
      let src = this.decoded;
      if (this.mixer && this.mixFirst) {
        this.mixer.mix(src, 0, this.premixed, 0, n);
        src = this.premixed;
      }
      if (rs === null) {
        this.emit(src, n);
      } else {
        for (let fed = 0; fed < n;) {
          const w = Math.min(rs.space(), n - fed);
          rs.write(src, fed, w);
          fed += w;
          this.drain(Infinity);
        }
      }
      done += n;
    }
    this.framesIn += frames;
    return this.out.subarray(0, this.outLength);
  }

  end(): Uint8Array {
    const rs = this.resampler;
    if (rs === null) {
      this.framesIn = 0;
      this.framesOut = 0;
      return EMPTY;
    }
    this.outLength = 0;
    // round half up of framesIn * L / M, exactly: floor((2 * framesIn * L + M) / (2 * M))
    const L = BigInt(rs.L);
    const M = BigInt(rs.M);
    const target = Number((2n * BigInt(this.framesIn) * L + M) / (2n * M));
    this.reserve(Math.max(0, target - this.framesOut) * this.outFrame);
    while (this.framesOut < target) {
      rs.writeZeros(rs.space());
      this.drain(target - this.framesOut);
    }
    rs.reset();
    this.framesIn = 0;
    this.framesOut = 0;
    return this.out.subarray(0, this.outLength);
  }

  /** Move everything the resampler can give (at most `limit` frames) to the output bytes. */
  private drain(limit: number): void {
    const rs = this.resampler!;
    for (;;) {
      const max = Math.min(BLOCK, limit);
      if (max <= 0) return;
      if (this.s16) {
        const bytes = max * this.outFrame;
        if (this.outLength + bytes > this.out.length) this.grow(this.outLength + bytes);
        const n = rs.readS16(this.out, this.outLength, max);
        this.framesOut += n;
        limit -= n;
        this.outLength += n * this.outFrame;
        if (n < max) return;
        continue;
      }
      const n = rs.read(this.resampled, 0, max);
      if (n === 0) return;
      this.framesOut += n;
      limit -= n;
      let src = this.resampled;
      if (this.mixer && !this.mixFirst) {
        this.mixer.mix(src, 0, this.postmixed, 0, n);
        src = this.postmixed;
      }
      this.emit(src, n);
      if (n < max) return;
    }
  }

  /** Encode `frames` frames of output-channel planes at the end of the output bytes. */
  private emit(src: Float64Array[], frames: number): void {
    if (this.mixer && !this.mixFirst && this.resampler === null) {
      this.mixer.mix(src, 0, this.postmixed, 0, frames);
      src = this.postmixed;
    }
    const bytes = frames * this.outFrame;
    if (this.outLength + bytes > this.out.length) this.grow(this.outLength + bytes);
    encode(this.output.encoding, src, 0, frames, this.output.channels, this.out, this.outView, this.outLength);
    this.outLength += bytes;
  }

  /** Make the output buffer at least `bytes` long, keeping nothing (called before a conversion starts). */
  private reserve(bytes: number): void {
    if (bytes > this.out.length) {
      this.out = new Uint8Array(bytes);
      this.outView = viewOf(this.out);
    }
  }

  /** Grow the output buffer to at least `bytes`, keeping its first `outLength` bytes. */
  private grow(bytes: number): void {
    const next = new Uint8Array(Math.max(bytes, this.out.length * 2));
    next.set(this.out.subarray(0, this.outLength));
    this.out = next;
    this.outView = viewOf(next);
  }
}

/**
 * A converter from `input` to `output` (both validated: known encoding, integer rate 8000..768000, 1..8 channels;
 * a RangeError otherwise). One converter converts one stream at a time; end() finishes it and resets.
 */
export function createConverter(input: SampleFormat, output: SampleFormat): Converter {
  return new PcmConverter(input, output);
}
