/**
 * The conformance suite: a backend driven the way the host drives it, with every return checked by the rules in
 * `contract.ts` (the same functions the host's backend driver enforces at run time), plus the rules that only a
 * test can check (buffers reused, delay draining at the sample rate, wake-ups, nothing left running after close).
 *
 * `checkBackend()` runs the rules without a test framework; `describeBackend()` (testing.ts) registers one test per
 * rule. Every rule makes its own backend in its own temporary directory, is bounded in time, and fails with a
 * message that starts with the name of the rule that was broken.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from './backend.js';
import { RealClock, VirtualClock, type Clock } from './clock.js';
import { describeValue, formatProblem, frameCountProblem, writeProblem, type BackendMethod } from './contract.js';
import { isSpeakerdError } from './errors.js';
import { bytesPerFrame, type SampleFormat } from './format.js';
import { MemoryLogger, RecordingEvents, createTestBackend, noise } from './kit.js';
import { manifestProblem, type SpeakerdPlugin } from './plugin.js';

/** The rules, in the order they run. */
export const CONFORMANCE_RULES = [
  'manifest',
  'options',
  'negotiate',
  'lifecycle',
  'frames',
  'back-pressure',
  'queries',
  'delay',
  'wake',
  'copies-data',
  'errors',
  'commands',
  'close-final',
] as const;

export type ConformanceRule = (typeof CONFORMANCE_RULES)[number];

/** What each rule asks of a backend, in one line (the test names of `describeBackend`). */
export const RULE_TEXT: Readonly<Record<ConformanceRule, string>> = {
  manifest: 'the plugin object has a valid manifest and a backend class',
  options: 'the options schema takes the test options or {} and refuses what is not a section',
  negotiate: 'negotiate() returns a valid format, the same one each time; configure() accepts it',
  lifecycle: 'init → negotiate → configure → activate → write… → pause/resume → idle → activate → close all settle',
  frames: 'writable() and write() return whole frame counts ≥ 0; write() never more than it was offered',
  'back-pressure': 'writable() reaches 0 once the backend holds what it can; it never takes unbounded audio',
  queries: 'writable(), delay(), negotiate() and formatFor() only answer: same value, no timer, no event',
  delay: 'delay() is a whole frame count ≥ 0 that drains at the sample rate once nothing is written',
  wake: 'a device-paced backend calls wake() when it has room again',
  'copies-data': 'what is heard is exactly what was written, although the host reuses its buffer after each write()',
  errors: 'failures are SpeakerdErrors with a code (and, when set, the plugin’s name)',
  commands: 'control commands answer with plain JSON objects (or nothing), or throw a coded SpeakerdError',
  'close-final': 'after close() nothing runs: no timer left, no wake(), no state report',
};

/** What a rule's test context may give (a temporary directory the rule's backend runs in). */
export interface ConformanceContext {
  /** A fresh temporary directory: the plugin's configDir (relative paths in options resolve against it). */
  readonly dir: string;
}

export interface ConformanceOptions {
  /** The plugin's speakerrc section to test with (default `{}`), or a function of the rule's directory. */
  readonly options?: unknown;
  /** The output format asked of `negotiate()` (default s16le, 44100 Hz, 2 channels). */
  readonly format?: SampleFormat;
  /**
   * Every byte the backend made audible, read after `close()`, in the negotiated format (a capture file, the
   * payloads a receiver got). Given this, the `copies-data` rule checks the output byte for byte; without it
   * that rule is skipped. `expectedBytes` is what was written, for a reader that must wait for its data.
   */
  readonly output?: (
    ctx: ConformanceContext & { format: SampleFormat; expectedBytes: number },
  ) => Uint8Array | Promise<Uint8Array>;
  /** Options (or a function of the directory) with which `init()`…`activate()` must fail with a coded error. */
  readonly failingOptions?: unknown;
  /** Example messages (without `type` and `seq`) for the backend's commands, by short name. */
  readonly commands?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** `virtual` (a VirtualClock: fast, exact) or `real`. Default: virtual for clock-paced backends, else real. */
  readonly clock?: 'virtual' | 'real';
  /** Real time a rule may take, in ms (default 15,000). */
  readonly timeoutMs?: number;
  /** Most audio, in ms, a backend may take at one instant before `back-pressure` fails (default 10,000). */
  readonly maxLeadMs?: number;
  /**
   * Rules that cannot be observed with the device a test uses, each with the reason (reported as the skip's
   * message). For example a test PCM that does not pace (libasound's `null`) drains at once, so neither
   * `back-pressure` nor `wake` can be seen there; say so rather than let them pass or fail by the machine's speed.
   */
  readonly skip?: Partial<Readonly<Record<ConformanceRule, string>>>;
}

