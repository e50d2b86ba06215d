/** Sample encodings: exact values for every encoding pair, round trips, pass-through, volume, silence. */
import { ENCODINGS, type Encoding, type SampleFormat } from '@speakerd/plugin-sdk';
import { describe, expect, it } from 'vitest';
import { applyVolume, createConverter, silence } from '../src/convert/index.js';

// ---- an independent reference: Buffer's own readers/writers and integer (BigInt) arithmetic --------------------

const BITS: Record<Encoding, number> = {
  u8: 8,
  s8: 8,
  s16le: 16,
  s16be: 16,
  s24le: 24,
  s24be: 24,
  s32le: 32,
  s32be: 32,
  f32le: 32,
  f32be: 32,
};
const isFloat = (e: Encoding): boolean => e.startsWith('f');
const size = (e: Encoding): number => BITS[e] / 8;

/** Raw sample values: integers as stored (u8: 0..255), floats as numbers. */
function write(e: Encoding, values: readonly number[]): Uint8Array {
  const b = Buffer.alloc(values.length * size(e));
  values.forEach((v, i) => {
    const o = i * size(e);
    if (e === 'u8') b.writeUInt8(v, o);
    else if (e === 's8') b.writeInt8(v, o);
    else if (e === 'f32le') b.writeFloatLE(v, o);
    else if (e === 'f32be') b.writeFloatBE(v, o);
    else if (e.endsWith('le')) b.writeIntLE(v, o, size(e));
    else b.writeIntBE(v, o, size(e));
  });
  return new Uint8Array(b);
}

function read(e: Encoding, bytes: Uint8Array): number[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let o = 0; o < b.length; o += size(e)) {
    if (e === 'u8') out.push(b.readUInt8(o));
    else if (e === 's8') out.push(b.readInt8(o));
    else if (e === 'f32le') out.push(b.readFloatLE(o));
    else if (e === 'f32be') out.push(b.readFloatBE(o));
    else if (e.endsWith('le')) out.push(b.readIntLE(o, size(e)));
    else out.push(b.readIntBE(o, size(e)));
  }
  return out;
}

/** Round half away from zero of the exact rational n / d (BigInt). */
function roundRational(n: bigint, d: bigint): bigint {
  const neg = n < 0n;
  const a = neg ? -n : n;
  let q = a / d;
  if (2n * (a % d) >= d) q += 1n;
  return neg ? -q : q;
}

/** Round half away from zero of a float64, by its integer and fractional parts (exact). */
function roundFloat(y: number): number {
  const a = Math.abs(y);
  const fl = Math.floor(a);
  const r = a - fl >= 0.5 ? fl + 1 : fl;
  return y < 0 ? -r : r;
}

/** What PROTOCOL.md section 5 says `raw` (in `from`) becomes in `to`. */
function expected(from: Encoding, to: Encoding, raw: number): number {
  const signed = from === 'u8' ? raw - 128 : raw;
  const bo = BITS[to];
  if (isFloat(to)) return isFloat(from) ? raw : Math.fround(signed / 2 ** (BITS[from] - 1));
  const max = 2 ** (bo - 1) - 1;
  const min = -(2 ** (bo - 1));
  let x: number;
  if (isFloat(from)) {
    if (Number.isNaN(raw)) x = 0;
    else {
      const y = raw * 2 ** (bo - 1); // exact: a power-of-two scale
      x = y >= max ? max : y <= min ? min : roundFloat(y);
    }
  } else if (bo >= BITS[from]) {
    x = signed * 2 ** (bo - BITS[from]); // widening: a shift
  } else {
    const r = Number(roundRational(BigInt(signed), 2n ** BigInt(BITS[from] - bo)));
    x = Math.min(max, Math.max(min, r));
  }
  return to === 'u8' ? x + 128 : x + 0; // + 0: no -0 from an integer encoding
}

