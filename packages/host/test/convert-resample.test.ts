/** Sample-rate conversion: output frame counts, chunk invariance, sine accuracy, band limiting. */
import type { Encoding, SampleFormat } from '@speakerd/plugin-sdk';
import { describe, expect, it } from 'vitest';
import { createConverter } from '../src/convert/index.js';

// ---- helpers: seeded noise, sine synthesis and a four-parameter least-squares sine fit ----------------------------

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `frames` frames of interleaved s16le noise (uniform over the full range) for `channels` channels. */
function noiseS16(frames: number, channels: number, seed: number): Uint8Array {
  const r = rng(seed);
  const buf = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames * channels; i++) buf.writeInt16LE(Math.floor(r() * 65536) - 32768, i * 2);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** An s16le mono sine: amplitude `amp` (of full scale 32768), `freq` Hz at `rate`, rounded half away from zero. */
function sineS16(freq: number, rate: number, frames: number, amp: number): Uint8Array {
  const buf = Buffer.alloc(frames * 2);
  for (let n = 0; n < frames; n++) {
    const v = amp * 32768 * Math.sin((2 * Math.PI * freq * n) / rate);
    const r = Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
    buf.writeInt16LE(Math.max(-32768, Math.min(32767, r)), n * 2);
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Solve the square system `a x = b` by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(a[r]![i]!) > Math.abs(a[p]![i]!)) p = r;
    [a[i], a[p]] = [a[p]!, a[i]!];
    [b[i], b[p]] = [b[p]!, b[i]!];
    for (let r = i + 1; r < n; r++) {
      const k = a[r]![i]! / a[i]![i]!;
      for (let c = i; c < n; c++) a[r]![c]! -= k * a[i]![c]!;
      b[r]! -= k * b[i]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let c = i + 1; c < n; c++) s -= a[i]![c]! * x[c]!;
    x[i] = s / a[i]![i]!;
  }
  return x;
}

interface SineFit {
  /** Measured frequency in Hz. */
  freq: number;
  amplitude: number;
  /** Signal-to-(noise + distortion) ratio of the fit, dB. */
  snrDb: number;
}

/**
 * IEEE 1057 four-parameter sine fit of `y` sampled at `rate`. The starting frequency comes from the signal itself
 * (interpolated positive-going zero crossings), so a wrong output rate shows up as a wrong frequency.
 */
function fitSine(y: Float64Array, rate: number): SineFit {
  const N = y.length;
  let first = -1;
  let last = -1;
  let crossings = 0;
  for (let n = 1; n < N; n++) {
    if (y[n - 1]! < 0 && y[n]! >= 0) {
      const t = n - 1 + -y[n - 1]! / (y[n]! - y[n - 1]!);
      if (first < 0) first = t;
      last = t;
      crossings++;
    }
  }
  if (crossings < 2) throw new Error('no sine found');
  let w = (2 * Math.PI * (crossings - 1)) / (last - first);
  const mid = (N - 1) / 2;
  let A = 0;
  let B = 0;
  let C = 0;
  for (let iter = 0; iter < 12; iter++) {
    // columns: cos, sin, 1, d/dw
    const ata = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
    const atb = [0, 0, 0, 0];
    const four = iter > 0;
    const k = four ? 4 : 3;
    for (let n = 0; n < N; n++) {
      const t = n - mid;
      const c = Math.cos(w * t);
      const s = Math.sin(w * t);
      const row = [c, s, 1, t * (-A * s + B * c)];
      for (let i = 0; i < k; i++) {
        atb[i]! += row[i]! * y[n]!;
        for (let j = 0; j < k; j++) ata[i]![j]! += row[i]! * row[j]!;
      }
    }
    const x = solve(
      ata.slice(0, k).map((r) => r.slice(0, k)),
      atb.slice(0, k),
    );
    A = x[0]!;
    B = x[1]!;
    C = x[2]!;
    if (four) w += x[3]!;
  }
  let sig = 0;
  let noise = 0;
  for (let n = 0; n < N; n++) {
    const t = n - mid;
    const f = A * Math.cos(w * t) + B * Math.sin(w * t) + C;
    sig += (f - C) * (f - C);
    noise += (y[n]! - f) * (y[n]! - f);
  }
  return { freq: (w * rate) / (2 * Math.PI), amplitude: Math.hypot(A, B), snrDb: 10 * Math.log10(sig / noise) };
}

