import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { getDefaultHighWaterMark } from 'node:stream';
import { VirtualClock, bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';
import plugin from '../src/index.js';
import { CD, count, makeBackend, pattern, pump, sleep, waitFor, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.backend.close();
  h?.cleanup();
  h = undefined;
});

describe('command plugin', () => {
  it('is a clock-paced backend with documented defaults', () => {
    expect(plugin.backend).toBeTypeOf('function');
    expect(plugin.options.parse(undefined)).toEqual({
      run: 'aplay -q -t raw -f cd -',
      pauseMode: 'suspend',
      leadMs: 20,
      unpaced: false,
      restartMinMs: 100,
      restartMaxMs: 10_000,
      keepRunning: false,
      stopTimeoutMs: 2000,
    });
    const bad = plugin.options.safeParse({ restartMinMs: 5000, restartMaxMs: 1000 });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]!.path).toEqual(['restartMaxMs']);
    expect(plugin.options.safeParse({ runn: 'x' }).success).toBe(false);
    h = makeBackend({ run: 'cat > /dev/null' });
    expect(h.backend.pacing).toBe('clock');
  });

  it('delivers exactly the bytes written, in the config directory, and only whole frames', async () => {
    h = makeBackend({ run: 'cat > out.raw' });
    await h.backend.activate(CD);
    const data = pattern(44100 * 2, CD);
    // a trailing partial frame is not taken
    const first = h.backend.write(data.subarray(0, 10 * 4 + 3));
    expect(first).toBe(10);
    await pump(h, data.subarray(10 * 4), CD);
    await h.backend.close();
    const got = readFileSync(join(h.dir, 'out.raw'));
    expect(got.length).toBe(data.length);
    expect(Buffer.compare(got, Buffer.from(data))).toBe(0);
  });

  it('copies what it keeps: the host may reuse its buffer at once', async () => {
    h = makeBackend({ run: 'cat > out.raw' });
    await h.backend.activate(CD);
    const buf = new Uint8Array(400).fill(7);
    expect(h.backend.write(buf)).toBe(100);
    buf.fill(9); // reused before the pipe could have taken it
    await h.backend.close();
    expect([...new Set(readFileSync(join(h.dir, 'out.raw')))]).toEqual([7]);
  });

  it('passes the output format in SPEAKERD_* and logs stderr line by line', async () => {
    const fmt: SampleFormat = { encoding: 's24be', rate: 48000, channels: 1 };
    h = makeBackend({
      run: 'printf "%s %s %s" "$SPEAKERD_ENCODING" "$SPEAKERD_RATE" "$SPEAKERD_CHANNELS" > env.txt; echo "rate=$SPEAKERD_RATE" >&2; printf "second line\\r\\nthird, no newline" >&2; exec cat > /dev/null',
    });
    await h.backend.activate(fmt);
    await waitFor(() => count(h!.log, /^second line$/) === 1, 'stderr lines');
    // the unterminated last line is logged when stderr ends
    const stderrLines = () => h!.log.entries.filter((e) => e.fields.stream === 'stderr');
    expect(stderrLines().map((e) => e.msg)).toEqual(['rate=48000', 'second line']);
    await h.backend.close();
    await waitFor(() => stderrLines().length === 3, 'the last stderr line');
    const lines = stderrLines();
    expect(lines.map((e) => e.msg)).toEqual(['rate=48000', 'second line', 'third, no newline']);
    expect(lines.every((e) => e.level === 'warn')).toBe(true);
    expect(readFileSync(join(h.dir, 'env.txt'), 'utf8')).toBe('s24be 48000 1');
  });

  it('unpaced: takes as much as the pipe accepts, wakes the host on drain, and delivers exactly', async () => {
    // the reader starts late, so the pipe fills up first
    h = makeBackend({ run: 'sleep 0.3; cat > out.raw', unpaced: true });
    const clock = h.clock as VirtualClock;
    await h.backend.activate(CD);
    const bpf = bytesPerFrame(CD);
    // unpaced, delay() is what sits in speakerd's own stream buffer (whole frames) and writable() the room left in
    // it: together always the buffer's high-water mark (the default one of a stream), empty at the start
    const cap = getDefaultHighWaterMark(false) / bpf;
    expect(h.backend.writable()).toBe(cap);
    expect(cap).toBeGreaterThan(882); // more than the 20 ms lead of paced mode
    expect(h.backend.delay!()).toBe(0);
    const data = pattern(262_144, CD, 3); // 1 MiB, about 6 s of audio, with the clock standing still
    let off = 0;
    let sawFull = 0;
    while (off < data.length / bpf) {
      const w = h.backend.writable();
      const d = h.backend.delay!();
      if (w === 0) {
        // the pipe is full and the reader asleep: the buffer holds exactly its high-water mark, no more
        expect(d).toBe(cap);
        sawFull++;
        await h.events.nextWake(5000); // only a real wake() ends this quickly
        continue;
      }
      expect(d + w).toBe(cap);
      off += h.backend.write(data.subarray(off * bpf, Math.min(data.length, (off + w) * bpf)));
    }
    const endedFull = h.backend.writable() === 0; // the last write filled the buffer too
    expect(clock.now()).toBe(0);
    expect(sawFull).toBeGreaterThan(0);
    await waitFor(() => h!.backend.delay!() === 0, 'delay() back to 0 once the pipe has drained');
    expect(h.backend.writable()).toBe(cap);
    expect(h.events.wakes).toBe(sawFull + (endedFull ? 1 : 0)); // one wake() per drain
    await h.backend.close();
    const got = readFileSync(join(h.dir, 'out.raw'));
    expect(Buffer.compare(got, Buffer.from(data))).toBe(0);
  });

  const hasSox = spawnSync('sh', ['-c', 'command -v sox'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasSox)('feeds a real encoder (sox) set up from the SPEAKERD_* variables', async () => {
    h = makeBackend({
      run: 'exec sox -q -t raw -e signed -b 16 -L -c "$SPEAKERD_CHANNELS" -r "$SPEAKERD_RATE" - -t wav out.wav',
    });
    await h.backend.activate(CD);
    const data = pattern(4410, CD, 9);
    await pump(h, data, CD);
    await h.backend.close();
    const wav = readFileSync(join(h.dir, 'out.wav'));
    expect(wav.subarray(0, 4).toString()).toBe('RIFF');
    expect(wav.readUInt32LE(24)).toBe(44100); // sample rate in the fmt chunk
    expect(Buffer.compare(wav.subarray(wav.length - data.length), Buffer.from(data))).toBe(0);
  });

  it('idle ends the command by default; keepRunning keeps it for the next activate', async () => {
    h = makeBackend({ run: 'echo $$ >> pids; exec cat > /dev/null' });
    await h.backend.activate(CD);
    await h.backend.idle!();
    expect(count(h.log, /^command ended$/)).toBe(1);
    await h.backend.activate(CD);
    await h.backend.close();
    expect(readFileSync(join(h.dir, 'pids'), 'utf8').trim().split('\n')).toHaveLength(2);

    const k = makeBackend({ run: 'echo $$ >> pids; exec cat > /dev/null', keepRunning: true });
    try {
      await k.backend.activate(CD);
      await k.backend.idle!();
      expect(k.backend.writable()).toBe(0);
      await k.backend.activate(CD);
      await k.backend.activate({ ...CD, rate: 48000 }); // a new format needs a new command
      await k.backend.close();
      expect(readFileSync(join(k.dir, 'pids'), 'utf8').trim().split('\n')).toHaveLength(2);
      expect(existsSync(join(k.dir, 'pids'))).toBe(true);
    } finally {
      k.cleanup();
    }
  });
});

