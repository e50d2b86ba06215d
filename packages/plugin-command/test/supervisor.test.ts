// The process supervisor on its own, with real child processes (execa) and the injected (virtual) clock: back-off,
// the stop escalation on both clocks, stall detection.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { VirtualClock, type SampleFormat } from '@speakerd/plugin-sdk';
import { MemoryLogger, RecordingEvents } from '@speakerd/plugin-sdk/testing';
import {
  CONFIRM_AFTER_MS,
  CommandSupervisor,
  MIN_STALL_MS,
  type SupervisorHooks,
  type SupervisorOptions,
} from '../src/supervisor.js';
import { CD, dead, sleep, waitFor } from './helpers.js';

function setup(run: string, opts: Partial<SupervisorOptions> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-supervisor-'));
  const clock = new VirtualClock();
  const log = new MemoryLogger();
  const events = new RecordingEvents();
  const state = { format: CD as SampleFormat | undefined, want: true, reading: true, drains: 0 };
  const hooks: SupervisorHooks = {
    format: () => state.format,
    wantRunning: () => state.want,
    expectingReads: () => state.reading,
    drained: () => state.drains++,
  };
  const options: SupervisorOptions = {
    run,
    leadMs: 20,
    unpaced: false,
    restartMinMs: 100,
    restartMaxMs: 800,
    stopTimeoutMs: 60_000, // only the virtual clock moves the stop steps, unless a test says otherwise
    ...opts,
  };
  const sup = new CommandSupervisor(options, log, clock, events, dir, hooks);
  onTestFinished(async () => {
    state.want = false;
    sup.cancelRestart();
    // move the virtual clock until every run is gone (a run that ignores SIGTERM takes two steps)
    let done = false;
    const all = sup.stopAll().then(() => (done = true));
    for (let i = 0; i < 4 && !done; i++) {
      await sleep(50);
      clock.advance(options.stopTimeoutMs);
    }
    await all;
    rmSync(dir, { recursive: true, force: true });
  });
  const delays = () =>
    log.entries.filter((e) => /^restarting the command/.test(e.msg)).map((e) => e.fields.delayMs as number);
  const starts = () => log.count(/^command started/);
  const readPid = async (name = 'pid') => {
    const file = join(dir, name);
    await waitFor(() => {
      try {
        return readFileSync(file, 'utf8').endsWith('\n');
      } catch {
        return false;
      }
    }, `${name} file`);
    return Number(readFileSync(file, 'utf8'));
  };
  return { sup, clock, log, events, state, dir, delays, starts, readPid };
}

describe('supervisor: restarts', () => {
  it('a command that exits at once is restarted after 100, 200, 400, 800, 800 ms on the injected clock', async () => {
    const s = setup('exit 1');
    await s.sup.ensureRunning();
    const expected = [100, 200, 400, 800, 800];
    for (const [i, delay] of expected.entries()) {
      await waitFor(() => s.delays().length === i + 1, `restart ${i + 1} scheduled`);
      expect(s.delays()[i]).toBe(delay);
      expect(s.sup.restartPending).toBe(true);
      expect(s.clock.nextDeadline()! - s.clock.now()).toBe(delay);
      s.clock.advance(delay - 1);
      await sleep(20);
      expect(s.starts()).toBe(i + 1); // not a millisecond early
      s.clock.advance(1);
      await waitFor(() => s.starts() === i + 2, `start ${i + 2}`);
    }
    // one report for the whole episode, with the reason
    expect(s.events.states).toEqual([{ state: 'lost', message: 'the command exited with code 1' }]);
  });

  it('no restart while its owner wants no run; ensureRunning() waits for a pending restart', async () => {
    const s = setup('exit 2');
    await s.sup.ensureRunning();
    await waitFor(() => s.delays().length === 1, 'restart scheduled');
    await s.sup.ensureRunning(); // a restart is pending: no second run now
    await sleep(50);
    expect(s.starts()).toBe(1);
    s.state.want = false;
    s.clock.advance(100);
    await sleep(50);
    expect(s.starts()).toBe(1);
    expect(s.sup.restartPending).toBe(false);
  });

  it(`a restarted command still running after ${CONFIRM_AFTER_MS} ms is reported ok`, async () => {
    const s = setup('[ -e ok ] || { touch ok; exit 1; }; exec cat > /dev/null');
    await s.sup.ensureRunning();
    await waitFor(() => s.delays().length === 1, 'restart scheduled');
    s.clock.advance(100);
    await waitFor(() => s.starts() === 2, 'second start');
    expect(s.sup.up).toBe(true);
    s.clock.advance(CONFIRM_AFTER_MS - 1);
    expect(s.events.states.map((e) => e.state)).toEqual(['lost']);
    s.clock.advance(1);
    expect(s.events.states.map((e) => e.state)).toEqual(['lost', 'ok']);
  });
});

