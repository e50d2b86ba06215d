// Fault injection, end to end (issue 11): the built binary, driven as a music server drives it, while its output
// command is killed, stopped or starved, while it is signalled, while its own stdout is not read, and while
// decoders flood it or connect and vanish by the thousand. Each test checks what a music server would see (events,
// exit codes, the output's bytes where they can be exact) and that speakerd stays up. Time bounds are generous.
// Figures (exit times, RSS, fds…) are printed with SPEAKERD_FIGURES=1; docs/reliability.md ("Fault injection")
// has those of a run.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'vitest';
import { bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';
import { decoder, Speakerd, wallNow, type Event } from './helpers/speakerd.js';
import { firstDifference, noise } from './helpers/pcm.js';
import { backendEvents, readOutput, sleep, until, untilEof, untilFileSize } from './helpers/faulty.js';
import { dead } from '../packages/plugin-command/test/helpers.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
type Ctx = Pick<TestContext, 'expect' | 'onTestFinished'>;

function figure(name: string, value: unknown): void {
  if (process.env.SPEAKERD_FIGURES) console.log(`[fault-injection] ${name}: ${JSON.stringify(value)}`);
}

/** `ms` of noise in `f`. */
function pcm(ms: number, seed: number, f: SampleFormat = CD): Buffer {
  return Buffer.from(noise(Math.round((ms * f.rate) / 1000) * bytesPerFrame(f), seed));
}

/**
 * speakerd with the command backend (default: `exec cat >> out.raw`, so that the child is cat itself), killed and
 * its directory removed when the test ends. The directory is made here and tied to this test's context: the
 * helpers' tempDir() registers its cleanup with the global onTestFinished, which under describe.concurrent may
 * belong to another test (and remove the directory while this one runs).
 */
async function start(
  t: Ctx,
  config: Record<string, unknown> = {},
  command: Record<string, unknown> = {},
): Promise<Speakerd> {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-fi-'));
  t.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const s = await Speakerd.start(
    {
      backend: 'command',
      format: CD,
      bufferMs: 10000, // the longest track here (8 s) is queued in full before it is played
      ...config,
      command: { run: 'exec cat >> out.raw', restartMinMs: 100, restartMaxMs: 1000, stopTimeoutMs: 500, ...command },
    },
    { dir, waitReady: false },
  );
  t.onTestFinished(async () => {
    s.kill();
    await Promise.race([s.exited, sleep(5000)]);
    rmSync(dir, { recursive: true, force: true }); // again, whatever order the hooks run in
  });
  await s.waitFor((e) => e.type === 'ready', 15000);
  return s;
}

const pidOf = (s: Speakerd) => s.child.pid!;

/** The pids of `pid`'s children (every thread's). */
function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
        if (text) out.push(...text.split(/\s+/).map(Number));
      } catch {
        // the thread ended
      }
    }
  } catch {
    // the process ended
  }
  return [...new Set(out)];
}

/** The single live child of speakerd that is not in `old` (the output command's current run). */
async function newChild(s: Speakerd, old: Set<number> = new Set(), timeoutMs = 10000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const fresh = children(pidOf(s)).filter((p) => !old.has(p) && !dead(p));
    if (fresh.length === 1) return fresh[0]!;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`no new child of speakerd within ${timeoutMs} ms (have ${children(pidOf(s)).join(' ')})`);
    await sleep(10);
  }
}

/** VmRSS of `pid` in kB. */
function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** Connect a decoder that delivers `data` in full, and wait until speakerd has all of it. */
async function queue(t: Ctx, s: Speakerd, id: string, data: Uint8Array, f: SampleFormat = CD): Promise<void> {
  const r = await decoder(s.socket, { id, ...f }, data);
  t.expect(r.reply).toEqual({ ok: true });
  await untilEof(s, id);
}

const finished = (s: Speakerd, id: string, timeoutMs = 30000, from = 0) =>
  s.waitFor((e) => e.type === 'finished' && e.id === id, timeoutMs, from);

/** `backend` states alternate lost, ok, lost… (a state is sent only when it changes), starting from ok. */
function expectStatesAlternate(t: Ctx, events: Event[]): void {
  let previous = 'ok';
  for (const e of events) {
    t.expect(e.state, JSON.stringify(events)).not.toBe(previous);
    previous = e.state;
  }
}