/** Samples of channel `ch` of interleaved s16le bytes, as numbers. */
function readS16(bytes: Uint8Array, channels = 1, ch = 0): Float64Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.length / 2 / channels);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = v.getInt16((i * channels + ch) * 2, true);
  return out;
}

/** Samples of channel `ch` of interleaved f32le bytes. */
function readF32(bytes: Uint8Array, channels = 1, ch = 0): Float64Array {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Math.floor(bytes.length / 4 / channels);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = v.getFloat32((i * channels + ch) * 4, true);
  return out;
}

/** Concatenate byte arrays (copying, since converter results are views into reused buffers). */
function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function fmt(encoding: Encoding, rate: number, channels: number): SampleFormat {
  return { encoding, rate, channels };
}

/** Convert `input` fed in chunks of `sizes` frames (cycled), plus end(). */
function run(input: Uint8Array, from: SampleFormat, to: SampleFormat, sizes: number[] | 'all'): Uint8Array {
  const c = createConverter(from, to);
  const frame = (from.encoding.startsWith('s16') ? 2 : from.encoding.startsWith('s24') ? 3 : 4) * from.channels;
  const parts: Uint8Array[] = [];
  if (sizes === 'all') {
    parts.push(c.convert(input).slice());
  } else {
    let o = 0;
    for (let i = 0; o < input.length; i++) {
      const n = sizes[i % sizes.length]! * frame;
      parts.push(c.convert(input.subarray(o, o + n)).slice());
      o += n;
    }
  }
  parts.push(c.end().slice());
  return concat(parts);
}

/** round(frames * out / in), half up, in exact integer arithmetic. */
function expectedFrames(frames: number, inRate: number, outRate: number): number {
  return Number((2n * BigInt(frames) * BigInt(outRate) + BigInt(inRate)) / (2n * BigInt(inRate)));
}

describe('output frame count', () => {
  const pairs: [number, number][] = [
    [44100, 48000],
    [48000, 44100],
    [44100, 96000],
    [22050, 48000],
    [8000, 768000],
    [768000, 8000],
    [44101, 48000],
    [48000, 44101],
    [96000, 8000],
    [11025, 8000],
  ];
  const lengths = [0, 1, 2, 3, 79, 80, 147, 160, 161, 1000, 4097];
  it.each(pairs)('%i -> %i', (inRate, outRate) => {
    for (const frames of lengths) {
      const out = run(noiseS16(frames, 2, frames), fmt('s16le', inRate, 2), fmt('s16le', outRate, 2), [frames || 1]);
      expect(out.length / 4, `${frames} frames`).toBe(expectedFrames(frames, inRate, outRate));
    }
  });

  it('rounds half up: 80 frames at 48000 -> 44100 give 73.5 -> 74, 160 give exactly 147', () => {
    expect(run(noiseS16(80, 1, 1), fmt('s16le', 48000, 1), fmt('s16le', 44100, 1), 'all').length / 2).toBe(74);
    expect(run(noiseS16(160, 1, 1), fmt('s16le', 48000, 1), fmt('s16le', 44100, 1), 'all').length / 2).toBe(147);
    // 1 frame 44100 -> 22050 is 0.5 -> 1; 3 frames -> 1.5 -> 2
    expect(run(noiseS16(1, 1, 1), fmt('s16le', 44100, 1), fmt('s16le', 22050, 1), 'all').length / 2).toBe(1);
    expect(run(noiseS16(3, 1, 1), fmt('s16le', 44100, 1), fmt('s16le', 22050, 1), 'all').length / 2).toBe(2);
  });

  it('end() resets the converter: a second stream gives the same bytes as the first', () => {
    const c = createConverter(fmt('s16le', 44100, 2), fmt('s16le', 48000, 2));
    const input = noiseS16(5000, 2, 3);
    const a = concat([c.convert(input).slice(), c.end().slice()]);
    const b = concat([c.convert(input).slice(), c.end().slice()]);
    expect(Buffer.compare(a, b)).toBe(0);
    expect(a.length / 4).toBe(expectedFrames(5000, 44100, 48000));
  });
});

