import { bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';

export { noise } from '@speakerd/plugin-sdk/testing';
import { noise } from '@speakerd/plugin-sdk/testing';

/** `frames` frames of `format`: noise for integer encodings, a sine in [-1.2, 1.2] for float ones. */
export function testSignal(format: SampleFormat, frames: number, seed = 1): Uint8Array {
  const bytes = frames * bytesPerFrame(format);
  if (!format.encoding.startsWith('f32')) return noise(bytes, seed);
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  const le = format.encoding === 'f32le';
  for (let i = 0; i < frames * format.channels; i++) view.setFloat32(i * 4, 1.2 * Math.sin(i * 0.01 * seed), le);
  return out;
}

/** Seconds of `format` in `frames`. */
export function seconds(format: SampleFormat, frames: number): number {
  return frames / format.rate;
}

/** Index of the first differing byte, or -1. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** A 44-byte RIFF/WAVE header for 16-bit PCM of format `f` with `dataBytes` of data. */
export function wavHeader(f: SampleFormat, dataBytes: number): Buffer {
  const h = Buffer.alloc(44);
  const bits = 16;
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(f.channels, 22);
  h.writeUInt32LE(f.rate, 24);
  h.writeUInt32LE((f.rate * f.channels * bits) / 8, 28);
  h.writeUInt16LE((f.channels * bits) / 8, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}
