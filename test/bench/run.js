#!/usr/bin/env node
// RTP senders side by side: ffmpeg, GStreamer, speakerd's rtp backend (and a minimal C sender for reference) stream
// the same 44.1 kHz stereo audio at the same time, each to its own 127.0.0.1 port. A receiver per sender, each on
// its own thread (receiver.js), timestamps every packet; CPU comes from /proc/<pid>/stat of each sender. Writes
// the table to docs/benchmarks.md.
//
//   BENCH_SECONDS (default 60)  audio per run      BENCH_RUNS (default 3)  runs; the table shows medians
//   BENCH_OUT (default docs/benchmarks.md)         BENCH_WRITE=0           print only
//   BENCH_SETTLE_MS (default 10000, 1000 when BENCH_SECONDS < 10)  speakerd runs this long after start-up
//     before the senders start
//   BENCH_SINKS (default both): receivers (a receiver thread per sender reads and timestamps every packet: CPU,
//     deviation), unread (each sender sends to a UDP socket bound on 127.0.0.1 that nothing reads, floor.c
//     --sinks: no receiver wake-up is charged to a sender; CPU only), or both (each run does both, in turn)
//   BENCH_FIRST_PLAYS (default max(3, BENCH_RUNS); 0: none)  plays of a buffered 2 s track, for "play -> first
//     packet", on a speakerd with the native sender and one with the JS sender, in turn
//
//   BENCH_RTP (JSON, default {})  merged into speakerd's rtp section, e.g. '{"realtime":false}' (with
//     BENCH_WRITE=0: a figure beside the defaults', not one for the doc)
//   BENCH_BUFFER_MS  speakerd's bufferMs: 120000 buffers the whole input before the window, so the main thread's
//     wake-ups are the sender's alone (without it the decoder is read while the track plays)
//
// CI smoke run (checks the harness, not a time; exits non-zero when something failed):
//   BENCH_SECONDS=2 BENCH_RUNS=1 BENCH_WRITE=0 node test/bench/run.js
//
// BENCH_MODE=realtime: the rtp.realtime figure instead. One busy loop per CPU (`sh -c 'while :; do :; done'`,
// killed whatever happens) competes with two speakerds on the native sender, one with rtp.realtime true and one
// with false, and GStreamer, in the same run; only the "real-time threads under load" section of BENCH_OUT is
// rewritten (a plain run keeps that section).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, createReadStream } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SPEAKERD = join(REPO, 'packages/host/bin/speakerd.js');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OUT = process.env.BENCH_OUT ?? join(REPO, 'docs/benchmarks.md');
const RATE = 44100;
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? (SECONDS < 10 ? 1000 : 10000));
const SINKS = process.env.BENCH_SINKS ?? 'both';
if (!['receivers', 'unread', 'both'].includes(SINKS))
  throw new Error(`BENCH_SINKS is "receivers", "unread" or "both", not "${SINKS}"`);
const FIRST_PLAYS = Number(process.env.BENCH_FIRST_PLAYS ?? Math.max(3, RUNS));
/** What went wrong in this run of the bench: printed at the end, and the exit status is 1. */
const failures = [];
function fail(msg) {
  failures.push(msg);
  console.log(`FAILED: ${msg}`);
}
/** `p`, or undefined after `ms` (and a failure noted as `what`). */
async function within(p, ms, what) {
  let t;
  const r = await Promise.race([p, new Promise((res) => (t = setTimeout(() => res(TIMED_OUT), ms)))]);
  clearTimeout(t);
  if (r === TIMED_OUT) {
    fail(`${what}: nothing after ${ms} ms`);
    return undefined;
  }
  return r;
}
const TIMED_OUT = Symbol('timed out');
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MODE = process.env.BENCH_MODE ?? 'senders';
if (MODE !== 'senders' && MODE !== 'realtime') throw new Error(`BENCH_MODE is "senders" or "realtime", not "${MODE}"`);
/** The speakerds of a run: name and rtp options. */
const SPEAKERDS =
  MODE === 'realtime'
    ? [
        { name: 'speakerd-rt', rtp: { realtime: true } },
        { name: 'speakerd-nonrt', rtp: { realtime: false } },
      ]
    : [{ name: 'speakerd', rtp: process.env.BENCH_RTP ? JSON.parse(process.env.BENCH_RTP) : {} }];
/** SCHED_FIFO priority of the receiver threads in realtime mode (above the senders' 20). */
const RECEIVER_PRIORITY = 30;
/** Markers around the real-time section of BENCH_OUT. */
const RT_BEGIN = '<!-- bench:realtime -->';
const RT_END = '<!-- /bench:realtime -->';

// ------------------------------------------------------------------ busy loops (realtime mode), always killed
const busy = new Set();
function startBusyLoops(n) {
  for (let i = 0; i < n; i++) {
    const c = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    busy.add(c);
    c.on('exit', () => busy.delete(c));
  }
}
function killBusyLoops() {
  for (const c of busy) c.kill('SIGKILL');
  busy.clear();
}
process.on('exit', killBusyLoops);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
  process.on(sig, () => {
    killBusyLoops();
    process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
  });
/** The rtp backend's "rtp sender: …" start-up lines seen (native thread or JS timers). */
const senderPath = new Set();
/** Their real-time scheduling lines (BENCH_MODE=realtime). */
const schedLines = new Set();