/** Edge values per encoding: extremes, +/-1, 0, mid values and values that are rounding ties when narrowed. */
const VALUES: Record<Encoding, number[]> = {
  u8: [0, 1, 2, 64, 127, 128, 129, 192, 254, 255],
  s8: [-128, -127, -64, -2, -1, 0, 1, 2, 64, 126, 127],
  s16le: [],
  s16be: [],
  s24le: [],
  s24be: [],
  s32le: [],
  s32be: [],
  f32le: [],
  f32be: [],
};
const S16 = [
  -32768, -32767, -32640, -384, -129, -128, -127, -1, 0, 1, 127, 128, 129, 383, 384, 12345, 32639, 32640, 32767,
];
const S24 = [
  -8388608, -8388607, -8388480, -32768, -32640, -256, -129, -128, -127, -1, 0, 1, 127, 128, 129, 256, 384, 32768, 32767,
  1234567, 8388479, 8388480, 8388607,
];
const S32 = [
  -2147483648, -2147483647, -2147483520, -8388608, -32768, -128, -1, 0, 1, 127, 128, 129, 32767, 32768, 32769, 98304,
  16777216, 2147450880, 2147483520, 2147483647,
];
const F32 = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  0.25,
  -0.75,
  1.5,
  -1.5,
  2,
  -2,
  1e30,
  -1e30,
  1e-10,
  -1e-10,
  NaN,
  Infinity,
  -Infinity,
  0.5 / 128,
  -0.5 / 128,
  1.5 / 128,
  0.5 / 32768,
  -0.5 / 32768,
  1.5 / 32768,
  -2.5 / 32768,
  0.49 / 32768,
  0.5 / 8388608,
  -0.5 / 8388608,
  1 - 2 ** -24,
  -(1 - 2 ** -24),
  32767 / 32768,
  127 / 128,
  2 ** -31,
  2 ** -32,
  -(2 ** -32),
  0.1,
  -0.3,
].map(Math.fround); // the values a float32 can hold
VALUES.s16le = VALUES.s16be = S16;
VALUES.s24le = VALUES.s24be = S24;
VALUES.s32le = VALUES.s32be = S32;
VALUES.f32le = VALUES.f32be = F32;

const mono = (encoding: Encoding, rate = 44100, channels = 1): SampleFormat => ({ encoding, rate, channels });

function convertOnce(from: SampleFormat, to: SampleFormat, bytes: Uint8Array): Uint8Array {
  const c = createConverter(from, to);
  const out = c.convert(bytes).slice();
  expect(c.end().length).toBe(0);
  return out;
}

describe('every encoding to every encoding, exact values', () => {
  const pairs = ENCODINGS.flatMap((a) => ENCODINGS.map((b) => [a, b] as [Encoding, Encoding]));
  it.each(pairs)('%s -> %s', (from, to) => {
    const values = VALUES[from];
    const out = read(to, convertOnce(mono(from), mono(to), write(from, values)));
    const want = values.map((v) => expected(from, to, v));
    // Object.is semantics: NaN equals NaN, and -0 is checked where it survives (float -> float)
    expect(out).toEqual(want);
  });

  it('stereo frames keep their channels apart (s24le stereo -> s16be stereo and u8 stereo)', () => {
    const input = write('s24le', [256, -256, 8388607, -8388608, 128, -128]);
    expect(read('s16be', convertOnce(mono('s24le', 44100, 2), mono('s16be', 44100, 2), input))).toEqual([
      1, -1, 32767, -32768, 1, -1,
    ]);
    expect(read('u8', convertOnce(mono('s24le', 44100, 2), mono('u8', 44100, 2), input))).toEqual([
      128, 128, 255, 0, 128, 128,
    ]);
  });
});