export interface RuleResult {
  readonly rule: ConformanceRule;
  readonly status: 'pass' | 'fail' | 'skip';
  /** Empty on a pass; why it failed (starting with the broken rule's name), or why it was skipped. */
  readonly message: string;
}

/** A rule was broken: the message starts with the rule's name. */
export class RuleFailure extends Error {
  constructor(
    readonly rule: ConformanceRule,
    detail: string,
  ) {
    super(`${rule}: ${detail}`);
    this.name = 'RuleFailure';
  }
}

class RuleSkip extends Error {}

const DEFAULT_FORMAT: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
const CODE_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;
/** Virtual ms the clock moves per wait. */
const STEP_MS = 10;
/** Clock ms a feed may go without the backend taking anything. */
const STALL_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const turn = () => new Promise<void>((r) => setImmediate(r));

function valueOf(option: unknown, dir: string): unknown {
  return typeof option === 'function' ? (option as (dir: string) => unknown)(dir) : option;
}

function errorText(err: unknown): string {
  if (isSpeakerdError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return describeValue(err);
}

/** Why `err` is not a well-formed error of plugin `plugin`, or undefined. */
function codedErrorProblem(err: unknown, plugin: string): string | undefined {
  if (!isSpeakerdError(err))
    return `${err instanceof Error ? `an ${err.name}` : describeValue(err)} without a code (${errorText(err)}): throw a SpeakerdError with a stable code`;
  if (typeof err.code !== 'string' || !CODE_RE.test(err.code))
    return `a SpeakerdError with the code ${describeValue(err.code)}, not a stable code such as SPEAKERD_ERR_BACKEND`;
  if (err.message.trim() === '') return `a SpeakerdError (${err.code}) with an empty message`;
  if (err.plugin !== undefined && err.plugin !== plugin)
    return `a SpeakerdError naming the plugin ${describeValue(err.plugin)}, not ${JSON.stringify(plugin)}`;
  return undefined;
}

function isPlainJson(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every((v) => isPlainJson(v, depth + 1));
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((v) => isPlainJson(v, depth + 1));
}

/** One backend, driven as the host drives it, every return checked. */
class Session {
  readonly backend: Backend;
  readonly clock: Clock;
  readonly events: RecordingEvents;
  readonly log: MemoryLogger;
  format: SampleFormat = DEFAULT_FORMAT;
  bpf = 4;
  /** Frames the backend has accepted. */
  accepted = 0;
  closed = false;
  #stage = new Uint8Array(0);

  constructor(
    readonly plugin: SpeakerdPlugin,
    readonly rule: ConformanceRule,
    readonly dir: string,
    readonly opts: ConformanceOptions,
    rawOptions: unknown,
    readonly virtual: boolean,
  ) {
    this.clock = virtual ? new VirtualClock(1000) : new RealClock();
    this.events = new RecordingEvents();
    this.log = new MemoryLogger();
    let made;
    try {
      made = createTestBackend(plugin, {
        options: rawOptions ?? {},
        clock: this.clock,
        events: this.events,
        logger: this.log,
        configDir: dir,
      });
    } catch (err) {
      if (!(err instanceof Error) || err.name !== 'ZodError')
        throw this.#failure('init', err, `the backend could not be made: ${errorText(err)}`);
      throw new RuleFailure('options', `the test options do not validate: ${err.message}`);
    }
    this.backend = made.backend;
  }

  get name(): string {
    return this.plugin.manifest.name;
  }

  #failure(method: BackendMethod, err: unknown, text?: string): RuleFailure {
    if (err instanceof RuleFailure) return err;
    const problem = codedErrorProblem(err, this.name);
    if (problem) return new RuleFailure('errors', `${method}() threw ${problem}`);
    return new RuleFailure(this.rule, text ?? `${method}() failed: ${errorText(err)}`);
  }

  /** Call a method that may return a promise; a throw or rejection fails the rule. */
  async call<T>(method: BackendMethod, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.#failure(method, err);
    }
  }

  sync<T>(method: BackendMethod, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.#failure(method, err);
    }
  }

  /** init → negotiate → configure, as the host starts a backend. */
  async start(): Promise<void> {
    const b = this.backend;
    if (b.init) await this.call('init', () => b.init!());
    const requested = this.opts.format ?? DEFAULT_FORMAT;
    const got = b.negotiate ? this.sync('negotiate', () => b.negotiate!(requested)) : requested;
    const why = formatProblem(got);
    if (why) throw new RuleFailure('negotiate', `negotiate() ${why}`);
    this.format = got;
    this.bpf = bytesPerFrame(got);
    if (b.configure) await this.call('configure', () => b.configure!(got));
  }

  activate(): Promise<void> {
    return this.call('activate', () => this.backend.activate(this.format));
  }

  writable(): number {
    const n = this.sync('writable', () => this.backend.writable());
    const why = frameCountProblem(n);
    if (why) throw new RuleFailure('frames', `writable() ${why}`);
    return n;
  }

  delay(): number {
    const b = this.backend;
    if (!b.delay) return 0;
    const d = this.sync('delay', () => b.delay!());
    const why = frameCountProblem(d);
    if (why) throw new RuleFailure('delay', `delay() ${why}`);
    return d;
  }

  /** Write `frames` frames of `data` from `off` through the one reused buffer, poisoned after the call. */
  write(data: Uint8Array, off: number, frames: number): number {
    const bytes = frames * this.bpf;
    if (this.#stage.length < bytes) this.#stage = new Uint8Array(Math.max(bytes, this.#stage.length * 2));
    const view = this.#stage.subarray(0, bytes);
    view.set(data.subarray(off * this.bpf, off * this.bpf + bytes));
    const k = this.sync('write', () => this.backend.write(view));
    const why = writeProblem(k, frames, this.bpf);
    if (why) throw new RuleFailure('frames', `write() ${why}`);
    // the host reuses its buffer: anything the backend kept without copying now reads as something else
    for (let i = 0; i < bytes; i++) view[i] = ~view[i]! & 0xff;
    this.accepted += k;
    return k;
  }

  endFill(): void {
    const b = this.backend;
    if (b.endFill) this.sync('endFill', () => b.endFill!());
  }

  /** One fill, as the host makes it: what writable() allows, in chunks, then endFill(). Returns frames taken. */
  fill(data: Uint8Array, off: number, chunk: number): number {
    const frames = data.length / this.bpf;
    let room = this.writable();
    let took = 0;
    while (room > 0 && off + took < frames) {
      const n = Math.min(room, chunk, frames - off - took);
      const k = this.write(data, off + took, n);
      if (k === 0) break;
      took += k;
      room -= k;
    }
    this.endFill();
    return took;
  }

  /** Let time pass: a step of the virtual clock (and a turn of the event loop for real I/O), or a real wake-up. */
  async wait(): Promise<void> {
    if (this.clock instanceof VirtualClock) {
      this.clock.advance(STEP_MS);
      await turn();
      if (this.writable() === 0) await this.events.nextWake(1);
    } else {
      await this.events.nextWake(STEP_MS);
    }
  }

  /** Feed all of `data` the way the host does, failing if the backend takes nothing for {@link STALL_MS}. */
  async feed(data: Uint8Array, chunk = 4096): Promise<void> {
    const frames = data.length / this.bpf;
    let off = 0;
    let stalledSince = this.clock.now();
    let realSince = performance.now();
    while (off < frames) {
      const took = this.fill(data, off, chunk);
      off += took;
      if (off >= frames) break;
      if (took > 0) {
        stalledSince = this.clock.now();
        realSince = performance.now();
        continue;
      }
      if (this.clock.now() - stalledSince > STALL_MS || performance.now() - realSince > STALL_MS)
        throw new RuleFailure(
          this.rule,
          `the backend took nothing for ${STALL_MS / 1000} s with ${frames - off} frames left to write: ` +
            'writable() stayed 0 (or write() returned 0) while it had nothing left to play',
        );
      await this.wait();
    }
  }

  /** Let what was written play out: until delay() stops going down (or `maxMs` of clock time). */
  async drain(maxMs = 5000): Promise<void> {
    const end = this.clock.now() + maxMs + (this.delay() / this.format.rate) * 1000;
    let last = this.delay();
    let stableSince = this.clock.now();
    while (this.clock.now() < end) {
      await this.wait();
      const d = this.delay();
      if (d < last) stableSince = this.clock.now();
      last = d;
      if (d === 0 || this.clock.now() - stableSince > 300) return;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.call('close', () => this.backend.close());
  }

  /** Close without judging (cleanup after a failure), bounded in time. */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.race([Promise.resolve().then(() => this.backend.close()), sleep(2000)]).catch(() => {});
  }

  ms(frames: number): number {
    return Math.round((frames / this.format.rate) * 1000);
  }

  frames(ms: number): number {
    return Math.round((ms / 1000) * this.format.rate);
  }

  noise(ms: number, seed: number): Uint8Array {
    return noise(this.frames(ms) * this.bpf, seed);
  }
}