describe('supervisor: stopping', () => {
  it('a command that ignores SIGTERM gets SIGKILL one stopTimeoutMs after it (injected clock)', async () => {
    // the shell and its child ignore SIGTERM; neither reads stdin, so closing it ends nothing
    const s = setup('trap "" TERM; echo $$ > pid; sleep 1000 & echo $! > child; wait');
    await s.sup.ensureRunning();
    const pid = await s.readPid();
    const child = await s.readPid('child');
    let stopped = false;
    const stopping = s.sup.stopCurrent().then(() => (stopped = true));
    expect(s.sup.up).toBe(false); // nothing more is written to it
    s.clock.advance(59_999);
    expect(s.log.count(/SIGTERM$/)).toBe(0);
    s.clock.advance(1);
    expect(s.log.count(/did not exit 60000 ms after its input closed: SIGTERM$/)).toBe(1);
    await sleep(300); // SIGTERM has been delivered, and ignored
    expect(stopped).toBe(false);
    expect(dead(pid) || dead(child)).toBe(false);
    s.clock.advance(59_999);
    expect(s.log.count(/SIGKILL$/)).toBe(0);
    s.clock.advance(1);
    expect(s.log.count(/did not exit 60000 ms after SIGTERM: SIGKILL$/)).toBe(1);
    await waitFor(() => stopped, 'the stop to end once SIGKILL is sent');
    await stopping;
    expect(dead(pid)).toBe(true);
    await waitFor(() => dead(child), "the shell's child is dead too (the whole group got SIGKILL)");
    expect(s.log.entries.find((e) => e.msg === 'command ended')?.fields).toMatchObject({ signal: 'SIGKILL' });
    expect(s.events.states).toEqual([]); // a deliberate stop is no failure
    expect(s.delays()).toEqual([]); // and is not restarted
  });

  it('stopping stays bounded in real time on an injected clock that nobody advances', async () => {
    const s = setup('trap "" TERM; sleep 1000 & wait', { stopTimeoutMs: 100 });
    await s.sup.ensureRunning();
    await sleep(100); // the trap is set
    const result = await Promise.race([s.sup.stopCurrent().then(() => 'stopped'), sleep(10_000).then(() => 'hung')]);
    expect(result).toBe('stopped');
    expect(s.clock.now()).toBe(0);
    expect(s.log.count(/: SIGTERM$/)).toBe(1);
    expect(s.log.count(/: SIGKILL$/)).toBe(1);
  });

  it('a command that exits when its stdin closes needs no signal', async () => {
    const s = setup('exec cat > out.raw');
    await s.sup.ensureRunning();
    s.sup.write(Buffer.from('abcd'));
    await s.sup.stopCurrent(); // the virtual clock never moves
    expect(readFileSync(join(s.dir, 'out.raw'), 'utf8')).toBe('abcd');
    expect(s.log.count(/SIG/)).toBe(0);
    expect(s.log.count(/^command ended$/)).toBe(1);
  });
});

describe('supervisor: stall detection', () => {
  /** One write bigger than the pipe and the stream buffer together: the pipe stays full while nobody reads. */
  const BIG = Buffer.alloc(1 << 20, 1);

  it(`a command that stops reading is killed ${MIN_STALL_MS} ms after the pipe filled, reported lost, restarted`, async () => {
    const s = setup('echo $$ > pid; exec sleep 1000');
    await s.sup.ensureRunning();
    const pid = await s.readPid();
    s.sup.write(BIG);
    expect(s.sup.backedUp).toBe(true);
    s.clock.advance(MIN_STALL_MS - 1);
    expect(s.events.states).toEqual([]);
    expect(s.sup.up).toBe(true);
    s.clock.advance(1);
    expect(s.events.states).toEqual([
      { state: 'lost', message: `the command stopped reading its input (pipe full for ${MIN_STALL_MS} ms)` },
    ]);
    expect(s.sup.up).toBe(false); // nothing more is written to it
    await waitFor(() => s.delays().length === 1, 'restart scheduled'); // SIGTERM was enough
    expect(dead(pid)).toBe(true);
    expect(s.delays()).toEqual([100]);
    s.clock.advance(100);
    await waitFor(() => s.starts() === 2, 'second start');
    expect(s.events.states.map((e) => e.state)).toEqual(['lost']);
  });

  it('the limit is 10 × leadMs when that is longer; no stall while reads are not expected', async () => {
    const s = setup('exec sleep 1000', { leadMs: 500 });
    await s.sup.ensureRunning();
    s.sup.write(BIG);
    s.state.reading = false; // paused in suspend mode
    s.sup.holdStallWatch();
    s.clock.advance(60_000);
    expect(s.events.states).toEqual([]);
    s.state.reading = true;
    s.sup.resumeStallWatch(); // counts from now
    s.clock.advance(4999);
    expect(s.events.states).toEqual([]);
    s.clock.advance(1);
    expect(s.events.states.map((e) => e.message)).toEqual([
      'the command stopped reading its input (pipe full for 5000 ms)',
    ]);
  });

  it('a pipe that drains is no stall: the owner is told once, and the watch is off', async () => {
    const s = setup('sleep 0.3; exec cat > /dev/null');
    await s.sup.ensureRunning();
    s.sup.write(BIG);
    expect(s.sup.backedUp).toBe(true);
    await waitFor(() => s.state.drains === 1, 'drain');
    expect(s.sup.backedUp).toBe(false);
    expect(s.sup.buffered).toBe(0);
    s.clock.advance(60_000);
    expect(s.events.states).toEqual([]);
    expect(s.sup.up).toBe(true);
  });
});
