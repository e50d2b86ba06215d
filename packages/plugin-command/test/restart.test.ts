import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RealClock, VirtualClock } from '@speakerd/plugin-sdk';
import { CD, count, dead, makeBackend, pattern, sleep, waitFor, type Harness } from './helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.backend.close();
  h?.cleanup();
  h = undefined;
});

function restartDelays(hh: Harness): number[] {
  return hh.log.entries.filter((e) => /^restarting the command/.test(e.msg)).map((e) => e.fields.delayMs as number);
}
const starts = (hh: Harness) => count(hh.log, /^command started/);

async function readPid(dir: string): Promise<number> {
  const file = join(dir, 'pid');
  await waitFor(() => {
    try {
      return readFileSync(file, 'utf8').endsWith('\n');
    } catch {
      return false;
    }
  }, 'pid file');
  return Number(readFileSync(file, 'utf8'));
}

describe('restarts', () => {
  it('restarts a command that exits, with a doubling back-off up to restartMaxMs; one lost event', async () => {
    h = makeBackend({ run: 'exit 1', restartMinMs: 100, restartMaxMs: 800 });
    const clock = h.clock as VirtualClock;
    await h.backend.activate(CD);
    const expected = [100, 200, 400, 800, 800, 800];
    for (let i = 0; i < expected.length; i++) {
      await waitFor(() => restartDelays(h!).length === i + 1, `restart ${i + 1}`);
      expect(restartDelays(h)[i]).toBe(expected[i]);
      expect(clock.nextDeadline()! - clock.now()).toBe(expected[i]);
      clock.advance(expected[i]! - 1);
      expect(starts(h)).toBe(i + 1); // not a millisecond early
      clock.advance(1);
      await waitFor(() => starts(h!) === i + 2, `start ${i + 2}`);
    }
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
    expect(h.events.states[0]!.message).toMatch(/exited with code 1/);
    // while the command is down the stream keeps real time: frames are taken and dropped
    expect(h.backend.writable()).toBeGreaterThan(0);
    expect(h.backend.write(pattern(100, CD))).toBe(100);
  });

  it('survives EPIPE from a command that stops after 100 bytes, and restarts it', async () => {
    h = makeBackend({ run: 'head -c 100 > /dev/null', restartMinMs: 50, restartMaxMs: 1000 });
    const clock = h.clock as VirtualClock;
    await h.backend.activate(CD);
    for (let run = 1; run <= 3; run++) {
      // feed it until it is gone (head exits after 100 bytes; later writes get EPIPE, which must not crash us)
      await waitFor(() => {
        const w = h!.backend.writable();
        if (w > 0) h!.backend.write(pattern(w, CD));
        else clock.advance(5);
        return restartDelays(h!).length === run;
      }, `exit ${run}`);
      const delay = restartDelays(h)[run - 1]!;
      expect(delay).toBe(50 * 2 ** (run - 1));
      clock.advance(delay);
      await waitFor(() => starts(h!) === run + 1, `start ${run + 1}`);
    }
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
  });

  it('reports ok when a restarted command keeps running, and resets the back-off after a good run', async () => {
    h = makeBackend({
      // fails while "fail" exists; otherwise runs (reading stdin) until "stop" appears
      run: 'if [ -e fail ]; then exit 1; fi; cat > /dev/null & while [ ! -e stop ]; do sleep 0.01; done; rm stop; kill $!; exit 3',
      restartMinMs: 100,
      restartMaxMs: 5000,
    });
    const clock = h.clock as VirtualClock;
    writeFileSync(join(h.dir, 'fail'), '');
    await h.backend.activate(CD);
    for (const [i, d] of [100, 200, 400].entries()) {
      await waitFor(() => restartDelays(h!).length === i + 1, `restart ${i + 1}`);
      expect(restartDelays(h)[i]).toBe(d);
      if (i < 2) {
        clock.advance(d);
        await waitFor(() => starts(h!) === i + 2, `start ${i + 2}`);
      }
    }
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
    rmSync(join(h.dir, 'fail'));
    clock.advance(400);
    await waitFor(() => starts(h!) === 4, 'a good start');
    clock.advance(499);
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
    clock.advance(1);
    expect(h.events.states.map((s) => s.state)).toEqual(['lost', 'ok']);
    // a good long run (10 s) resets the back-off
    clock.advance(10_000);
    writeFileSync(join(h.dir, 'stop'), '');
    await waitFor(() => restartDelays(h!).length === 4, 'restart after the good run');
    expect(restartDelays(h)[3]).toBe(100);
    expect(h.events.states.map((s) => s.state)).toEqual(['lost', 'ok', 'lost']);
    expect(h.events.states[2]!.message).toMatch(/code 3/);
  });

  it('kills and restarts a command that stops reading', async () => {
    h = makeBackend({ run: 'echo $$ > pid; exec sleep 1000', leadMs: 20, restartMinMs: 100, stopTimeoutMs: 200 });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    await b.activate(CD);
    const pid = await readPid(h.dir);
    // feed at real time until the pipe is full: then writable stays 0 however far the clock moves
    let full = false;
    for (let i = 0; i < 2000 && !full; i++) {
      const w = b.writable();
      if (w > 0) b.write(pattern(w, CD));
      clock.advance(20);
      full = b.writable() === 0;
    }
    expect(full).toBe(true);
    const t0 = clock.now();
    clock.advance(1900);
    expect(h.events.states).toEqual([]);
    clock.advance(100); // max(2 s, 10 × lead) after the pipe filled
    expect(clock.now() - t0).toBe(2000);
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
    expect(h.events.states[0]!.message).toMatch(/stopped reading/);
    // while it is being replaced, audio is taken at real time and dropped
    expect(b.writable()).toBeGreaterThan(0);
    await waitFor(() => restartDelays(h!).length === 1, 'restart scheduled');
    expect(dead(pid)).toBe(true);
    clock.advance(100);
    await waitFor(() => starts(h!) === 2, 'second start');
  });

  it('does not count a full pipe as a stall while paused in suspend mode', async () => {
    h = makeBackend({ run: 'exec sleep 1000', pauseMode: 'suspend', stopTimeoutMs: 200 });
    const clock = h.clock as VirtualClock;
    const b = h.backend;
    await b.activate(CD);
    for (let i = 0; i < 2000 && !(b.writable() === 0 && i > 0); i++) {
      const w = b.writable();
      if (w > 0) b.write(pattern(w, CD));
      clock.advance(20);
    }
    await b.pause!();
    clock.advance(60_000);
    expect(h.events.states).toEqual([]);
    await b.resume!();
    clock.advance(2000);
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
  });

  it('reports a command that cannot start (no such directory) and keeps retrying', async () => {
    h = makeBackend({ run: 'cat > /dev/null', restartMinMs: 100 });
    rmSync(h.dir, { recursive: true, force: true });
    await h.backend.activate(CD);
    await waitFor(() => restartDelays(h!).length === 1, 'restart scheduled');
    expect(h.events.states.map((s) => s.state)).toEqual(['lost']);
    expect(h.events.states[0]!.message).toMatch(/could not be started/);
  });
});

