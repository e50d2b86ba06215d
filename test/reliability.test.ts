// The short versions of `npm run fuzz` and `npm run soak` (docs/reliability.md): they assert that the harness ran
// and that nothing crashed or hung and every answer was the expected one, never a time.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function node(script: string, args: string[], timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // not a timing assertion: a harness that never ends must not hold the test run (it is killed, and fails)
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function lastJson(run: Run): Record<string, any> {
  const line = run.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as Record<string, any>;
  } catch {
    throw new Error(`no JSON summary (exit ${run.code}):\n${run.stdout}\n${run.stderr}`);
  }
}

describe('reliability harness (short versions)', () => {
  it('fuzz: 20,000 control lines and 2,000 decoder headers, no crash, no hang, every answer as specified', async () => {
    const run = await node('test/reliability/fuzz.mjs', ['--lines', '20000', '--headers', '2000', '--json'], 120_000);
    const s = lastJson(run);
    // the seed replays the run: node test/reliability/fuzz.mjs --lines 20000 --headers 2000 --seed N
    const why = JSON.stringify(
      { seed: s.seed, crashes: s.crashList, hangs: s.hangList, problems: s.problems },
      null,
      1,
    );
    expect(s.lines, why).toBe(20000);
    expect(s.headers, why).toBe(2000);
    expect(s.headerAnswers, why).toBeGreaterThan(1500);
    expect(s.status.n, why).toBeGreaterThan(20);
    expect(s.crashes, why).toBe(0);
    expect(s.hangs, why).toBe(0);
    expect(s.violations, why).toBe(0);
    expect(s.idRuleViolations, why).toBe(0);
    expect(run.code, why).toBe(0);
  }, 150_000);

  it('soak: a virtual hour across the RTP timestamp wrap, 20 s through `command`: frames in == frames out', async () => {
    const run = await node(
      'test/reliability/soak.mjs',
      ['--hours', '1', '--minutes', String(20 / 60), '--max-track-s', '5', '--sample-s', '2', '--json'],
      150_000,
    );
    const s = lastJson(run);
    const why = JSON.stringify(s, null, 1) + run.stderr;
    expect(s.virtual.wraps, why).toBe(1);
    expect(s.virtual.sequenceError, why).toBeNull();
    expect(s.virtual.framesOut, why).toBe(s.virtual.framesIn);
    expect(s.virtual.rampErrors, why).toBe(0);
    expect(s.real.crashed, why).toBeNull();
    expect(s.real.tracks, why).toBeGreaterThan(0);
    expect(s.real.framesOut, why).toBe(s.real.framesIn);
    expect(s.real.rampErrors, why).toBe(0);
    expect(run.code, why).toBe(0);
  }, 180_000);
});
