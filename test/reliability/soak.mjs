#!/usr/bin/env node
// Soak (docs/reliability.md), two parts:
//
// (a) virtual clock: the host's play loop (Player, BackendDriver, Track from packages/host/dist) around the real
//     RTP backend (packages/plugin-rtp/dist) with a recording transport, on the SDK's VirtualClock, for --hours of
//     virtual time. The RTP timestamp's random base is set (crypto.randomBytes, seen through
//     syncBuiltinESMExports) so that the 32-bit timestamp wraps in the middle of the run. Tracks of various
//     lengths, each a ramp, are queued gaplessly; checked: sequence numbers and timestamps consecutive mod 2^16 /
//     2^32 on every packet, the wrap crossed, and the audio frames out equal, in order, to the frames in.
// (b) real time: the built speakerd with the `command` backend into a counter (counter.mjs) for --minutes;
//     decoders deliver tracks of various lengths at ~1.5x real time in chunks, each next one played on the
//     `finished` of the one before; speakerd's fd count and RSS sampled every --sample-s. Checked: frames in ==
//     frames out (the counter skips silence and checks the ramp's continuity), fds and RSS flat.
//
//   node test/reliability/soak.mjs [--hours 12] [--minutes 10] [--max-track-s 40] [--virtual-only] [--real-only] [--json]
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, REPO, Rng, flags, mix, procSample, sleep } from './lib.mjs';

const opt = flags(process.argv.slice(2), {
  hours: Number(process.env.SOAK_HOURS ?? 12),
  minutes: Number(process.env.SOAK_MINUTES ?? 10),
  seed: Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31)),
  sampleS: 5,
  maxTrackS: 40,
  virtualOnly: false,
  realOnly: false,
  json: false,
});

const dist = (p) => new URL(`../../packages/${p}`, import.meta.url).href;

// ===================================================================== (a) virtual clock