describe('chunk invariance', () => {
  const random = rng(42);
  const randomSizes = Array.from({ length: 97 }, () => 1 + Math.floor(random() * 3000));
  const cases: [string, SampleFormat, SampleFormat][] = [
    ['44100 -> 48000 s16 stereo', fmt('s16le', 44100, 2), fmt('s16le', 48000, 2)],
    ['48000 -> 44100 s16 stereo', fmt('s16le', 48000, 2), fmt('s16le', 44100, 2)],
    ['44100 -> 96000 s16 stereo -> s24be', fmt('s16le', 44100, 2), fmt('s24be', 96000, 2)],
    ['44101 -> 48000 (interpolated phases) -> f32le', fmt('s16le', 44101, 2), fmt('f32le', 48000, 2)],
    ['96000 -> 8000 mono', fmt('s16le', 96000, 1), fmt('s16le', 8000, 1)],
    ['22050 mono -> 48000 stereo f32', fmt('s16le', 22050, 1), fmt('f32le', 48000, 2)],
    ['48000 5.1 -> 44100 stereo', fmt('s16le', 48000, 6), fmt('s16be', 44100, 2)],
  ];
  it.each(cases)('%s: chunks of 1, 7, 4096, random and all at once give identical bytes', (_name, from, to) => {
    const frames = 12000;
    const input = noiseS16(frames, from.channels, 7);
    const whole = run(input, from, to, 'all');
    expect(whole.length).toBeGreaterThan(0);
    for (const sizes of [[1], [7], [4096], randomSizes, [frames - 1, 1]]) {
      const chunked = run(input, from, to, sizes);
      expect(chunked.length, `sizes ${sizes.slice(0, 3).join(',')}`).toBe(whole.length);
      expect(Buffer.compare(chunked, whole), `sizes ${sizes.slice(0, 3).join(',')}`).toBe(0);
    }
  });

  it('is sensitive to the input (a changed sample changes the output near it only)', () => {
    const from = fmt('s16le', 44100, 1);
    const to = fmt('s16le', 48000, 1);
    const input = noiseS16(4000, 1, 9);
    const changed = input.slice();
    changed[4000] = (changed[4000]! + 1) & 0xff; // frame 2000
    const a = readS16(run(input, from, to, 'all'));
    const b = readS16(run(changed, from, to, 'all'));
    const diff = [...a.keys()].filter((i) => a[i] !== b[i]);
    expect(diff.length).toBeGreaterThan(0);
    // the filter spans +/- 78 input frames around output 2000 * 48000 / 44100 = 2177
    expect(Math.min(...diff)).toBeGreaterThan(2177 - 90);
    expect(Math.max(...diff)).toBeLessThan(2177 + 90);
  });
});