describe('command plugin: queries are queries', () => {
  it('spawns nothing before activate; writable() and delay() never write to the pipe', async () => {
    h = makeBackend({ run: 'echo started >> spawned.log; exec cat > out.raw', leadMs: 20 });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    const spawned = join(h.dir, 'spawned.log');
    const out = join(h.dir, 'out.raw');
    /** Ask many times: the same answer each time, and nothing changes. */
    const ask = () => {
      const w = b.writable();
      const d = b.delay!();
      for (let i = 0; i < 200; i++) {
        expect(b.writable()).toBe(w);
        expect(b.delay!()).toBe(d);
      }
      return { w, d };
    };
    expect(ask()).toEqual({ w: 0, d: 0 });
    clock.advance(1000);
    expect(ask()).toEqual({ w: 0, d: 0 });
    await sleep(200);
    expect(existsSync(spawned)).toBe(false);
    expect(count(h.log, /command started/)).toBe(0);

    await b.activate(CD);
    await waitFor(() => existsSync(spawned), 'the command to start');
    const data = pattern(44100, CD);
    let off = 0;
    const put = (frames: number) => {
      expect(b.write(data.subarray(off * 4, (off + frames) * 4))).toBe(frames);
      off += frames;
    };
    expect(ask()).toEqual({ w: 882, d: 0 }); // the lead
    put(882);
    expect(ask()).toEqual({ w: 0, d: 882 });
    clock.advance(10);
    expect(ask()).toEqual({ w: 441, d: 441 });
    put(441);
    // the host has nothing to write for a while: behind schedule, the query still only answers
    clock.advance(500);
    expect(ask()).toEqual({ w: 882, d: 0 });
    clock.advance(7);
    expect(ask()).toEqual({ w: 882, d: 0 });
    put(882);
    expect(ask()).toEqual({ w: 0, d: 882 });
    b.pause!();
    expect(ask()).toEqual({ w: 0, d: 0 });
    b.resume!();
    expect(ask()).toEqual({ w: 882, d: 0 }); // suspend: the schedule starts again from now
    await b.close();
    // exactly the frames written: not one byte from any query
    expect(Buffer.compare(readFileSync(out), Buffer.from(data.subarray(0, off * 4)))).toBe(0);
    expect(readFileSync(spawned, 'utf8')).toBe('started\n'); // one run, started by activate
  });
});