describe('close', () => {
  it('never hangs: stdin closed, then SIGTERM, then SIGKILL for the whole process group', async () => {
    // the shell ignores SIGTERM, and so does its child (its pid is the one written to the file)
    h = makeBackend({ run: 'trap "" TERM; sleep 100 & echo $! > pid; wait', stopTimeoutMs: 200 }, new RealClock());
    await h.backend.activate(CD);
    const pid = await readPid(h.dir);
    const started = Date.now();
    const closed = h.backend.close().then(() => 'closed');
    const result = await Promise.race([closed, sleep(10_000).then(() => 'hung')]);
    expect(result).toBe('closed');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(count(h.log, /: SIGTERM$/)).toBe(1);
    expect(count(h.log, /: SIGKILL$/)).toBe(1);
    await waitFor(() => dead(pid), "the shell's child is dead too");
    expect(h.events.states).toEqual([]); // a deliberate stop is no failure
  });

  it('returns as soon as a well-behaved command has read everything and exited', async () => {
    h = makeBackend({ run: 'exec cat > /dev/null', stopTimeoutMs: 60_000 });
    await h.backend.activate(CD);
    h.backend.write(pattern(882, CD));
    await h.backend.close(); // the virtual clock never moves: no timeout is involved
    expect(count(h.log, /^command ended$/)).toBe(1);
    expect(
      await h.backend.activate(CD).then(
        () => 'ok',
        (e: Error) => e.message,
      ),
    ).toMatch(/closed/);
  });

  it('stops a command that is being restarted, and cancels a pending restart', async () => {
    h = makeBackend({ run: 'exit 2', restartMinMs: 1000 });
    const clock = h.clock as VirtualClock;
    await h.backend.activate(CD);
    await waitFor(() => restartDelays(h!).length === 1, 'restart scheduled');
    await h.backend.close();
    clock.advance(5000);
    await sleep(50);
    expect(starts(h)).toBe(1);
  });
});
