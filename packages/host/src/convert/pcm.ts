/**
 * Sample encoding and decoding between raw PCM bytes and planar Float64 samples.
 *
 * The intermediate value of a sample is a float64 in full-scale units: an integer sample `x` of `bits` bits is
 * `x / 2^(bits-1)` (u8 is first made signed: `x - 128`), a float sample is its own value. Every integer of up to
 * 32 bits is exact in a float64 and the scaling is by a power of two, so integer -> integer conversion through this
 * value is exact: widening is a shift (`x << (outBits - inBits)`), narrowing is `x / 2^(inBits - outBits)` rounded.
 *
 * Rounding, everywhere a value becomes an integer: to nearest, ties **away from zero** (0.5 -> 1, -0.5 -> -1,
 * 1.5 -> 2, -2.5 -> -3), then clipped to the integer range. Float -> integer is `round(x * 2^(bits-1))` clipped;
 * NaN becomes 0. Integer -> float is `x / 2^(bits-1)` rounded to float32 (IEEE round-half-even; exact for <= 24 bits).
 *
 * On decode, non-finite float samples are replaced (NaN -> 0, +/-Infinity -> +/-1.0) so that they cannot poison a
 * mix or a resampler's filter window. Finite floats outside [-1, 1] are kept; they clip only when encoded to integers.
 */
import { encodingInfo, type Encoding, type SampleFormat } from '@speakerd/plugin-sdk';

/** Round to nearest, ties away from zero. Exact for every float64 (no `floor(x + 0.5)` double-rounding error). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** A DataView over exactly the bytes of `bytes`. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const S8 = 1 / 128;
const S16 = 1 / 32768;
const S24 = 1 / 8388608;
const S32 = 1 / 2147483648;

function sanitize(v: number): number {
  if (v !== v) return 0;
  if (v === Infinity) return 1;
  if (v === -Infinity) return -1;
  return v;
}

/**
 * Decode `frames` interleaved frames of `channels` channels of `encoding` starting at byte `byteOffset` of `src`
 * into `planes[c][dstOffset + f]`.
 */
export function decode(
  encoding: Encoding,
  src: Uint8Array,
  view: DataView,
  byteOffset: number,
  frames: number,
  channels: number,
  planes: readonly Float64Array[],
  dstOffset: number,
): void {
  for (let c = 0; c < channels; c++) {
    const plane = planes[c]!;
    switch (encoding) {
      case 'u8': {
        let o = byteOffset + c;
        for (let f = 0; f < frames; f++, o += channels) plane[dstOffset + f] = (src[o]! - 128) * S8;
        break;
      }
      case 's8': {
        let o = byteOffset + c;
        for (let f = 0; f < frames; f++, o += channels) plane[dstOffset + f] = ((src[o]! << 24) >> 24) * S8;
        break;
      }
      case 's16le':
      case 's16be': {
        const le = encoding === 's16le';
        const step = 2 * channels;
        let o = byteOffset + 2 * c;
        for (let f = 0; f < frames; f++, o += step) plane[dstOffset + f] = view.getInt16(o, le) * S16;
        break;
      }
      case 's24le': {
        const step = 3 * channels;
        let o = byteOffset + 3 * c;
        for (let f = 0; f < frames; f++, o += step) {
          plane[dstOffset + f] = (((src[o]! | (src[o + 1]! << 8) | (src[o + 2]! << 16)) << 8) >> 8) * S24;
        }
        break;
      }
      case 's24be': {
        const step = 3 * channels;
        let o = byteOffset + 3 * c;
        for (let f = 0; f < frames; f++, o += step) {
          plane[dstOffset + f] = (((src[o + 2]! | (src[o + 1]! << 8) | (src[o]! << 16)) << 8) >> 8) * S24;
        }
        break;
      }
      case 's32le':
      case 's32be': {
        const le = encoding === 's32le';
        const step = 4 * channels;
        let o = byteOffset + 4 * c;
        for (let f = 0; f < frames; f++, o += step) plane[dstOffset + f] = view.getInt32(o, le) * S32;
        break;
      }
      case 'f32le':
      case 'f32be': {
        const le = encoding === 'f32le';
        const step = 4 * channels;
        let o = byteOffset + 4 * c;
        for (let f = 0; f < frames; f++, o += step) {
          const v = view.getFloat32(o, le);
          plane[dstOffset + f] = v - v === 0 ? v : sanitize(v); // v - v is NaN for NaN and +/-Infinity
        }
        break;
      }
    }
  }
}

/**
 * Encode `planes[c][srcOffset + f]` for `frames` frames into interleaved `encoding` bytes at `byteOffset` of `dst`.
 * Integers: round half away from zero, clip; NaN -> 0. Floats: float32 rounding, no clipping.
 */