function have(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/**
 * CPU seconds per thread name of a process (schedstat: nanosecond run time), and the main thread's voluntary
 * context switches (its wake-ups: each sleep in epoll ends in one) under WAKEUPS, or undefined once it is gone.
 */
function threadsOf(pid) {
  try {
    const out = {};
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const run = Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
      const key = name === 'node' ? (t === String(pid) ? 'main thread' : 'V8/libuv workers') : name;
      out[key] = (out[key] ?? 0) + run;
      if (t === String(pid)) {
        const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
        out[WAKEUPS] = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(st)?.[1]);
      }
    }
    return out;
  } catch {
    return undefined;
  }
}
const WAKEUPS = 'main-thread wake-ups';

/** utime + stime of a process in seconds, or undefined once it is gone. */
function cpuOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return undefined;
  }
}

/**
 * Unread sinks for `names` (floor --sinks): a pair of bound UDP sockets each (RTP and RTCP) that nothing reads.
 * CPU is sampled by the bench itself over the middle of the stream (see oneRun).
 */
async function openSinks(names, floorBin) {
  const p = spawn(floorBin, ['--sinks', String(names.length)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    let b = '';
    p.stdout.setEncoding('utf8').on('data', (d) => {
      b += d;
      if (b.includes('\n')) resolve(b.trim());
    });
    p.once('exit', () => reject(new Error('floor --sinks exited')));
  });
  const ports = line.split(' ').map(Number);
  const streams = {};
  names.forEach((name, i) => {
    streams[name] = {
      name,
      port: ports[i],
      pid: 0,
      unread: true,
      setPid(pid) {
        this.pid = pid;
      },
      async stop() {
        return { name, unread: true };
      },
    };
  });
  return { streams, close: () => p.stdin.end() };
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1) + 0.5))];
}
const median = (xs) =>
  quantile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );

/** A receiver on its own thread (test/bench/receiver.js) for one sender. */
async function openReceiver(name) {
  const before = new Set(readdirSync('/proc/self/task'));
  const worker = new Worker(new URL('./receiver.js', import.meta.url), { workerData: { clkTck: CLK_TCK } });
  const port = await new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m) => resolve(m.port));
  });
  // realtime mode: the receiver threads run SCHED_FIFO above the senders (30 > 20), so that the busy loops delay
  // their wake-ups neither and an arrival time is the send time
  if (MODE === 'realtime')
    for (const tid of readdirSync('/proc/self/task').filter((t) => !before.has(t))) {
      const r = spawnSync('chrt', ['-f', '-p', String(RECEIVER_PRIORITY), tid], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`chrt -f -p ${RECEIVER_PRIORITY} ${tid}: ${r.stderr || r.error?.message}`);
    }
  return receiverHandle(
    name,
    port,
    async () => {
      const data = await new Promise((resolve) => {
        worker.once('message', resolve);
        worker.postMessage({ type: 'stop' });
      });
      await worker.terminate();
      return { name, ...data };
    },
    (pid) => worker.postMessage({ type: 'pid', pid }),
  );
}

/** What a receiver gives the runs: its port, the sender's pid once known, and stop(), which returns what it recorded. */
function receiverHandle(name, port, stop, onPid = () => {}) {
  return {
    name,
    port,
    pid: 0,
    setPid(pid) {
      this.pid = pid;
      onPid(pid);
    },
    stop,
  };
}

function summarise(s) {
  if (s.unread) return { name: s.name, unread: true };
  const n = s.arrivals.length;
  if (n < 10) return { name: s.name, packets: n, error: 'too few packets' };
  const d = s.arrivals.map((t, i) => t - ((s.ts[i] - s.ts[0]) * 1000) / RATE);
  const mid = median(d);
  const absDev = d.map((x) => Math.abs(x - mid));
  const worst = absDev.indexOf(Math.max(...absDev));
  const dev = [...absDev].sort((a, b) => a - b);
  const first = s.cpu[0];
  const last = s.cpu[s.cpu.length - 1];
  const audioS = first && last ? (last.ts - first.ts) / RATE : 0;
  const cpuPerAudioS = audioS > 1 ? (last.cpu - first.cpu) / audioS : NaN;
  const streamS = (s.ts[n - 1] - s.ts[0]) / RATE;
  return {
    name: s.name,
    packets: n,
    packetsPerS: n / streamS,
    payloadBytes: Math.round(s.bytes / n),
    cpuPer60s: cpuPerAudioS * 60,
    cpuTotal: last?.cpu ?? NaN,
    p50: quantile(dev, 0.5),
    p99: quantile(dev, 0.99),
    max: dev[dev.length - 1],
    /** When the worst packet was due, in seconds of the stream, and whether it came early or late. */
    maxAt: (s.ts[worst] - s.ts[0]) / RATE,
    maxLate: d[worst] > mid,
  };
}

/**
 * A receiver for "play -> first packet": test/bench/stamp-rx.c, which prints the kernel's arrival stamp of each
 * packet (on loopback, its send time) and its RTP timestamp. The same interface as {@link openReceiver}'s.
 */
