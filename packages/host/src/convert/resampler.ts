/**
 * A band-limited polyphase resampler (windowed sinc, Kaiser window), the approach of sox's `rate` and libsamplerate's
 * sinc converters, written for exact, chunk-independent streaming. The dot products run in a WebAssembly SIMD kernel
 * (f32x4, resampler-kernel.ts, assembled from the WAT in scripts/build-resampler-wasm.js).
 *
 * Timing: with `L/M = outRate/inRate` in lowest terms, output frame `n` is the input signal evaluated at input time
 * `t = n * M / L` (output frame 0 sits on input frame 0; the filter is symmetric, so there is no delay). `t` is kept
 * as an exact integer position plus an integer phase `p` in `[0, L)` (`t = i + p / L`), advanced by integer steps
 * only: no accumulated floating-point error, and the position of every output is independent of how the input was
 * split into chunks. Each output is a dot product of the same coefficients and the same input samples, in the same
 * order, whatever the chunking, so the output is bit-identical for any split (and deterministic).
 *
 * Filter: a Kaiser-windowed sinc, designed for the lower of the two rates: pass band to 0.913 x its Nyquist
 * frequency, stop band from 1.00 x Nyquist, 125 dB stop-band attenuation (sox's default `rate -h`: 95 % bandwidth
 * at -3 dB, 125 dB rejection; Kaiser beta 12.81, 192 taps at the lower rate; when down-sampling the kernel is
 * stretched by inRate/outRate). Rows are padded to a multiple of 8 taps, the window spanning the whole row. Every
 * phase's coefficients are normalised to sum to 1 (in f64), then stored as f32; samples are f32 too (every input
 * encoding is exact in f32 up to 24 bits), and the sums are f32 in four lanes, added in a fixed order.
 *
 * Coefficients: when `L x taps <= 2^20` the table holds all `L` phases exactly (every common rate pair:
 * 44100 <-> 48000 has 160 or 147 phases). Otherwise (rates whose ratio has a huge L, e.g. 44101 -> 48000) the table
 * holds `P = ceil(2048 / stretch)` evenly spaced phases plus one, and a phase in between is linearly interpolated
 * between its two neighbours (`frac = p * P / L`, computed from the exact integer phase, so still deterministic and
 * chunk-independent); 2048 phases per input sample keep the interpolation error near -140 dB.
 *
 * Tables depend only on (L, M) and are cached (a few, least recently used first out).
 */
import { KERNEL_WASM_BASE64 } from './resampler-kernel.js';

const PASS = 0.913;
const STOP = 1.0;
const ATTENUATION_DB = 125;
const BETA = 0.1102 * (ATTENUATION_DB - 8.7);
/** Half the filter length, in samples at the lower rate: (A - 7.95) / (14.36 * transition) / 2, rounded up. */
const HALF_TAPS = Math.ceil((ATTENUATION_DB - 7.95) / (14.36 * ((STOP - PASS) / 2)) / 2);
const MAX_EXACT_TABLE = 1 << 20;
const INTERP_PHASES = 2048;
/** Rows are a whole number of the kernel's steps (two f32x4 vectors). */
const TAP_MULTIPLE = 8;
/** Samples are clamped to +/- 2^64 on their way in: no sum of a row can overflow f32 (and make Inf - Inf = NaN). */
const SAMPLE_LIMIT = 2 ** 64;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind. */
function besselI0(x: number): number {
  const q = (x * x) / 4;
  let term = 1;
  let sum = 1;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Polyphase coefficient table. Row `r` (length `taps`) holds the weights of input frames `i - half + 1 .. i + half`. */
export interface FilterTable {
  readonly L: number;
  readonly M: number;
  /** Taps per row (= 2 * half, a multiple of 8). */
  readonly taps: number;
  readonly half: number;
  /** Rows in the table: `L` when exact, otherwise `phases + 1` (the last row is phase 1.0). */
  readonly rows: number;
  /** Exact table (one row per phase) or interpolated (`phases` steps, linear interpolation). */
  readonly exact: boolean;
  readonly phases: number;
  readonly coefs: Float32Array;
}

function buildTable(L: number, M: number): FilterTable {
  const stretch = Math.max(1, M / L);
  // Cut-off in cycles per input sample, half-width of the kernel in input samples.
  const fc = (PASS + STOP) / 4 / stretch;
  const half = Math.ceil((HALF_TAPS * stretch) / (TAP_MULTIPLE / 2)) * (TAP_MULTIPLE / 2);
  const hw = half;
  const taps = 2 * half;
  const exact = L * taps <= MAX_EXACT_TABLE;
  const phases = exact ? L : Math.ceil(INTERP_PHASES / stretch);
  const rows = exact ? L : phases + 1;
  const coefs = new Float32Array(rows * taps);
  const row = new Float64Array(taps);
  const i0beta = besselI0(BETA);
  for (let r = 0; r < rows; r++) {
    const phi = r / phases;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      // distance from the output instant (i + phi) to the tap's input frame (i - half + 1 + j)
      const t = phi + half - 1 - j;
      let h = 0;
      if (Math.abs(t) < hw) {
        const x = t / hw;
        const w = besselI0(BETA * Math.sqrt(1 - x * x)) / i0beta;
        const a = 2 * fc * t;
        h = (a === 0 ? 1 : Math.sin(Math.PI * a) / (Math.PI * a)) * w;
      }
      row[j] = h;
      sum += h;
    }
    for (let j = 0; j < taps; j++) coefs[r * taps + j] = row[j]! / sum;
  }
  return { L, M, taps, half, rows, exact, phases, coefs };
}

