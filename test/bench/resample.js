#!/usr/bin/env node
// Resampling side by side: speakerd's converter (s16 in, s16 out, in this process, from packages/host/dist) against
// sox's `rate` (default quality, `-h`; with its default dither, and with -D) and ffmpeg (aresample with soxr, and
// its own swr default), all on the same 16-bit input files in the same run. Run `npm run build` first.
//
//   node test/bench/resample.js
//   BENCH_SECONDS (default 60)  audio per case      BENCH_RUNS (default 3)  runs; the table shows medians
//   BENCH_OUT (default docs/benchmarks.md)          BENCH_WRITE=0           print only (1, the default: rewrite
//                                                   the section between <!-- bench:resample --> markers)
//
// Input: pink-ish noise (a seeded white noise through Paul Kellet's pink filter, about -12 dBFS RMS), 16-bit.
// Time: CPU time (user + system). For sox and ffmpeg, the child's own rusage (bash's `times` after the command,
// microseconds), minus the same command's CPU time on a 10 ms input (its start-up: loading, filter design), so
// only the processing counts; output goes to a file in /dev/shm (or the temp dir). For speakerd, process.cpuUsage()
// around createConverter() + convert() in 4096-frame chunks + end(), after one untimed warm-up conversion (the
// daemon runs warm). x real time = audio seconds / CPU seconds. Quality: a 997 Hz sine at -1 dBFS (16-bit, 5 s)
// through each candidate, a four-parameter sine fit of the output (50 ms skipped at each end): SNR (noise and
// distortion, 16-bit quantisation of input and output included) and frequency error.
//
// Exits non-zero if a candidate failed to run or gave the wrong number of output frames (speakerd: exactly
// round(frames * out / in); the others within 0.1 % + 64 frames, as they round and flush in their own ways).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3));
const WRITE = process.env.BENCH_WRITE !== '0';
const OUT = process.env.BENCH_OUT ?? join(REPO, 'docs/benchmarks.md');
const BEGIN = '<!-- bench:resample -->';
const END = '<!-- /bench:resample -->';
const SINE_SECONDS = Math.min(5, Math.max(1, SECONDS));

const { createConverter } = await import(pathToFileURL(join(REPO, 'packages/host/dist/convert/index.js')).href).catch(
  (e) => {
    console.error(`cannot load packages/host/dist/convert/index.js (run npm run build first): ${e.message}`);
    process.exit(1);
  },
);

const CASES = [
  { name: '44.1 → 48 kHz stereo', inRate: 44100, outRate: 48000, channels: 2 },
  { name: '48 → 44.1 kHz stereo', inRate: 48000, outRate: 44100, channels: 2 },
  { name: '44.1 → 96 kHz stereo', inRate: 44100, outRate: 96000, channels: 2 },
  { name: '44.1 → 48 kHz mono', inRate: 44100, outRate: 48000, channels: 1 },
];

const dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'speakerd-resample-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// ------------------------------------------------------------------------------------------------ signals
/** Deterministic uniform numbers in [0, 1) (mulberry32). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Interleaved s16le pink-ish noise. */
function pinkS16(frames, channels, seed) {
  const out = Buffer.alloc(frames * channels * 2);
  for (let c = 0; c < channels; c++) {
    const r = rng(seed + c);
    let b0 = 0,
      b1 = 0,
      b2 = 0,
      b3 = 0,
      b4 = 0,
      b5 = 0,
      b6 = 0;
    for (let n = 0; n < frames; n++) {
      const w = r() * 2 - 1;
      b0 = 0.99886 * b0 + w * 0.0555179;
      b1 = 0.99332 * b1 + w * 0.0750759;
      b2 = 0.969 * b2 + w * 0.153852;
      b3 = 0.8665 * b3 + w * 0.3104856;
      b4 = 0.55 * b4 + w * 0.5329522;
      b5 = -0.7616 * b5 - w * 0.016898;
      const p = (b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362) * 0.11;
      b6 = w * 0.115926;
      const v = Math.round(p * 0.25 * 32767);
      out.writeInt16LE(Math.max(-32768, Math.min(32767, v)), (n * channels + c) * 2);
    }
  }
  return out;
}

/** Interleaved s16le sine at -1 dBFS on every channel. */
function sineS16(freq, rate, frames, channels) {
  const out = Buffer.alloc(frames * channels * 2);
  const amp = Math.pow(10, -1 / 20) * 32768;
  for (let n = 0; n < frames; n++) {
    const v = Math.round(amp * Math.sin((2 * Math.PI * freq * n) / rate));
    for (let c = 0; c < channels; c++) out.writeInt16LE(Math.max(-32768, Math.min(32767, v)), (n * channels + c) * 2);
  }
  return out;
}

