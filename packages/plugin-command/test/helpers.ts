import plugin from '../src/index.js';
import {
  TOKENS,
  VirtualClock,
  bytesPerFrame,
  type Backend,
  type BackendState,
  type Clock,
  type HostEvents,
  type Logger,
  type PluginContext,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
// after the SDK, which loads reflect-metadata first
import { container } from 'tsyringe';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

export interface LogEntry {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** A tiny collecting logger with pino's calling convention. */
export function collectingLogger(
  entries: LogEntry[] = [],
  bindings: Record<string, unknown> = {},
): Logger & {
  entries: LogEntry[];
} {
  const make =
    (level: string) =>
    (a: string | Record<string, unknown>, b?: string): void => {
      if (typeof a === 'string') entries.push({ level, fields: { ...bindings }, msg: a });
      else entries.push({ level, fields: { ...bindings, ...a }, msg: b ?? '' });
    };
  return {
    entries,
    trace: make('trace'),
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    fatal: make('fatal'),
    child: (more) => collectingLogger(entries, { ...bindings, ...more }),
  };
}

export class CollectingEvents implements HostEvents {
  states: { state: BackendState; message: string }[] = [];
  wakes = 0;
  #waiters: (() => void)[] = [];
  backendState(state: BackendState, message: string): void {
    this.states.push({ state, message });
  }
  wake(): void {
    this.wakes++;
    const w = this.#waiters;
    this.#waiters = [];
    for (const fn of w) fn();
  }
  /** Resolves at the next wake() (or after `ms` real milliseconds, as a safety net). */
  nextWake(ms = 2000): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

export interface Harness {
  backend: Backend;
  clock: Clock;
  log: ReturnType<typeof collectingLogger>;
  events: CollectingEvents;
  dir: string;
  cleanup(): void;
}

/** Build the backend through a child container, the way the host does. */
export function makeBackend(raw: Record<string, unknown>, clock: Clock = new VirtualClock()): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-command-'));
  const log = collectingLogger();
  const events = new CollectingEvents();
  const context: PluginContext = { configDir: dir, pluginName: 'command', hostVersion: '0.0.0-test' };
  const c = container.createChildContainer();
  c.register(TOKENS.Options, { useValue: plugin.options.parse(raw) });
  c.register(TOKENS.Logger, { useValue: log });
  c.register(TOKENS.Clock, { useValue: clock });
  c.register(TOKENS.Events, { useValue: events });
  c.register(TOKENS.Context, { useValue: context });
  const backend = c.resolve<Backend>(plugin.backend as never);
  return { backend, clock, log, events, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
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
  return log.entries.filter((e) => re.test(e.msg)).length;
}

/**
 * Feed `data` through the backend on a VirtualClock: write what writable() allows; when it allows nothing,
 * advance the clock by `stepMs`, and if that does not help either (the pipe is backed up) wait for wake().
 */
export async function pump(h: Harness, data: Uint8Array, format: SampleFormat, stepMs = 20): Promise<void> {
  const clock = h.clock as VirtualClock;
  const bpf = bytesPerFrame(format);
  const frames = data.length / bpf;
  let off = 0;
  while (off < frames) {
    const w = h.backend.writable();
    if (w === 0) {
      clock.advance(stepMs);
      if (h.backend.writable() === 0) await h.events.nextWake(200);
      continue;
    }
    const n = Math.min(w, frames - off);
    const took = h.backend.write(data.subarray(off * bpf, (off + n) * bpf));
    off += took;
  }
}