const cache: FilterTable[] = [];
const CACHE_SIZE = 4;

function tableFor(L: number, M: number): FilterTable {
  const at = cache.findIndex((t) => t.L === L && t.M === M);
  if (at >= 0) {
    const [t] = cache.splice(at, 1);
    cache.push(t!);
    return t!;
  }
  const t = buildTable(L, M);
  cache.push(t);
  if (cache.length > CACHE_SIZE) cache.shift();
  return t;
}

/** The kernel's exports (resampler-kernel.ts); addresses are byte offsets in the instance's memory. */
interface Kernel {
  stereo(
    c: number,
    taps: number,
    h0: number,
    h1: number,
    o0: number,
    o1: number,
    pos: number,
    phase: number,
    n: number,
    L: number,
    si: number,
    sf: number,
  ): void;
  mono(
    c: number,
    taps: number,
    h: number,
    o: number,
    pos: number,
    phase: number,
    n: number,
    L: number,
    si: number,
    sf: number,
  ): void;
  interp(
    c: number,
    taps: number,
    h: number,
    o: number,
    pos: number,
    phase: number,
    n: number,
    L: number,
    si: number,
    sf: number,
    phases: number,
  ): void;
  dec16(src: number, channels: number, n: number, dst: number, stride: number): void;
  enc16(src: number, stride: number, channels: number, n: number, dst: number): void;
}

/** The WebAssembly API this file uses (the project's TypeScript libs, ES2023 and node, do not declare it). */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { readonly exports: object };
  Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer };
};
declare const wasmModule: unique symbol;
interface WasmModule {
  readonly [wasmModule]: true;
}

let kernelModule: WasmModule | undefined;

/** The compiled kernel, once per process (synchronous: about a kilobyte). */
function kernel(): WasmModule {
  kernelModule ??= new WebAssembly.Module(Buffer.from(KERNEL_WASM_BASE64, 'base64'));
  return kernelModule;
}

/** Input frames taken per internal block (bounds the history buffer). */
const BLOCK = 4096;
/** Output frames per kernel call (bounds the kernel's output planes). */
const OUT_BLOCK = 1024;
const PAGE = 65536;

/**
 * A streaming resampler on planar float64 channels. Feed input with {@link write} (at most {@link space} frames at a
 * time), drain output with {@link read}, and at the end pad with {@link writeZeros} until the wanted output count.
 */