async function openStampReceiver(name, bin) {
  const rx = spawn(bin, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  rx.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  const exited = new Promise((r) => rx.once('exit', r));
  for (let i = 0; i < 200 && !/^port \d+\n/.test(out); i++) await sleep(10);
  const port = Number(/^port (\d+)\n/.exec(out)?.[1]);
  if (!port) throw new Error(`${bin}: no port (${out.trim()})`);
  return receiverHandle(name, port, async () => {
    rx.kill('SIGTERM');
    await exited;
    const arrivals = [];
    const ts = [];
    let unwrap = 0;
    let last;
    for (const line of out.split('\n').slice(1)) {
      const [at, t] = line.split(' ').map(Number);
      if (!Number.isFinite(at) || !Number.isFinite(t)) continue;
      if (last !== undefined && t < last && last - t > 2 ** 31) unwrap += 2 ** 32;
      last = t;
      arrivals.push(at * 1000);
      ts.push(t + unwrap);
    }
    return { name, arrivals, ts };
  });
}

/** One speakerd on the rtp backend (`rtp` merged into its section), fed `input` by a decoder, not yet playing. */
async function startSpeakerd(variant, input, dir, stream, children) {
  const cfgPath = join(dir, `speakerrc-${variant.name}.json`);
  const socket = join(dir, `run-${variant.name}`, 'decoders.sock');
  writeFileSync(
    cfgPath,
    JSON.stringify({
      socket,
      ...(process.env.BENCH_BUFFER_MS ? { bufferMs: Number(process.env.BENCH_BUFFER_MS) } : {}),
      backend: 'rtp',
      format: { encoding: 's16le', rate: RATE, channels: 2 },
      rtp: { destination: '127.0.0.1', port: stream.port, ...variant.rtp },
    }),
  );
  const sd = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []),
      SPEAKERD,
      '--allow-root',
      '--config',
      cfgPath,
      '--log-level',
      'info',
    ],
    {
      cwd: dir,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  children.push(sd);
  // which sender the rtp backend uses (native thread or JS timers), and its scheduling: its start-up lines say
  let errBuf = '';
  sd.stderr.setEncoding('utf8').on('data', (d) => {
    errBuf += d;
    let i;
    while ((i = errBuf.indexOf('\n')) >= 0) {
      const line = errBuf.slice(0, i);
      errBuf = errBuf.slice(i + 1);
      const m = /rtp sender: ([^"]*)/.exec(line);
      if (m) senderPath.add(m[1]);
      const rt = /"msg":"(real-time scheduling[^"]*)/.exec(line);
      if (rt) schedLines.add(`${variant.name}: ${rt[1]}`);
      else if (/"level":\s*(40|50|60)|\b(WARN|ERROR|FATAL)\b/.test(line)) process.stderr.write(line + '\n');
    }
  });
  stream.setPid(sd.pid);
  let buf = '';
  const events = [];
  const waiters = [];
  sd.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line.startsWith('{')) {
        // e.g. --trace-gc through BENCH_NODE_ARGS
        if (process.env.BENCH_ECHO === '1') process.stderr.write(line + '\n');
        continue;
      }
      const e = JSON.parse(line);
      events.push(e);
      for (const w of [...waiters]) {
        if (!w.pred(e)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const waitFor = (pred) =>
    new Promise((resolve) => {
      const seen = events.find(pred);
      if (seen) return resolve(seen);
      waiters.push({ pred, resolve });
    });
  const exited = new Promise((r) => sd.once('exit', r));
  if (!(await within(Promise.race([waitFor((e) => e.type === 'ready'), exited]), 15000, `${variant.name}: ready`)))
    return undefined;
  if (!events.some((e) => e.type === 'ready')) {
    fail(`${variant.name}: speakerd exited before ready`);
    return undefined;
  }
  if (input) {
    const dec = connect(socket);
    await new Promise((r) => dec.once('connect', r));
    dec.write(JSON.stringify({ id: 'bench', encoding: 's16le', rate: RATE, channels: 2 }) + '\n');
    createReadStream(input).pipe(dec);
  }
  return { name: variant.name, sd, waitFor, socket, send: (o) => sd.stdin.write(JSON.stringify(o) + '\n') };
}

async function oneRun(input, dir, tools, sinks) {
  let streams = {};
  const names = [
    ...SPEAKERDS.map((v) => v.name),
    ...(tools.ffmpeg && MODE === 'senders' ? ['ffmpeg'] : []),
    ...(tools.gst ? ['gstreamer'] : []),
    ...(tools.floor && MODE === 'senders' ? ['c-floor'] : []),
  ];
  let closeSinks = () => {};
  if (sinks === 'unread') ({ streams, close: closeSinks } = await openSinks(names, tools.floor));
  else for (const name of names) streams[name] = await openReceiver(name);
  const children = [];
  if (MODE === 'realtime') startBusyLoops(cpus().length);

  // speakerd: started first (Node's start-up is not part of the streaming window), fed by a decoder
  const sds = [];
  for (const v of SPEAKERDS) {
    const x = await startSpeakerd(v, input, dir, streams[v.name], children);
    if (!x) {
      for (const c of children) c.kill('SIGKILL');
      closeSinks();
      await Promise.all(Object.values(streams).map((s) => s.stop()));
      return [];
    }
    sds.push(x);
  }
  // speakerd is a daemon, started once and long before it plays: its start-up (module loading, JIT, and V8's
  // one-time heap reduction some seconds later) stays out of the window, as ffmpeg's and GStreamer's do
  await sleep(SETTLE_MS);
  const threads0 = sds.map((x) => threadsOf(x.sd.pid));
  const audio0 = performance.now();

  // the three start together
  for (const x of sds) x.sd.stdin.write(JSON.stringify({ type: 'play', id: 'bench' }) + '\n');
  if (tools.ffmpeg && streams.ffmpeg) {
    const ff = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-re',
        '-f',
        's16le',
        '-ar',
        String(RATE),
        '-ac',
        '2',
        '-i',
        input,
        '-acodec',
        'pcm_s16be',
        '-f',
        'rtp',
        `rtp://127.0.0.1:${streams.ffmpeg.port}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(ff);
    streams.ffmpeg.setPid(ff.pid);
  }
  if (tools.gst) {
    const g = spawn(
      'gst-launch-1.0',
      [
        '-q',
        'filesrc',
        `location=${input}`,
        '!',
        'rawaudioparse',
        'format=pcm',
        'pcm-format=s16le',
        `sample-rate=${RATE}`,
        'num-channels=2',
        '!',
        'audioconvert',
        '!',
        'rtpL16pay',
        'pt=10',
        '!',
        'udpsink',
        'host=127.0.0.1',
        `port=${streams.gstreamer.port}`,
        'sync=true',
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(g);
    streams.gstreamer.setPid(g.pid);
  }
  if (tools.floor && streams['c-floor']) {
    const c = spawn(tools.floor, [String(streams['c-floor'].port), input], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(c);
    streams['c-floor'].setPid(c.pid);
  }
  const sdProcs = sds.map((x) => x.sd);
  const exits = children.filter((c) => !sdProcs.includes(c)).map((c) => new Promise((r) => c.on('exit', r)));
  // unread sinks: every sender's CPU over the middle of the stream (its start-up and its end left out), sampled
  // here, as nobody receives the packets
  const mid = { from: Math.min(2, SECONDS / 4), to: SECONDS - Math.min(1, SECONDS / 4) };
  const cpuWindow =
    sinks === 'unread'
      ? (async () => {
          const pids = Object.values(streams).map((st) => [st.name, st.pid]);
          await sleep(mid.from * 1000);
          const t0 = performance.now();
          const c0 = Object.fromEntries(pids.map(([n, pid]) => [n, cpuOf(pid)]));
          const th0 = sds.map((x) => threadsOf(x.sd.pid));
          await sleep((mid.to - mid.from) * 1000);
          const t1 = performance.now();
          const c1 = Object.fromEntries(pids.map(([n, pid]) => [n, cpuOf(pid)]));
          const th1 = sds.map((x) => threadsOf(x.sd.pid));
          return { s: (t1 - t0) / 1000, c0, c1, th0, th1 };
        })()
      : undefined;
  await within(
    Promise.all(sds.map((x) => x.waitFor((e) => e.type === 'finished' && e.id === 'bench'))),
    SECONDS * 2000 + 30000,
    `${sinks} run: speakerd's "finished"`,
  );
  await sleep(1500); // the last second plays out
  const win = await cpuWindow;
  const threads1 = sds.map((x) => threadsOf(x.sd.pid));
  const audioS = (performance.now() - audio0) / 1000;
  // the receivers stop (each takes one last CPU sample of its sender) before the senders exit
  const recorded = await Promise.all(Object.values(streams).map((s) => s.stop()));
  killBusyLoops();
  for (const x of sds) x.sd.stdin.end();
  await Promise.race([
    Promise.all([...exits, ...sdProcs.map((sd) => new Promise((r) => sd.on('exit', r)))]),
    sleep(15000),
  ]);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  closeSinks();
  for (const c of children)
    if (c !== undefined && !sdProcs.includes(c) && c.exitCode !== 0 && c.exitCode !== null)
      fail(`${sinks} run: ${c.spawnargs[0]} exited with ${c.exitCode}`);
  const res = recorded.map(summarise);
  for (const r of res) {
    r.sinks = sinks;
    if (r.error) fail(`${sinks} run: ${r.name}: ${r.error}`);
    if (!win) continue;
    const a = win.c0[r.name];
    const b = win.c1[r.name];
    if (a === undefined || b === undefined) fail(`unread run: ${r.name}: no CPU figure (it was not running)`);
    else r.cpuPer60s = ((b - a) * 60) / win.s;
  }
  sds.forEach((x, i) => {
    // per thread: over the same window as the process's CPU (unread: the middle of the stream)
    const t0 = win ? win.th0[i] : threads0[i];
    const t1 = win ? win.th1[i] : threads1[i];
    const s = win ? win.s : audioS;
    const row = res.find((r) => r.name === x.name);
    if (t0 && t1 && row) {
      row.threads = Object.fromEntries(
        Object.keys(t1)
          .filter((k) => k !== WAKEUPS)
          .map((k) => [k, ((t1[k] - (t0[k] ?? 0)) * 60) / s]),
      );
      row.wakeupsPerS = (t1[WAKEUPS] - t0[WAKEUPS]) / s;
    } else if (row) fail(`${sinks} run: ${x.name}: no per-thread figures`);
  });
  return res;
}

/**
 * "play -> first packet": a speakerd on the native sender and one on the JS sender (rtp.native false), each with
 * its receiver thread; FIRST_PLAYS times, in turn, a 2 s track is buffered whole (status: eof), then played, and
 * the stream runs dry (finished + 1.5 s) so that every play is a cold start. Per play: the time from writing
 * `play` to speakerd's stdin to the first packet's arrival, and how late the first packets are against their RTP
 * timestamps compared with the rest of that stream (deviation around the median of the rest, and its p99).
 */
async function firstPackets(dir, input, stampRx) {
  const variants = [
    { name: 'fp-native', rtp: {} },
    { name: 'fp-js', rtp: { native: false } },
  ];
  const rx = {};
  for (const v of variants)
    rx[v.name] = stampRx ? await openStampReceiver(v.name, stampRx) : await openReceiver(v.name);
  const children = [];
  const sds = [];
  for (const v of variants) {
    const x = await startSpeakerd(v, undefined, dir, rx[v.name], children);
    if (x) sds.push(x);
  }
  const plays = Object.fromEntries(variants.map((v) => [v.name, []]));
  const trackS = Math.min(2, SECONDS);
  const pcm = readFileSync(input).subarray(0, trackS * RATE * 4);
  if (sds.length === variants.length) {
    await sleep(SETTLE_MS);
    let seq = 0;
    for (let i = 0; i < FIRST_PLAYS; i++) {
      for (const x of sds) {
        const id = `fp${i}`;
        const dec = connect(x.socket);
        await new Promise((r) => dec.once('connect', r));
        dec.write(JSON.stringify({ id, encoding: 's16le', rate: RATE, channels: 2 }) + '\n');
        dec.end(pcm);
        const buffered = (async () => {
          for (;;) {
            await sleep(50);
            const s = ++seq;
            x.send({ type: 'status', seq: s });
            const st = await x.waitFor((e) => e.type === 'status' && e.seq === s);
            if (st.tracks?.find((t) => t.id === id)?.eof) return true;
          }
        })();
        if (!(await within(buffered, 15000, `${x.name}: track ${id} buffered`))) break;
        await sleep(200);
        const at = performance.timeOrigin + performance.now();
        x.send({ type: 'play', id });
        plays[x.name].push(at);
        if (
          !(await within(
            x.waitFor((e) => e.type === 'finished' && e.id === id),
            trackS * 1000 + 15000,
            `${x.name}: ${id} finished`,
          ))
        )
          break;
        await sleep(1500); // dry: the next play starts a new talkspurt
      }
    }
  }
  const recorded = await Promise.all(Object.values(rx).map((s) => s.stop()));
  for (const x of sds) x.sd.stdin.end();
  await Promise.race([Promise.all(sds.map((x) => new Promise((r) => x.sd.once('exit', r)))), sleep(10000)]);
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  const out = {};
  for (const r of recorded) {
    const times = plays[r.name] ?? [];
    const rows = [];
    times.forEach((t, i) => {
      const end = times[i + 1] ?? Infinity;
      const idx = [];
      for (let j = 0; j < r.arrivals.length; j++) if (r.arrivals[j] >= t && r.arrivals[j] < end) idx.push(j);
      if (idx.length < 20) {
        fail(`${r.name}: play ${i}: ${idx.length} packets`);
        return;
      }
      const j0 = idx[0];
      const d = idx.map((j) => r.arrivals[j] - ((r.ts[j] - r.ts[j0]) * 1000) / RATE);
      const rest = d.slice(3);
      const m = median(rest);
      const p99 = quantile(
        rest.map((x) => Math.abs(x - m)).sort((a, b) => a - b),
        0.99,
      );
      const firstLate = d.slice(0, 3).map((x) => x - m);
      const restMax = Math.max(...rest.map((x) => Math.abs(x - m)));
      rows.push({ ms: r.arrivals[j0] - t, late: Math.max(...firstLate), firstLate, p99, restMax });
    });
    out[r.name.replace('fp-', '')] = rows;
  }
  out.stamped = Boolean(stampRx);
  return out;
}

function fmt(x, digits = 2) {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

async function main() {
  const tools = {
    ffmpeg: have('ffmpeg', ['-version']),
    gst: have('gst-launch-1.0', ['--version']),
  };
  if (!tools.ffmpeg) console.log('ffmpeg is not usable here: its column is left out');
  if (!tools.gst) console.log('gst-launch-1.0 is not usable here: its column is left out');
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-bench-'));
  try {
    // the floor: a minimal C sender (one clock_nanosleep and one send() per packet), for reference only
    const floorBin = join(dir, 'floor');
    const cc = spawnSync('cc', ['-O2', '-o', floorBin, join(REPO, 'test/bench/floor.c')], { encoding: 'utf8' });
    if (cc.status === 0) tools.floor = floorBin;
    else console.log(`no C compiler (cc): the c-floor reference is left out ${cc.error?.message ?? cc.stderr}`);
    // the kernel-stamped receiver of "play -> first packet" (without it: the receiver threads' own clocks)
    const stampBin = join(dir, 'stamp-rx');
    const cc2 = spawnSync('cc', ['-O2', '-o', stampBin, join(REPO, 'test/bench/stamp-rx.c')], { encoding: 'utf8' });
    if (cc2.status === 0) tools.stampRx = stampBin;
    else console.log(`stamp-rx.c did not build: play -> first packet uses receiver threads' clocks ${cc2.stderr}`);
    const input = join(dir, 'in.raw');
    const frames = SECONDS * RATE;
    const pcm = Buffer.alloc(frames * 4);
    for (let i = 0; i < frames; i++) {
      const v = Math.round(12000 * Math.sin((2 * Math.PI * 440 * i) / RATE));
      pcm.writeInt16LE(v, i * 4);
      pcm.writeInt16LE(v, i * 4 + 2);
    }
    writeFileSync(input, pcm);
    // receivers and unread sinks in turn within each run (the realtime mode needs the receivers' timestamps)
    const modes = MODE === 'realtime' ? ['receivers'] : SINKS === 'both' ? ['receivers', 'unread'] : [SINKS];
    if (modes.includes('unread') && !tools.floor) fail('unread sinks need floor.c built (cc): left out');
    const runsBy = Object.fromEntries(modes.map((m) => [m, []]));
    for (let r = 0; r < RUNS; r++) {
      for (const sinks of modes) {
        if (sinks === 'unread' && !tools.floor) continue;
        console.log(`run ${r + 1}/${RUNS} (${sinks}): ${SECONDS} s of audio…`);
        const res = await oneRun(input, dir, tools, sinks);
        if (res.length === 0) fail(`run ${r + 1} (${sinks}): speakerd did not start`);
        for (const x of res)
          console.log(
            `  ${x.name.padEnd(10)} ${x.unread ? '(unread)' : `packets ${x.packets}`}  cpu/60s ${fmt(x.cpuPer60s)} s  dev p50 ${fmt(x.p50)} p99 ${fmt(x.p99)} max ${fmt(x.max)} ms`,
          );
        for (const x of res.filter((y) => y.threads))
          console.log(
            `  ${x.name} per thread (s per 60 s): ${Object.entries(x.threads)
              .map(([k, v]) => `${k} ${fmt(v, 3)}`)
              .join(', ')}; main-thread wake-ups ${fmt(x.wakeupsPerS, 1)}/s`,
          );
        if (res.length) runsBy[sinks].push(res);
      }
    }
    const summaries = Object.fromEntries(
      modes.filter((m) => runsBy[m].length).map((m) => [m, summariseRuns(runsBy[m])]),
    );
    if (MODE === 'realtime') {
      if (!summaries.receivers) throw new Error('no run completed');
      return writeRealtime(runsBy.receivers, summaries.receivers.table, tools);
    }
    const first = FIRST_PLAYS > 0 ? await firstPackets(dir, input, tools.stampRx) : undefined;
    const ver = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim();
    const command = `BENCH_RUNS=${RUNS} BENCH_SECONDS=${SECONDS} BENCH_SINKS=${SINKS} node test/bench/run.js`;
    const lines = [
      '# Benchmarks',
      '',
      'RTP senders side by side (`npm run bench`, i.e. `test/bench/run.js`): ffmpeg',
      '(`-re … -acodec pcm_s16be -f rtp`), GStreamer (`rawaudioparse ! audioconvert ! rtpL16pay pt=10 ! udpsink sync=true`),',
      'the C floor (`test/bench/floor.c`) and speakerd (`backend: "rtp"`, defaults, fed by a decoder) stream the same',
      '44.1 kHz stereo audio at the same time, each to its own 127.0.0.1 port. CPU is utime + stime from',
      '`/proc/<pid>/stat`, scaled to 60 s of audio (start-up is left out for all: speakerd, a daemon, is started',
      '`BENCH_SETTLE_MS` before the others begin). Each run streams twice, in turn:',
      '',
      '- **with receivers**: a receiver per sender, each on its own thread, reads and timestamps every packet;',
      '  deviation is |arrival − RTP-timestamp time| around its median, per packet. On loopback a sender pays for',
      "  waking its receiver (the kernel runs the receiver's wake-up in the sender's send()), so this charges each",
      '  sender a receiver-dependent share;',
      '- **unread sinks**: each sender sends to a UDP socket bound on 127.0.0.1 that nothing reads (`floor --sinks`):',
      '  no receiver wake-up is charged to anyone; CPU only, over the middle of the stream (the first 2 s and the',
      '  last second left out).',
      '',
      'Each figure is the median of the runs.',
      '',
      `- Date: ${new Date().toISOString()}`,
      `- Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}; load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')} at the end`,
      `- Node ${process.version}; ${tools.ffmpeg ? ver('ffmpeg', ['-version']) : 'no ffmpeg'}; ${tools.gst ? ver('gst-launch-1.0', ['--version']) : 'no GStreamer'}`,
      `- ${RUNS} run(s) of ${SECONDS} s (BENCH_RUNS, BENCH_SECONDS); command: \`${command}\``,
      `- speakerd's sender: ${senderPath.size ? [...senderPath].join('; ') : 'unknown (no "rtp sender" log line)'}`,
      `- speakerd's scheduling (rtp.realtime "auto"): ${schedLines.size ? [...schedLines].map((l) => l.replace(/^speakerd: /, '')).join('; ') : 'normal (no real-time scheduling line)'}`,
      '',
      ...Object.entries(summaries).flatMap(([m, sm]) => sinksSection(m, sm)),
      ...(first ? firstPacketSection(first) : []),
      '`c-floor` (`test/bench/floor.c`) is the least a sender that paces every packet on its own wake-up can cost',
      'here: C, one `clock_nanosleep(TIMER_ABSTIME)` and one `send()` per packet, no RTCP.',
      '',
      "Targets (issues 4, 12): CPU below ffmpeg's and GStreamer's and ≤ 1.2× the C floor, with receivers and with",
      "unread sinks; deviation p99 ≤ 2 ms and no worse than GStreamer's, max ≤ 5 ms; the main thread woken at most",
      'once a second; play → first packet ≤ 20 ms on the native sender. Figures from a busy machine are not',
      'comparable: run it on a quiet one.',
      '',
    ];
    // the real-time section (BENCH_MODE=realtime) and the start-up one are kept as they are
    const text = lines.join('\n') + keptSections(readOut());
    console.log('\n' + text);
    if (process.env.BENCH_WRITE !== '0') {
      writeFileSync(OUT, text);
      console.log(`written to ${OUT}`);
    }
  } finally {
    killBusyLoops();
    rmSync(dir, { recursive: true, force: true });
  }
}

function readOut() {
  try {
    return readFileSync(OUT, 'utf8');
  } catch {
    return '';
  }
}

/** The real-time section of a BENCH_OUT text (with a blank line before it), or ''. */
/** The sections this run does not write (`<!-- bench:NAME -->` … `<!-- /bench:NAME -->`: real-time, start-up), kept. */
function keptSections(text) {
  const out = [];
  for (const m of text.matchAll(/<!-- bench:([\w-]+) -->[\s\S]*?<!-- \/bench:\1 -->/g)) out.push('\n' + m[0] + '\n');
  return out.join('');
}

/** BENCH_MODE=realtime: the section comparing rtp.realtime true/false (and GStreamer) under busy loops. */
function writeRealtime(runs, table, tools) {
  const by = Object.fromEntries(table.map((t) => [t.name, t]));
  const perRun = (name, k) => runs.map((r) => fmt(r.find((x) => x.name === name)?.[k])).join(' / ');
  const ver = (cmd, args) => (spawnSync(cmd, args, { encoding: 'utf8' }).stdout ?? '').split('\n')[0].trim();
  const rows = ['speakerd-rt', 'speakerd-nonrt', 'gstreamer'].filter((n) => by[n]);
  const section = [
    RT_BEGIN,
    '## Real-time threads under load (`rtp.realtime`)',
    '',
    '`BENCH_MODE=realtime node test/bench/run.js` (after `npm run build`): one busy loop per CPU',
    "(`sh -c 'while :; do :; done'`, killed at the end of each run and on exit) competes with two speakerds on the",
    'native sender, one with `rtp.realtime: true` (its sender thread SCHED_FIFO priority 20, 1 ns timer slack; the',
    'bench runs as root) and one with `rtp.realtime: false`, and with GStreamer (same pipeline as above, normal',
    'priority), all streaming at the same time, each to its own 127.0.0.1 port. The receiver threads run',
    `SCHED_FIFO priority ${RECEIVER_PRIORITY} (chrt -f -p), above every sender, so that the busy loops delay none of`,
    'their wake-ups and an arrival time is the send time. Deviation as above; medians of the runs, and each',
    "run's figure. The GStreamer column is the same pipeline at normal priority.",
    '',
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${cpus()[0]?.model ?? '?'}, ${cpus().length} CPUs (${cpus().length} busy loops), Linux ${release()}`,
    `- Node ${process.version}; ${tools.gst ? ver('gst-launch-1.0', ['--version']) : 'no GStreamer'}`,
    `- ${RUNS} run(s) of ${SECONDS} s (BENCH_RUNS, BENCH_SECONDS); command: \`BENCH_MODE=realtime BENCH_RUNS=${RUNS} BENCH_SECONDS=${SECONDS} node test/bench/run.js\``,
    ...[...schedLines].map((l) => `- ${l}`),
    '',
    '| sender | deviation p50 ms | p99 ms | max ms | p99 per run | max per run | CPU s per 60 s audio |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((n) => {
      const t = by[n];
      return `| ${n} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${fmt(t.max)} | ${perRun(n, 'p99')} | ${perRun(n, 'max')} | ${fmt(t.cpuPer60s, 3)} |`;
    }),
    '',
    RT_END,
  ].join('\n');
  console.log('\n' + section);
  if (process.env.BENCH_WRITE !== '0') {
    const old = readOut();
    const a = old.indexOf(RT_BEGIN);
    const b = old.indexOf(RT_END);
    const text =
      a >= 0 && b > a
        ? old.slice(0, a) + section + old.slice(b + RT_END.length)
        : old.replace(/\n*$/, '\n\n') + section + '\n';
    writeFileSync(OUT, text);
    console.log(`written to ${OUT}`);
  }
}

