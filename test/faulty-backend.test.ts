// Misbehaving backends (issue 8) must not break speakerd. A deliberately faulty plain-JS plugin
// (test/fixtures/faulty-plugin) is loaded by path into the built binary; each test makes one of its methods throw,
// reject or break the contract, and holds speakerd to what backend.ts ("Failures") promises: one `backend` `lost`
// event naming the plugin and the method, a back-off, `ok` once a write() is accepted again, nothing lost that the
// backend did not take, a handful of log lines, and a process that keeps answering and exits 0 at EOF.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { hasStackTrace } from './helpers/cli.js';
import { decoder, type Event, type Speakerd } from './helpers/speakerd.js';
import { noise } from './helpers/pcm.js';
import {
  backendEvents,
  fileSize,
  installFaultyPlugin,
  readOutput,
  sleep,
  startSpeakerd,
  udpSink,
  until,
  untilEof,
  untilFileSize,
  warnLines,
} from './helpers/faulty.js';

const F: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const FRAME_BYTES = 4;
const BACKEND = 'SPEAKERD_ERR_BACKEND';
const CONTRACT = 'SPEAKERD_ERR_BACKEND_CONTRACT';
/** At most this many lines at warn level or above per test (a handful per failure, rate-limited). */
const MAX_WARN_LINES = 10;

/** `ms` of noise in F. */
function pcm(ms: number, seed: number): Buffer {
  return Buffer.from(noise(Math.round((ms * F.rate) / 1000) * FRAME_BYTES, seed));
}

let plugin: { dir: string; cleanup: () => void } | undefined;
beforeAll(() => {
  plugin = installFaultyPlugin();
});
afterAll(() => plugin?.cleanup());

type Ctx = Pick<TestContext, 'expect' | 'onTestFinished'>;

/** speakerd with the faulty backend appending to out.raw in its config directory. */
function start(t: Ctx, faulty: Record<string, unknown>): Promise<Speakerd> {
  return startSpeakerd(t.onTestFinished, { backend: plugin!.dir, format: F, faulty: { file: 'out.raw', ...faulty } });
}

const out = (s: Speakerd) => join(s.dir, 'out.raw');

/** Connect a decoder that delivers `data` in full, and wait until speakerd has all of it. */
async function queue(t: Ctx, s: Speakerd, id: string, data: Uint8Array): Promise<void> {
  const r = await decoder(s.socket, { id, ...F }, data);
  t.expect(r.reply).toEqual({ ok: true });
  await untilEof(s, id);
}

/** The `backend` `lost` event for a failure of `method`. */
function lost(method: string, code: string, message: string | RegExp) {
  return {
    type: 'backend',
    state: 'lost',
    code,
    plugin: 'faulty',
    method,
    message: typeof message === 'string' ? message : expect.stringMatching(message),
  };
}

/** The `backend` `ok` event once a write() is accepted again. */
const OK = { type: 'backend', state: 'ok', message: 'faulty: playing again', plugin: 'faulty' };

const firstBackendEvent = (s: Speakerd, from = 0) => s.waitFor((e) => e.type === 'backend', 10000, from);
const backendOk = (s: Speakerd, from = 0) => s.waitFor((e) => e.type === 'backend' && e.state === 'ok', 15000, from);

/** States are sent only when they change: lost, ok, lost, ok… starting from ok. */
function expectStatesAlternate(t: Ctx, events: Event[]): void {
  let previous = 'ok';
  for (const e of events) {
    t.expect(e.state, JSON.stringify(events)).not.toBe(previous);
    previous = e.state;
  }
}

/** Wait until `bytes` bytes have reached out.raw, then a little longer for anything extra to show. */
async function played(t: Ctx, s: Speakerd, bytes: number, timeoutMs = 15000): Promise<void> {
  const ok = await untilFileSize(out(s), bytes, timeoutMs);
  t.expect(ok, `out.raw has ${fileSize(out(s))} of ${bytes} bytes after ${timeoutMs} ms`).toBe(true);
  await sleep(100);
}