/** Solve `a x = b` (Gaussian elimination, partial pivoting). */
function solve(a, b) {
  const n = b.length;
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(a[r][i]) > Math.abs(a[p][i])) p = r;
    [a[i], a[p]] = [a[p], a[i]];
    [b[i], b[p]] = [b[p], b[i]];
    for (let r = i + 1; r < n; r++) {
      const k = a[r][i] / a[i][i];
      for (let c = i; c < n; c++) a[r][c] -= k * a[i][c];
      b[r] -= k * b[i];
    }
  }
  const x = new Array(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let c = i + 1; c < n; c++) s -= a[i][c] * x[c];
    x[i] = s / a[i][i];
  }
  return x;
}

/** IEEE 1057 four-parameter sine fit (start from the zero crossings): { freq, snrDb }. */
function fitSine(y, rate) {
  const N = y.length;
  let first = -1;
  let last = -1;
  let crossings = 0;
  for (let n = 1; n < N; n++) {
    if (y[n - 1] < 0 && y[n] >= 0) {
      const t = n - 1 + -y[n - 1] / (y[n] - y[n - 1]);
      if (first < 0) first = t;
      last = t;
      crossings++;
    }
  }
  if (crossings < 2) return { freq: NaN, snrDb: NaN };
  let w = (2 * Math.PI * (crossings - 1)) / (last - first);
  const mid = (N - 1) / 2;
  let A = 0;
  let B = 0;
  let C = 0;
  for (let iter = 0; iter < 10; iter++) {
    const k = iter > 0 ? 4 : 3;
    const ata = [0, 1, 2, 3].map(() => [0, 0, 0, 0]);
    const atb = [0, 0, 0, 0];
    for (let n = 0; n < N; n++) {
      const t = n - mid;
      const c = Math.cos(w * t);
      const s = Math.sin(w * t);
      const row = [c, s, 1, t * (-A * s + B * c)];
      for (let i = 0; i < k; i++) {
        atb[i] += row[i] * y[n];
        for (let j = 0; j < k; j++) ata[i][j] += row[i] * row[j];
      }
    }
    const x = solve(
      ata.slice(0, k).map((r) => r.slice(0, k)),
      atb.slice(0, k),
    );
    [A, B, C] = x;
    if (k === 4) w += x[3];
  }
  let sig = 0;
  let noise = 0;
  for (let n = 0; n < N; n++) {
    const t = n - mid;
    const f = A * Math.cos(w * t) + B * Math.sin(w * t) + C;
    sig += (f - C) ** 2;
    noise += (y[n] - f) ** 2;
  }
  return { freq: (w * rate) / (2 * Math.PI), snrDb: 10 * Math.log10(sig / noise) };
}

/** Channel `ch` of interleaved s16le bytes. */
function channelOf(bytes, channels, ch) {
  const n = Math.floor(bytes.length / 2 / channels);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = bytes.readInt16LE((i * channels + ch) * 2);
  return out;
}