async function virtualSoak() {
  const { VirtualClock, bytesPerFrame } = await import('@speakerd/plugin-sdk');
  const { MemoryLogger } = await import('@speakerd/plugin-sdk/testing');
  const { BackendDriver } = await import(dist('host/dist/playback/driver.js'));
  const { Player } = await import(dist('host/dist/playback/player.js'));
  const { Track } = await import(dist('host/dist/playback/track.js'));
  const { RtpBackend } = await import(dist('plugin-rtp/dist/backend.js'));
  const rtpPlugin = (await import(dist('plugin-rtp/dist/index.js'))).default;

  const R = new Rng(mix(opt.seed, 7));
  const rate = 48000;
  const F = { encoding: 's16be', rate, channels: 1 };
  const bpf = bytesPerFrame(F);
  const totalFrames = Math.round(opt.hours * 3600 * rate);
  // the wrap falls in the middle: base = 2^32 - half the run (the first packet's timestamp is the base + lead)
  const base = (2 ** 32 - Math.floor(totalFrames / 2)) >>> 0;
  const require = createRequire(import.meta.url);
  const crypto = require('node:crypto');
  const realRandomBytes = crypto.randomBytes;
  crypto.randomBytes = (n) => {
    const b = realRandomBytes(n);
    if (n === 10) b.writeUInt32BE(base, 6);
    return b;
  };
  syncBuiltinESMExports();

  const clock = new VirtualClock(1000);
  const log = new MemoryLogger();
  let packets = 0;
  let wraps = 0;
  let prev;
  let bad = '';
  let framesOut = 0;
  let silenceOut = 0;
  let expectNext = 1; // the ramp: audio frames carry 1..32767 in turn, silence is 0
  let rampErrors = 0;
  let firstTs;
  const transport = {
    sendRtp(p, done) {
      const seq = p.readUInt16BE(2);
      const ts = p.readUInt32BE(4);
      const payload = p.subarray(12);
      const n = payload.length / bpf;
      if (firstTs === undefined) firstTs = ts;
      if (prev) {
        if (seq !== ((prev.seq + 1) & 0xffff) && !bad) bad = `sequence ${prev.seq} -> ${seq} at packet ${packets}`;
        const d = (ts - prev.ts) >>> 0;
        // consecutive: each packet's timestamp is the one before plus its frames (a dry spell moves it on)
        if (d !== prev.n) {
          gaps++;
          if (!(p[1] & 0x80) && !bad) bad = `timestamp step ${d} after ${prev.n} frames at packet ${packets}`;
        }
        if (ts < prev.ts) wraps++;
      }
      for (let i = 0; i < n; i++) {
        const v = payload.readInt16BE(i * 2);
        if (v === 0) {
          silenceOut++;
          continue;
        }
        framesOut++;
        if (v !== expectNext) rampErrors++;
        expectNext = (v % 32767) + 1;
      }
      prev = { seq, ts, n };
      packets++;
      done(null);
      return 1;
    },
    async sendRtcp() {},
    async sendTo() {},
    async add(d) {
      return d;
    },
    async remove() {
      return true;
    },
    list: () => [{ address: '192.0.2.1', port: 5004 }],
    localAddress: () => '192.0.2.2',
    async close() {},
  };
  let gaps = 0;
  const events = { backendState: () => {}, wake: () => globalThis.queueMicrotask(() => player.kick()) };
  const context = { configDir: tmpdir(), pluginName: 'rtp', hostVersion: '0.0.0-soak' };
  const backend = new RtpBackend(rtpPlugin.options.parse({ mtu: 9000 }), log, clock, events, context, () => transport);
  crypto.randomBytes = realRandomBytes;
  syncBuiltinESMExports();
  await backend.init?.();
  const driver = new BackendDriver(backend, 'rtp', {
    clock,
    log,
    report: () => {},
    wake: () => globalThis.queueMicrotask(() => player.kick()),
    failed: (m, retaken) => player.backendFailed(driver, m, retaken),
  });
  const finished = [];
  const player = new Player(
    clock,
    log,
    (e) => {
      if (e.type === 'finished') finished.push(e.id);
    },
    driver,
    F,
    {
      earlyFinishMs: 1000,
      reportIntervalMs: 1000,
      bufferMs: 5000,
      startThresholdMs: 250,
      tickMs: 10,
      silenceGuardMs: 10,
      volume: 100,
    },
  );

  // tracks: the ramp continues across them; a decoder that has delivered everything at once (the play loop's
  // part is what is soaked here; the real-time part below has real decoders)
  let framesIn = 0;
  let ramp = 1;
  let made = 0;
  const makeTrack = () => {
    const frames = R.chance(0.1) ? R.int(1, 4800) : R.int(rate * 30, rate * 600);
    const id = `v-${made++}`;
    const t = new Track(id, 'connected', 3_600_000);
    t.setInput(F, { pause() {}, resume() {}, destroy() {} });
    const b = Buffer.alloc(frames * bpf);
    for (let i = 0; i < frames; i++) {
      b.writeInt16BE(ramp, i * 2);
      ramp = (ramp % 32767) + 1;
    }
    t.pushInput(b);
    t.endInput();
    framesIn += frames;
    player.add(t);
    player.play(id, () => t);
    return id;
  };
  makeTrack();
  makeTrack();
  const settle = () => new Promise((r) => setImmediate(r));
  const endAt = clock.now() + opt.hours * 3_600_000;
  const t0 = performance.now();
  while (clock.now() < endAt) {
    const next = clock.nextDeadline();
    clock.advanceTo(next === undefined ? clock.now() + 10 : Math.min(next, endAt));
    await settle();
    // keep two tracks queued: a next one on every `finished`, as a music server does
    while (finished.length) {
      finished.shift();
      if (framesIn < totalFrames) makeTrack();
    }
  }
  // let the last track play out
  const drainTo = clock.now() + 10 * 60_000;
  while (player.current && clock.now() < drainTo) {
    clock.advanceTo(Math.min(clock.nextDeadline() ?? clock.now() + 10, drainTo));
    await settle();
  }
  for (let i = 0; i < 300; i++) {
    clock.advance(10);
    await settle();
  }
  await player.close?.();
  return {
    virtualHours: opt.hours,
    realSeconds: Math.round((performance.now() - t0) / 100) / 10,
    tracks: made,
    packets,
    firstTs,
    lastTs: prev?.ts,
    wraps,
    timestampGaps: gaps,
    sequenceError: bad || null,
    framesIn,
    framesOut,
    silenceFrames: silenceOut,
    rampErrors,
    ok: wraps >= 1 && !bad && framesIn === framesOut && rampErrors === 0,
  };
}

