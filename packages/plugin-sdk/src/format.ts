import { z } from 'zod';
import { intRange } from './options.js';

/**
 * The raw PCM sample encodings speakerd understands, named as ffmpeg names them.
 * 24-bit encodings are packed (3 bytes per sample).
 */
export const ENCODINGS = ['u8', 's8', 's16le', 's16be', 's24le', 's24be', 's32le', 's32be', 'f32le', 'f32be'] as const;

/** One of {@link ENCODINGS}. */
export type Encoding = (typeof ENCODINGS)[number];

/** Lowest and highest sample rates speakerd accepts, in frames per second. */
export const MIN_RATE = 8000;
export const MAX_RATE = 768000;
/** Lowest and highest channel counts speakerd accepts. */
export const MIN_CHANNELS = 1;
export const MAX_CHANNELS = 8;

/**
 * A PCM format: encoding, sample rate (frames per second) and channel count.
 * A *sample* is one value on one channel; a *frame* is one sample for every channel at one instant.
 */
export interface SampleFormat {
  readonly encoding: Encoding;
  readonly rate: number;
  readonly channels: number;
}

/** Facts about an encoding that conversion and backends need. */
export interface EncodingInfo {
  /** Bytes per sample (1, 2, 3 or 4). */
  readonly bytes: 1 | 2 | 3 | 4;
  /** Bits per sample. */
  readonly bits: 8 | 16 | 24 | 32;
  /** True for the IEEE float encodings. */
  readonly float: boolean;
  /** True for signed integers and floats, false for `u8`. */
  readonly signed: boolean;
  /** True for big-endian multi-byte encodings. */
  readonly bigEndian: boolean;
}

const INFO: Record<Encoding, EncodingInfo> = {
  u8: { bytes: 1, bits: 8, float: false, signed: false, bigEndian: false },
  s8: { bytes: 1, bits: 8, float: false, signed: true, bigEndian: false },
  s16le: { bytes: 2, bits: 16, float: false, signed: true, bigEndian: false },
  s16be: { bytes: 2, bits: 16, float: false, signed: true, bigEndian: true },
  s24le: { bytes: 3, bits: 24, float: false, signed: true, bigEndian: false },
  s24be: { bytes: 3, bits: 24, float: false, signed: true, bigEndian: true },
  s32le: { bytes: 4, bits: 32, float: false, signed: true, bigEndian: false },
  s32be: { bytes: 4, bits: 32, float: false, signed: true, bigEndian: true },
  f32le: { bytes: 4, bits: 32, float: true, signed: true, bigEndian: false },
  f32be: { bytes: 4, bits: 32, float: true, signed: true, bigEndian: true },
};

/** True when `value` names one of the {@link ENCODINGS}. */
export function isEncoding(value: unknown): value is Encoding {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(INFO, value);
}

/** Facts about `encoding` (size, signedness, endianness). */
export function encodingInfo(encoding: Encoding): EncodingInfo {
  return INFO[encoding];
}

/** Bytes in one sample of `encoding`. */
export function bytesPerSample(encoding: Encoding): number {
  return INFO[encoding].bytes;
}

/** Bytes in one frame of `format` (bytes per sample × channels). */
export function bytesPerFrame(format: Pick<SampleFormat, 'encoding' | 'channels'>): number {
  return INFO[format.encoding].bytes * format.channels;
}

/** Whole frames of `format` in `byteLength` bytes (a trailing partial frame does not count). */
export function framesIn(byteLength: number, format: Pick<SampleFormat, 'encoding' | 'channels'>): number {
  return Math.floor(byteLength / bytesPerFrame(format));
}

/** Frames of `format` in `ms` milliseconds, rounded down. */
export function framesForMs(ms: number, format: Pick<SampleFormat, 'rate'>): number {
  return Math.floor((ms * format.rate) / 1000);
}

/** Duration of `frames` frames at `format`'s rate, in milliseconds. */
export function msForFrames(frames: number, format: Pick<SampleFormat, 'rate'>): number {
  return (frames * 1000) / format.rate;
}

/** True when both formats are the same encoding, rate and channel count. */
export function sameFormat(a: SampleFormat, b: SampleFormat): boolean {
  return a.encoding === b.encoding && a.rate === b.rate && a.channels === b.channels;
}

/** `s16le/44100/2` — how formats are written in logs and messages. */
export function formatToString(format: SampleFormat): string {
  return `${format.encoding}/${format.rate}/${format.channels}`;
}

/** The encoding with the same sample type and the other byte order (identity for 8-bit encodings). */
export function swapEndian(encoding: Encoding): Encoding {
  if (encoding.endsWith('le')) return (encoding.slice(0, -2) + 'be') as Encoding;
  if (encoding.endsWith('be')) return (encoding.slice(0, -2) + 'le') as Encoding;
  return encoding;
}

/** Largest silence {@link silence} makes in one piece (1 GiB). */
export const MAX_SILENCE_BYTES = 1 << 30;

/**
 * `frames` frames of silence in `format`: zero bytes, except 0x80 for `u8` (its midpoint). Backends that keep
 * a stream alive while paused (send silence) use it; make it once and reuse it.
 */
export function silence(format: Pick<SampleFormat, 'encoding' | 'channels'>, frames: number): Uint8Array {
  if (!isEncoding(format.encoding)) throw new RangeError(`unknown encoding ${String(format.encoding)}`);
  if (!Number.isSafeInteger(format.channels) || format.channels < 1)
    throw new RangeError(`invalid channel count ${String(format.channels)}`);
  if (!Number.isSafeInteger(frames) || frames < 0) throw new RangeError(`invalid frame count ${String(frames)}`);
  const bytes = frames * bytesPerFrame(format);
  if (bytes > MAX_SILENCE_BYTES) throw new RangeError(`silence of ${frames} frames is too large`);
  const out = new Uint8Array(bytes);
  if (format.encoding === 'u8') out.fill(0x80);
  return out;
}

/** zod schema for an encoding name. */
export const encodingSchema = z.enum(ENCODINGS, {
  error: (issue) => `expected one of ${ENCODINGS.join(', ')}, got ${JSON.stringify(issue.input)}`,
});

/** zod schema for a sample rate (integer frames per second, 8000..768000). */
export const rateSchema = intRange(MIN_RATE, MAX_RATE);

/** zod schema for a channel count (integer 1..8). */
export const channelsSchema = intRange(MIN_CHANNELS, MAX_CHANNELS);

/** zod schema for a {@link SampleFormat} object. Unknown keys are refused. */
export const sampleFormatSchema = z.strictObject({
  encoding: encodingSchema,
  rate: rateSchema,
  channels: channelsSchema,
});