describe('resampling accuracy', () => {
  const FREQ = 997;
  const AMP = Math.pow(10, -1 / 20); // -1 dBFS
  it.each([
    [44100, 48000],
    [48000, 44100],
    [44100, 96000],
  ])('997 Hz at -1 dBFS, s16 %i -> %i: frequency within 0.1 %, SNR >= 90 dB', (inRate, outRate) => {
    const input = sineS16(FREQ, inRate, inRate, AMP); // one second
    const out = readS16(run(input, fmt('s16le', inRate, 1), fmt('s16le', outRate, 1), [4096]));
    expect(out.length).toBe(outRate);
    const skip = Math.ceil(outRate / 100); // 10 ms each end: the filter's edge transients
    const fit = fitSine(out.subarray(skip, out.length - skip), outRate);
    const freqErr = Math.abs(fit.freq - FREQ) / FREQ;
    console.log(
      `${inRate} -> ${outRate}: ${fit.freq.toFixed(4)} Hz (error ${(freqErr * 100).toExponential(2)} %), ` +
        `SNR ${fit.snrDb.toFixed(2)} dB, amplitude ${(20 * Math.log10(fit.amplitude / 32768)).toFixed(3)} dBFS`,
    );
    expect(freqErr).toBeLessThan(0.001);
    expect(fit.snrDb).toBeGreaterThanOrEqual(90);
    expect(Math.abs(20 * Math.log10(fit.amplitude / 32768) + 1)).toBeLessThan(0.01);
  });

  it.each([
    [44100, 48000],
    [48000, 44100],
    [44100, 96000],
    [44101, 48000],
  ])('the resampler alone (f32 in and out) %i -> %i: 997 Hz with SNR >= 135 dB', (inRate, outRate) => {
    // f32 coefficients, samples and sums: measured 139.0-139.7 dB (the f64 kernel before it: 145-146 dB)
    const input = new Uint8Array(inRate * 4);
    const v = new DataView(input.buffer);
    for (let n = 0; n < inRate; n++) v.setFloat32(n * 4, AMP * Math.sin((2 * Math.PI * FREQ * n) / inRate), true);
    const out = readF32(run(input, fmt('f32le', inRate, 1), fmt('f32le', outRate, 1), [4096]));
    const skip = Math.ceil(outRate / 100);
    const fit = fitSine(out.subarray(skip, out.length - skip), outRate);
    console.log(`f32 ${inRate} -> ${outRate}: ${fit.freq.toFixed(6)} Hz, SNR ${fit.snrDb.toFixed(2)} dB`);
    expect(Math.abs(fit.freq - FREQ) / FREQ).toBeLessThan(1e-6);
    expect(fit.snrDb).toBeGreaterThanOrEqual(135);
  });

  it('the reference measurement itself: the s16 input sine measures >= 90 dB, a detuned one is caught', () => {
    const fit = fitSine(readS16(sineS16(FREQ, 48000, 48000, AMP)), 48000);
    expect(Math.abs(fit.freq - FREQ)).toBeLessThan(1e-3);
    expect(fit.snrDb).toBeGreaterThan(90);
    // the same samples read as if they were at 44100 Hz measure 997 * 44100 / 48000 Hz: 8 % off
    const detuned = fitSine(readS16(sineS16(FREQ, 48000, 48000, AMP)), 44100).freq;
    expect(Math.abs(detuned - (FREQ * 44100) / 48000)).toBeLessThan(1e-3);
  });

  it('images are rejected when up-sampling: a 19 kHz tone 44100 -> 96000 in f32 has SNR >= 110 dB', () => {
    const input = sineS16(19000, 44100, 44100, AMP);
    const out = readF32(run(input, fmt('s16le', 44100, 1), fmt('f32le', 96000, 1), 'all'));
    const fit = fitSine(out.subarray(2000, out.length - 2000), 96000);
    expect(Math.abs(fit.freq - 19000)).toBeLessThan(0.01);
    // the input's own 16-bit quantisation noise is ~97 dB below; a linear interpolator leaves images at ~-30 dB
    expect(fit.snrDb).toBeGreaterThan(95);
  });

  it('aliases are rejected when down-sampling: a 23 kHz f32 tone 48000 -> 44100 comes out below -130 dBFS', () => {
    // f32 in and out, so that no 16-bit quantisation noise (-101 dBFS) hides what the filter lets through
    const frames = 48000;
    const input = new Uint8Array(frames * 4);
    const v = new DataView(input.buffer);
    for (let n = 0; n < frames; n++) v.setFloat32(n * 4, AMP * Math.sin((2 * Math.PI * 23000 * n) / 48000), true);
    const out = readF32(run(input, fmt('f32le', 48000, 1), fmt('f32le', 44100, 1), 'all'));
    let sum = 0;
    const body = out.subarray(2000, out.length - 2000);
    for (const x of body) sum += x * x;
    const rmsDb = 10 * Math.log10(sum / body.length);
    console.log(`23 kHz at -1 dBFS, 48000 -> 44100: output ${rmsDb.toFixed(1)} dBFS`);
    // the filter is sox's "high" quality (125 dB rejection); measured -136 dBFS
    expect(rmsDb).toBeLessThan(-130);
    // and a tone in the pass band goes through at full level
    for (let n = 0; n < frames; n++) v.setFloat32(n * 4, AMP * Math.sin((2 * Math.PI * 15000 * n) / 48000), true);
    const pass = readF32(run(input, fmt('f32le', 48000, 1), fmt('f32le', 44100, 1), 'all'));
    const fit = fitSine(pass.subarray(2000, pass.length - 2000), 44100);
    expect(Math.abs(20 * Math.log10(fit.amplitude) + 1)).toBeLessThan(0.01);
    expect(fit.snrDb).toBeGreaterThan(110);
  });

  it('DC passes exactly: a constant s16 input resamples to the same constant (after the start-up edge)', () => {
    const frames = 10000;
    const input = new Uint8Array(frames * 2);
    const v = new DataView(input.buffer);
    for (let i = 0; i < frames; i++) v.setInt16(i * 2, -12345, true);
    for (const [a, b] of [
      [44100, 48000],
      [48000, 44100],
      [44101, 48000],
      [96000, 8000],
    ] as const) {
      const out = readS16(run(input, fmt('s16le', a, 1), fmt('s16le', b, 1), 'all'));
      const edge = Math.ceil((200 * b) / Math.min(a, b)) + 100;
      for (let i = edge; i < out.length - edge; i++) expect(out[i], `${a}->${b} frame ${i}`).toBe(-12345);
    }
  });
});

