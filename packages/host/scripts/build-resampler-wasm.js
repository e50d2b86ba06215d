#!/usr/bin/env node
// Assembles the resampler's WebAssembly SIMD kernel (the WAT text below) with wabt and writes it, base64, to
// src/convert/resampler-kernel.ts, which is committed: building or running speakerd needs neither wabt nor this
// script. Rerun after changing the WAT:  node packages/host/scripts/build-resampler-wasm.js  (then npm run build).
//
// The kernel computes output frames of the polyphase resampler (see resampler.ts): dot products of one filter row
// (f32, `taps` a multiple of 8) with `taps` history samples (f32, one plane per channel), four lanes at a time,
// two vectors per step with separate accumulators, summed in a fixed order at the end, so that an output depends
// only on the row and the samples: never on where a call started (chunk invariance). Position and phase advance
// by the same integer steps as in resampler.ts. All addresses are byte offsets in the imported memory.
/* global WebAssembly */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const OUT = process.env.OUT ?? fileURLToPath(new URL('../src/convert/resampler-kernel.ts', import.meta.url));

/** `(a0+a1)+(a2+a3)` of an f32x4 local: the fixed order of the final sum. */
const hsum = (v) =>
  `(f32.add (f32.add (f32x4.extract_lane 0 (local.get ${v})) (f32x4.extract_lane 1 (local.get ${v})))` +
  ` (f32.add (f32x4.extract_lane 2 (local.get ${v})) (f32x4.extract_lane 3 (local.get ${v}))))`;

/** Advance to the next output: pos += si, phase += sf, carry into pos when phase reaches L. */
const advance = `
      (local.set $pos (i32.add (local.get $pos) (local.get $si)))
      (local.set $phase (i32.add (local.get $phase) (local.get $sf)))
      (if (i32.ge_u (local.get $phase) (local.get $L))
        (then
          (local.set $phase (i32.sub (local.get $phase) (local.get $L)))
          (local.set $pos (i32.add (local.get $pos) (i32.const 1)))))`;

/** acc += k * x[j] for the vector at byte offset `off` of row/sample pointers. */
const mac = (acc, k, x, off) =>
  `(local.set ${acc} (f32x4.add (local.get ${acc}) (f32x4.mul (local.get ${k}) (v128.load offset=${off} (i32.add (local.get ${x}) (local.get $j))))))`;

const ZERO = '(v128.const i32x4 0 0 0 0)';

/** f32x4 vectors per step of the exact kernels' inner loop (each with its own accumulator): rows are a multiple of
 * 4 * UNROLL taps (resampler.ts's TAP_MULTIPLE). */
const UNROLL = Number(process.env.UNROLL ?? 2);
const VECS = Array.from({ length: UNROLL }, (_, v) => v);
/** Accumulator names of a channel: $a0_ch .. $a{UNROLL-1}_ch. */
const acc = (ch) => VECS.map((v) => `$a${v}_${ch}`);
const locals = (names, type) => names.map((n) => `(local ${n} ${type})`).join(' ');
const zero = (names) => names.map((n) => `(local.set ${n} ${ZERO})`).join(' ');
/** Add a channel's accumulators pairwise into $a0_ch, in a fixed order: ((a0 + a1) + (a2 + a3)). */
function reduce(ch) {
  let names = acc(ch);
  const out = [];
  while (names.length > 1) {
    const next = [];
    for (let i = 0; i < names.length; i += 2) {
      out.push(`(local.set ${names[i]} (f32x4.add (local.get ${names[i]}) (local.get ${names[i + 1]})))`);
      next.push(names[i]);
    }
    names = next;
  }
  return out.join(' ');
}

