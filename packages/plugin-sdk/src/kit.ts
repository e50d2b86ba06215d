/**
 * @packageDocumentation
 * Test kit for backend authors: `import { createTestBackend, MemoryLogger, RecordingEvents } from
 * '@speakerd/plugin-sdk/testing'`. It builds a backend through a tsyringe child container with the same tokens
 * and services the host registers, so a test exercises the plugin as speakerd will run it.
 */
import { container } from './di.js';
import type { Backend, BackendState, HostEvents } from './backend.js';
import { RealClock, VirtualClock, type Clock } from './clock.js';
import { ContractViolation, frameCountProblem, writeProblem } from './contract.js';
import { bytesPerFrame, type SampleFormat } from './format.js';
import type { Logger } from './logger.js';
import type { SpeakerdPlugin } from './plugin.js';
import { registerPluginServices } from './services.js';

export { VirtualClock, RealClock };

/** One log call: its level, its fields (bindings included) and its message. */
export interface LogEntry {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  readonly fields: Record<string, unknown>;
  readonly msg: string;
}

/** A logger with pino's calling convention that keeps every entry (children share the list). */
export class MemoryLogger implements Logger {
  constructor(
    readonly entries: LogEntry[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}

  #log(level: LogEntry['level'], a: string | Record<string, unknown>, b?: string): void {
    if (typeof a === 'string') this.entries.push({ level, fields: { ...this.bindings }, msg: a });
    else this.entries.push({ level, fields: { ...this.bindings, ...a }, msg: b ?? '' });
  }
  trace = (a: string | Record<string, unknown>, b?: string) => this.#log('trace', a, b);
  debug = (a: string | Record<string, unknown>, b?: string) => this.#log('debug', a, b);
  info = (a: string | Record<string, unknown>, b?: string) => this.#log('info', a, b);
  warn = (a: string | Record<string, unknown>, b?: string) => this.#log('warn', a, b);
  error = (a: string | Record<string, unknown>, b?: string) => this.#log('error', a, b);
  fatal = (a: string | Record<string, unknown>, b?: string) => this.#log('fatal', a, b);
  child(bindings: Record<string, unknown>): MemoryLogger {
    return new MemoryLogger(this.entries, { ...this.bindings, ...bindings });
  }

  /** How many entries' messages match `re`. */
  count(re: RegExp): number {
    return this.entries.filter((e) => re.test(e.msg)).length;
  }
}

/** {@link HostEvents} that records backend states and wake-ups, and lets a test wait for the next wake-up. */
export class RecordingEvents implements HostEvents {
  readonly states: { state: BackendState; message: string }[] = [];
  wakes = 0;
  #waiters: (() => void)[] = [];

  backendState(state: BackendState, message: string): void {
    this.states.push({ state, message });
  }

  wake(): void {
    this.wakes++;
    for (const fn of this.#waiters.splice(0)) fn();
  }

  /** Resolves at the next wake(), or after `ms` real milliseconds (a safety net, like the host's tick). */
  nextWake(ms = 100): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

export interface TestBackendOptions {
  /** The plugin's speakerrc section, validated with the plugin's schema (defaults applied). */
  options?: unknown;
  /** Defaults to a new {@link VirtualClock}. */
  clock?: Clock;
  logger?: MemoryLogger;
  events?: RecordingEvents;
  /** Directory relative paths are resolved against (TOKENS.Context configDir). */
  configDir?: string;
}

export interface TestBackend<B extends Backend = Backend> {
  backend: B;
  clock: Clock;
  log: MemoryLogger;
  events: RecordingEvents;
  options: unknown;
}

/** Build `plugin`'s backend the way the host does: options validated, services registered under TOKENS. */
export function createTestBackend<B extends Backend = Backend>(
  plugin: SpeakerdPlugin,
  opts: TestBackendOptions = {},
): TestBackend<B> {
  if (!plugin.backend) throw new Error(`plugin ${plugin.manifest.name} has no backend`);
  const options = plugin.options.parse(opts.options ?? {});
  const clock = opts.clock ?? new VirtualClock();
  const log = opts.logger ?? new MemoryLogger();
  const events = opts.events ?? new RecordingEvents();
  const c = registerPluginServices(container.createChildContainer(), {
    options,
    logger: log,
    clock,
    events,
    context: {
      configDir: opts.configDir ?? process.cwd(),
      pluginName: plugin.manifest.name,
      hostVersion: '0.0.0-test',
    },
  });
  const backend = c.resolve<B>(plugin.backend as never);
  return { backend, clock, log, events, options };
}

/**
 * Feed `data` (whole frames of `format`) into a backend the way the host does: a fill offers what `writable()`
 * allows (at most `chunkFrames` per `write()`, the rest offered again at once after a short write, while the
 * backend keeps taking some), then calls `endFill()`, then waits. On a VirtualClock, waiting means advancing it by
 * `stepMs` (and, if the backend still takes nothing, waiting for a real wake-up, as a backed-up pipe needs); on the
 * real clock it means the next wake() or tick.
 *
 * Every return is checked with the host's own rules (contract.ts): a fractional, negative or NaN count, or a
 * `write()` taking more than it was offered, throws a {@link ContractViolation} at once. A backend that takes
 * nothing for `stallMs` (default 10,000) of clock time, or as long in real time, fails too: feed never hangs.
 */
export async function feed(
  t: Pick<TestBackend, 'backend' | 'clock' | 'events'>,
  data: Uint8Array,
  format: SampleFormat,
  opts: { stepMs?: number; chunkFrames?: number; stallMs?: number } = {},
): Promise<void> {
  const fb = bytesPerFrame(format);
  const frames = data.length / fb;
  const chunk = opts.chunkFrames ?? Infinity;
  const stallMs = opts.stallMs ?? 10_000;
  const name = (t.backend.constructor as { name?: string } | undefined)?.name ?? 'backend';
  let off = 0;
  let stalledAt = t.clock.now();
  let stalledReal = performance.now();
  while (off < frames) {
    let room = t.backend.writable();
    const roomWhy = frameCountProblem(room);
    if (roomWhy) throw new ContractViolation(name, 'writable', roomWhy);
    let took = 0;
    while (room > 0 && off < frames) {
      const n = Math.min(room, chunk, frames - off);
      const k = t.backend.write(data.subarray(off * fb, (off + n) * fb));
      const why = writeProblem(k, n, fb);
      if (why) throw new ContractViolation(name, 'write', why);
      if (k === 0) break;
      off += k;
      room -= k;
      took += k;
    }
    t.backend.endFill?.();
    if (off >= frames) break;
    if (took > 0) {
      stalledAt = t.clock.now();
      stalledReal = performance.now();
      continue; // progress: offer again at once, as the host's next fill would
    }
    if (t.clock.now() - stalledAt > stallMs || performance.now() - stalledReal > stallMs)
      throw new Error(`feed: the backend took nothing for ${stallMs} ms with ${frames - off} frames left to write`);
    if (t.clock instanceof VirtualClock) {
      t.clock.advance(opts.stepMs ?? 20);
      if (t.backend.writable() === 0) await t.events.nextWake(200);
    } else {
      await t.events.nextWake();
    }
  }
}

/** Deterministic pseudo-random bytes (xorshift32): any lost, repeated or reordered byte shows, and failures reproduce. */
export function noise(bytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