/** Medians over the runs of one sinks mode, and speakerd's ratios within each run. */
function summariseRuns(runs) {
  const names = runs[0].map((x) => x.name);
  const table = names.map((name) => {
    const rows = runs.map((r) => r.find((x) => x.name === name)).filter(Boolean);
    const m = (k) => median(rows.map((x) => x[k]).filter(Number.isFinite));
    return {
      name,
      packetsPerS: m('packetsPerS'),
      payloadBytes: m('payloadBytes'),
      cpuPer60s: m('cpuPer60s'),
      p50: m('p50'),
      p99: m('p99'),
      max: m('max'),
      wakeupsPerS: m('wakeupsPerS'),
    };
  });
  // the senders ran side by side, so a ratio within a run shares that run's conditions
  const runRatio = (other) =>
    runs
      .map((r) => r.find((x) => x.name === 'speakerd')?.cpuPer60s / r.find((x) => x.name === other)?.cpuPer60s)
      .filter(Number.isFinite);
  const threadNames = [...new Set(runs.flatMap((r) => Object.keys(r[0].threads ?? {})))];
  const threadMedian = (k) => median(runs.map((r) => r[0].threads?.[k]).filter(Number.isFinite));
  return { table, by: Object.fromEntries(table.map((t) => [t.name, t])), runRatio, threadNames, threadMedian };
}

