import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/** A temporary directory removed by the returned function. */
export function tempDir(prefix = 'speakerd-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** True when a message looks like a stack trace (it never should, for a user error). */
export function hasStackTrace(text: string): boolean {
  return /\n\s+at .+[(:]\d+/.test(text);
}
