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