type RuleBody = (s: () => Promise<Session>, opts: ConformanceOptions, plugin: SpeakerdPlugin) => Promise<void>;

const RULES: Record<ConformanceRule, RuleBody> = {
  async manifest(_s, _o, plugin) {
    const why = manifestProblem(plugin);
    if (why) throw new RuleFailure('manifest', why);
    if (typeof plugin.backend !== 'function') throw new RuleFailure('manifest', 'the plugin has no backend class');
  },

  async options(_s, opts, plugin) {
    const dir = mkdtempSync(join(tmpdir(), 'speakerd-conformance-'));
    try {
      const given = valueOf(opts.options, dir);
      const tried = given === undefined ? [{}] : [given, {}];
      const results = tried.map((o) => plugin.options.safeParse(o));
      if (!results.some((r) => r.success))
        throw new RuleFailure(
          'options',
          `neither the test options nor {} validate (${results[0]!.error?.issues[0]?.message ?? 'invalid'}): ` +
            'defaults belong in the schema, or document an example and test with it',
        );
      for (const bad of [42, 'x', [], null])
        if (plugin.options.safeParse(bad).success)
          throw new RuleFailure(
            'options',
            `the schema accepts ${describeValue(bad)} as a section: it must take an object`,
          );
      const ok = given !== undefined && results[0]!.success ? given : {};
      const a = JSON.stringify(plugin.options.parse(ok));
      const b = JSON.stringify(plugin.options.parse(ok));
      if (a !== b) throw new RuleFailure('options', 'parsing the same section twice gives different results');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },

  async negotiate(open) {
    const s = await open();
    const b = s.backend;
    if (b.negotiate) {
      const requested = s.opts.format ?? DEFAULT_FORMAT;
      const again = s.sync('negotiate', () => b.negotiate!(requested));
      if (JSON.stringify(again) !== JSON.stringify(s.format))
        throw new RuleFailure(
          'negotiate',
          `negotiate() answered ${JSON.stringify(s.format)}, then ${JSON.stringify(again)} for the same request`,
        );
    }
    await s.activate();
    await s.feed(s.noise(100, 7));
    await s.close();
  },

  async lifecycle(open) {
    const s = await open();
    const b = s.backend;
    await s.activate();
    await s.feed(s.noise(200, 1));
    if (b.pause) {
      await s.call('pause', () => b.pause!());
      for (let i = 0; i < 20; i++) {
        await s.wait();
        const w = s.writable();
        if (w !== 0) throw new RuleFailure('lifecycle', `writable() returned ${w} while paused: it must be 0`);
        s.endFill();
      }
      if (!b.resume) throw new RuleFailure('lifecycle', 'the backend has pause() but no resume()');
      await s.call('resume', () => b.resume!());
    }
    await s.feed(s.noise(200, 2));
    if (b.flush) {
      const dropped = s.sync('flush', () => b.flush!());
      const why = frameCountProblem(dropped, s.accepted);
      if (why) throw new RuleFailure('frames', `flush() ${why}`);
    }
    if (b.idle) await s.call('idle', () => b.idle!());
    await s.activate();
    await s.feed(s.noise(200, 3));
    await s.drain();
    if (b.idle) await s.call('idle', () => b.idle!());
    await s.close();
  },

  async frames(open) {
    const s = await open();
    await s.activate();
    // odd offers: single frames, primes, big chunks; every return is checked
    for (const chunk of [1, 7, 333, 65_536]) await s.feed(s.noise(60, chunk), chunk);
    await s.drain();
    await s.close();
  },

  async 'back-pressure'(open, opts) {
    const s = await open();
    await s.activate();
    const maxMs = opts.maxLeadMs ?? 10_000;
    const limit = s.frames(maxMs);
    const chunk = 65_536;
    const data = noise((s.frames(2000) + chunk) * s.bpf, 11); // offered again and again: bounded memory
    const t0 = performance.now();
    let took = 0;
    // all at one instant: the clock does not move and the event loop does not turn
    for (let fill = 0; fill < 10_000; fill++) {
      if (took > limit) break;
      const n = s.fill(data, took % s.frames(2000), chunk);
      if (n === 0) break;
      took += n;
    }
    const elapsed = s.clock instanceof VirtualClock ? 0 : performance.now() - t0;
    if (took > limit + s.frames(elapsed))
      throw new RuleFailure(
        'back-pressure',
        `the backend took over ${s.ms(took)} ms of audio at one instant and still said writable() > 0: once it ` +
          `holds what it can it must say 0 (the host's bound here is ${maxMs} ms)`,
      );
    await s.drain();
    await s.close();
  },

  async queries(open) {
    const s = await open();
    const b = s.backend;
    if (b.formatFor) {
      const a = JSON.stringify(s.sync('formatFor', () => b.formatFor!(s.format)) ?? null);
      const c = JSON.stringify(s.sync('formatFor', () => b.formatFor!(s.format)) ?? null);
      if (a !== c) throw new RuleFailure('queries', `formatFor() answered ${a}, then ${c} for the same format`);
    }
    await s.activate();
    await s.feed(s.noise(100, 4));
    if (s.clock instanceof VirtualClock) {
      const clock = s.clock;
      const before = { timers: clock.pending, wakes: s.events.wakes, states: s.events.states.length };
      const w = [s.writable(), s.writable(), s.writable()];
      const d = [s.delay(), s.delay(), s.delay()];
      if (b.negotiate) s.sync('negotiate', () => b.negotiate!(s.opts.format ?? DEFAULT_FORMAT));
      if (w[0] !== w[1] || w[1] !== w[2])
        throw new RuleFailure('queries', `writable() answered ${w.join(', ')} at one instant: a query only answers`);
      if (d[0] !== d[1] || d[1] !== d[2])
        throw new RuleFailure('queries', `delay() answered ${d.join(', ')} at one instant: a query only answers`);
      const after = { timers: clock.pending, wakes: s.events.wakes, states: s.events.states.length };
      if (after.timers !== before.timers)
        throw new RuleFailure('queries', `the queries set ${after.timers - before.timers} timer(s) on the clock`);
      if (after.wakes !== before.wakes || after.states !== before.states)
        throw new RuleFailure('queries', 'the queries called wake() or reported a state');
    }
    await s.drain();
    await s.close();
  },

  async delay(open) {
    const s = await open();
    await s.activate();
    const before = s.accepted;
    await s.feed(s.noise(1000, 5));
    const written = s.accepted - before;
    const rate = s.format.rate;
    const virtual = s.clock instanceof VirtualClock;
    const d0 = s.delay();
    const t0 = s.clock.now();
    let last = d0;
    let lastT = t0;
    let stableSince = t0;
    const end = t0 + (d0 / rate) * 1000 + 3000;
    // with nothing written, delay() may only go down, and no faster than the sample rate
    while (s.clock.now() < end) {
      await s.wait();
      const d = s.delay();
      const now = s.clock.now();
      if (d > last + rate * 0.005)
        throw new RuleFailure('delay', `delay() went up from ${last} to ${d} frames while nothing was written`);
      if (d < last) stableSince = now;
      const window = now - lastT;
      if (window >= 200 || d === 0) {
        const fell = last - d;
        const most = rate * (window / 1000) * 1.25 + rate * (virtual ? 0.03 : 0.15);
        if (fell > most)
          throw new RuleFailure(
            'delay',
            `delay() fell by ${fell} frames in ${Math.round(window)} ms, faster than ${rate} frames/s: ` +
              'count frames, not bytes or samples',
          );
        last = d;
        lastT = now;
      }
      if (d === 0 || now - stableSince > 500) break;
    }
    const dEnd = s.delay();
    const should = 0.9 * Math.min(d0, written);
    if (d0 - dEnd < should)
      throw new RuleFailure(
        'delay',
        `delay() was ${d0} frames after ${written} were written and still ${dEnd} after ${Math.round(
          s.clock.now() - t0,
        )} ms: it must fall at the sample rate as the audio becomes audible`,
      );
    await s.close();
  },

  async wake(open, opts) {
    const s = await open();
    if (s.backend.pacing !== 'device') {
      await s.dispose();
      throw new RuleSkip('a clock-paced backend is filled on the host’s tick');
    }
    await s.activate();
    const data = s.noise(10_000, 9);
    let off = 0;
    let full = false;
    for (let i = 0; i < 10_000 && off < data.length / s.bpf && !full; i++) {
      const n = s.fill(data, off, 65_536);
      full = n === 0;
      off += n;
    }
    if (!full) throw new RuleFailure('back-pressure', `writable() did not reach 0 in ${s.ms(off)} ms of audio`);
    const wakes = s.events.wakes;
    const waitMs = Math.min(s.ms(off) + 2000, (opts.timeoutMs ?? 15_000) / 2);
    const end = performance.now() + waitMs;
    while (s.events.wakes === wakes && performance.now() < end) await s.events.nextWake(50);
    if (s.events.wakes === wakes)
      throw new RuleFailure(
        'wake',
        `writable() was 0 with ${s.ms(off)} ms of audio taken, and no wake() came in ${waitMs} ms: a device-paced ` +
          'backend must call events.wake() when it has room again',
      );
    if (s.writable() === 0) throw new RuleFailure('wake', 'wake() was called but writable() is still 0');
    await s.drain();
    await s.close();
  },

  async 'copies-data'(open, opts) {
    if (!opts.output) throw new RuleSkip('no output reader given (ConformanceOptions.output)');
    const s = await open();
    await s.activate();
    const data = s.noise(1000, 13);
    await s.feed(data, 1000);
    await s.drain();
    if (s.backend.idle) await s.call('idle', () => s.backend.idle!());
    await s.close();
    const out = await opts.output({ dir: s.dir, format: s.format, expectedBytes: data.length });
    const got = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    if (Buffer.compare(got, data) !== 0) {
      let where = 0;
      while (where < got.length && where < data.length && got[where] === data[where]) where++;
      throw new RuleFailure(
        'copies-data',
        `the output (${got.length} bytes) is not what was written (${data.length} bytes): first difference at byte ` +
          `${where} (frame ${Math.floor(where / s.bpf)}). A backend that keeps audio past write() must copy it: ` +
          'the host reuses its buffer',
      );
    }
  },

  async errors(open, opts, plugin) {
    // a normal run: whatever is thrown in it must be coded (the session reports it under this rule)
    const normal = await open();
    await normal.activate();
    await normal.feed(normal.noise(100, 19));
    if (normal.backend.idle) await normal.call('idle', () => normal.backend.idle!());
    await normal.close();
    if (opts.failingOptions === undefined)
      throw new RuleSkip('no failingOptions given (a normal run threw nothing uncoded)');
    const dir = mkdtempSync(join(tmpdir(), 'speakerd-conformance-'));
    let backend: Backend | undefined;
    try {
      const raw = valueOf(opts.failingOptions, dir);
      if (!plugin.options.safeParse(raw).success)
        throw new RuleFailure(
          'errors',
          'the schema refuses failingOptions: give options that validate but cannot work (a device that does not ' +
            'exist, a path that cannot be written)',
        );
      backend = createTestBackend(plugin, { options: raw, clock: new VirtualClock(1000), configDir: dir }).backend;
      const b = backend;
      let format = opts.format ?? DEFAULT_FORMAT;
      const steps: [BackendMethod, () => unknown][] = [
        ['init', () => b.init?.()],
        ['negotiate', () => (format = b.negotiate ? b.negotiate(format) : format)],
        ['configure', () => b.configure?.(format)],
        ['activate', () => b.activate(format)],
      ];
      for (const [method, fn] of steps) {
        try {
          await fn();
        } catch (err) {
          const why = codedErrorProblem(err, plugin.manifest.name);
          if (why) throw new RuleFailure('errors', `${method}() threw ${why}`);
          return;
        }
      }
      throw new RuleFailure('errors', 'with failingOptions, init() … activate() all succeeded');
    } finally {
      if (backend) await Promise.race([Promise.resolve().then(() => backend!.close()), sleep(2000)]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
  },

  async commands(open, opts) {
    const s = await open();
    const commands = s.backend.commands;
    const names = commands ? Object.keys(commands) : [];
    if (names.length === 0) {
      await s.dispose();
      throw new RuleSkip('the backend has no commands');
    }
    await s.activate();
    for (const name of names) {
      const handler = commands![name];
      if (typeof handler !== 'function')
        throw new RuleFailure('commands', `commands["${name}"] is ${describeValue(handler)}, not a function`);
      const example = opts.commands?.[name];
      const message = { ...example, type: `${s.name}.${name}`, seq: 1 };
      let reply: unknown;
      try {
        reply = await handler(message);
      } catch (err) {
        const why = codedErrorProblem(err, s.name);
        if (why) throw new RuleFailure('commands', `${name} threw ${why}`);
        if (example) throw new RuleFailure('commands', `${name} refused the example message: ${errorText(err)}`);
        continue; // refusing a message without its fields, with a coded error, is right
      }
      if (
        reply !== undefined &&
        (typeof reply !== 'object' || reply === null || Array.isArray(reply) || !isPlainJson(reply))
      )
        throw new RuleFailure(
          'commands',
          `${name} answered ${describeValue(reply)}: a reply is a plain object of JSON values (or nothing)`,
        );
    }
    await s.close();
  },

  async 'close-final'(open) {
    const s = await open();
    await s.activate();
    await s.feed(s.noise(200, 17));
    await s.close();
    const wakes = s.events.wakes;
    const states = s.events.states.length;
    if (s.clock instanceof VirtualClock) {
      if (s.clock.pending > 0)
        throw new RuleFailure('close-final', `${s.clock.pending} timer(s) still set on the clock after close()`);
      s.clock.advance(10_000);
    }
    await sleep(300);
    if (s.events.wakes !== wakes) throw new RuleFailure('close-final', 'wake() was called after close()');
    if (s.events.states.length !== states)
      throw new RuleFailure(
        'close-final',
        `a state was reported after close(): ${JSON.stringify(s.events.states.at(-1))}`,
      );
  },
};

const pacings = new WeakMap<SpeakerdPlugin, string>();

/**
 * How the backend is fed: an instance field, so read from an instance made for the purpose (constructors must not
 * open anything: that is init()'s job), once per plugin.
 */
function pacingOf(plugin: SpeakerdPlugin, opts: ConformanceOptions, dir: string): string {
  let p = pacings.get(plugin);
  if (p === undefined) {
    p = new Session(plugin, 'lifecycle', dir, opts, valueOf(opts.options, dir), true).backend.pacing;
    pacings.set(plugin, p);
  }
  return p;
}

/** Run one rule: never throws, never runs longer than `timeoutMs` (plus a bounded cleanup). */
export async function checkRule(
  plugin: SpeakerdPlugin,
  rule: ConformanceRule,
  opts: ConformanceOptions = {},
): Promise<RuleResult> {
  const skipped = opts.skip?.[rule];
  if (skipped !== undefined) return { rule, status: 'skip', message: skipped };
  if (rule !== 'manifest') {
    const m = manifestProblem(plugin);
    if (m) return { rule, status: 'fail', message: `manifest: ${m}` };
    const why = plugin.unavailable?.();
    if (why) return { rule, status: 'skip', message: `the backend is unavailable here: ${why}` };
  }
  const sessions: Session[] = [];
  const dirs: string[] = [];
  let over = false; // the rule has ended (or timed out): a body still running must not make more
  const open = async (): Promise<Session> => {
    if (over) throw new RuleFailure(rule, 'the rule had already ended');
    const dir = mkdtempSync(join(tmpdir(), 'speakerd-conformance-'));
    dirs.push(dir);
    const virtual = opts.clock ? opts.clock === 'virtual' : pacingOf(plugin, opts, dir) === 'clock';
    const s = new Session(plugin, rule, dir, opts, valueOf(opts.options, dir), virtual);
    sessions.push(s);
    await s.start();
    return s;
  };
  const timeoutMs = opts.timeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RuleFailure(
            rule,
            `did not finish within ${timeoutMs} ms: a call that never settles, or a wait for audio to play out ` +
              'that never ends',
          ),
        ),
      timeoutMs,
    );
  });
  try {
    await Promise.race([RULES[rule](open, opts, plugin), timeout]);
    return { rule, status: 'pass', message: '' };
  } catch (err) {
    if (err instanceof RuleSkip) return { rule, status: 'skip', message: err.message };
    const message = err instanceof RuleFailure ? err.message : `${rule}: ${errorText(err)}`;
    return { rule, status: 'fail', message };
  } finally {
    over = true;
    clearTimeout(timer);
    await Promise.all(sessions.map((s) => s.dispose()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/** Run every rule (or `rules`) in order against `plugin`'s backend. */
export async function checkBackend(
  plugin: SpeakerdPlugin,
  opts: ConformanceOptions = {},
  rules: readonly ConformanceRule[] = CONFORMANCE_RULES,
): Promise<RuleResult[]> {
  const out: RuleResult[] = [];
  for (const rule of rules) out.push(await checkRule(plugin, rule, opts));
  return out;
}
