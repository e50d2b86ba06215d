// The two addons binding.gyp builds: the production one holds no test hooks (not in its exports, not in its
// bytes); the test one can make thread creation fail, and that is a coded error, not std::terminate; and a
// stream left open when its environment goes away (a worker that exits or is terminated, process.exit) is
// stopped by the addon's cleanup hook: no crash, no hang.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ADDON_PATH, NativeErrorCodes, TEST_ADDON_PATH, type Binding } from '../src/binding.js';
import { haveCapability } from '../../../test/helpers/tools.js';
import { NULL_STREAM } from './helpers.js';

const built = existsSync(ADDON_PATH) && existsSync(TEST_ADDON_PATH);
const ok = haveCapability('the ALSA addons', built, `${ADDON_PATH} or ${TEST_ADDON_PATH} is missing`);
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const haveLib = ok && (createRequire(import.meta.url)(ADDON_PATH) as Binding).load() === undefined;

/** What only the test addon may hold: its entry points, the library override, the hooks' names. */
const HOOK_MARKERS = [
  'injectFault',
  'clearFaults',
  'testHooks',
  'SPEAKERD_ALSA_LIBRARY',
  ' (injected)',
  'TakeOpenFault',
  'TakeWriteFault',
  'TakeSleepFault',
  'TakeThreadFault',
  'LibraryOverride',
];

const OPTS = NULL_STREAM;

/** Run a CommonJS script in a fresh node; it must end by itself within `ms`. */
function run(script: string, env: Record<string, string> = {}, ms = 20_000) {
  const r = spawnSync(process.execPath, ['-e', script], {
    env: { ...process.env, ...env, ADDON: ADDON_PATH, TEST_ADDON: TEST_ADDON_PATH, OPTS: JSON.stringify(OPTS) },
    encoding: 'utf8',
    timeout: ms,
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, timedOut: r.error !== undefined };
}

describe.skipIf(!ok)('the production addon has no test hooks', () => {
  it('none of their names or strings are in its bytes (they are in the test addon)', () => {
    const prod = readFileSync(ADDON_PATH);
    const test = readFileSync(TEST_ADDON_PATH);
    expect(HOOK_MARKERS.filter((m) => prod.includes(m))).toEqual([]);
    expect(HOOK_MARKERS.filter((m) => !test.includes(m))).toEqual([]);
  });

  it('it exports what the backend uses and nothing else', () => {
    const prod = createRequire(import.meta.url)(ADDON_PATH) as Record<string, unknown>;
    expect(Object.keys(prod).sort()).toEqual(['Mixer', 'Stream', 'load', 'probeAsync', 'setLogHandler']);
  });

  it.skipIf(!haveLib)('it ignores SPEAKERD_ALSA_LIBRARY (the test addon honours it)', () => {
    const script = (which: string) =>
      `const b = require(process.env.${which}); process.stdout.write(String(b.load()));`;
    const env = { SPEAKERD_ALSA_LIBRARY: 'libasound-missing.so.2' };
    expect(run(script('ADDON'), env).stdout).toBe('undefined');
    expect(run(script('TEST_ADDON'), env).stdout).toMatch(/libasound-missing\.so\.2/);
  });
});

describe.skipIf(!haveLib)('a thread that cannot be created', () => {
  it('is SPEAKERD_ERR_ALSA_THREAD with its errno, for the writer and the probe; the process carries on and exits', () => {
    const r = run(`
      const b = require(process.env.TEST_ADDON);
      const opts = JSON.parse(process.env.OPTS);
      const out = {};
      const catchIt = (what, fn) => {
        try { fn(); out[what] = 'no error'; }
        catch (e) { out[what] = { name: e.name, code: e.code, errno: e.errno, message: e.message }; }
      };
      b.injectFault({ thread: 11, threadCount: 1 });
      catchIt('stream', () => new b.Stream(opts, () => {}));
      b.injectFault({ thread: 12, threadCount: 1 });
      catchIt('probe', () => b.probeAsync({ device: 'null', format: 2, rate: 44100, channels: 2 }, () => {}));
      // then both work again, and nothing the failures left behind keeps the process alive (the probe does not:
      // this timer does, until the stream has closed)
      const keep = setTimeout(() => {}, 15000);
      b.probeAsync({ device: 'null', format: 2, rate: 44100, channels: 2 }, (p) => {
        out.probeAfter = p.ok;
        const s = new b.Stream(opts, (type) => {
          if (type !== 'closed') return;
          s.join();
          out.streamAfter = true;
          process.stdout.write(JSON.stringify(out));
          clearTimeout(keep);
        });
        s.close(false);
      });
    `);
    expect(r.timedOut, r.stderr).toBe(false);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.stream).toMatchObject({ name: 'Error', code: NativeErrorCodes.THREAD, errno: 11 });
    expect((out.stream as { message: string }).message).toMatch(/^cannot start the writer thread: std::thread/);
    expect(out.probe).toMatchObject({ name: 'Error', code: NativeErrorCodes.THREAD, errno: 12 });
    expect(out).toMatchObject({ probeAfter: true, streamAfter: true });
  });
});