export class Resampler {
  readonly L: number;
  readonly M: number;
  private readonly table: FilterTable;
  private readonly k: Kernel;
  /** History planes (f32 views of the kernel's memory) and their byte addresses. */
  private readonly hist: Float32Array[];
  private readonly histAt: number[];
  /** Output planes of one kernel call and their byte addresses. */
  private readonly outs: Float32Array[];
  private readonly outAt: number[];
  /** Bytes from one history plane to the next. */
  private readonly histStride: number;
  /** Interleaved s16 bytes on their way in or out ({@link writeS16}, {@link readS16}). */
  private readonly staging: Uint8Array;
  private readonly stagingAt: number;
  private readonly capacity: number;
  /** Frames of valid data in `hist`. */
  private filled = 0;
  /**
   * Index in `hist` of the first tap of the next output. Always <= `filled` after read(): the step between outputs
   * (at most `ceil(M / L)` frames) is shorter than the filter (`taps` >= 188 * M / L frames).
   */
  private pos = 0;
  /** Phase numerator of the next output, in [0, L). */
  private phase = 0;
  private readonly stepInt: number;
  private readonly stepFrac: number;

  constructor(
    inRate: number,
    outRate: number,
    readonly channels: number,
  ) {
    const g = gcd(inRate, outRate);
    this.L = outRate / g;
    this.M = inRate / g;
    const table = (this.table = tableFor(this.L, this.M));
    this.capacity = table.taps + BLOCK;
    // memory: the table, then the history planes, then the output planes (all 16-byte aligned)
    const tableBytes = table.coefs.length * 4;
    const histBytes = this.capacity * 4;
    const outBytes = OUT_BLOCK * 4;
    const stagingBytes = Math.max(OUT_BLOCK, BLOCK) * 2 * channels;
    const total = tableBytes + channels * (histBytes + outBytes) + stagingBytes;
    const memory = new WebAssembly.Memory({ initial: Math.ceil(total / PAGE) });
    const instance = new WebAssembly.Instance(kernel(), { env: { memory } });
    this.k = instance.exports as unknown as Kernel;
    const buf = memory.buffer;
    new Float32Array(buf, 0, table.coefs.length).set(table.coefs);
    this.histAt = Array.from({ length: channels }, (_, c) => tableBytes + c * histBytes);
    this.hist = this.histAt.map((at) => new Float32Array(buf, at, this.capacity));
    this.outAt = Array.from({ length: channels }, (_, c) => tableBytes + channels * histBytes + c * outBytes);
    this.outs = this.outAt.map((at) => new Float32Array(buf, at, OUT_BLOCK));
    this.histStride = histBytes;
    this.stagingAt = tableBytes + channels * (histBytes + outBytes);
    this.staging = new Uint8Array(buf, this.stagingAt, stagingBytes);
    this.stepInt = Math.floor(this.M / this.L);
    this.stepFrac = this.M % this.L;
    this.reset();
  }

  /** Forget all input: the next frame written is input frame 0 (preceded by implicit zeros). */
  reset(): void {
    // The first output (at input frame 0) needs the `half - 1` frames before frame 0: zeros.
    this.filled = this.table.half - 1;
    for (const h of this.hist) h.fill(0, 0, this.filled);
    this.pos = 0;
    this.phase = 0;
  }

  /** Frames that {@link write} accepts now. */
  space(): number {
    this.compact();
    return this.capacity - this.filled;
  }

  /** Append `frames` frames (`<= space()`) from `src[c][offset ..]`. */
  write(src: readonly Float64Array[], offset: number, frames: number): void {
    const at = this.filled;
    for (let c = 0; c < this.channels; c++) {
      const s = src[c]!;
      const h = this.hist[c]!;
      for (let f = 0; f < frames; f++) {
        const x = s[offset + f]!;
        h[at + f] = x > SAMPLE_LIMIT ? SAMPLE_LIMIT : x < -SAMPLE_LIMIT ? -SAMPLE_LIMIT : x;
      }
    }
    this.filled += frames;
  }

  /** Append `frames` (`<= space()`) frames of silence. */
  writeZeros(frames: number): void {
    for (const h of this.hist) h.fill(0, this.filled, this.filled + frames);
    this.filled += frames;
  }