describe('hand-checked values (the rules of PROTOCOL.md section 5, independent of the reference above)', () => {
  const conv = (from: Encoding, to: Encoding, values: number[]): number[] =>
    read(to, convertOnce(mono(from), mono(to), write(from, values)));

  it('u8 -> s16 is (x - 128) << 8', () => {
    expect(conv('u8', 's16le', [0, 1, 127, 128, 129, 255])).toEqual([-32768, -32512, -256, 0, 256, 32512]);
  });
  it('s16 -> s24 is x << 8, s16 -> s32 is x << 16', () => {
    expect(conv('s16le', 's24be', [-32768, -1, 0, 1, 32767])).toEqual([-8388608, -256, 0, 256, 8388352]);
    expect(conv('s16be', 's32le', [-32768, -1, 1, 32767])).toEqual([-2147483648, -65536, 65536, 2147418112]);
  });
  it('s24 -> s16 is round(x / 256), ties away from zero, clipped', () => {
    expect(
      conv('s24le', 's16le', [127, 128, 129, -127, -128, -129, 383, 384, -384, 8388479, 8388480, 8388607]),
    ).toEqual([0, 1, 1, 0, -1, -1, 1, 2, -2, 32767, 32767, 32767]);
    expect(conv('s24le', 's16le', [-8388608, -8388607, -8388480])).toEqual([-32768, -32768, -32768]);
  });
  it('s16 -> u8 rounds and clips: 32767 -> 255, 128 -> 129, -128 -> 127', () => {
    expect(conv('s16le', 'u8', [-32768, -129, -128, -127, 0, 127, 128, 32639, 32640, 32767])).toEqual([
      0, 127, 127, 128, 128, 128, 129, 255, 255, 255,
    ]);
  });
  it('f32 -> s16 is round(x * 32768) clipped; NaN -> 0', () => {
    expect(
      conv('f32le', 's16le', [
        1,
        -1,
        1.5,
        -1.5,
        0.5,
        0.25,
        0.5 / 32768,
        -0.5 / 32768,
        0.49 / 32768,
        NaN,
        Infinity,
        -Infinity,
      ]),
    ).toEqual([32767, -32768, 32767, -32768, 16384, 8192, 1, -1, 0, 0, 32767, -32768]);
  });
  it('f32 -> s32 and s24: full scale clips, 0.5 is exact', () => {
    expect(conv('f32be', 's32be', [1, -1, 0.5, 2 ** -31, 2 ** -32, -(2 ** -32)])).toEqual([
      2147483647, -2147483648, 1073741824, 1, 1, -1,
    ]);
    expect(conv('f32le', 's24le', [1, -1, 0.5, 0.5 / 8388608, 1e30])).toEqual([8388607, -8388608, 4194304, 1, 8388607]);
  });
  it('integer -> float is x / 2^(bits-1)', () => {
    expect(conv('s16le', 'f32le', [-32768, -1, 0, 16384, 32767])).toEqual([-1, -1 / 32768, 0, 0.5, 32767 / 32768]);
    expect(conv('u8', 'f32be', [0, 128, 192, 255])).toEqual([-1, 0, 0.5, 127 / 128]);
    expect(conv('s32le', 'f32le', [2147483647, -2147483648, 1])).toEqual([1, -1, 2 ** -31]); // float32 rounding
  });
  it('u8 <-> s8 is a bias of 128', () => {
    expect(conv('u8', 's8', [0, 127, 128, 255])).toEqual([-128, -1, 0, 127]);
    expect(conv('s8', 'u8', [-128, -1, 0, 127])).toEqual([0, 127, 128, 255]);
  });
});

describe('round trips', () => {
  const all16 = Array.from({ length: 65536 }, (_, i) => i - 32768);
  const there = (a: Encoding, b: Encoding, values: number[]): number[] => {
    const mid = convertOnce(mono(a), mono(b), write(a, values));
    return read(a, convertOnce(mono(b), mono(a), mid));
  };
  it.each(['s24le', 's24be', 's32le', 's32be', 'f32le', 'f32be'] as const)(
    'every s16 value survives s16 -> %s -> s16',
    (mid) => {
      expect(there('s16le', mid, all16)).toEqual(all16);
    },
  );
  it('every u8 value survives u8 -> s16 -> u8 and u8 -> f32 -> u8', () => {
    const all8 = Array.from({ length: 256 }, (_, i) => i);
    expect(there('u8', 's16be', all8)).toEqual(all8);
    expect(there('u8', 'f32le', all8)).toEqual(all8);
  });
  it('s24 values survive s24 -> f32 -> s24 and s24 -> s32 -> s24', () => {
    expect(there('s24le', 'f32be', S24)).toEqual(S24);
    expect(there('s24be', 's32le', S24)).toEqual(S24);
  });
  it('narrowing is not lossless: s24 -> s16 -> s24 loses the low byte', () => {
    expect(there('s24le', 's16le', [1, 127, 128, 1234567])).toEqual([0, 0, 256, 1234688]); // 4822.53 -> 4823
  });
});