function sinksSection(mode, { table, by, runRatio, threadNames, threadMedian }) {
  const ratio = (a, b) => (b && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : 'n/a');
  const unread = mode === 'unread';
  return [
    `### ${unread ? 'Unread sinks' : 'With receivers'}`,
    '',
    unread
      ? '| sender | CPU s per 60 s audio |'
      : '| sender | packets/s | payload bytes | CPU s per 60 s audio | deviation p50 ms | p99 ms | max ms |',
    unread ? '|---|---:|' : '|---|---:|---:|---:|---:|---:|---:|',
    ...table.map((t) =>
      unread
        ? `| ${t.name} | ${fmt(t.cpuPer60s, 3)} |`
        : `| ${t.name} | ${fmt(t.packetsPerS, 1)} | ${fmt(t.payloadBytes, 0)} | ${fmt(t.cpuPer60s, 3)} | ${fmt(t.p50)} | ${fmt(t.p99)} | ${fmt(t.max)} |`,
    ),
    '',
    'speakerd relative to the others (lower is better); CPU also as the ratio within each run (median, range):',
    '',
    unread
      ? '| vs | CPU (medians) | CPU per run: median | range |'
      : '| vs | CPU (medians) | CPU per run: median | range | deviation p99 | max |',
    unread ? '|---|---:|---:|---:|' : '|---|---:|---:|---:|---:|---:|',
    ...['ffmpeg', 'gstreamer', 'c-floor']
      .filter((n) => by[n] && by.speakerd)
      .map((n) => {
        const rr = runRatio(n);
        const head = `| ${n} | ${ratio(by.speakerd.cpuPer60s, by[n].cpuPer60s)} | ${fmt(median(rr))}× | ${fmt(Math.min(...rr))}–${fmt(Math.max(...rr))}× |`;
        return unread ? head : `${head} ${ratio(by.speakerd.p99, by[n].p99)} | ${ratio(by.speakerd.max, by[n].max)} |`;
      }),
    '',
    ...(threadNames.length
      ? [
          `speakerd per thread, CPU s per 60 s of audio (median of the runs; ${SETTLE_MS} ms after start-up), and its`,
          `main thread's wake-ups (voluntary context switches): ${fmt(by.speakerd?.wakeupsPerS, 1)} per second.`,
          ...(process.env.BENCH_BUFFER_MS
            ? [`The whole input was buffered before the window (BENCH_BUFFER_MS=${process.env.BENCH_BUFFER_MS}).`]
            : [
                "These include the decoder's: it is read while the track plays (again once a second of it has",
                'played), and input that arrives in more than one piece wakes the main thread again;',
                "`BENCH_BUFFER_MS=120000` buffers the whole input before the window and leaves the sender's own.",
              ]),
          '',
          '| thread | CPU s per 60 s |',
          '|---|---:|',
          ...threadNames.map((k) => `| ${k} | ${fmt(threadMedian(k), 3)} |`),
          '',
        ]
      : []),
  ];
}