// ===================================================================== (b) real time through `command`

async function realSoak() {
  const R = new Rng(mix(opt.seed, 8));
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-soak-'));
  const rate = 44100;
  const bpf = 4;
  const counterDir = join(dir, 'counts');
  const socket = join(dir, 'run', 'decoders.sock');
  const counter = join(REPO, 'test/reliability/counter.mjs');
  writeFileSync(
    join(dir, 'speakerrc.json'),
    JSON.stringify({
      backend: 'command',
      command: {
        run: `${JSON.stringify(process.execPath)} ${JSON.stringify(counter)} ${JSON.stringify(counterDir)}`,
        keepRunning: true,
      },
      socket,
      format: { encoding: 's16le', rate, channels: 2 },
    }),
  );
  const events = [];
  let onEvent = () => {};
  let crashed;
  const d = new Daemon(join(dir, 'speakerrc.json'), {
    cwd: dir,
    logLevel: 'warn',
    onEvent: (e) => {
      events.push(e.type);
      onEvent(e);
    },
    onExit: (r) => (crashed = r),
  });
  const samples = [];
  let sampler;
  try {
    await d.ready;
    let ramp = 1;
    let framesIn = 0;
    let tracks = 0;
    let n = 0;
    const decoders = new Set();
    /** A decoder for a new track: connects, then delivers it at ~1.5x real time in chunks. */
    const decoder = () => {
      const id = `s-${n++}`;
      const top = Math.max(2, opt.maxTrackS) * rate;
      const frames = R.pick([R.int(1, 2000), R.int(2000, rate), R.int(rate, top / 4), R.int(top / 4, top)]);
      const b = Buffer.alloc(frames * bpf);
      for (let i = 0; i < frames; i++) {
        b.writeInt16LE(ramp, i * 4);
        b.writeInt16LE(-ramp, i * 4 + 2);
        ramp = (ramp % 32767) + 1;
      }
      framesIn += frames;
      const s = connect(socket);
      decoders.add(s);
      s.on('error', () => {});
      s.on('close', () => decoders.delete(s));
      s.write(JSON.stringify({ id, encoding: 's16le', rate, channels: 2 }) + '\n');
      (async () => {
        const chunkFrames = R.pick([1024, 4096, 8192]);
        const t0 = performance.now();
        for (let off = 0; off < frames; off += chunkFrames) {
          const due = t0 + ((off / rate) * 1000) / 1.5;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
          if (!s.write(b.subarray(off * bpf, Math.min(frames, off + chunkFrames) * bpf)))
            await new Promise((r) => s.once('drain', r));
        }
        s.end();
      })();
      return id;
    };
    const endAt = performance.now() + opt.minutes * 60_000;
    let next = decoder();
    let lastFinished;
    const allDone = new Promise((resolve) => {
      onEvent = (e) => {
        if (e.type !== 'finished') return;
        tracks++;
        if (e.id === lastFinished) resolve();
        if (performance.now() < endAt) {
          const id = next;
          next = decoder();
          void d.write(JSON.stringify({ type: 'play', id }) + '\n');
        } else if (!lastFinished) {
          lastFinished = next;
          void d.write(JSON.stringify({ type: 'play', id: next }) + '\n');
        }
      };
    });
    await d.write(JSON.stringify({ type: 'play', id: next }) + '\n');
    next = decoder();
    const t0 = performance.now();
    const sample = () => {
      const s = procSample(d.pid);
      if (s) samples.push({ t: Math.round((performance.now() - t0) / 1000), ...s });
    };
    sample();
    sampler = setInterval(sample, opt.sampleS * 1000);
    await Promise.race([allDone, d.exit]);
    clearInterval(sampler);
    // the last track's end plays out (finished comes earlyFinishMs ahead), then the counter's figures settle
    let out = counts(counterDir);
    for (let stable = 0; stable < 6 && !crashed;) {
      await sleep(500);
      const now = counts(counterDir);
      stable = now.frames === out.frames ? stable + 1 : 0;
      out = now;
    }
    sample();
    const fds = samples.map((s) => s.fds);
    const rss = samples.map((s) => s.rssKb / 1024);
    // flat: the last sample within a few fds of the first (decoder connections come and go) and RSS within 25 %
    // (or 20 MB) of the first one after a minute's warm-up
    const warm = samples.find((s) => s.t >= 60) ?? samples[0];
    const fdFlat = fds[fds.length - 1] - warm.fds <= 3;
    const rssFlat = rss[rss.length - 1] <= Math.max((warm.rssKb / 1024) * 1.25, warm.rssKb / 1024 + 20);
    return {
      realMinutes: Math.round(((performance.now() - t0) / 60_000) * 10) / 10,
      tracks,
      framesIn,
      framesOut: out.frames,
      silenceFrames: out.silence,
      rampErrors: out.errors,
      counterRuns: out.runs,
      crashed: crashed ? `exit ${crashed.code ?? crashed.signal}: ${crashed.stderr.slice(-2000)}` : null,
      fds: { first: fds[0], warm: warm.fds, max: Math.max(...fds), last: fds[fds.length - 1], flat: fdFlat },
      rssMb: {
        first: round(rss[0]),
        warm: round(warm.rssKb / 1024),
        max: round(Math.max(...rss)),
        last: round(rss[rss.length - 1]),
        flat: rssFlat,
      },
      samples: samples.length,
      ok: !crashed && framesIn === out.frames && out.errors === 0,
    };
  } finally {
    clearInterval(sampler);
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What the counter processes wrote (one file each; a restarted command is a new one). */
function counts(dir) {
  const r = { frames: 0, silence: 0, errors: 0, runs: 0 };
  let files = [];
  try {
    files = readdirSync(dir);
  } catch {
    return r;
  }
  const runs = files
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      try {
        return JSON.parse(readFileSync(join(dir, f), 'utf8'));
      } catch {
        return undefined;
      }
    })
    .filter(Boolean)
    .sort((a, b) => a.started - b.started);
  let last;
  for (const c of runs) {
    r.frames += c.frames;
    r.silence += c.silence;
    r.errors += c.errors;
    // the ramp goes on across runs of the command
    if (last !== undefined && c.first !== undefined && c.first !== (last % 32767) + 1) r.errors++;
    if (c.last !== undefined) last = c.last;
    r.runs++;
  }
  return r;
}

