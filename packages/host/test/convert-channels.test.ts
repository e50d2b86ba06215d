/** Channel mapping: duplication, averaging, the documented down-mix and up-mix matrices. */
import type { Encoding, SampleFormat } from '@speakerd/plugin-sdk';
import { describe, expect, it } from 'vitest';
import { channelMatrix, LAYOUTS } from '../src/convert/channels.js';
import { createConverter } from '../src/convert/index.js';

const fmt = (encoding: Encoding, channels: number, rate = 48000): SampleFormat => ({ encoding, rate, channels });

function s16(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeInt16LE(v, i * 2));
  return new Uint8Array(b);
}
function readS16(bytes: Uint8Array): number[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: b.length / 2 }, (_, i) => b.readInt16LE(i * 2));
}
function f32(values: number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return new Uint8Array(b);
}
function readF32(bytes: Uint8Array): number[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: b.length / 4 }, (_, i) => b.readFloatLE(i * 4));
}

const H = Math.SQRT1_2;

describe('channel mapping', () => {
  it('mono -> stereo duplicates', () => {
    const c = createConverter(fmt('s16le', 1), fmt('s16le', 2));
    expect(readS16(c.convert(s16([1, -32768, 32767, 0])))).toEqual([1, 1, -32768, -32768, 32767, 32767, 0, 0]);
  });

  it('stereo -> mono averages, rounding half away from zero', () => {
    const c = createConverter(fmt('s16le', 2), fmt('s16le', 1));
    expect(
      readS16(c.convert(s16([1, 2, -1, -2, 32767, 32767, -32768, -32768, 32767, -32768, 3, 4, -3, -4, 5, -6]))),
    ).toEqual([2, -2, 32767, -32768, -1, 4, -4, -1]);
  });

  it('stereo -> mono into u8 and s24: average first, then the encoding rules', () => {
    const c = createConverter(fmt('s16le', 2), fmt('u8', 1));
    expect([...c.convert(s16([256, 512, -32768, -32768, 127, 0]))]).toEqual([130, 0, 128]); // 384/256 = 1.5 -> 2
    const d = createConverter(fmt('s16le', 2), fmt('s24le', 1));
    const out = d.convert(s16([1, 2, -1, -2]));
    expect([...out]).toEqual([0x80, 0x01, 0x00, 0x80, 0xfe, 0xff]); // 384 and -384: exact, no rounding
  });

  it('5.1 -> stereo follows the documented ITU matrix, normalised', () => {
    const s = 1 + 2 * H;
    const m = channelMatrix(6, 2);
    expect(m[0]).toEqual([1 / s, 0, H / s, 0, H / s, 0]);
    expect(m[1]).toEqual([0, 1 / s, H / s, 0, 0, H / s]);
    // f32 output so the values are visible unrounded: FL FR FC LFE BL BR
    const c = createConverter(fmt('f32le', 6), fmt('f32le', 2));
    const out = readF32(
      c.convert(f32([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1])),
    );
    const want = [1 / s, 0, H / s, H / s, 0, 0, 0, H / s, 1, 1].map(Math.fround);
    expect(out).toEqual(want);
  });

  it('5.1 -> mono is the mean of the stereo down-mix; LFE is dropped', () => {
    const s = 1 + 2 * H;
    expect(channelMatrix(6, 1)[0]).toEqual([0.5 / s, 0.5 / s, H / s, 0, 0.5 * (H / s), 0.5 * (H / s)]);
  });

  it('quad -> stereo folds the backs in at -3 dB, normalised', () => {
    const s = 1 + H;
    expect(channelMatrix(4, 2)).toEqual([
      [1 / s, 0, H / s, 0],
      [0, 1 / s, 0, H / s],
    ]);
  });

  it('7.1 -> 5.1 folds the sides into the backs and halves them', () => {
    expect(channelMatrix(8, 6)).toEqual([
      [1, 0, 0, 0, 0, 0, 0, 0],
      [0, 1, 0, 0, 0, 0, 0, 0],
      [0, 0, 1, 0, 0, 0, 0, 0],
      [0, 0, 0, 1, 0, 0, 0, 0],
      [0, 0, 0, 0, 0.5, 0, 0.5, 0],
      [0, 0, 0, 0, 0, 0.5, 0, 0.5],
    ]);
  });

  it('up-mixing copies the shared speakers and leaves the rest silent', () => {
    const c = createConverter(fmt('s16le', 2), fmt('s16le', 6));
    expect(readS16(c.convert(s16([100, -200])))).toEqual([100, -200, 0, 0, 0, 0]);
    const q = createConverter(fmt('s16le', 4), fmt('s16le', 8)); // FL FR BL BR -> FL FR FC LFE BL BR SL SR
    expect(readS16(q.convert(s16([1, 2, 3, 4])))).toEqual([1, 2, 0, 0, 3, 4, 0, 0]);
    const m = createConverter(fmt('s16le', 1), fmt('s16le', 6)); // mono -> FL and FR
    expect(readS16(m.convert(s16([7])))).toEqual([7, 7, 0, 0, 0, 0]);
  });

  it('same channel count is the identity; no matrix row ever sums above 1 (a down-mix cannot clip)', () => {
    for (let a = 1; a <= 8; a++) {
      expect(LAYOUTS[a]).toHaveLength(a);
      for (let b = 1; b <= 8; b++) {
        const m = channelMatrix(a, b);
        expect(m).toHaveLength(b);
        for (const row of m) {
          expect(row).toHaveLength(a);
          expect(row.reduce((x, y) => x + Math.abs(y), 0)).toBeLessThanOrEqual(1 + 1e-12);
        }
        if (a === b) m.forEach((row, i) => row.forEach((v, j) => expect(v).toBe(i === j ? 1 : 0)));
        // every input speaker except LFE reaches some output
        LAYOUTS[a]!.forEach((sp, j) => {
          if (sp !== 'LFE')
            expect(
              m.some((row) => row[j]! > 0),
              `${a}->${b} ${sp}`,
            ).toBe(true);
        });
      }
    }
  });

  it('full-scale 7.1 down to stereo in s16 does not clip', () => {
    const c = createConverter(fmt('s16le', 8), fmt('s16le', 2));
    expect(readS16(c.convert(s16([32767, 32767, 32767, 32767, 32767, 32767, 32767, 32767])))).toEqual([32767, 32767]);
    expect(readS16(c.convert(s16([-32768, 0, 0, 0, 0, 0, 0, 0])))).toEqual([Math.round(-32768 / (1 + 3 * H)), 0]);
  });
});
