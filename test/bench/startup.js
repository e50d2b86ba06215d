#!/usr/bin/env node
// Start-up and footprint beside Node's own floor, in turn in one run, medians (issue 12):
//
//   node test/bench/startup.js
//   BENCH_RUNS (default 7)   pairs per figure, after one untimed warm-up of each command
//   BENCH_OUT (default docs/benchmarks.md)   BENCH_WRITE=0   print only (1, the default: rewrite the section
//                                                            between the <!-- bench:startup-table --> markers)
//   BENCH_SPEAKERD (default packages/host/bin/speakerd.js)   another build's binary, for a before/after
//   BENCH_SETTLE_S (default 12)   when the settled RSS is read, in s after `ready` (after spawn for the floor)
//
// Figures, each beside Node's floor measured in the same loop:
// - `speakerd --version`, `--help`: wall time from spawn to exit, and peak RSS (VmHWM in /proc/<pid>/status,
//   polled every millisecond until the process is gone: a peak in its last millisecond can be missed). Floor:
//   `node -e 0`, the same way.
// - spawn -> `ready`: from spawn() to the `ready` line on stdout, the command backend (`cat > /dev/null`) and the
//   rtp backend (to 127.0.0.1, a port nothing listens on). Floor: `node -e 0`, spawn to exit.
// - RSS idle: VmRSS (RssAnon, RssFile) of the daemon 2 s after `ready`. Floor: `node -e 'setInterval(() => {}, 1e3)'`
//   2 s after spawn. And settled, BENCH_SETTLE_S after (the rtp daemon, and the floor): V8's memory reducer
//   shrinks the heap some seconds after start-up's garbage is gone, which a daemon that runs for months lives with.
// - RSS with 64 tracks buffered: 64 decoders each send 1 s of s16le stereo 44.1 kHz (176,400 bytes: less than a
//   track's buffer, so all of it is held) and stay open; RSS once the host holds all of it (the sum
//   of the tracks' bufferedSeconds in `status`), minus the audio itself (64 x 176,400 bytes = 10.8 MiB).
//
// CI smoke run (checks the harness, not a time; exits non-zero when something failed):
//   BENCH_RUNS=1 BENCH_WRITE=0 BENCH_SETTLE_S=3 node test/bench/startup.js
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 7));
const WRITE = process.env.BENCH_WRITE !== '0';
const OUT = process.env.BENCH_OUT ?? join(REPO, 'docs/benchmarks.md');
const BIN = resolve(process.env.BENCH_SPEAKERD ?? join(REPO, 'packages/host/bin/speakerd.js'));
const BEGIN = '<!-- bench:startup-table -->';
const END = '<!-- /bench:startup-table -->';
const SETTLE_S = Math.max(2.5, Number(process.env.BENCH_SETTLE_S ?? 12));
const TRACKS = 64;
const TRACK_BYTES = 44100 * 4;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const failures = [];
function fail(msg) {
  failures.push(msg);
  console.log(`FAILED: ${msg}`);
}
if (!existsSync(BIN)) {
  console.error(`${BIN} is missing: run npm run build first`);
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'speakerd-bench-startup-'));
const children = new Set();
function cleanUp() {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanUp);
for (const s of ['SIGINT', 'SIGTERM'])
  process.on(s, () => {
    cleanUp();
    process.exit(130);
  });

function config(name, backend) {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ socket: join(dir, `${name}.sock`), ...backend }));
  return file;
}
const CONFIGS = {
  command: config('command', { backend: 'command', command: { run: 'cat > /dev/null' } }),
  rtp: config('rtp', { backend: 'rtp', rtp: { destination: '127.0.0.1', port: 5004 } }),
};

/** VmRSS, RssAnon, RssFile and VmHWM of a live process in MiB, or undefined once it is gone. */
function memOf(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1]) / 1024;
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

function start(args, stdio = ['ignore', 'pipe', 'pipe']) {
  const t0 = performance.now();
  const p = spawn(process.execPath, args, { stdio });
  children.add(p);
  const exited = new Promise((r) =>
    p.once('exit', (code, signal) => {
      children.delete(p);
      r({ code, signal, ms: performance.now() - t0 });
    }),
  );
  return { p, t0, exited };
}

/** Wall time spawn -> exit, and the peak RSS (VmHWM, polled until the process is gone). */
async function oneShot(args) {
  const { p, exited } = start(args);
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  p.stderr.resume();
  let hwm = 0;
  let done = false;
  exited.then(() => (done = true));
  while (!done) {
    const m = memOf(p.pid);
    if (m && m.hwm > hwm) hwm = m.hwm;
    await sleep(1);
  }
  const r = await exited;
  if (r.code !== 0) fail(`node ${args.join(' ')}: exit ${r.code ?? r.signal}`);
  return { ms: r.ms, hwm, out };
}

