import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The `speakerd` binary the end-to-end tests run: this tree's, or the one SPEAKERD_BIN names (another build, e.g.
 * an older checkout's packages/host/bin/speakerd.js, to show that a test fails there).
 */
export const SPEAKERD = process.env.SPEAKERD_BIN
  ? resolve(process.env.SPEAKERD_BIN)
  : join(REPO, 'packages/host/bin/speakerd.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

/** Run `node ARGS…` (a script of this tree) to completion; killed and rejected after `timeoutMs` (20 s). */
export function runNode(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 20000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Run the built `speakerd` binary to completion, as a person or a script would. */
export function runSpeakerd(args: string[], options: RunOptions & { bin?: string } = {}): Promise<RunResult> {
  return runNode([options.bin ?? SPEAKERD, ...args], options);
}

/** Directories made by {@link tempDir} and not yet removed: removed when the file's tests end. */
const made = new Set<string>();
try {
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
    made.clear();
  });
} catch {
  // imported outside a test file's collection (a script): callers clean up themselves
}

/**
 * A temporary directory removed by the returned function, and in any case when the test file's tests end, passed or
 * failed (failed runs left ~200 speakerd-* directories in /tmp per few runs). Not at the end of the test that made
 * it: under describe.concurrent the global onTestFinished may attach to another test and remove a directory a
 * running speakerd still uses.
 */
export function tempDir(prefix = 'speakerd-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  const cleanup = () => {
    made.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, cleanup };
}

/** True when a message looks like a stack trace (it never should, for a user error). */
export function hasStackTrace(text: string): boolean {
  return /\n\s+at .+[(:]\d+/.test(text);
}