describe('the issue 12 bar: 997 Hz through 16 bits, stereo and mono', () => {
  const FREQ = 997;
  const AMP = Math.pow(10, -1 / 20);
  /** An interleaved s16le sine on every channel (channel c phase-shifted by c radians, so channels differ). */
  function sineFrames(rate: number, frames: number, channels: number): Uint8Array {
    const buf = Buffer.alloc(frames * channels * 2);
    for (let n = 0; n < frames; n++) {
      for (let c = 0; c < channels; c++) {
        const v = AMP * 32768 * Math.sin((2 * Math.PI * FREQ * n) / rate + c);
        buf.writeInt16LE(
          Math.max(-32768, Math.min(32767, Math.sign(v) * Math.floor(Math.abs(v) + 0.5))),
          (n * channels + c) * 2,
        );
      }
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  }
  const cases: [number, number, number][] = [];
  for (const [a, b] of [
    [44100, 48000],
    [48000, 44100],
    [44100, 96000],
  ] as const) {
    for (const ch of [2, 1]) cases.push([a, b, ch]);
  }
  it.each(cases)('%i -> %i, %i channel(s): SNR >= 94 dB, frequency error < 0.01 %', (inRate, outRate, channels) => {
    // measured 94.17-94.45 dB: what two 16-bit quantisations of a -1 dBFS sine allow (~97 dB each)
    const input = sineFrames(inRate, inRate, channels);
    const out = run(input, fmt('s16le', inRate, channels), fmt('s16le', outRate, channels), [4096]);
    expect(out.length / 2 / channels).toBe(outRate);
    const skip = Math.ceil(outRate / 100);
    for (let ch = 0; ch < channels; ch++) {
      const y = readS16(out, channels, ch);
      const fit = fitSine(y.subarray(skip, y.length - skip), outRate);
      expect(Math.abs(fit.freq - FREQ) / FREQ, `channel ${ch}`).toBeLessThan(1e-4);
      expect(fit.snrDb, `channel ${ch}`).toBeGreaterThanOrEqual(94);
      expect(Math.abs(20 * Math.log10(fit.amplitude / 32768) + 1), `channel ${ch}`).toBeLessThan(0.01);
    }
  });

  it("the pass band reaches sox's: a 20 kHz tone 48000 -> 44100 (0.907 x Nyquist) keeps its level within 0.01 dB", () => {
    const frames = 48000;
    const input = new Uint8Array(frames * 4);
    const v = new DataView(input.buffer);
    for (let n = 0; n < frames; n++) v.setFloat32(n * 4, AMP * Math.sin((2 * Math.PI * 20000 * n) / 48000), true);
    const out = readF32(run(input, fmt('f32le', 48000, 1), fmt('f32le', 44100, 1), 'all'));
    const fit = fitSine(out.subarray(2000, out.length - 2000), 44100);
    expect(Math.abs(fit.freq - 20000)).toBeLessThan(0.01);
    expect(Math.abs(20 * Math.log10(fit.amplitude) + 1)).toBeLessThan(0.01);
  });
});

describe('chunk invariance, random splits', () => {
  const cases: [string, SampleFormat, SampleFormat][] = [
    ['44100 -> 48000 s16 stereo', fmt('s16le', 44100, 2), fmt('s16le', 48000, 2)],
    ['48000 -> 44100 s16 mono', fmt('s16le', 48000, 1), fmt('s16le', 44100, 1)],
    ['44100 -> 96000 s16 stereo', fmt('s16le', 44100, 2), fmt('s16le', 96000, 2)],
    ['44100 -> 48000 s16 mono -> f32', fmt('s16le', 44100, 1), fmt('f32le', 48000, 1)],
    ['48000 -> 44100 s16 3 channels', fmt('s16le', 48000, 3), fmt('s16le', 44100, 3)],
    ['44101 -> 48000 f32 stereo (interpolated phases)', fmt('f32le', 44101, 2), fmt('f32le', 48000, 2)],
  ];
  it.each(cases)('%s: 20 random splits give the same bytes as one call', (_name, from, to) => {
    const frames = 20000;
    let input = noiseS16(frames, from.channels, 11);
    if (from.encoding === 'f32le') {
      const v = new DataView(input.buffer, input.byteOffset, input.byteLength);
      const f = new Uint8Array(frames * from.channels * 4);
      const w = new DataView(f.buffer);
      for (let i = 0; i < frames * from.channels; i++) w.setFloat32(i * 4, v.getInt16(i * 2, true) / 32768, true);
      input = f;
    }
    const whole = run(input, from, to, 'all');
    expect(whole.length / ((to.encoding === 's16le' ? 2 : 4) * to.channels)).toBe(
      expectedFrames(frames, from.rate, to.rate),
    );
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed * 7919);
      const sizes = Array.from({ length: 64 }, () =>
        r() < 0.2 ? 1 + Math.floor(r() * 4) : 1 + Math.floor(r() * 5000),
      );
      const chunked = run(input, from, to, sizes);
      expect(Buffer.compare(chunked, whole), `seed ${seed}`).toBe(0);
    }
  });

  it('the s16le path (bytes straight into the kernel) gives the same samples as the general one (s16be out)', () => {
    for (const [a, b, ch] of [
      [44100, 48000, 2],
      [48000, 44100, 1],
      [44100, 96000, 2],
      [8000, 44100, 3],
    ] as const) {
      const input = noiseS16(9000, ch, a);
      const le = run(input, fmt('s16le', a, ch), fmt('s16le', b, ch), [1000]);
      const be = Buffer.from(run(input, fmt('s16le', a, ch), fmt('s16be', b, ch), [1000]));
      be.swap16();
      expect(le.length).toBeGreaterThan(0);
      expect(Buffer.compare(le, be), `${a} -> ${b} x${ch}`).toBe(0);
    }
  });

  it('loud input cannot turn into NaN: f32 samples at +/-3e38 give finite, clipped output', () => {
    const frames = 3000;
    const input = new Uint8Array(frames * 4);
    const v = new DataView(input.buffer);
    for (let i = 0; i < frames; i++) v.setFloat32(i * 4, i % 2 ? 3e38 : -3e38, true);
    const out = readF32(run(input, fmt('f32le', 44100, 1), fmt('f32le', 48000, 1), 'all'));
    for (const x of out) expect(Number.isNaN(x)).toBe(false);
    const s16 = readS16(run(input, fmt('f32le', 44100, 1), fmt('s16le', 48000, 1), 'all'));
    expect(s16.some((x) => x === 32767 || x === -32768)).toBe(true);
  });
});