describe('pass-through and byte order', () => {
  it.each(ENCODINGS.map((e) => [e]))('%s to itself returns the very same bytes', (e) => {
    const c = createConverter(mono(e, 48000, 2), mono(e, 48000, 2));
    expect(c.passthrough).toBe(true);
    const input = new Uint8Array(Array.from({ length: 240 }, (_, i) => (i * 37) & 0xff));
    const copy = input.slice();
    expect(c.convert(input)).toBe(input);
    expect(input).toEqual(copy);
    expect(c.end().length).toBe(0);
  });

  it('a converter between different formats is not passthrough', () => {
    expect(createConverter(mono('s16le'), mono('s16be')).passthrough).toBe(false);
    expect(createConverter(mono('s16le', 44100), mono('s16le', 48000)).passthrough).toBe(false);
    expect(createConverter(mono('s16le', 44100, 1), mono('s16le', 44100, 2)).passthrough).toBe(false);
  });

  it('le <-> be swaps bytes bit-exactly, NaN payloads and -0 included', () => {
    const bytes = new Uint8Array([0x7f, 0x80, 0x00, 0x01, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04]);
    expect([...convertOnce(mono('f32le'), mono('f32be'), bytes)]).toEqual([
      0x01, 0x00, 0x80, 0x7f, 0x00, 0x00, 0x00, 0x80, 0x04, 0x03, 0x02, 0x01,
    ]);
    expect([...convertOnce(mono('s24be'), mono('s24le'), bytes)]).toEqual([
      0x00, 0x80, 0x7f, 0x00, 0x80, 0x01, 0x01, 0x00, 0x00, 0x04, 0x03, 0x02,
    ]);
    expect([...convertOnce(mono('s16le'), mono('s16be'), bytes)]).toEqual([
      0x80, 0x7f, 0x01, 0x00, 0x00, 0x80, 0x00, 0x00, 0x02, 0x01, 0x04, 0x03,
    ]);
  });

  it.each([
    ['s16le', 2, 's24be', 1],
    ['f32be', 1, 'u8', 2],
    ['s32le', 6, 's16be', 2],
    ['s24le', 2, 'f32le', 2],
  ] as const)(
    'long input (several internal blocks) %s x%i -> %s x%i equals frame-by-frame conversion',
    (a, ca, b, cb) => {
      const frames = 9000;
      const input = new Uint8Array(frames * size(a) * ca);
      for (let i = 0; i < input.length; i++) input[i] = (i * 131 + (i >> 7)) & 0xff;
      if (isFloat(a)) {
        // keep floats finite and in a sane range: random mantissa, exponent byte 0x3e/0x3f (|x| < 1)
        for (let i = 0; i < input.length; i += 4)
          input[i + ((a as Encoding) === 'f32le' ? 3 : 0)] = 0x3e | (input[i]! & 0x80);
      }
      const whole = createConverter(mono(a, 44100, ca), mono(b, 44100, cb))
        .convert(input)
        .slice();
      const c = createConverter(mono(a, 44100, ca), mono(b, 44100, cb));
      const fa = size(a) * ca;
      const parts: Buffer[] = [];
      for (let o = 0; o < input.length; o += fa) parts.push(Buffer.from(c.convert(input.subarray(o, o + fa))));
      expect(whole.length).toBe(frames * size(b) * cb);
      expect(Buffer.compare(Buffer.concat(parts), whole)).toBe(0);
    },
  );

  it('refuses partial frames and bad formats', () => {
    const c = createConverter(mono('s16le', 44100, 2), mono('s24le', 44100, 2));
    expect(() => c.convert(new Uint8Array(6))).toThrow(RangeError);
    expect(() => createConverter(mono('s16le', 7999), mono('s16le'))).toThrow(RangeError);
    expect(() => createConverter(mono('s16le', 44100.5), mono('s16le'))).toThrow(RangeError);
    expect(() => createConverter(mono('s16le'), mono('s16le', 768001))).toThrow(RangeError);
    expect(() => createConverter(mono('s16le', 44100, 9), mono('s16le'))).toThrow(RangeError);
    expect(() => createConverter(mono('s16le', 44100, 0), mono('s16le'))).toThrow(RangeError);
    expect(() => createConverter(mono('s12' as Encoding), mono('s16le'))).toThrow(RangeError);
  });

  it('the result is a reused buffer: a later call may overwrite an earlier view', () => {
    const c = createConverter(mono('s16le'), mono('s24le'));
    const first = c.convert(write('s16le', [1, 2]));
    const kept = first.slice();
    c.convert(write('s16le', [3, 4]));
    expect(read('s24le', kept)).toEqual([256, 512]);
    expect(first.buffer.byteLength).toBeGreaterThan(0);
  });
});