/** A speakerd daemon: spawn -> `ready` in ms, and a way to talk to it. */
async function daemon(backend) {
  const { p, t0, exited } = start([BIN, '--allow-root', '--config', CONFIGS[backend]], ['pipe', 'pipe', 'pipe']);
  let err = '';
  p.stderr.setEncoding('utf8').on('data', (d) => (err = (err + d).slice(-4000)));
  const events = [];
  const waiters = [];
  let buf = '';
  p.stdout.setEncoding('utf8').on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      e.at = performance.now();
      events.push(e);
      for (const w of [...waiters]) {
        if (!w.pred(e)) continue;
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  const waitFor = (pred, ms, what) =>
    Promise.race([
      new Promise((res) => {
        const seen = events.find(pred);
        if (seen) res(seen);
        else waiters.push({ pred, resolve: res });
      }),
      exited.then((r) =>
        Promise.reject(new Error(`${backend}: exited (${r.code ?? r.signal}) before ${what}: ${err}`)),
      ),
      sleep(ms).then(() => Promise.reject(new Error(`${backend}: no ${what} after ${ms} ms`))),
    ]);
  const ready = await waitFor((e) => e.type === 'ready', 15000, 'ready');
  const send = (o) => p.stdin.write(JSON.stringify(o) + '\n');
  const stop = async () => {
    p.stdin.end();
    const r = await Promise.race([exited, sleep(10000).then(() => undefined)]);
    if (!r) {
      p.kill('SIGKILL');
      fail(`${backend}: did not exit within 10 s of EOF on stdin`);
    } else if (r.code !== 0) fail(`${backend}: exit ${r.code ?? r.signal} after EOF: ${err}`);
  };
  return { p, ms: ready.at - t0, ready, send, waitFor, stop };
}

async function idleFloor() {
  const { p, exited } = start(['-e', 'setInterval(() => {}, 1e3)']);
  await sleep(2000);
  const m = memOf(p.pid);
  await sleep(SETTLE_S * 1000 - 2000);
  const settled = memOf(p.pid);
  p.kill();
  await exited;
  return { ...m, settled };
}

async function buffered(d) {
  const socks = [];
  for (let i = 0; i < TRACKS; i++) {
    const s = connect(d.ready.socket);
    await new Promise((res, rej) => s.once('connect', res).once('error', rej));
    s.on('error', () => {});
    s.write(JSON.stringify({ id: `t${i}`, encoding: 's16le', rate: 44100, channels: 2 }) + '\n');
    // a quiet ramp, not zeros (nothing may be shared or compressed away)
    const pcm = Buffer.alloc(TRACK_BYTES);
    for (let j = 0; j < TRACK_BYTES / 2; j++) pcm.writeInt16LE(((j * 7 + i) % 2000) - 1000, j * 2);
    s.write(pcm);
    socks.push(s);
  }
  const want = TRACKS * 0.99;
  let got = 0;
  for (let tries = 0; tries < 100; tries++) {
    d.send({ type: 'status', seq: tries });
    const st = await d.waitFor((e) => e.type === 'status' && e.seq === tries, 5000, 'status');
    got = (st.tracks ?? []).reduce((sum, t) => sum + Number(t.bufferedSeconds ?? 0), 0);
    if (got >= want) break;
    await sleep(100);
  }
  if (got < want) fail(`64 tracks: status says ${got} s buffered, not ${TRACKS} s`);
  await sleep(500);
  const m = memOf(d.p.pid);
  for (const s of socks) s.destroy();
  return { ...m, seconds: got };
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const col = {};
const push = (k, v) => (col[k] ??= []).push(v);

// one untimed warm-up of each (page cache, the JIT's code cache is not kept by Node 20 anyway)
await oneShot(['-e', '0']);
await oneShot([BIN, '--version']);
try {
  await (await daemon('command')).stop();
} catch (e) {
  fail(e.message);
}

for (let run = 0; run < RUNS; run++) {
  try {
    const floor = await oneShot(['-e', '0']);
    push('floor.ms', floor.ms);
    push('floor.hwm', floor.hwm);
    const v = await oneShot([BIN, '--version']);
    if (!/^\d+\.\d+\.\d+/.test(v.out.trim())) fail(`--version printed ${JSON.stringify(v.out)}`);
    push('version.ms', v.ms);
    push('version.hwm', v.hwm);
    const h = await oneShot([BIN, '--help']);
    if (!/Usage/i.test(h.out)) fail('--help printed no usage');
    push('help.ms', h.ms);
    push('help.hwm', h.hwm);
    for (const backend of ['command', 'rtp']) {
      const d = await daemon(backend);
      push(`${backend}.ready`, d.ms);
      await sleep(2000);
      const m = memOf(d.p.pid);
      push(`${backend}.rss`, m?.rss);
      push(`${backend}.anon`, m?.anon);
      push(`${backend}.file`, m?.file);
      if (backend === 'rtp') {
        await sleep(SETTLE_S * 1000 - 2000);
        const settled = memOf(d.p.pid);
        push('settled.rss', settled?.rss);
        push('settled.anon', settled?.anon);
        push('settled.file', settled?.file);
      }
      if (backend === 'command') {
        const b = await buffered(d);
        push('tracks.rss', b.rss);
        push('tracks.anon', b.anon);
      }
      await d.stop();
    }
    const idle = await idleFloor();
    push('idle.rss', idle?.rss);
    push('idle.anon', idle?.anon);
    push('idle.file', idle?.file);
    push('idleSettled.rss', idle?.settled?.rss);
    push('idleSettled.anon', idle?.settled?.anon);
    push('idleSettled.file', idle?.settled?.file);
  } catch (e) {
    fail(e.message);
  }
  process.stdout.write(`run ${run + 1}/${RUNS} done\n`);
}

const m = (k) => median(col[k] ?? []);
const ms = (k) => `${m(k).toFixed(0)} ms`;
const mib = (k) => `${m(k).toFixed(1)} MiB`;
const ratio = (a, b) => `${(m(a) / m(b)).toFixed(2)}×`;
const audio = (TRACKS * TRACK_BYTES) / 2 ** 20;
const over = (k) => `+${(m(k) - m('idle.rss')).toFixed(1)} MiB`;
const rows = [
  "| figure | speakerd | Node's floor | ratio / excess | target |",
  '|---|---|---|---|---|',
  `| \`--version\` wall, peak RSS | ${ms('version.ms')}, ${mib('version.hwm')} | \`node -e 0\`: ${ms('floor.ms')}, ${mib('floor.hwm')} | ${ratio('version.ms', 'floor.ms')} | ≤ 1.5× |`,
  `| \`--help\` wall, peak RSS | ${ms('help.ms')}, ${mib('help.hwm')} | (same) | ${ratio('help.ms', 'floor.ms')} | ≤ 1.5× |`,
  `| spawn → \`ready\`, command backend | ${ms('command.ready')} | \`node -e 0\`: ${ms('floor.ms')} | ${ratio('command.ready', 'floor.ms')} | ≤ 2× |`,
  `| spawn → \`ready\`, rtp backend | ${ms('rtp.ready')} | (same) | ${ratio('rtp.ready', 'floor.ms')} | ≤ 2× |`,
  `| RSS idle, command backend (anon / file) | ${mib('command.rss')} (${m('command.anon').toFixed(1)} / ${m('command.file').toFixed(1)}) | idle \`node\`: ${mib('idle.rss')} (${m('idle.anon').toFixed(1)} / ${m('idle.file').toFixed(1)}) | ${over('command.rss')} | ≤ +12 MiB |`,
  `| RSS idle, rtp backend (anon / file) | ${mib('rtp.rss')} (${m('rtp.anon').toFixed(1)} / ${m('rtp.file').toFixed(1)}) | (same) | ${over('rtp.rss')} | ≤ +12 MiB |`,
  `| RSS settled, ${SETTLE_S} s after \`ready\`, rtp backend (anon / file) | ${mib('settled.rss')} (${m('settled.anon').toFixed(1)} / ${m('settled.file').toFixed(1)}) | idle \`node\` ${SETTLE_S} s after spawn: ${mib('idleSettled.rss')} (${m('idleSettled.anon').toFixed(1)} / ${m('idleSettled.file').toFixed(1)}) | +${(m('settled.rss') - m('idleSettled.rss')).toFixed(1)} MiB | ≤ +12 MiB |`,
  `| RSS, 64 tracks of 1 s buffered (command) | ${mib('tracks.rss')} (audio ${audio.toFixed(1)} MiB) | (same) | +${(m('tracks.rss') - m('idle.rss') - audio).toFixed(1)} MiB beyond the audio | ≤ +12 MiB + audio |`,
];
const when = new Date().toISOString().slice(0, 10);
const text = [
  BEGIN,
  `Measured ${when} (${cpus().length} CPUs, Node ${process.version}), ${RUNS} runs, medians; \`node test/bench/startup.js\`.`,
  '',
  ...rows,
  END,
].join('\n');
console.log(text);
if (WRITE && failures.length === 0) {
  const doc = readFileSync(OUT, 'utf8');
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) fail(`${OUT} has no ${BEGIN} … ${END} section`);
  else writeFileSync(OUT, doc.slice(0, a) + text + doc.slice(b + END.length));
}
if (failures.length) {
  console.log(`${failures.length} failure(s):\n${failures.map((f) => `- ${f}`).join('\n')}`);
  process.exit(1);
}