/** speakerd still answers, logged little, and exits 0 at EOF. */
async function endsCleanly(t: Ctx, s: Speakerd): Promise<void> {
  t.expect((await s.status()).type).toBe('status');
  t.expect(await s.close()).toBe(0);
  const warn = warnLines(s.stderr);
  t.expect(warn.length, `lines at warn level or above:\n${warn.join('\n')}`).toBeLessThanOrEqual(MAX_WARN_LINES);
}

function expectSameBytes(t: Ctx, got: Buffer, want: Buffer): void {
  t.expect(got.length, 'output length').toBe(want.length);
  t.expect(Buffer.compare(got, want), 'output bytes').toBe(0);
}

async function stats(s: Speakerd): Promise<Record<string, any>> {
  const r = await s.request({ type: 'faulty.stats' });
  if (r.type !== 'faulty.stats') throw new Error(`faulty.stats answered ${JSON.stringify(r)}`);
  return r;
}

// Every test runs its own speakerd: all of them run concurrently (vitest's maxConcurrency, 5, at a time).
describe.concurrent('misbehaving backends', () => {
  describe('the faulty plugin without a fault', () => {
    it('is a real backend: two tracks play gapless and its file is exactly their input', async (t) => {
      const s = await start(t, { fault: 'none' });
      t.expect(s.events[0]).toMatchObject({ type: 'ready', backend: 'faulty', format: F });
      const a = pcm(600, 1);
      const b = pcm(400, 2);
      await queue(t, s, 'a', a);
      await queue(t, s, 'b', b);
      s.send({ type: 'play', id: 'a' });
      s.send({ type: 'play', id: 'b' });
      await s.waitFor((e) => e.type === 'finished' && e.id === 'b');
      await played(t, s, a.length + b.length);
      t.expect(backendEvents(s)).toEqual([]);
      t.expect((await stats(s)).activations).toBe(1);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), Buffer.concat([a, b]));
    });
  });

  describe('a write() or activate() that fails', () => {
    it('write() throws once: one lost (write, threw), ok after a 1 s back-off, and the file is exactly the input', async (t) => {
      const s = await start(t, { fault: 'write-throws-once' });
      const a = pcm(1000, 3);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      const l = await firstBackendEvent(s);
      const lostAt = Date.now();
      t.expect(l).toEqual(lost('write', BACKEND, 'faulty: write() threw: boom'));
      t.expect((await s.status()).backendState).toBe('lost');
      const ok = await backendOk(s);
      t.expect(Date.now() - lostAt, 'the back-off before activate() again is 1 s').toBeGreaterThanOrEqual(800);
      t.expect(ok).toEqual(OK);
      await played(t, s, a.length);
      t.expect(backendEvents(s)).toHaveLength(2);
      t.expect((await s.status()).backendState).toBe('ok');
      const st = await stats(s);
      t.expect(st.faults).toBe(1);
      t.expect(st.activations).toBe(2);
      t.expect(st.idles).toBeGreaterThanOrEqual(1);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });

    it('write() throws every time: one lost and no more, back-off 1 s then 2 s, tracks kept, few log lines', async (t) => {
      const s = await start(t, { fault: 'write-throws-always' });
      const a = pcm(2000, 4); // longer than earlyFinishMs: it stays the current track
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      t.expect(await firstBackendEvent(s)).toEqual(lost('write', BACKEND, 'faulty: write() threw: boom'));
      await sleep(2600); // retries at about 1 s and 3 s after the failure
      t.expect(backendEvents(s), 'no repeated lost').toHaveLength(1);
      const status = await s.status();
      t.expect(status.backendState).toBe('lost');
      t.expect(status.current).toBe('a');
      const track = status.tracks.find((x: any) => x.id === 'a');
      t.expect(track.bufferedSeconds, 'the track stays buffered').toBeGreaterThan(1.9);
      const st = await stats(s);
      t.expect(st.activations, 'activate() again after 1 s, then after 2 s more').toBeGreaterThanOrEqual(2);
      t.expect(st.activations).toBeLessThanOrEqual(3);
      t.expect(st.acceptedFrames).toBe(0);
      await endsCleanly(t, s);
      t.expect(fileSize(out(s))).toBe(0);
    });

    it('write() throws every 15th call (twice): lost and ok alternate, one lost per throw, the file is exactly the input', async (t) => {
      const s = await start(t, { fault: 'write-throws-every-n', n: 15, times: 2 });
      const a = pcm(1500, 5);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      await played(t, s, a.length, 20000);
      await until(s, 'the last backend event to be ok', () => backendEvents(s).at(-1)?.state === 'ok', 10000);
      const events = backendEvents(s);
      expectStatesAlternate(t, events);
      const st = await stats(s);
      t.expect(st.faults).toBe(2);
      t.expect(events.filter((e) => e.state === 'lost')).toEqual([
        lost('write', BACKEND, 'faulty: write() threw: boom'),
        lost('write', BACKEND, 'faulty: write() threw: boom'),
      ]);
      t.expect(events.filter((e) => e.state === 'ok')).toEqual([OK, OK]);
      t.expect(st.activations).toBe(3);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });

    it('activate() rejects once: lost (activate), activate() again after the back-off, ok, the file is exactly the input', async (t) => {
      const s = await start(t, { fault: 'activate-rejects-once' });
      const a = pcm(800, 6);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      const l = await firstBackendEvent(s);
      t.expect(l).toEqual(lost('activate', BACKEND, /^faulty: activate\(\) (?:rejected|failed|threw)\b.*\bboom$/));
      t.expect((await s.status()).backendState).toBe('lost');
      t.expect(await backendOk(s)).toEqual(OK);
      await played(t, s, a.length);
      t.expect(backendEvents(s)).toHaveLength(2);
      t.expect((await s.status()).backendState).toBe('ok');
      const st = await stats(s);
      t.expect(st.activateCalls).toBe(2);
      t.expect(st.activations).toBe(1);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });
  });

  describe('a pause() or resume() that fails', () => {
    for (const [fault, what] of [
      ['pause-throws', 'threw'],
      ['pause-rejects', 'rejected'],
    ] as const) {
      it(`pause() ${what}: paused is still sent, lost (pause), after resume playing and ok; the file is exactly the input`, async (t) => {
        const s = await start(t, { fault });
        const a = pcm(2000, fault === 'pause-throws' ? 7 : 8);
        await queue(t, s, 'a', a);
        s.send({ type: 'play', id: 'a' });
        await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
        await sleep(300);
        const beforePause = s.events.length;
        s.send({ type: 'pause' });
        await s.waitFor((e) => e.type === 'paused' && e.id === 'a', 10000, beforePause);
        const l = await firstBackendEvent(s);
        t.expect(l).toEqual(
          lost(
            'pause',
            BACKEND,
            what === 'threw'
              ? 'faulty: pause() threw: boom'
              : /^faulty: pause\(\) (?:rejected|failed|threw)\b.*\bboom$/,
          ),
        );
        const status = await s.status();
        t.expect(status.paused).toBe(true);
        t.expect(status.backendState).toBe('lost');
        await sleep(200);
        const beforeResume = s.events.length;
        s.send({ type: 'resume' });
        await s.waitFor((e) => e.type === 'playing' && e.id === 'a', 10000, beforeResume);
        t.expect(await backendOk(s)).toEqual(OK);
        await played(t, s, a.length);
        t.expect(backendEvents(s)).toHaveLength(2);
        t.expect((await s.status()).backendState).toBe('ok');
        t.expect((await stats(s)).pauses).toBe(1);
        await endsCleanly(t, s);
        expectSameBytes(t, readOutput(out(s)), a);
      });
    }

    it('resume() throws: playing is still sent, lost (resume), then ok; the file is exactly the input', async (t) => {
      const s = await start(t, { fault: 'resume-throws' });
      const a = pcm(2000, 9);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
      await sleep(300);
      const beforePause = s.events.length;
      s.send({ type: 'pause' });
      await s.waitFor((e) => e.type === 'paused' && e.id === 'a', 10000, beforePause);
      await sleep(200);
      t.expect(backendEvents(s)).toEqual([]);
      const beforeResume = s.events.length;
      s.send({ type: 'resume' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a', 10000, beforeResume);
      t.expect(await firstBackendEvent(s)).toEqual(lost('resume', BACKEND, 'faulty: resume() threw: boom'));
      t.expect(await backendOk(s)).toEqual(OK);
      await played(t, s, a.length);
      t.expect(backendEvents(s)).toHaveLength(2);
      t.expect((await s.status()).backendState).toBe('ok');
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });
  });

  describe('returns that break the contract', () => {
    /** The backend stays broken: one lost event and no more, through at least one retry. */
    async function staysLost(t: Ctx, s: Speakerd): Promise<void> {
      await sleep(1600); // past the first retry, 1 s after the failure
      t.expect(backendEvents(s), 'no repeated lost').toHaveLength(1);
      t.expect((await s.status()).backendState).toBe('lost');
      t.expect((await stats(s)).activations).toBeGreaterThanOrEqual(2);
    }

    it('write() returns bytes instead of frames: lost (write, contract) saying so', async (t) => {
      const s = await start(t, { fault: 'bytes-not-frames' });
      await queue(t, s, 'a', pcm(1000, 10));
      s.send({ type: 'play', id: 'a' });
      const l = await firstBackendEvent(s);
      t.expect(l).toEqual(
        lost(
          'write',
          CONTRACT,
          /^faulty: write\(\) returned \d+ for \d+ frames offered \(bytes instead of frames\?\)$/,
        ),
      );
      const [, got, offered] = /returned (\d+) for (\d+)/.exec(l.message)!;
      t.expect(Number(got)).toBe(FRAME_BYTES * Number(offered));
      await staysLost(t, s);
      await endsCleanly(t, s);
    });

    it('writable() returns a fractional frame count: lost (writable, contract), and write() is never offered anything', async (t) => {
      const s = await start(t, { fault: 'fractional-writable' });
      await queue(t, s, 'a', pcm(1000, 11));
      s.send({ type: 'play', id: 'a' });
      t.expect(await firstBackendEvent(s)).toEqual(
        lost('writable', CONTRACT, /^faulty: writable\(\) returned \d+\.5, not a whole number of frames ≥ 0$/),
      );
      await staysLost(t, s);
      t.expect((await stats(s)).writeCalls).toBe(0);
      await endsCleanly(t, s);
      t.expect(fileSize(out(s))).toBe(0);
    });

    it('write() returns a fractional frame count: lost (write, contract)', async (t) => {
      const s = await start(t, { fault: 'fractional-write' });
      await queue(t, s, 'a', pcm(1000, 12));
      s.send({ type: 'play', id: 'a' });
      t.expect(await firstBackendEvent(s)).toEqual(
        lost('write', CONTRACT, /^faulty: write\(\) returned \d+\.5, not a whole number of frames ≥ 0\b/),
      );
      await staysLost(t, s);
      await endsCleanly(t, s);
    });

    it('delay() returns a negative count once: lost (delay, contract), then ok; the file is exactly the input', async (t) => {
      const s = await start(t, { fault: 'negative-delay', times: 1 });
      const a = pcm(1000, 13);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      t.expect(await firstBackendEvent(s)).toEqual(
        lost('delay', CONTRACT, /^faulty: delay\(\) returned -\d+, not a whole number of frames ≥ 0$/),
      );
      t.expect(await backendOk(s)).toEqual(OK);
      await played(t, s, a.length);
      t.expect(backendEvents(s)).toHaveLength(2);
      t.expect((await s.status()).backendState).toBe('ok');
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });

    it('delay() returns NaN every time: lost (delay, contract) naming it, states only sent on change', async (t) => {
      const s = await start(t, { fault: 'nan-delay' });
      await queue(t, s, 'a', pcm(1000, 14));
      s.send({ type: 'play', id: 'a' });
      const message = 'faulty: delay() returned NaN, not a whole number of frames ≥ 0';
      t.expect(await firstBackendEvent(s)).toEqual(lost('delay', CONTRACT, message));
      await sleep(1600);
      const events = backendEvents(s);
      expectStatesAlternate(t, events);
      for (const e of events.filter((x) => x.state === 'lost')) t.expect(e).toEqual(lost('delay', CONTRACT, message));
      for (const e of events.filter((x) => x.state === 'ok')) t.expect(e).toEqual(OK);
      await endsCleanly(t, s);
    });
  });

  describe('short writes', () => {
    const TRACK_MS = 2000;
    for (const maxFrames of [1, 4, 16]) {
      it(`a backend taking at most ${maxFrames} frame(s) per write() plays a ${TRACK_MS} ms track at real time, exactly`, async (t) => {
        const s = await start(t, { fault: 'short-write', maxFrames });
        const a = pcm(TRACK_MS, 20 + maxFrames);
        await queue(t, s, 'a', a);
        const t0 = Date.now();
        s.send({ type: 'play', id: 'a' });
        const done = await untilFileSize(out(s), a.length, TRACK_MS + 3000);
        const elapsed = Date.now() - t0;
        t.expect(done, `${fileSize(out(s))} of ${a.length} bytes after ${elapsed} ms`).toBe(true);
        t.expect(elapsed, 'paced at real time, not faster').toBeGreaterThanOrEqual(TRACK_MS - 200);
        await s.waitFor((e) => e.type === 'finished' && e.id === 'a', 5000);
        await sleep(100);
        t.expect(backendEvents(s)).toEqual([]);
        await endsCleanly(t, s);
        expectSameBytes(t, readOutput(out(s)), a);
      });
    }
  });

  describe('an idle() or close() that fails is logged and ignored', () => {
    it('idle() rejects: no backend event, the next track activates it again and plays exactly', async (t) => {
      const s = await start(t, { fault: 'idle-rejects' });
      const a = pcm(500, 30);
      const b = pcm(500, 31);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'finished' && e.id === 'a');
      await played(t, s, a.length);
      for (let i = 0; i < 100 && (await stats(s)).idles < 1; i++) await sleep(50);
      t.expect((await stats(s)).idles).toBeGreaterThanOrEqual(1);
      await queue(t, s, 'b', b);
      s.send({ type: 'play', id: 'b' });
      await s.waitFor((e) => e.type === 'finished' && e.id === 'b');
      await played(t, s, a.length + b.length);
      t.expect(backendEvents(s)).toEqual([]);
      t.expect((await s.status()).backendState).toBe('ok');
      t.expect((await stats(s)).activations).toBe(2);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), Buffer.concat([a, b]));
    });

    it('close() rejects: no backend event, exit code 0 at EOF, the file is exactly the input', async (t) => {
      const s = await start(t, { fault: 'close-rejects' });
      const a = pcm(500, 32);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'finished' && e.id === 'a');
      await played(t, s, a.length);
      t.expect(backendEvents(s)).toEqual([]);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });
  });

  describe('start-up and reload with a backend that cannot start', () => {
    it('init() throws at start-up: exit non-zero, no ready, a message naming the plugin and the error, no stack trace', async (t) => {
      const s = await startSpeakerd(
        t.onTestFinished,
        { backend: plugin!.dir, format: F, faulty: { fault: 'init-throws' } },
        { waitReady: false },
      );
      const closed = new Promise<void>((r) => s.child.once('close', () => r()));
      const code = await Promise.race([s.exited, sleep(15000).then(() => 'still running')]);
      await Promise.race([closed, sleep(2000)]);
      t.expect(code).not.toBe('still running');
      t.expect(code).not.toBe(0);
      t.expect(code).not.toBeNull();
      t.expect(s.events).toEqual([]);
      const naming = s.stderr.split('\n').filter((l) => /(?:^|[\s[("'])faulty\b/.test(l) && l.includes('boom'));
      t.expect(naming.length, `no stderr line names the plugin and the error:\n${s.stderr}`).toBeGreaterThan(0);
      t.expect(stackTraces(s.stderr), 'stack traces on stderr').toEqual([]);
    });

    /**
     * A reload whose new backend cannot start (`config` rewrites the config file) is answered `error` `config`
     * naming why (`because`); the old backend plays the next track exactly, with no backend event.
     */
    async function refusedReload(
      t: TestContext,
      config: (cfg: Record<string, any>) => Record<string, unknown>,
      because: string,
      seed: number,
    ) {
      const s = await start(t, { fault: 'none' });
      const a = pcm(1500, seed);
      const b = pcm(500, seed + 1);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'playing' && e.id === 'a');
      const cfgFile = join(s.dir, 'speakerrc.json');
      writeFileSync(cfgFile, JSON.stringify(config(JSON.parse(readFileSync(cfgFile, 'utf8')))));
      const r = await s.request({ type: 'reload' });
      t.expect(r).toMatchObject({ type: 'error', code: 'config' });
      t.expect(r.message).toContain(because);
      await queue(t, s, 'b', b);
      s.send({ type: 'play', id: 'b' });
      await s.waitFor((e) => e.type === 'finished' && e.id === 'b');
      await played(t, s, a.length + b.length);
      const status = await s.status();
      t.expect(status.backend).toBe('faulty');
      t.expect(status.backendState).toBe('ok');
      t.expect(backendEvents(s)).toEqual([]);
      t.expect((await stats(s)).activations).toBe(1);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), Buffer.concat([a, b]));
    }

    it('reload to a faulty backend whose init() throws: error config (seq echoed), the old backend plays the next track exactly', async (t) => {
      await refusedReload(t, (cfg) => ({ ...cfg, faulty: { ...cfg.faulty, fault: 'init-throws' } }), 'boom', 40);
    });

    it('reload to rtp with mode multicast to 127.0.0.1: error config (seq echoed), the old backend plays the next track exactly', async (t) => {
      const sink = await udpSink();
      t.onTestFinished(() => sink.close());
      await refusedReload(
        t,
        (cfg) => ({
          ...cfg,
          faulty: undefined, // the faulty plugin is not loaded once it is not the backend: its section would be unknown
          backend: 'rtp',
          rtp: { destination: '127.0.0.1', mode: 'multicast', port: sink.port, native: false },
        }),
        'multicast',
        42,
      );
    });

    it("after a reload replaced rtp by command, rtp's commands answer unknown-command and tracks play through command", async (t) => {
      const sink = await udpSink();
      const recipient = await udpSink();
      t.onTestFinished(() => {
        sink.close();
        recipient.close();
      });
      const s = await startSpeakerd(t.onTestFinished, {
        backend: 'rtp',
        format: F,
        rtp: { destination: '127.0.0.1', port: sink.port, native: false },
        command: { run: 'cat >> out.raw', leadMs: 20 },
      });
      t.expect(s.events[0]).toMatchObject({ type: 'ready', backend: 'rtp' });
      const recipientCmd = { type: 'rtp.add-recipient', address: '127.0.0.1', port: recipient.port };
      t.expect(await s.request(recipientCmd)).toMatchObject({ type: 'rtp.add-recipient' });
      const cfgFile = join(s.dir, 'speakerrc.json');
      const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
      writeFileSync(cfgFile, JSON.stringify({ ...cfg, backend: 'command' }));
      t.expect(await s.request({ type: 'reload' })).toMatchObject({ type: 'reloaded' });
      for (let i = 0; i < 100 && (await s.status()).backend !== 'command'; i++) await sleep(50);
      t.expect((await s.status()).backend).toBe('command');
      t.expect(await s.request(recipientCmd)).toMatchObject({ type: 'error', code: 'unknown-command' });
      t.expect(await s.request({ ...recipientCmd, type: 'rtp.remove-recipient' })).toMatchObject({
        type: 'error',
        code: 'unknown-command',
      });
      const a = pcm(500, 44);
      await queue(t, s, 'a', a);
      s.send({ type: 'play', id: 'a' });
      await s.waitFor((e) => e.type === 'finished' && e.id === 'a');
      await played(t, s, a.length);
      t.expect(backendEvents(s)).toEqual([]);
      await endsCleanly(t, s);
      expectSameBytes(t, readOutput(out(s)), a);
    });
  });
});

/**
 * Stack traces a user would see: in plain lines, or in JSON log lines at info level or above (what the default
 * log level prints); debug lines may carry one.
 */
function stackTraces(stderr: string): string[] {
  const found: string[] = [];
  const plain: string[] = [];
  for (const line of stderr.split('\n')) {
    let rec: { level?: unknown } | undefined;
    try {
      rec = JSON.parse(line) as { level?: unknown };
    } catch {
      plain.push(line);
      continue;
    }
    // JSON escapes the stack's newlines
    if (typeof rec?.level === 'number' && rec.level >= 30 && hasStackTrace(line.replace(/\\n/g, '\n')))
      found.push(line);
  }
  if (hasStackTrace(plain.join('\n'))) found.push(plain.join('\n'));
  return found;
}