/** Exactly one `finished` for `id`, and no `playing`/`paused` for it after that. */
function expectFinishedOnce(t: Ctx, s: Speakerd, id: string): void {
  const mine = s.events.filter((e) => e.id === id && ['playing', 'paused', 'finished'].includes(e.type));
  t.expect(
    mine.filter((e) => e.type === 'finished'),
    id,
  ).toHaveLength(1);
  t.expect(mine[mine.length - 1]!.type, id).toBe('finished');
}

/** Send SIGCONT then SIGKILL to `pid` when the test ends, if it is still alive (a child we stopped). */
function reapStopped(t: Ctx, pid: number): void {
  t.onTestFinished(() => {
    if (dead(pid)) return;
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
}

describe.concurrent('fault injection through the command backend', () => {
  it(
    'the command is SIGKILLed every 2 s during a 7 s track: lost/ok per kill, one finished, the next track plays',
    { timeout: 40000 },
    async (t) => {
      const s = await start(t);
      const a = pcm(7000, 1);
      const b = pcm(1500, 2);
      await queue(t, s, 'a', a);
      await queue(t, s, 'b', b);
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
      const killed = new Set<number>();
      let child = await newChild(s);
      for (let k = 0; k < 3; k++) {
        await sleep(2000);
        process.kill(child, 'SIGKILL');
        killed.add(child);
        child = await newChild(s, killed);
      }
      await finished(s, 'a');
      const afterA = s.events.length;
      s.send({ type: 'play', id: 'b' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'b', 10000, afterA);
      await finished(s, 'b');
      // the third restart is confirmed 500 ms after it started
      await until(s, 'ok after the last kill', () => backendEvents(s).filter((e) => e.state === 'ok').length >= 3);
      const backend = backendEvents(s);
      expectStatesAlternate(t, backend);
      const lost = backend.filter((e) => e.state === 'lost');
      t.expect(lost).toHaveLength(3);
      for (const e of lost)
        t.expect(e).toMatchObject({ plugin: 'command', message: 'command: the command was killed by SIGKILL' });
      t.expect(backend.filter((e) => e.state === 'ok')).toHaveLength(3);
      expectFinishedOnce(t, s, 'a');
      expectFinishedOnce(t, s, 'b');
      // b starts after a's finished; what the killed runs had in their pipes is lost, nothing is added or reordered
      const types = s.events.filter((e) => e.id === 'a' || e.id === 'b').map((e) => `${e.type}:${e.id}`);
      t.expect(types.indexOf('finished:a')).toBeLessThan(types.indexOf('playing:b'));
      await untilFileSize(join(s.dir, 'out.raw'), 1, 2000);
      const out = readOutput(join(s.dir, 'out.raw'));
      t.expect(out.length).toBeLessThanOrEqual(a.length + b.length);
      t.expect(out.length % 4).toBe(0);
      t.expect((await s.status()).backendState).toBe('ok');
      figure('sigkill', {
        lost: lost.length,
        ok: backend.length - lost.length,
        outBytes: out.length,
        inBytes: a.length + b.length,
      });
      t.expect(await s.close()).toBe(0);
    },
  );

  it(
    'the command is SIGSTOPped past the stall limit: killed, restarted, speakerd stays up',
    { timeout: 40000 },
    async (t) => {
      const s = await start(t);
      await queue(t, s, 'a', pcm(6000, 3));
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
      const first = await newChild(s);
      reapStopped(t, first);
      await sleep(500);
      const stoppedAt = wallNow();
      process.kill(first, 'SIGSTOP');
      const lost = await s.waitFor((e) => e.type === 'backend' && e.state === 'lost', 15000);
      const lostAfter = s.timeOf(lost) - stoppedAt;
      t.expect(lost.message).toMatch(/^command: the command stopped reading its input \(pipe full for \d+ ms\)$/);
      const second = await newChild(s, new Set([first]));
      // SIGTERM waits while it is stopped; SIGKILL (stopTimeoutMs later) does not
      await until(s, 'the stopped command to die', () => dead(first), 10000);
      const ok = await s.waitFor((e) => e.type === 'backend' && e.state === 'ok', 15000);
      t.expect(s.timeOf(ok)).toBeGreaterThan(s.timeOf(lost));
      await finished(s, 'a');
      expectFinishedOnce(t, s, 'a');
      t.expect(dead(second)).toBe(false);
      t.expect((await s.status()).backendState).toBe('ok');
      figure('sigstop', {
        lostAfterMs: Math.round(lostAfter),
        message: lost.message,
        okAfterLostMs: Math.round(s.timeOf(ok) - s.timeOf(lost)),
      });
      t.expect(await s.close()).toBe(0);
    },
  );

  /** speakerd whose command exits at once with code 3, playing a 2 s track to its finished. */
  async function exitingCommand(t: Ctx): Promise<{ s: Speakerd; delays: number[] }> {
    const s = await start(t, {}, { run: 'exit 3', restartMinMs: 100, restartMaxMs: 800 });
    await queue(t, s, 'a', pcm(2000, 4));
    s.send({ type: 'play', id: 'a' });
    const lost = await s.waitFor((e) => e.type === 'backend', 10000);
    t.expect(lost).toMatchObject({
      state: 'lost',
      plugin: 'command',
      message: 'command: the command exited with code 3',
    });
    const st = await s.status();
    t.expect(st).toMatchObject({
      backendState: 'lost',
      backendMessage: 'command: the command exited with code 3',
      current: 'a',
    });
    // the audio is dropped at real time while the command is down: the track still ends
    await finished(s, 'a', 15000);
    expectFinishedOnce(t, s, 'a');
    const delays = [...s.stderr.matchAll(/restarting the command in (\d+) ms/g)].map((m) => Number(m[1]));
    t.expect(delays.slice(0, 4)).toEqual([100, 200, 400, 800]);
    for (const d of delays.slice(4)) t.expect(d).toBe(800);
    t.expect(backendEvents(s)).toHaveLength(1);
    return { s, delays };
  }

  it(
    'a command that exits at once (exit 3): lost with the reason, back-off, status answers, the track finishes',
    { timeout: 30000 },
    async (t) => {
      const { s, delays } = await exitingCommand(t);
      // idle now (the command is not wanted): still lost, still answering, nothing more reported
      await sleep(1000);
      t.expect((await s.status()).backendState).toBe('lost');
      t.expect(backendEvents(s)).toHaveLength(1);
      figure('exit-3', { restartDelaysMs: delays, backendEvents: backendEvents(s).map((e) => e.state) });
      t.expect(await s.close()).toBe(0);
    },
  );

  // A reload that replaces a lost backend by one that works says `backend` `ok` (it once did not: status said ok,
  // the music server's last event stayed `lost`).
  it(
    'after exit 3, a reload to a working command reports backend ok and the next track plays in full',
    { timeout: 40000 },
    async (t) => {
      const { s } = await exitingCommand(t);
      await sleep(1500);
      t.expect((await s.status()).backendState).toBe('lost');
      const cfg = JSON.parse(readFileSync(join(s.dir, 'speakerrc.json'), 'utf8'));
      cfg.command.run = 'exec cat >> out.raw';
      writeFileSync(join(s.dir, 'speakerrc.json'), JSON.stringify(cfg));
      t.expect((await s.request({ type: 'reload' })).type).toBe('reloaded');
      const b = pcm(1000, 5);
      await queue(t, s, 'b', b);
      const from = s.events.length;
      s.send({ type: 'play', id: 'b' });
      await finished(s, 'b', 15000, from);
      await untilFileSize(join(s.dir, 'out.raw'), b.length, 10000);
      await sleep(100);
      const out = readOutput(join(s.dir, 'out.raw'));
      t.expect(firstDifference(out, b)).toBe(-1);
      t.expect((await s.status()).backendState).toBe('ok');
      // the state went lost -> ok: a music server learns it from a backend event
      await s.waitFor((e) => e.type === 'backend' && e.state === 'ok', 3000);
      t.expect(await s.close()).toBe(0);
    },
  );

  it(
    'a command that reads 1 byte per second is a stall: killed, restarted, status keeps answering',
    { timeout: 40000 },
    async (t) => {
      const s = await start(t, {}, { run: 'while :; do head -c 1 >/dev/null; sleep 1; done' });
      await queue(t, s, 'a', pcm(8000, 6));
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
      const first = await newChild(s);
      const latencies: number[] = [];
      const t0 = Date.now();
      while (Date.now() - t0 < 9000) {
        const before = wallNow();
        t.expect((await s.request({ type: 'status' }, 2000)).type).toBe('status');
        latencies.push(wallNow() - before);
        await sleep(50);
      }
      const backend = backendEvents(s);
      expectStatesAlternate(t, backend);
      const lost = backend.filter((e) => e.state === 'lost');
      t.expect(lost.length).toBeGreaterThanOrEqual(2);
      for (const e of lost) t.expect(e.message).toMatch(/^command: the command stopped reading its input/);
      t.expect(dead(first)).toBe(true);
      t.expect(children(pidOf(s)).filter((p) => !dead(p)).length).toBeLessThanOrEqual(1);
      const cancelled = await s.request({ type: 'cancel', id: 'a' });
      t.expect(cancelled).toMatchObject({ type: 'finished', id: 'a' });
      latencies.sort((x, y) => x - y);
      figure('slow-reader', {
        lost: lost.length,
        ok: backend.length - lost.length,
        statusProbes: latencies.length,
        statusP50Ms: +latencies[latencies.length >> 1]!.toFixed(1),
        statusMaxMs: +latencies[latencies.length - 1]!.toFixed(1),
      });
      t.expect(await s.close()).toBe(0);
    },
  );

  it.for(['SIGTERM', 'SIGINT', 'EOF'] as const)(
    '%s mid-track: exit code 0, the command ended, the socket file removed, within 5 s',
    { timeout: 30000 },
    async (how, t) => {
      const s = await start(t);
      await queue(t, s, 'a', pcm(5000, 7));
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
      const child = await newChild(s);
      await sleep(1000);
      t.expect(existsSync(s.socket)).toBe(true);
      const t0 = wallNow();
      if (how === 'EOF') s.child.stdin.end();
      else s.child.kill(how);
      const code = await Promise.race([s.exited, sleep(5000).then(() => 'timeout' as const)]);
      const ms = wallNow() - t0;
      t.expect(code).toBe(0);
      t.expect(ms).toBeLessThan(5000);
      t.expect(existsSync(s.socket)).toBe(false);
      await until(s, 'the command to end', () => dead(child), 2000);
      t.expect(s.events.filter((e) => e.type === 'finished')).toEqual([]);
      figure(`exit-${how}`, { exitMs: Math.round(ms), code });
    },
  );

  it(
    'the music server stops reading stdout for 7 s: every event arrives afterwards, in order',
    { timeout: 60000 },
    async (t) => {
      const s = await start(t, {}, { run: 'exec cat > /dev/null' });
      for (let i = 0; i < 8; i++) await queue(t, s, `t${i}`, pcm(i < 2 ? 3000 : 500, 10 + i));
      s.send({ type: 'play', id: 't0' });
      s.send({ type: 'play', id: 't1' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 't0');
      const from = s.events.length;
      s.child.stdout.pause();
      const pausedAt = wallNow();
      let seq = 1;
      while (wallNow() - pausedAt < 7000) {
        s.send({ type: 'status', seq: seq++ });
        await sleep(5);
      }
      const sent = seq - 1;
      const resumedAt = wallNow();
      s.child.stdout.resume();
      await s.waitFor((e) => e.type === 'status' && e.seq === sent, 30000, from);
      // t0 (3 s) and t1 (3 s) played during the pause; the rest play on each finished, as a music server does
      for (let i = 0; i < 8; i++) {
        await finished(s, `t${i}`, 15000);
        if (i + 2 < 8) s.send({ type: 'play', id: `t${i + 2}` });
      }
      const after = s.events.slice(from);
      t.expect(after.filter((e) => e.type === 'status').map((e) => e.seq)).toEqual(
        Array.from({ length: sent }, (_, i) => i + 1),
      );
      for (let i = 0; i < 8; i++) expectFinishedOnce(t, s, `t${i}`);
      const order = s.events.filter((e) => e.type === 'playing' || e.type === 'finished');
      const firstIdx = (type: string, id: string) => order.findIndex((e) => e.type === type && e.id === id);
      for (let i = 1; i < 8; i++)
        t.expect(firstIdx('finished', `t${i - 1}`)).toBeLessThan(firstIdx('playing', `t${i}`));
      // speakerd's stdout really was backed up: far more arrived after the resume than a pipe and a stream buffer hold
      const late = s.events.filter((_, i) => s.eventTimes[i]! >= resumedAt);
      const lateBytes = late.reduce((n, e) => n + JSON.stringify(e).length + 1, 0);
      t.expect(lateBytes).toBeGreaterThan(256 * 1024);
      t.expect(s.exitCode).toBeUndefined();
      t.expect((await s.status()).type).toBe('status');
      figure('stdout-paused', { statusSent: sent, eventsAfterResume: late.length, bytesAfterResume: lateBytes });
      t.expect(await s.close()).toBe(0);
    },
  );

  it(
    'a decoder flooding a track that is not played yet meets back-pressure, RSS stays bounded, then it plays exactly',
    { timeout: 60000 },
    async (t) => {
      // 8 channels of f32 at 192 kHz (6.1 MB/s), so that the track (49 MB) dwarfs the bounds it must be held to
      const F: SampleFormat = { encoding: 'f32le', rate: 192000, channels: 8 };
      const s = await start(t, { format: F, bufferMs: 1000, maxBufferMB: 2 });
      const track = pcm(8000, 20, F);
      await sleep(300);
      const rss0 = rssKb(pidOf(s));
      let accepted = 0;
      let done = false;
      const c = connect(s.socket);
      t.onTestFinished(() => void c.destroy());
      c.on('error', () => undefined);
      const flood = (async () => {
        await new Promise((r) => c.once('connect', r));
        c.write(JSON.stringify({ id: 'big', ...F }) + '\n');
        const chunk = 256 * 1024;
        for (let i = 0; i < track.length; i += chunk) {
          const part = track.subarray(i, i + chunk);
          const more = c.write(part, () => (accepted += part.length));
          if (!more) await new Promise((r) => c.once('drain', r));
          if (c.destroyed) return;
        }
        c.end();
        done = true;
      })();
      await s.waitFor((e) => e.type === 'arrived' && e.id === 'big');
      let rssMax = rss0;
      const samples: number[] = [];
      for (let i = 0; i < 30; i++) {
        await sleep(100);
        rssMax = Math.max(rssMax, rssKb(pidOf(s)));
        samples.push(accepted);
      }
      // the decoder is held back: nothing more is taken over the last second, and far less than the track
      t.expect(done).toBe(false);
      t.expect(samples[samples.length - 1]).toBe(samples[samples.length - 11]);
      t.expect(accepted).toBeLessThan(track.length / 4);
      const st = await s.status();
      const buffered = st.tracks.find((x: any) => x.id === 'big').bufferedSeconds;
      t.expect(buffered).toBeLessThanOrEqual(1);
      t.expect(rssMax - rss0).toBeLessThan(16 * 1024); // maxBufferMB (2) plus socket buffers and heap noise
      const heldBack = accepted;
      const rssHeld = rssMax;
      // playing it: the decoder is read as the track plays, bounded by bufferMs (1 s: 6 MB) as the current track
      let rssPlaying = rssMax;
      let bufferedPlaying = 0;
      let playing = true;
      const sampler = setInterval(() => (rssPlaying = Math.max(rssPlaying, rssKb(pidOf(s)))), 100);
      t.onTestFinished(() => clearInterval(sampler));
      const statusSampler = (async () => {
        while (playing) {
          const x = (await s.status()).tracks.find((y: any) => y.id === 'big');
          if (x) bufferedPlaying = Math.max(bufferedPlaying, x.bufferedSeconds);
          await sleep(200);
        }
      })();
      s.send({ type: 'play', id: 'big' });
      await flood;
      await finished(s, 'big', 30000);
      playing = false;
      await statusSampler;
      const file = join(s.dir, 'out.raw');
      await untilFileSize(file, track.length, 10000);
      clearInterval(sampler);
      // what speakerd holds of the track while it plays is bounded by bufferMs (1 s); RSS also carries the garbage
      // of 49 MB passed through until V8 collects it (30-42 MB seen in CI), so its bound only says "not the track
      // twice over"
      t.expect(bufferedPlaying).toBeLessThanOrEqual(1.25);
      t.expect(rssPlaying - rss0).toBeLessThan(64 * 1024);
      await sleep(100);
      const out = readOutput(file);
      t.expect(out.length).toBe(track.length);
      t.expect(firstDifference(out, track)).toBe(-1);
      figure('flood', {
        trackMB: +(track.length / 1e6).toFixed(1),
        heldBackMB: +(heldBack / 1e6).toFixed(2),
        bufferedSeconds: buffered,
        rssStartMB: +(rss0 / 1024).toFixed(1),
        rssMaxHeldBackMB: +(rssHeld / 1024).toFixed(1),
        rssMaxPlayingMB: +(rssPlaying / 1024).toFixed(1),
        bufferedSecondsMaxPlaying: bufferedPlaying,
      });
      t.expect(await s.close()).toBe(0);
    },
  );

  it(
    '2,000 decoder connect/close cycles: fds back to the baseline, every accepted track cancelled stillborn',
    { timeout: 60000 },
    async (t) => {
      const s = await start(t, { maxTracks: 4096 });
      await s.status();
      await sleep(300);
      const fd0 = fdCount(pidOf(s));
      const N = 2000;
      const accepted: string[] = [];
      /** Connections that failed before they were established (a full listen backlog: EAGAIN). */
      const refused: string[] = [];
      // A client's close does not wait for speakerd's accept: connections closed at once pile up in the listen
      // backlog (511) faster than speakerd accepts them, and the kernel refuses further ones with EAGAIN. A decoder
      // retries then, as this one does (counted).
      const cycle = (i: number): Promise<void> =>
        new Promise<boolean>((resolve) => {
          const c = connect(s.socket);
          let connected = false;
          c.on('error', (err: NodeJS.ErrnoException) => {
            if (!connected) refused.push(err.code ?? String(err));
          });
          c.on('close', () => resolve(connected));
          c.on('connect', () => {
            connected = true;
            const id = `c-${i}`;
            switch (i % 4) {
              case 0: // close before the header
                c.destroy();
                break;
              case 1: // a valid header, then close at once
                accepted.push(id);
                c.end(JSON.stringify({ id, ...CD }) + '\n', () => c.destroy());
                break;
              case 2: // a valid header and a little PCM, then close at once
                accepted.push(id);
                c.write(JSON.stringify({ id, ...CD }) + '\n');
                c.end(Buffer.alloc(4096), () => c.destroy());
                break;
              case 3: // half a header, then close
                c.end('{"id":"c-' + i, () => c.destroy());
                break;
            }
          });
        }).then(async (connected) => {
          if (connected) return;
          t.expect(refused[refused.length - 1]).toBe('EAGAIN');
          await sleep(5);
          return cycle(i);
        });
      const t0 = wallNow();
      for (let i = 0; i < N; i += 20) await Promise.all(Array.from({ length: 20 }, (_, k) => cycle(i + k)));
      const cyclesMs = wallNow() - t0;
      t.expect((await s.request({ type: 'status' }, 5000)).type).toBe('status');
      await until(
        s,
        'every accepted track to arrive',
        () => s.events.filter((e) => e.type === 'arrived').length >= accepted.length,
        15000,
      );
      for (const id of accepted) s.send({ type: 'cancel', id });
      await until(
        s,
        'every cancel to be answered',
        () => s.events.filter((e) => e.type === 'stillborn').length >= accepted.length,
        15000,
      );
      t.expect(accepted.length).toBe(N / 2);
      t.expect(s.events.filter((e) => e.type === 'arrived').length).toBe(accepted.length);
      t.expect(s.events.filter((e) => e.type === 'stillborn').length).toBe(accepted.length);
      const st = await s.status();
      t.expect(st.tracks).toEqual([]);
      let fd1 = fdCount(pidOf(s));
      for (let i = 0; i < 50 && Math.abs(fd1 - fd0) > 2; i++) {
        await sleep(100);
        fd1 = fdCount(pidOf(s));
      }
      t.expect(Math.abs(fd1 - fd0), `fds ${fd0} -> ${fd1}`).toBeLessThanOrEqual(2);
      // the other half closed before a complete header: each is reported once, bad-header
      const errors = s.events.filter((e) => e.type === 'error');
      t.expect(errors.length).toBe(N / 2);
      t.expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['bad-header']));
      figure('connect-close', {
        cycles: N,
        cyclesMs: Math.round(cyclesMs),
        accepted: accepted.length,
        eagainRetries: refused.length,
        refusedCodes: [...new Set(refused)],
        fdsBefore: fd0,
        fdsAfter: fd1,
        errorEvents: errors.length,
        errorCodes: [...new Set(errors.map((e) => e.code))],
      });
      t.expect(await s.close()).toBe(0);
    },
  );
});