describe('applyVolume', () => {
  const noise = (e: Encoding): Uint8Array => {
    const b = new Uint8Array(size(e) * 600);
    for (let i = 0; i < b.length; i++) b[i] = (i * 97 + 13) & 0xff;
    return b;
  };

  it.each(ENCODINGS.map((e) => [e]))('%s: volume 100 leaves the bytes bit-identical (NaNs included)', (e) => {
    const b = noise(e);
    const copy = b.slice();
    applyVolume(b, mono(e), 100);
    expect(b).toEqual(copy);
  });

  it.each(ENCODINGS.map((e) => [e]))('%s: volume 0 gives exact silence', (e) => {
    const b = noise(e);
    applyVolume(b, mono(e), 0);
    expect(b).toEqual(silence(mono(e), b.length / size(e)));
    expect(b.every((x) => x === (e === 'u8' ? 0x80 : 0))).toBe(true);
  });

  it('volume 50 is gain 0.125, rounded half away from zero', () => {
    const s16 = write('s16le', [8, 12, -12, 4, -4, 3, -3, 20, 32767, -32768, 0]);
    applyVolume(s16, mono('s16le'), 50);
    expect(read('s16le', s16)).toEqual([1, 2, -2, 1, -1, 0, 0, 3, 4096, -4096, 0]);
    const s16be = write('s16be', [8, -12, 32767]);
    applyVolume(s16be, mono('s16be'), 50);
    expect(read('s16be', s16be)).toEqual([1, -2, 4096]);
    const u8 = write('u8', [0, 128, 255, 132, 124, 136]);
    applyVolume(u8, mono('u8'), 50);
    expect(read('u8', u8)).toEqual([112, 128, 144, 129, 127, 129]);
    const s8 = write('s8', [-128, 127, 4, -4]);
    applyVolume(s8, mono('s8'), 50);
    expect(read('s8', s8)).toEqual([-16, 16, 1, -1]);
    for (const e of ['s24le', 's24be'] as const) {
      const s24 = write(e, [8388607, -8388608, 4, -4, 1000]);
      applyVolume(s24, mono(e), 50);
      expect(read(e, s24)).toEqual([1048576, -1048576, 1, -1, 125]);
    }
    for (const e of ['s32le', 's32be'] as const) {
      const s32 = write(e, [2147483647, -2147483648, 4, -12]);
      applyVolume(s32, mono(e), 50);
      expect(read(e, s32)).toEqual([268435456, -268435456, 1, -2]);
    }
    for (const e of ['f32le', 'f32be'] as const) {
      const f = write(e, [1, -1, 0.5, 3]);
      applyVolume(f, mono(e), 50);
      expect(read(e, f)).toEqual([0.125, -0.125, 0.0625, 0.375]);
    }
  });

  it('the curve is cubic: volume 25 -> 1/64, 80 -> 0.512', () => {
    const s16 = write('s16le', [6400, 10000]);
    applyVolume(s16, mono('s16le'), 25);
    expect(read('s16le', s16)).toEqual([100, 156]); // 156.25 -> 156
    const f = write('f32le', [1]);
    applyVolume(f, mono('f32le'), 80);
    expect(read('f32le', f)).toEqual([Math.fround(0.512)]);
  });

  it('refuses volumes outside 0..100', () => {
    for (const v of [-1, 100.5, NaN, Infinity]) {
      expect(() => applyVolume(new Uint8Array(2), mono('s16le'), v)).toThrow(RangeError);
    }
  });
});

describe('silence', () => {
  it('is zero bytes, 0x80 for u8, frames x frame size long', () => {
    expect(silence(mono('s16le', 44100, 2), 3)).toEqual(new Uint8Array(12));
    expect(silence(mono('s24be', 48000, 6), 2)).toEqual(new Uint8Array(36));
    expect(silence(mono('f32le', 48000, 1), 0)).toEqual(new Uint8Array(0));
    expect(silence(mono('u8', 8000, 2), 2)).toEqual(new Uint8Array([128, 128, 128, 128]));
  });
  it('refuses bad frame counts', () => {
    for (const n of [-1, 1.5, NaN, Infinity, 2 ** 40]) expect(() => silence(mono('s16le'), n)).toThrow(RangeError);
  });
});
