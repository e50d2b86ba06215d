import { onTestFinished } from 'vitest';
import plugin from '../src/index.js';
import { VirtualClock, bytesPerFrame, type Clock, type SampleFormat } from '@speakerd/plugin-sdk';
import { createTestBackend, feed, type TestBackend } from '@speakerd/plugin-sdk/testing';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

export interface Harness extends TestBackend {
  dir: string;
  cleanup(): void;
}

/** Build the backend through a child container, the way the host does. */
export function makeBackend(raw: Record<string, unknown>, clock: Clock = new VirtualClock()): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-command-'));
  const t = createTestBackend(plugin, { options: raw, clock, configDir: dir });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  onTestFinished(cleanup); // also when the test fails before its own cleanup()
  return { ...t, dir, cleanup };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `pred` on the real clock until it holds; throws after `timeoutMs`. */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 8000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** `frames` frames of a recognisable pattern that never contains an all-zero (or all-0x80) frame. */
export function pattern(frames: number, format: SampleFormat, seed = 0): Uint8Array {
  const bpf = bytesPerFrame(format);
  const out = new Uint8Array(frames * bpf);
  for (let i = 0; i < out.length; i++) out[i] = 1 + ((i * 7 + seed) % 100);
  return out;
}

export function count(log: Harness['log'], re: RegExp): number {
  return log.count(re);
}

/**
 * Feed `data` through the backend on a VirtualClock: write what writable() allows; when it allows nothing,
 * advance the clock by `stepMs`, and if that does not help either (the pipe is backed up) wait for wake().
 */
export function pump(h: Harness, data: Uint8Array, format: SampleFormat, stepMs = 20): Promise<void> {
  return feed(h, data, format, { stepMs });
}

/** The process is gone or a zombie (a grandchild is reaped by whatever init the machine has, whenever). */
export function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}