function firstPacketSection(first) {
  const row = (name, rows) => {
    if (!rows?.length) return `| ${name} | 0 | n/a | n/a | n/a |`;
    const ms = rows.map((r) => r.ms).sort((a, b) => a - b);
    const late = rows.flatMap((r) => r.firstLate);
    return `| ${name} | ${rows.length} | ${fmt(median(ms), 1)} (${fmt(ms[0], 1)}–${fmt(ms[ms.length - 1], 1)}) | ${fmt(median(late))} / ${fmt(Math.max(...late))} | ${fmt(median(rows.map((r) => r.p99)))} / ${fmt(Math.max(...rows.map((r) => r.restMax)))} |`;
  };
  return [
    '### play → first packet',
    '',
    `A 2 s track buffered whole (status \`eof\`), then \`play\`, ${FIRST_PLAYS} times per sender (BENCH_FIRST_PLAYS),`,
    "the stream run dry in between so that every play is a cold start; from writing `play` to speakerd's stdin to",
    ...(first.stamped
      ? [
          "the first packet's arrival on 127.0.0.1 as the kernel stamped it (SO_TIMESTAMPNS, `test/bench/stamp-rx.c`:",
          "on loopback, the send time; a receiver thread's own wake-up after the dry spell is not counted, as it was",
          'when a Node receiver thread read its clock after each packet: up to 1.19 ms on the first packets).',
        ]
      : ["the first packet's arrival at a receiver thread (its clock: stamp-rx.c did not build)."]),
    "Late: the first 3 packets' deviation from the rest's median (positive: later than their RTP timestamps say),",
    "over all plays, beside the rest of each stream's deviation (p99: the median of the plays'; max: over all). The",
    "max of a few first packets meets the rest's tail now and then (a host's hiccup hits any packet): compare the",
    'medians, and the max with the max.',
    '',
    '| sender | plays | ms, median (range) | first 3 packets late, median / max ms | the rest, p99 / max ms |',
    '|---|---:|---:|---:|---:|',
    row('native thread', first.native),
    row('JS timers (`rtp.native: false`)', first.js),
    '',
  ];
}

main()
  .then(() => {
    if (failures.length) {
      console.log(`${failures.length} failure(s):\n${failures.map((f) => `- ${f}`).join('\n')}`);
      process.exitCode = 1;
    }
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