const round = (x) => Math.round(x * 10) / 10;

const result = { seed: opt.seed };
if (!opt.realOnly) result.virtual = await virtualSoak();
if (!opt.virtualOnly) result.real = await realSoak();
result.ok = (result.virtual?.ok ?? true) && (result.real?.ok ?? true);
if (opt.json) console.log(JSON.stringify(result));
else {
  const v = result.virtual;
  const r = result.real;
  console.log(`soak: seed ${result.seed}`);
  if (v)
    console.log(
      `  virtual: ${v.virtualHours} h in ${v.realSeconds} s, ${v.tracks} tracks, ${v.packets} RTP packets, ` +
        `timestamp ${v.firstTs} -> ${v.lastTs} (${v.wraps} wrap), sequence/timestamp errors: ${v.sequenceError ?? 'none'}, ` +
        `gaps ${v.timestampGaps}, frames in ${v.framesIn} out ${v.framesOut} (+${v.silenceFrames} silence), ramp errors ${v.rampErrors}`,
    );
  if (r)
    console.log(
      `  real: ${r.realMinutes} min, ${r.tracks} tracks, frames in ${r.framesIn} out ${r.framesOut} ` +
        `(+${r.silenceFrames} silence), ramp errors ${r.rampErrors}, command runs ${r.counterRuns}, crashed: ${r.crashed ?? 'no'}\n` +
        `        fds first ${r.fds.first} (after 1 min ${r.fds.warm}) max ${r.fds.max} last ${r.fds.last} flat ${r.fds.flat}; ` +
        `RSS MB first ${r.rssMb.first} (after 1 min ${r.rssMb.warm}) max ${r.rssMb.max} last ${r.rssMb.last} flat ${r.rssMb.flat}`,
    );
  console.log(`  ${result.ok ? 'OK' : 'FAILED'}`);
}
process.exitCode = result.ok ? 0 : 1;