// ------------------------------------------------------------------------------------------------ candidates
/** CPU seconds (user + system) of `argv` run to completion, from the child's rusage (bash's `times`). */
function childCpu(argv) {
  const quoted = argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const r = spawnSync('bash', ['-c', `${quoted} </dev/null >/dev/null || exit $?; times`], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.error || r.status !== 0) {
    throw new Error(`${argv[0]} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.trim().slice(0, 400)}`);
  }
  // `times` prints the shell's user/system, then its children's: "0m0.123s 0m0.004s"
  const lines = r.stdout.trim().split('\n');
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/.exec(lines[lines.length - 1]);
  if (!m) throw new Error(`cannot read the CPU time of ${argv[0]}: ${r.stdout}`);
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

const raw = (rate, channels) => ['-t', 'raw', '-r', String(rate), '-e', 'signed', '-b', '16', '-c', String(channels)];
const ffIn = (rate, channels) => ['-f', 's16le', '-ar', String(rate), '-ac', String(channels)];
const ff = (af) => (c, input, output) => [
  'ffmpeg',
  '-nostdin',
  '-hide_banner',
  '-v',
  'error',
  ...ffIn(c.inRate, c.channels),
  '-i',
  input,
  ...(af ? ['-af', af] : []),
  '-ar',
  String(c.outRate),
  '-f',
  's16le',
  '-y',
  output,
];

const EXTERNAL = [
  {
    name: 'sox `rate`',
    how: 'sox, default `rate` (-h), default dither',
    argv: (c, input, output) => [
      'sox',
      ...raw(c.inRate, c.channels),
      input,
      ...raw(c.outRate, c.channels),
      output,
      'rate',
    ],
  },
  {
    name: 'sox `rate`, -D',
    how: 'sox -D (no dither), default `rate`',
    argv: (c, input, output) => [
      'sox',
      '-D',
      ...raw(c.inRate, c.channels),
      input,
      ...raw(c.outRate, c.channels),
      output,
      'rate',
    ],
  },
  { name: 'ffmpeg soxr', how: 'ffmpeg -af aresample=resampler=soxr', argv: ff('aresample=resampler=soxr') },
  { name: 'ffmpeg swr', how: 'ffmpeg, swr default (-ar alone)', argv: ff(null) },
];

function have(cmd) {
  const r = spawnSync(cmd, [cmd === 'sox' ? '--version' : '-version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** speakerd: s16le -> s16le through createConverter(), 4096-frame chunks; returns { cpu, bytes }. */
function speakerd(c, input) {
  const frame = 2 * c.channels;
  const chunk = 4096 * frame;
  const t0 = process.cpuUsage();
  const conv = createConverter(
    { encoding: 's16le', rate: c.inRate, channels: c.channels },
    { encoding: 's16le', rate: c.outRate, channels: c.channels },
  );
  let bytes = 0;
  for (let o = 0; o < input.length; o += chunk) {
    bytes += conv.convert(input.subarray(o, o + chunk)).length;
  }
  bytes += conv.end().length;
  const t = process.cpuUsage(t0);
  return { cpu: (t.user + t.system) / 1e6, bytes };
}

/** speakerd's whole output (for the quality check). */
function speakerdOutput(c, input) {
  const conv = createConverter(
    { encoding: 's16le', rate: c.inRate, channels: c.channels },
    { encoding: 's16le', rate: c.outRate, channels: c.channels },
  );
  const chunk = 4096 * 2 * c.channels;
  const parts = [];
  for (let o = 0; o < input.length; o += chunk) parts.push(Buffer.from(conv.convert(input.subarray(o, o + chunk))));
  parts.push(Buffer.from(conv.end()));
  return Buffer.concat(parts);
}

const expectedFrames = (frames, c) =>
  Number((2n * BigInt(frames) * BigInt(c.outRate) + BigInt(c.inRate)) / (2n * BigInt(c.inRate)));

// ------------------------------------------------------------------------------------------------ run
const failures = [];
const tools = EXTERNAL.filter((t) => {
  const ok = have(t.argv(CASES[0], 'x', 'y')[0]);
  if (!ok) failures.push(`${t.name}: ${t.argv(CASES[0], 'x', 'y')[0]} not found`);
  return ok;
});
const NAMES = ['speakerd', ...tools.map((t) => t.name)];
/** results[case][candidate] = { xrt: [], snr, freqErr } */
const results = CASES.map(() => Object.fromEntries(NAMES.map((n) => [n, { xrt: [], snr: NaN, freqErr: NaN }])));

for (const [ci, c] of CASES.entries()) {
  const frames = Math.round(SECONDS * c.inRate);
  const input = pinkS16(frames, c.channels, 1000 + ci);
  const inFile = join(dir, `in-${ci}.raw`);
  const tinyFile = join(dir, `tiny-${ci}.raw`);
  const sineFile = join(dir, `sine-${ci}.raw`);
  const outFile = join(dir, `out-${ci}.raw`);
  writeFileSync(inFile, input);
  writeFileSync(tinyFile, input.subarray(0, Math.round(c.inRate / 100) * 2 * c.channels));
  const sine = sineS16(997, c.inRate, SINE_SECONDS * c.inRate, c.channels);
  writeFileSync(sineFile, sine);
  const want = expectedFrames(frames, c);
  const tol = Math.ceil(want * 0.001) + 64;

  // quality: each candidate's 997 Hz output
  const quality = (name, bytes) => {
    const outFrames = bytes.length / (2 * c.channels);
    const skip = Math.round(c.outRate / 20);
    let worst = { snrDb: Infinity, freq: 997 };
    for (let ch = 0; ch < c.channels; ch++) {
      const fit = fitSine(channelOf(bytes, c.channels, ch).subarray(skip, outFrames - skip), c.outRate);
      if (!(fit.snrDb >= worst.snrDb)) worst = fit;
    }
    results[ci][name].snr = worst.snrDb;
    results[ci][name].freqErr = Math.abs(worst.freq - 997) / 997;
  };
  quality('speakerd', speakerdOutput(c, sine));
  for (const t of tools) {
    try {
      childCpu(t.argv(c, sineFile, outFile));
      quality(t.name, readFileSync(outFile));
    } catch (e) {
      failures.push(`${c.name}, ${t.name} (997 Hz): ${e.message}`);
    }
  }

  speakerd(c, input.subarray(0, Math.min(input.length, c.inRate * 2 * c.channels))); // warm-up
  for (let run = 0; run < RUNS; run++) {
    const s = speakerd(c, input);
    if (s.bytes !== want * 2 * c.channels) {
      failures.push(`${c.name}, speakerd: ${s.bytes / 2 / c.channels} frames, expected ${want}`);
    }
    results[ci].speakerd.xrt.push(SECONDS / s.cpu);
    for (const t of tools) {
      try {
        const startup = childCpu(t.argv(c, tinyFile, outFile));
        const cpu = childCpu(t.argv(c, inFile, outFile));
        const got = statSync(outFile).size / 2 / c.channels;
        if (Math.abs(got - want) > tol) failures.push(`${c.name}, ${t.name}: ${got} frames, expected ${want} ± ${tol}`);
        results[ci][t.name].xrt.push(SECONDS / Math.max(cpu - startup, 1e-4));
      } catch (e) {
        failures.push(`${c.name}, ${t.name}: ${e.message}`);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------ report
const median = (a) => {
  if (a.length === 0) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fx = (v) => (Number.isFinite(v) ? `${v.toFixed(0)}×` : '—');
const fdb = (v) => (Number.isFinite(v) ? `${v.toFixed(1)} dB` : '—');
const ferr = (v) => (Number.isFinite(v) ? `${(v * 100).toExponential(0)} %` : '—');
const soxName = 'sox `rate`';
const lines = [];
lines.push(`| case | ${NAMES.join(' | ')} | speakerd / sox |`);
lines.push(`|---|${NAMES.map(() => '---').join('|')}|---|`);
for (const [ci, c] of CASES.entries()) {
  const r = results[ci];
  const ratio = median(r.speakerd.xrt) / median(r[soxName]?.xrt ?? []);
  lines.push(
    `| ${c.name} | ${NAMES.map((n) => fx(median(r[n].xrt))).join(' | ')} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '—'} |`,
  );
}
lines.push('');
lines.push(`| 997 Hz, -1 dBFS, 16-bit: SNR (frequency error) | ${NAMES.join(' | ')} |`);
lines.push(`|---|${NAMES.map(() => '---').join('|')}|`);
for (const [ci, c] of CASES.entries()) {
  const r = results[ci];
  lines.push(`| ${c.name} | ${NAMES.map((n) => `${fdb(r[n].snr)} (${ferr(r[n].freqErr)})`).join(' | ')} |`);
}
const table = lines.join('\n');
console.log(table);
for (const f of failures) console.error(`FAILED: ${f}`);

const version = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.error ? 'not found' : (r.stdout || r.stderr).split('\n')[0].trim();
};
if (WRITE && failures.length === 0) {
  const cmd = `BENCH_SECONDS=${SECONDS} BENCH_RUNS=${RUNS} node test/bench/resample.js`;
  const section = [
    BEGIN,
    '## Resampling (issue 12)',
    '',
    `${SECONDS} s of 16-bit pink-ish noise per case, s16 in and s16 out, each candidate on the same input in the same`,
    `run, medians of ${RUNS} runs; x real time = audio seconds / CPU seconds (user + system). sox and ffmpeg: the`,
    "child's rusage (bash's `times`, 1 ms steps) minus the same command's on a 10 ms input (its start-up);",
    'speakerd: `process.cpuUsage()` around createConverter() + convert() in 4096-frame chunks + end(), warm (after',
    'one untimed conversion). sox is `sox -t raw … -t raw … rate` (its default quality, `-h`); by default it adds',
    'TPDF dither when it writes 16 bits, hence its 91 dB below (`-D`: none). Quality: a 997 Hz sine at -1 dBFS,',
    '16-bit, through each, four-parameter sine fit, worst channel (two 16-bit quantisations allow about 94 dB).',
    'Rerun: `npm run build && ' + cmd + '`.',
    '',
    `${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version},`,
    `${version('sox', ['--version']).replace(/^sox:\s*/, '')}, ${version('ffmpeg', ['-version']).replace(/ Copyright.*/, '')}.`,
    '',
    table,
    END,
  ].join('\n');
  const old = existsSync(OUT) ? readFileSync(OUT, 'utf8') : '';
  const a = old.indexOf(BEGIN);
  const b = old.indexOf(END);
  const text =
    a >= 0 && b > a
      ? old.slice(0, a) + section + old.slice(b + END.length)
      : old + (old === '' || old.endsWith('\n\n') ? '' : old.endsWith('\n') ? '\n' : '\n\n') + section + '\n';
  writeFileSync(OUT, text);
  console.log(`wrote the resampling section of ${OUT}`);
}
process.exit(failures.length > 0 ? 1 : 0);
