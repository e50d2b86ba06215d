/**
 * A band-limited polyphase resampler (windowed sinc, Kaiser window), the approach of sox's `rate` and libsamplerate's
 * sinc converters, written for exact, chunk-independent streaming.
 *
 * Timing: with `L/M = outRate/inRate` in lowest terms, output frame `n` is the input signal evaluated at input time
 * `t = n * M / L` (output frame 0 sits on input frame 0; the filter is symmetric, so there is no delay). `t` is kept
 * as an exact integer position plus an integer phase `p` in `[0, L)` (`t = i + p / L`), advanced by integer steps
 * only: no accumulated floating-point error, and the position of every output is independent of how the input was
 * split into chunks. Each output is a dot product of the same coefficients and the same input samples, in the same
 * order, whatever the chunking, so the output is bit-identical for any split (and deterministic).
 *
 * Filter: a Kaiser-windowed sinc, designed for the lower of the two rates: pass band to 0.90 x its Nyquist frequency,
 * stop band from 1.00 x Nyquist, 120 dB stop-band attenuation (Kaiser beta 12.27, 157 taps at the lower rate; when
 * down-sampling the kernel is stretched by inRate/outRate). Every phase's coefficients are normalised to sum to 1, so
 * DC passes with unity gain at every phase.
 *
 * Coefficients: when `L x taps <= 2^20` the table holds all `L` phases exactly (every common rate pair:
 * 44100 <-> 48000 has 160 or 147 phases). Otherwise (rates whose ratio has a huge L, e.g. 44101 -> 48000) the table
 * holds `P = ceil(2048 / stretch)` evenly spaced phases plus one, and a phase in between is linearly interpolated
 * between its two neighbours (`frac = p * P / L`, computed from the exact integer phase, so still deterministic and
 * chunk-independent); 2048 phases per input sample keep the interpolation error near -140 dB.
 *
 * Tables depend only on (L, M) and are cached (a few, least recently used first out).
 */

const PASS = 0.9;
const STOP = 1.0;
const ATTENUATION_DB = 120;
const BETA = 0.1102 * (ATTENUATION_DB - 8.7);
/** Half the filter length, in samples at the lower rate: (A - 7.95) / (14.36 * transition) / 2, rounded up. */
const HALF_TAPS = Math.ceil((ATTENUATION_DB - 7.95) / (14.36 * ((STOP - PASS) / 2)) / 2);
const MAX_EXACT_TABLE = 1 << 20;
const INTERP_PHASES = 2048;

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
  /** Taps per row (= 2 * half). */
  readonly taps: number;
  readonly half: number;
  /** Rows in the table: `L` when exact, otherwise `phases + 1` (the last row is phase 1.0). */
  readonly rows: number;
  /** Exact table (one row per phase) or interpolated (`phases` steps, linear interpolation). */
  readonly exact: boolean;
  readonly phases: number;
  readonly coefs: Float64Array;
}

function buildTable(L: number, M: number): FilterTable {
  const stretch = Math.max(1, M / L);
  // Cut-off in cycles per input sample, half-width of the kernel in input samples.
  const fc = (PASS + STOP) / 4 / stretch;
  const hw = HALF_TAPS * stretch;
  const half = Math.ceil(hw);
  const taps = 2 * half;
  const exact = L * taps <= MAX_EXACT_TABLE;
  const phases = exact ? L : Math.ceil(INTERP_PHASES / stretch);
  const rows = exact ? L : phases + 1;
  const coefs = new Float64Array(rows * taps);
  const i0beta = besselI0(BETA);
  for (let r = 0; r < rows; r++) {
    const phi = r / phases;
    const base = r * taps;
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
      coefs[base + j] = h;
      sum += h;
    }
    for (let j = 0; j < taps; j++) coefs[base + j] = coefs[base + j]! / sum;
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

/** Input frames taken per internal block (bounds the history buffer). */
const BLOCK = 4096;

/**
 * A streaming resampler on planar float64 channels. Feed input with {@link write} (at most {@link space} frames at a
 * time), drain output with {@link read}, and at the end pad with {@link writeZeros} until the wanted output count.
 */
export class Resampler {
  readonly L: number;
  readonly M: number;
  private readonly table: FilterTable;
  private readonly hist: Float64Array[];
  private readonly capacity: number;
  /** Frames of valid data in `hist`. */
  private filled = 0;
  /**
   * Index in `hist` of the first tap of the next output. Always <= `filled` after read(): the step between outputs
   * (at most `ceil(M / L)` frames) is shorter than the filter (`taps` >= 156 * M / L frames).
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
    this.table = tableFor(this.L, this.M);
    this.capacity = this.table.taps + BLOCK;
    this.hist = Array.from({ length: channels }, () => new Float64Array(this.capacity));
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
    for (let c = 0; c < this.channels; c++) this.hist[c]!.set(src[c]!.subarray(offset, offset + frames), this.filled);
    this.filled += frames;
  }

  /** Append `frames` (`<= space()`) frames of silence. */
  writeZeros(frames: number): void {
    for (const h of this.hist) h.fill(0, this.filled, this.filled + frames);
    this.filled += frames;
  }

  /** Compute up to `max` output frames into `dst[c][offset ..]`; returns how many. */
  read(dst: readonly Float64Array[], offset: number, max: number): number {
    const { taps, coefs, exact, phases } = this.table;
    const L = this.L;
    const channels = this.channels;
    const hist = this.hist;
    const last = this.filled - taps;
    const stepInt = this.stepInt;
    const stepFrac = this.stepFrac;
    let pos = this.pos;
    let phase = this.phase;
    let n = 0;
    while (n < max && pos <= last) {
      if (exact && channels === 2) {
        // stereo: both channels in one pass over the coefficients
        const row = phase * taps;
        const h0 = hist[0]!;
        const h1 = hist[1]!;
        let a0 = 0;
        let a1 = 0;
        for (let j = 0; j < taps; j++) {
          const k = coefs[row + j]!;
          a0 += k * h0[pos + j]!;
          a1 += k * h1[pos + j]!;
        }
        dst[0]![offset + n] = a0;
        dst[1]![offset + n] = a1;
      } else if (exact) {
        const row = phase * taps;
        for (let c = 0; c < channels; c++) {
          const h = hist[c]!;
          let acc = 0;
          for (let j = 0; j < taps; j++) acc += coefs[row + j]! * h[pos + j]!;
          dst[c]![offset + n] = acc;
        }
      } else {
        const u = (phase * phases) / L;
        const r = Math.floor(u);
        const frac = u - r;
        const row0 = r * taps;
        const row1 = row0 + taps;
        for (let c = 0; c < channels; c++) {
          const h = hist[c]!;
          let a0 = 0;
          let a1 = 0;
          for (let j = 0; j < taps; j++) {
            const x = h[pos + j]!;
            a0 += coefs[row0 + j]! * x;
            a1 += coefs[row1 + j]! * x;
          }
          dst[c]![offset + n] = a0 + frac * (a1 - a0);
        }
      }
      n++;
      pos += stepInt;
      phase += stepFrac;
      if (phase >= L) {
        phase -= L;
        pos++;
      }
    }
    this.pos = pos;
    this.phase = phase;
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