const WAT = `(module
  (import "env" "memory" (memory 1))

  ;; stereo(c, taps, h0, h1, o0, o1, pos, phase, n, L, si, sf): n outputs of two channels, exact phase table at c.
  (func (export "stereo")
    (param $c i32) (param $taps i32) (param $h0 i32) (param $h1 i32) (param $o0 i32) (param $o1 i32)
    (param $pos i32) (param $phase i32) (param $n i32) (param $L i32) (param $si i32) (param $sf i32)
    (local $bytes i32) (local $row i32) (local $x0 i32) (local $x1 i32) (local $j i32)
    ${locals(['$k'], 'v128')} ${locals(acc('0'), 'v128')} ${locals(acc('1'), 'v128')}
    (local.set $bytes (i32.shl (local.get $taps) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $out
        (local.set $row (i32.add (local.get $c) (i32.mul (local.get $phase) (local.get $bytes))))
        (local.set $x0 (i32.sub (i32.add (local.get $h0) (i32.shl (local.get $pos) (i32.const 2))) (local.get $row)))
        (local.set $x1 (i32.sub (i32.add (local.get $h1) (i32.shl (local.get $pos) (i32.const 2))) (local.get $row)))
        ${zero(acc('0'))} ${zero(acc('1'))}
        (local.set $j (local.get $row))
        (local.set $row (i32.add (local.get $row) (local.get $bytes)))
        (loop $dot
          ${VECS.map(
            (v) => `(local.set $k (v128.load offset=${16 * v} (local.get $j)))
          ${mac(`$a${v}_0`, '$k', '$x0', 16 * v)}
          ${mac(`$a${v}_1`, '$k', '$x1', 16 * v)}`,
          ).join('\n          ')}
          (local.set $j (i32.add (local.get $j) (i32.const ${16 * UNROLL})))
          (br_if $dot (i32.lt_u (local.get $j) (local.get $row))))
        ${reduce('0')}
        ${reduce('1')}
        (f32.store (local.get $o0) ${hsum('$a0_0')})
        (f32.store (local.get $o1) ${hsum('$a0_1')})
        (local.set $o0 (i32.add (local.get $o0) (i32.const 4)))
        (local.set $o1 (i32.add (local.get $o1) (i32.const 4)))
        ${advance}
        (br_if $out (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))

  ;; mono(c, taps, h, o, pos, phase, n, L, si, sf): n outputs of one channel, exact phase table at c.
  (func (export "mono")
    (param $c i32) (param $taps i32) (param $h i32) (param $o i32)
    (param $pos i32) (param $phase i32) (param $n i32) (param $L i32) (param $si i32) (param $sf i32)
    (local $bytes i32) (local $row i32) (local $x i32) (local $j i32)
    ${locals(['$k'], 'v128')} ${locals(acc('0'), 'v128')}
    (local.set $bytes (i32.shl (local.get $taps) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $out
        (local.set $row (i32.add (local.get $c) (i32.mul (local.get $phase) (local.get $bytes))))
        (local.set $x (i32.sub (i32.add (local.get $h) (i32.shl (local.get $pos) (i32.const 2))) (local.get $row)))
        ${zero(acc('0'))}
        (local.set $j (local.get $row))
        (local.set $row (i32.add (local.get $row) (local.get $bytes)))
        (loop $dot
          ${VECS.map(
            (v) => `(local.set $k (v128.load offset=${16 * v} (local.get $j)))
          ${mac(`$a${v}_0`, '$k', '$x', 16 * v)}`,
          ).join('\n          ')}
          (local.set $j (i32.add (local.get $j) (i32.const ${16 * UNROLL})))
          (br_if $dot (i32.lt_u (local.get $j) (local.get $row))))
        ${reduce('0')}
        (f32.store (local.get $o) ${hsum('$a0_0')})
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        ${advance}
        (br_if $out (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))

  ;; interp(c, taps, h, o, pos, phase, n, L, si, sf, phases): one channel, interpolated table (phases + 1 rows):
  ;; u = phase * phases / L (f64, as in JS), rows floor(u) and floor(u) + 1, out = a0 + (u - floor(u)) * (a1 - a0).
  (func (export "interp")
    (param $c i32) (param $taps i32) (param $h i32) (param $o i32)
    (param $pos i32) (param $phase i32) (param $n i32) (param $L i32) (param $si i32) (param $sf i32)
    (param $phases i32)
    (local $bytes i32) (local $row i32) (local $x i32) (local $j i32) (local $u f64) (local $r f64)
    (local $s0 f64) (local $s1 f64)
    (local $k v128) (local $q v128) (local $a v128) (local $b v128)
    (local.set $bytes (i32.shl (local.get $taps) (i32.const 2)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $out
        (local.set $u (f64.div (f64.mul (f64.convert_i32_u (local.get $phase)) (f64.convert_i32_u (local.get $phases)))
          (f64.convert_i32_u (local.get $L))))
        (local.set $r (f64.floor (local.get $u)))
        (local.set $row (i32.add (local.get $c) (i32.mul (i32.trunc_f64_u (local.get $r)) (local.get $bytes))))
        (local.set $x (i32.sub (i32.add (local.get $h) (i32.shl (local.get $pos) (i32.const 2))) (local.get $row)))
        (local.set $a ${ZERO}) (local.set $b ${ZERO})
        (local.set $j (local.get $row))
        (local.set $row (i32.add (local.get $row) (local.get $bytes)))
        ;; row r against the samples, and row r + 1 (one row further) against the same samples
        (loop $dot
          (local.set $k (v128.load (local.get $j)))
          (local.set $q (v128.load (i32.add (local.get $j) (local.get $bytes))))
          ${mac('$a', '$k', '$x', 0)}
          ${mac('$b', '$q', '$x', 0)}
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $dot (i32.lt_u (local.get $j) (local.get $row))))
        (local.set $s0 (f64.promote_f32 ${hsum('$a')}))
        (local.set $s1 (f64.promote_f32 ${hsum('$b')}))
        (f32.store (local.get $o) (f32.demote_f64 (f64.add (local.get $s0)
          (f64.mul (f64.sub (local.get $u) (local.get $r)) (f64.sub (local.get $s1) (local.get $s0))))))
        (local.set $o (i32.add (local.get $o) (i32.const 4)))
        ${advance}
        (br_if $out (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))
  ;; dec16(src, channels, n, dst, stride): n interleaved s16le frames at src to f32 planes at dst, dst + stride, ...
  ;; (x / 32768, exact).
  (func (export "dec16") (param $src i32) (param $channels i32) (param $n i32) (param $dst i32) (param $stride i32)
    (local $c i32) (local $p i32) (local $q i32) (local $end i32) (local $step i32)
    (local.set $step (i32.shl (local.get $channels) (i32.const 1)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $chan
        (local.set $p (i32.add (local.get $src) (i32.shl (local.get $c) (i32.const 1))))
        (local.set $q (i32.add (local.get $dst) (i32.mul (local.get $c) (local.get $stride))))
        (local.set $end (i32.add (local.get $q) (i32.shl (local.get $n) (i32.const 2))))
        (loop $frame
          (f32.store (local.get $q)
            (f32.mul (f32.convert_i32_s (i32.load16_s (local.get $p))) (f32.const 0x1p-15)))
          (local.set $p (i32.add (local.get $p) (local.get $step)))
          (br_if $frame (i32.lt_u (local.tee $q (i32.add (local.get $q) (i32.const 4))) (local.get $end))))
        (br_if $chan (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 1))) (local.get $channels))))))

  ;; enc16(src, stride, channels, n, dst): f32 planes at src, src + stride, ... to n interleaved s16le frames at dst:
  ;; y = x * 32768 (f64, exact), clipped to -32768..32767, rounded half away from zero (y + copysign(0.5, y) is
  ;; exact in f64 for an f32 x), NaN -> 0: the rule of pcm.ts's encode().
  (func (export "enc16") (param $src i32) (param $stride i32) (param $channels i32) (param $n i32) (param $dst i32)
    (local $c i32) (local $p i32) (local $q i32) (local $end i32) (local $step i32) (local $y f64)
    (local.set $step (i32.shl (local.get $channels) (i32.const 1)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $chan
        (local.set $p (i32.add (local.get $src) (i32.mul (local.get $c) (local.get $stride))))
        (local.set $q (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 1))))
        (local.set $end (i32.add (local.get $p) (i32.shl (local.get $n) (i32.const 2))))
        (loop $frame
          (local.set $y (f64.min (f64.max (f64.mul (f64.promote_f32 (f32.load (local.get $p))) (f64.const 32768))
            (f64.const -32768)) (f64.const 32767)))
          (i32.store16 (local.get $q)
            (i32.trunc_sat_f64_s (f64.add (local.get $y) (f64.copysign (f64.const 0.5) (local.get $y)))))
          (local.set $q (i32.add (local.get $q) (local.get $step)))
          (br_if $frame (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 4))) (local.get $end))))
        (br_if $chan (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 1))) (local.get $channels))))))
)
`;

const wabt = await wabtInit();
const parsed = wabt.parseWat('resampler-kernel.wat', WAT, { simd: true });
parsed.resolveNames();
parsed.validate();
const { buffer } = parsed.toBinary({});
parsed.destroy();
const bytes = Buffer.from(buffer);
new WebAssembly.Module(bytes); // it compiles here too
const b64 = bytes.toString('base64');
const lines = b64.match(/.{1,112}/g) ?? [];
const src = `// Generated by packages/host/scripts/build-resampler-wasm.js from the WAT text in that script: do not edit.
// The resampler's WebAssembly SIMD kernel (${bytes.length} bytes), base64.
export const KERNEL_WASM_BASE64 =
${lines.map((l, i) => `  '${l}'${i < lines.length - 1 ? ' +' : ';'}`).join('\n')}
`;
writeFileSync(OUT, src);
console.log(`wrote ${OUT} (${bytes.length} bytes of wasm)`);
