/**
 * Throughput figure for the resampler (no timed assertion): run with SPEAKERD_BENCH=1
 *   SPEAKERD_BENCH=1 npx vitest run --config vitest.bench.config.ts (npm run bench does)
 */
import { describe, expect, it } from 'vitest';
import { createConverter } from '../src/convert/index.js';

/** `frames` frames of interleaved s16le noise. */
function noiseS16(frames: number, channels: number): Uint8Array {
  const out = new Uint8Array(frames * channels * 2);
  let x = 12345;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const PAIRS: [number, number, number][] = [
  [44100, 48000, 2],
  [48000, 44100, 2],
  [44100, 96000, 2],
  [44101, 48000, 2],
];

describe.skipIf(!process.env.SPEAKERD_BENCH)('convert throughput', () => {
  it.each(PAIRS)('%i -> %i, %i channels', (inRate, outRate, channels) => {
    const seconds = 20;
    const input = noiseS16(inRate * seconds, channels);
    const chunk = 4096 * channels * 2;
    const run = (): number => {
      const c = createConverter(
        { encoding: 's16le', rate: inRate, channels },
        { encoding: 's16le', rate: outRate, channels },
      );
      let bytes = 0;
      const t0 = performance.now();
      for (let o = 0; o < input.length; o += chunk) bytes += c.convert(input.subarray(o, o + chunk)).length;
      bytes += c.end().length;
      const ms = performance.now() - t0;
      expect(bytes).toBe(Math.round((inRate * seconds * outRate) / inRate) * channels * 2);
      return ms;
    };
    run(); // warm-up (JIT, filter table)
    const ms = Math.min(run(), run());
    console.log(`${inRate} -> ${outRate} x${channels}: ${((seconds * 1000) / ms).toFixed(1)}x real time`);
  });
});
