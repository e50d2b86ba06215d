/**
 * Channel mapping.
 *
 * Speaker layouts by channel count, in WAVE (WAVEFORMATEXTENSIBLE) channel order, the defaults FLAC and Vorbis use:
 *
 * | channels | layout                                 |
 * | -------- | -------------------------------------- |
 * | 1        | mono (treated as FC)                   |
 * | 2        | FL FR                                  |
 * | 3        | FL FR FC                               |
 * | 4        | FL FR BL BR (quad)                     |
 * | 5        | FL FR FC BL BR (5.0)                   |
 * | 6        | FL FR FC LFE BL BR (5.1)               |
 * | 7        | FL FR FC LFE BC SL SR (6.1)            |
 * | 8        | FL FR FC LFE BL BR SL SR (7.1)         |
 *
 * The matrix from `inCh` to `outCh` channels (output = matrix x input, per frame):
 *
 * - same count: identity.
 * - mono -> N (N >= 2): the mono channel is copied, at unity gain, to FL and FR (mono -> stereo is duplication);
 *   every other output channel is silent.
 * - N -> mono (N >= 2): the average of the stereo down-mix's two rows, so stereo -> mono is `(L + R) / 2`.
 * - otherwise every input speaker goes to the output speaker of the same name when there is one (so up-mixing copies
 *   the channels the layouts share and leaves the rest silent); a speaker the output lacks is folded in ITU-R BS.775
 *   style: FC -> FL and FR at -3 dB (sqrt 1/2); BL -> SL (unity) if the output has SL, else FL at -3 dB (BR
 *   likewise to SR or FR); SL -> BL (unity) if the output has BL, else FL at -3 dB (SR likewise); BC -> BL and BR at
 *   -3 dB if present, else SL and SR at -3 dB, else FL and FR at -6 dB (1/2); LFE is dropped.
 *   Then every output row whose coefficients sum to more than 1 is divided by that sum, so a down-mix can never
 *   clip (5.1 -> stereo: L = 0.4142 FL + 0.2929 FC + 0.2929 BL).
 */

const FL = 'FL';
const FR = 'FR';
const FC = 'FC';
const LFE = 'LFE';
const BL = 'BL';
const BR = 'BR';
const BC = 'BC';
const SL = 'SL';
const SR = 'SR';

/** The speaker layout assumed for each channel count (index = channel count). */
export const LAYOUTS: readonly (readonly string[])[] = [
  [],
  [FC],
  [FL, FR],
  [FL, FR, FC],
  [FL, FR, BL, BR],
  [FL, FR, FC, BL, BR],
  [FL, FR, FC, LFE, BL, BR],
  [FL, FR, FC, LFE, BC, SL, SR],
  [FL, FR, FC, LFE, BL, BR, SL, SR],
];

const H = Math.SQRT1_2;

/** Where a speaker missing from the output goes: candidate lists of [target, gain]; the first fully present wins. */
const FOLD: Record<string, readonly (readonly (readonly [string, number])[])[]> = {
  [FC]: [
    [
      [FL, H],
      [FR, H],
    ],
  ],
  [LFE]: [[]],
  [BL]: [[[SL, 1]], [[FL, H]]],
  [BR]: [[[SR, 1]], [[FR, H]]],
  [SL]: [[[BL, 1]], [[FL, H]]],
  [SR]: [[[BR, 1]], [[FR, H]]],
  [BC]: [
    [
      [BL, H],
      [BR, H],
    ],
    [
      [SL, H],
      [SR, H],
    ],
    [
      [FL, 0.5],
      [FR, 0.5],
    ],
  ],
};

/** The mixing matrix `m[out][in]` from `inCh` to `outCh` channels (1..8), as documented above. */
export function channelMatrix(inCh: number, outCh: number): number[][] {
  const m: number[][] = Array.from({ length: outCh }, () => new Array<number>(inCh).fill(0));
  if (inCh === outCh) {
    for (let i = 0; i < inCh; i++) m[i]![i] = 1;
    return m;
  }
  if (inCh === 1) {
    m[0]![0] = 1;
    m[1]![0] = 1;
    return m;
  }
  if (outCh === 1) {
    const st = channelMatrix(inCh, 2);
    for (let i = 0; i < inCh; i++) m[0]![i] = (st[0]![i]! + st[1]![i]!) / 2;
    return m;
  }
  const inLayout = LAYOUTS[inCh]!;
  const outLayout = LAYOUTS[outCh]!;
  inLayout.forEach((speaker, i) => {
    const direct = outLayout.indexOf(speaker);
    if (direct >= 0) {
      m[direct]![i]! += 1;
      return;
    }
    const options = FOLD[speaker]!;
    for (const targets of options) {
      if (targets.every(([t]) => outLayout.includes(t))) {
        for (const [t, gain] of targets) m[outLayout.indexOf(t)]![i]! += gain;
        return;
      }
    }
  });
  for (const row of m) {
    const sum = row.reduce((a, b) => a + Math.abs(b), 0);
    if (sum > 1) for (let i = 0; i < inCh; i++) row[i] = row[i]! / sum;
  }
  return m;
}

/** A precompiled channel matrix: for each output channel, the input channels it takes and their gains. */
export class ChannelMixer {
  readonly identity: boolean;
  private readonly rows: { readonly inputs: Int32Array; readonly gains: Float64Array }[];

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
  ) {
    const m = channelMatrix(inChannels, outChannels);
    this.identity = inChannels === outChannels;
    this.rows = m.map((row) => {
      const inputs: number[] = [];
      const gains: number[] = [];
      row.forEach((g, i) => {
        if (g !== 0) {
          inputs.push(i);
          gains.push(g);
        }
      });
      return { inputs: Int32Array.from(inputs), gains: Float64Array.from(gains) };
    });
  }

  /** `dst[o][dstOffset + f] = sum_i m[o][i] * src[i][srcOffset + f]` for `frames` frames. `dst` must not alias `src`. */
  mix(
    src: readonly Float64Array[],
    srcOffset: number,
    dst: readonly Float64Array[],
    dstOffset: number,
    frames: number,
  ): void {
    for (let o = 0; o < this.outChannels; o++) {
      const out = dst[o]!;
      const { inputs, gains } = this.rows[o]!;
      if (inputs.length === 0) {
        out.fill(0, dstOffset, dstOffset + frames);
      } else if (inputs.length === 1 && gains[0] === 1) {
        out.set(src[inputs[0]!]!.subarray(srcOffset, srcOffset + frames), dstOffset);
      } else if (inputs.length === 2) {
        const a = src[inputs[0]!]!;
        const b = src[inputs[1]!]!;
        const ga = gains[0]!;
        const gb = gains[1]!;
        for (let f = 0; f < frames; f++) out[dstOffset + f] = ga * a[srcOffset + f]! + gb * b[srcOffset + f]!;
      } else {
        for (let f = 0; f < frames; f++) {
          let acc = 0;
          for (let k = 0; k < inputs.length; k++) acc += gains[k]! * src[inputs[k]!]![srcOffset + f]!;
          out[dstOffset + f] = acc;
        }
      }
    }
  }
}