export function encode(
  encoding: Encoding,
  planes: readonly Float64Array[],
  srcOffset: number,
  frames: number,
  channels: number,
  dst: Uint8Array,
  view: DataView,
  byteOffset: number,
): void {
  for (let c = 0; c < channels; c++) {
    const plane = planes[c]!;
    switch (encoding) {
      case 'u8':
      case 's8': {
        const bias = encoding === 'u8' ? 128 : 0;
        let o = byteOffset + c;
        for (let f = 0; f < frames; f++, o += channels) {
          const y = plane[srcOffset + f]! * 128;
          const x = y >= 127 ? 127 : y <= -128 ? -128 : y === y ? roundHalfAway(y) : 0;
          dst[o] = (x + bias) & 0xff;
        }
        break;
      }
      case 's16le':
      case 's16be': {
        const le = encoding === 's16le';
        const step = 2 * channels;
        let o = byteOffset + 2 * c;
        for (let f = 0; f < frames; f++, o += step) {
          const y = plane[srcOffset + f]! * 32768;
          view.setInt16(o, y >= 32767 ? 32767 : y <= -32768 ? -32768 : y === y ? roundHalfAway(y) : 0, le);
        }
        break;
      }
      case 's24le':
      case 's24be': {
        const le = encoding === 's24le';
        const step = 3 * channels;
        let o = byteOffset + 3 * c;
        for (let f = 0; f < frames; f++, o += step) {
          const y = plane[srcOffset + f]! * 8388608;
          const x = y >= 8388607 ? 8388607 : y <= -8388608 ? -8388608 : y === y ? roundHalfAway(y) : 0;
          if (le) {
            dst[o] = x & 0xff;
            dst[o + 1] = (x >> 8) & 0xff;
            dst[o + 2] = (x >> 16) & 0xff;
          } else {
            dst[o + 2] = x & 0xff;
            dst[o + 1] = (x >> 8) & 0xff;
            dst[o] = (x >> 16) & 0xff;
          }
        }
        break;
      }
      case 's32le':
      case 's32be': {
        const le = encoding === 's32le';
        const step = 4 * channels;
        let o = byteOffset + 4 * c;
        for (let f = 0; f < frames; f++, o += step) {
          const y = plane[srcOffset + f]! * 2147483648;
          view.setInt32(
            o,
            y >= 2147483647 ? 2147483647 : y <= -2147483648 ? -2147483648 : y === y ? roundHalfAway(y) : 0,
            le,
          );
        }
        break;
      }
      case 'f32le':
      case 'f32be': {
        const le = encoding === 'f32le';
        const step = 4 * channels;
        let o = byteOffset + 4 * c;
        for (let f = 0; f < frames; f++, o += step) view.setFloat32(o, plane[srcOffset + f]!, le);
        break;
      }
    }
  }
}

/** Reverse the byte order of every `width`-byte sample of `src` into `dst` (same length). */
export function swapBytes(src: Uint8Array, dst: Uint8Array, width: number): void {
  const n = src.length;
  if (width === 2 || width === 4) {
    // copy, then Node's native in-place swap (much faster than a JS loop on large buffers)
    if (dst !== src) dst.set(src.subarray(0, n));
    const view = Buffer.from(dst.buffer, dst.byteOffset, n);
    if (width === 2) view.swap16();
    else view.swap32();
  } else if (width === 3) {
    for (let i = 0; i < n; i += 3) {
      const a = src[i]!;
      dst[i + 1] = src[i + 1]!;
      dst[i] = src[i + 2]!;
      dst[i + 2] = a;
    }
  } else {
    dst.set(src);
  }
}

/** Silence in a format comes from the SDK, where backends find it too. */
export { MAX_SILENCE_BYTES, silence } from '@speakerd/plugin-sdk';

/**
 * In-place software volume: amplitude gain `(volume/100)^3`. Volume 100 does nothing (bit-exact), 0 writes exact
 * silence. Integers are scaled in their own domain (`x * gain`), rounded half away from zero (no clipping is ever
 * needed since gain <= 1); floats are multiplied and rounded to float32. A trailing partial sample is left alone.
 */
export function applyVolume(data: Uint8Array, format: SampleFormat, volume: number): void {
  const info = encodingInfo(format.encoding);
  if (info === undefined) throw new RangeError(`unknown encoding ${String(format.encoding)}`);
  if (typeof volume !== 'number' || !(volume >= 0 && volume <= 100)) {
    throw new RangeError(`volume must be a number in 0..100, got ${String(volume)}`);
  }
  if (volume === 100) return;
  const n = data.length - (data.length % info.bytes);
  if (volume === 0) {
    data.fill(format.encoding === 'u8' ? 0x80 : 0, 0, n);
    return;
  }
  const r = volume / 100;
  const g = r * r * r;
  const view = viewOf(data);
  switch (format.encoding) {
    case 'u8':
      for (let i = 0; i < n; i++) data[i] = roundHalfAway((data[i]! - 128) * g) + 128;
      break;
    case 's8':
      for (let i = 0; i < n; i++) data[i] = roundHalfAway(((data[i]! << 24) >> 24) * g) & 0xff;
      break;
    case 's16le':
    case 's16be': {
      const le = format.encoding === 's16le';
      for (let i = 0; i < n; i += 2) view.setInt16(i, roundHalfAway(view.getInt16(i, le) * g), le);
      break;
    }
    case 's24le':
      for (let i = 0; i < n; i += 3) {
        const x = roundHalfAway((((data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16)) << 8) >> 8) * g);
        data[i] = x & 0xff;
        data[i + 1] = (x >> 8) & 0xff;
        data[i + 2] = (x >> 16) & 0xff;
      }
      break;
    case 's24be':
      for (let i = 0; i < n; i += 3) {
        const x = roundHalfAway((((data[i + 2]! | (data[i + 1]! << 8) | (data[i]! << 16)) << 8) >> 8) * g);
        data[i + 2] = x & 0xff;
        data[i + 1] = (x >> 8) & 0xff;
        data[i] = (x >> 16) & 0xff;
      }
      break;
    case 's32le':
    case 's32be': {
      const le = format.encoding === 's32le';
      for (let i = 0; i < n; i += 4) view.setInt32(i, roundHalfAway(view.getInt32(i, le) * g), le);
      break;
    }
    case 'f32le':
    case 'f32be': {
      const le = format.encoding === 'f32le';
      for (let i = 0; i < n; i += 4) view.setFloat32(i, view.getFloat32(i, le) * g, le);
      break;
    }
  }
}