describe.skipIf(!haveLib || !hasPrlimit)('a thread that cannot be created, for real (production addon)', () => {
  it('an address-space limit with no room for a thread stack: SPEAKERD_ERR_ALSA_THREAD EAGAIN, not a crash', () => {
    // the child says how much address space it has, the parent lets it have 2 MiB more (prlimit --as), and the
    // writer's 8 MiB stack then cannot be mapped: std::thread throws std::system_error(EAGAIN)
    const child = `
      const b = require(process.env.ADDON);
      const vm = () => Number(/VmSize:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]);
      process.stdout.write(vm() + '\\n');
      process.stdin.once('data', () => {
        let out;
        try { new b.Stream(JSON.parse(process.env.OPTS), () => {}); out = 'no error'; }
        catch (e) { out = { name: e.name, code: e.code, errno: e.errno, message: e.message }; }
        process.stdout.write(JSON.stringify(out));
        process.exit(0);
      });
    `;
    const r = run(
      `
      const { spawn, execFileSync } = require('node:child_process');
      const c = spawn(process.execPath, ['-e', ${JSON.stringify(child)}], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      let limited = false;
      c.stdout.on('data', (d) => {
        out += d;
        if (limited || !out.includes('\\n')) return;
        limited = true;
        const bytes = (Number(out.split('\\n')[0]) + 2048) * 1024;
        execFileSync('prlimit', ['--pid', String(c.pid), '--as=' + bytes + ':' + bytes]);
        c.stdin.write('go\\n');
      });
      c.on('exit', (code, signal) => process.stdout.write(JSON.stringify({ code, signal, said: out.split('\\n')[1] })));
    `,
    );
    expect(r.status, r.stderr).toBe(0);
    const { code, signal, said } = JSON.parse(r.stdout) as { code: number; signal: string | null; said: string };
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(JSON.parse(said)).toMatchObject({ name: 'Error', code: NativeErrorCodes.THREAD, errno: 11 });
  });
});

/**
 * A worker that opens the null PCM, writes to it for a while, and then `how` (never closing the stream). Its
 * writer thread must be gone when the worker is (checked in /proc/self/task). On Node 20 the ObjectWrap
 * finalizers that Node-API runs at teardown would stop it too; the cleanup hook makes the order explicit (the
 * writer is stopped before the thread-safe function it posts to is torn down) instead of relying on that.
 */
const worker = (how: 'exit' | 'terminate') => `
  const { Worker } = require('node:worker_threads');
  const fs = require('node:fs');
  // the writer threads (named speakerd-alsa) of this process
  const writers = () => fs.readdirSync('/proc/self/task').filter((t) => {
    try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'speakerd-alsa'; }
    catch { return false; }
  }).length;
  const rounds = 5;
  let written = 0;
  let seen = 0;
  let left = 0;
  const one = (i) => new Promise((resolve, reject) => {
    const w = new Worker(\`
      const { parentPort } = require('node:worker_threads');
      const b = require(process.env.ADDON);
      const s = new b.Stream(JSON.parse(process.env.OPTS), () => {});
      s.open();
      const chunk = new Uint8Array(4 * 2048);
      let n = 0;
      // writing on until the parent has counted the writer threads: then it exits (or is terminated) mid-stream
      parentPort.on('message', () => process.exit(0));
      setInterval(() => {
        s.write(chunk);
        if (++n === 20) parentPort.postMessage(s.info().framesWritten);
      }, 2);
    \`, { eval: true });
    w.on('message', (frames) => {
      written += frames > 0 ? 1 : 0;
      seen = Math.max(seen, writers());
      if ('${how}' === 'terminate') w.terminate();
      else w.postMessage('exit');
    });
    w.on('error', reject);
    w.on('exit', () => { left += writers(); resolve(); });
  });
  (async () => {
    for (let i = 0; i < rounds; i++) await one(i);
    process.stdout.write(JSON.stringify({ rounds, written, seen, left }));
  })();
`;

describe.skipIf(!haveLib)('a stream left open when its environment goes away', () => {
  for (const how of ['exit', 'terminate'] as const)
    it(`a worker that ${how === 'exit' ? 'calls process.exit()' : 'is terminated'} while writing: no crash, no hang`, () => {
      const r = run(worker(how));
      expect(r.timedOut, `hung: ${r.stderr}`).toBe(false);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      // each worker's writer ran, and none outlived its worker (stopped, PCM closed, joined)
      expect(JSON.parse(r.stdout)).toEqual({ rounds: 5, written: 5, seen: 1, left: 0 });
    });
});