  /**
   * Append `frames` frames (`<= space()`) of interleaved s16le samples, `channels` per frame, from `src` (which holds
   * exactly those bytes). The same as decoding them to planes and {@link write}: x / 32768 is exact in f32.
   */
  writeS16(src: Uint8Array, frames: number): void {
    const { channels, staging, stagingAt } = this;
    const per = Math.floor(staging.length / (2 * channels));
    for (let done = 0; done < frames;) {
      const n = Math.min(per, frames - done);
      staging.set(src.subarray(done * 2 * channels, (done + n) * 2 * channels));
      this.k.dec16(stagingAt, channels, n, this.histAt[0]! + this.filled * 4, this.histStride);
      this.filled += n;
      done += n;
    }
  }

  /** Compute up to `max` output frames into `dst[c][offset ..]`; returns how many. */
  read(dst: readonly Float64Array[], offset: number, max: number): number {
    const total = Math.max(0, Math.min(max, this.available()));
    const { channels, outs } = this;
    for (let done = 0; done < total;) {
      const n = this.compute(total - done);
      for (let c = 0; c < channels; c++) {
        const o = outs[c]!;
        const d = dst[c]!;
        const at = offset + done;
        for (let i = 0; i < n; i++) d[at + i] = o[i]!;
      }
      done += n;
    }
    return total;
  }

  /**
   * Compute up to `max` output frames as interleaved s16le into `dst` from byte `byteOffset` (room for `max`
   * frames); returns how many. The same bytes as {@link read} and encoding (rounding half away from zero, clipping).
   */
  readS16(dst: Uint8Array, byteOffset: number, max: number): number {
    const total = Math.max(0, Math.min(max, this.available()));
    const { channels, staging, stagingAt } = this;
    const frame = 2 * channels;
    for (let done = 0; done < total;) {
      const n = this.compute(total - done);
      this.k.enc16(this.outAt[0]!, OUT_BLOCK * 4, channels, n, stagingAt);
      dst.set(staging.subarray(0, n * frame), byteOffset + done * frame);
      done += n;
    }
    return total;
  }

  /** Outputs computable now: output k reads from pos + floor((phase + k * M) / L), which must be <= filled - taps. */
  private available(): number {
    const last = this.filled - this.table.taps;
    if (this.pos > last) return 0;
    return Math.floor(((last - this.pos + 1) * this.L - this.phase + this.M - 1) / this.M);
  }

  /** Compute min(max, OUT_BLOCK) (<= available()) outputs into the output planes and advance; returns how many. */
  private compute(max: number): number {
    const { taps, exact, phases } = this.table;
    const { L, M, channels, k, histAt, outAt, stepInt: si, stepFrac: sf, pos, phase } = this;
    const n = Math.min(OUT_BLOCK, max);
    let c = 0;
    if (exact) {
      for (; c + 1 < channels; c += 2) {
        k.stereo(0, taps, histAt[c]!, histAt[c + 1]!, outAt[c]!, outAt[c + 1]!, pos, phase, n, L, si, sf);
      }
      if (c < channels) k.mono(0, taps, histAt[c]!, outAt[c]!, pos, phase, n, L, si, sf);
    } else {
      for (; c < channels; c++) k.interp(0, taps, histAt[c]!, outAt[c]!, pos, phase, n, L, si, sf, phases);
    }
    const t = phase + n * M;
    this.pos = pos + Math.floor(t / L);
    this.phase = t % L;
    return n;
  }

  /** Drop history no future output reads. */
  private compact(): void {
    const drop = this.pos;
    if (drop === 0) return;
    for (const h of this.hist) h.copyWithin(0, drop, this.filled);
    this.filled -= drop;
    this.pos -= drop;
  }

  /** Upper bound of the outputs {@link read} can give after `frames` more input frames (for sizing buffers). */
  maxOutputsFor(frames: number): number {
    return Math.ceil(((this.filled + frames) * this.L) / this.M) + 1;
  }

  /** Input frames per block that keep one block's output near `target` frames. */
  blockFor(target: number): number {
    return Math.max(1, Math.min(BLOCK, Math.floor((target * this.M) / this.L)));
  }
}
