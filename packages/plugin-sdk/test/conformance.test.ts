import { describe, expect, it } from 'vitest';
import {
  RealtimePacer,
  SpeakerdError,
  TOKENS,
  bytesPerFrame,
  definePlugin,
  withInjections,
  z,
  type Backend,
  type Clock,
  type HostEvents,
  type PluginContext,
  type SampleFormat,
  type SpeakerdPlugin,
  type TimerHandle,
} from '@speakerd/plugin-sdk';
import {
  CONFORMANCE_RULES,
  VirtualClock,
  checkBackend,
  checkRule,
  createTestBackend,
  describeBackend,
  feed,
  type ConformanceOptions,
  type ConformanceRule,
} from '@speakerd/plugin-sdk/testing';

/**
 * Throwaway backends for the conformance suite: a correct one of each pacing, and broken variants of them, each
 * breaking one rule of the contract the way plugins in the field do.
 */
const FAULTS = [
  'none',
  'partial-frames', // writable() hands out fractions of a frame
  'bytes-for-frames', // write() returns bytes
  'ignores-back-pressure', // writable() always says yes
  'negative-delay',
  'delay-in-bytes', // delay() counts bytes: drains 4x too fast
  'stuck-delay', // delay() never goes down
  'keeps-buffer', // keeps the host's buffer without copying
  'writable-has-side-effect', // writable() sets a timer
  'uncoded-error', // init() throws a plain Error
  'coded-error', // init() throws a SpeakerdError: right, for failingOptions
  'hangs', // activate() never settles
  'bad-command-reply', // a command answers with a Map
  'timer-after-close', // close() leaves its timer running
  'no-wake', // device-paced, never calls wake()
  'nan-write', // write() returns NaN
  'bad-format', // negotiate() returns rate 0
  'throws-in-write', // write() throws an uncoded TypeError
] as const;
type Fault = (typeof FAULTS)[number];

const options = z.strictObject({ fault: z.enum(FAULTS).default('none') }).prefault({});
type Options = z.infer<typeof options>;

/** What each "device" made audible, by configDir (the test's output reader). */
const heard = new Map<string, Uint8Array[]>();

function output({ dir }: { dir: string }): Uint8Array {
  return Buffer.concat(heard.get(dir) ?? []);
}

/** Clock-paced: a "tape" that plays what it was given at real time on the injected clock. */
class Tape implements Backend {
  readonly pacing = 'clock' as const;
  #format!: SampleFormat;
  #pacer!: RealtimePacer;
  #queue: Uint8Array[] = [];
  #played = 0;
  #timer: TimerHandle | undefined;
  #paused = false;
  readonly commands = {
    status: () =>
      this.opts.fault === 'bad-command-reply'
        ? (new Map([['played', this.#played]]) as unknown as Record<string, unknown>) // what JS plugins can return
        : { played: this.#played },
    seek: (m: Readonly<Record<string, unknown>>) => {
      if (typeof m.to !== 'number') throw new SpeakerdError('bad-command', 'seek needs "to"');
      return { to: m.to };
    },
  };

  constructor(
    private readonly opts: Options,
    private readonly clock: Clock,
    private readonly events: HostEvents,
    private readonly context: PluginContext,
  ) {}

  get #out(): Uint8Array[] {
    let out = heard.get(this.context.configDir);
    if (!out) heard.set(this.context.configDir, (out = []));
    return out;
  }

  async init(): Promise<void> {
    if (this.opts.fault === 'uncoded-error') throw new Error('no tape');
    if (this.opts.fault === 'coded-error') throw new SpeakerdError('TAPE_ERR_NO_TAPE', 'no tape in the deck');
  }

  negotiate(f: SampleFormat): SampleFormat {
    return this.opts.fault === 'bad-format' ? { ...f, rate: 0 } : f;
  }

  activate(format: SampleFormat): Promise<void> {
    if (this.opts.fault === 'hangs') return new Promise(() => {});
    this.#format = format;
    this.#pacer = new RealtimePacer(this.clock, format.rate, Math.round(format.rate * 0.2));
    this.#queue = [];
    this.#played = 0;
    if (!this.#paused) this.#pacer.start();
    this.#tick();
    return Promise.resolve();
  }

  #tick = (): void => {
    this.#timer = undefined;
    const due = this.#pacer.elapsedFrames();
    const fb = bytesPerFrame(this.#format);
    while (this.#queue.length > 0 && this.#played + this.#queue[0]!.length / fb <= due) {
      const chunk = this.#queue.shift()!;
      this.#out.push(Uint8Array.from(chunk));
      this.#played += chunk.length / fb;
    }
    this.#timer = this.clock.setTimeout(this.#tick, 20);
  };

  /** Everything queued becomes audible at once (a deck that plays out before it stops). */
  #playOut(): void {
    for (const chunk of this.#queue.splice(0)) this.#out.push(Uint8Array.from(chunk));
  }

  writable(): number {
    if (this.opts.fault === 'writable-has-side-effect') this.clock.setTimeout(() => {}, 1000);
    if (this.#paused) return 0;
    if (this.opts.fault === 'ignores-back-pressure') return 1_000_000;
    const n = this.#pacer.writable();
    return this.opts.fault === 'partial-frames' && n > 0 ? n + 0.5 : n;
  }

  write(data: Uint8Array): number {
    if (this.opts.fault === 'throws-in-write') throw new TypeError('cannot read properties of undefined');
    const fb = bytesPerFrame(this.#format);
    const frames = Math.floor(data.length / fb);
    this.#queue.push(this.opts.fault === 'keeps-buffer' ? data : Uint8Array.from(data));
    this.#pacer.wrote(frames);
    if (this.opts.fault === 'bytes-for-frames') return data.length;
    if (this.opts.fault === 'nan-write') return NaN;
    return frames;
  }

  delay(): number {
    if (this.opts.fault === 'negative-delay') return -1;
    const q = this.#pacer?.queued() ?? 0;
    if (this.opts.fault === 'delay-in-bytes') return q * bytesPerFrame(this.#format);
    if (this.opts.fault === 'stuck-delay') return this.#pacer?.written ?? 0;
    return q;
  }

  pause(): void {
    this.#paused = true;
    this.#playOut();
    this.#pacer?.stop();
  }

  resume(): void {
    this.#paused = false;
    this.#played = 0;
    this.#pacer?.start();
  }

  async idle(): Promise<void> {
    this.#playOut();
    this.#pacer.stop();
    if (this.#timer) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async close(): Promise<void> {
    if (this.#pacer) this.#playOut();
    if (this.#timer && this.opts.fault !== 'timer-after-close') this.clock.clearTimeout(this.#timer);
    if (this.opts.fault === 'timer-after-close') this.clock.setTimeout(() => this.events.wake(), 100);
  }
}
withInjections(Tape, TOKENS.Options, TOKENS.Clock, TOKENS.Events, TOKENS.Context);

/** Device-paced: a "sound card" with a 100 ms buffer drained at the sample rate, waking the host when it has room. */
class Card implements Backend {
  readonly pacing = 'device' as const;
  #format!: SampleFormat;
  #buffered = 0;
  #drainedAt = 0;
  #timer: TimerHandle | undefined;
  #size = 0;

  constructor(
    private readonly opts: Options,
    private readonly clock: Clock,
    private readonly events: HostEvents,
    private readonly context: PluginContext,
  ) {}

  async activate(format: SampleFormat): Promise<void> {
    this.#format = format;
    this.#size = Math.round(format.rate * 0.1);
    this.#buffered = 0;
    this.#drainedAt = this.clock.now();
    this.#schedule();
  }

  #drain(): void {
    const now = this.clock.now();
    const gone = Math.floor(((now - this.#drainedAt) * this.#format.rate) / 1000);
    if (gone > 0) {
      this.#drainedAt += (gone * 1000) / this.#format.rate;
      this.#buffered = Math.max(0, this.#buffered - gone);
    }
  }

  #schedule(): void {
    this.#timer = this.clock.setTimeout(() => {
      const wasFull = this.#buffered >= this.#size;
      this.#drain();
      if (wasFull && this.#buffered < this.#size && this.opts.fault !== 'no-wake') this.events.wake();
      this.#schedule();
    }, 10);
  }

  writable(): number {
    const gone = Math.floor(((this.clock.now() - this.#drainedAt) * this.#format.rate) / 1000);
    return Math.max(0, this.#size - Math.max(0, this.#buffered - gone));
  }

  write(data: Uint8Array): number {
    this.#drain();
    const frames = Math.min(data.length / bytesPerFrame(this.#format), this.#size - this.#buffered);
    let out = heard.get(this.context.configDir);
    if (!out) heard.set(this.context.configDir, (out = []));
    out.push(data.slice(0, frames * bytesPerFrame(this.#format)));
    this.#buffered += frames;
    return frames;
  }

  delay(): number {
    const gone = Math.floor(((this.clock.now() - this.#drainedAt) * this.#format.rate) / 1000);
    return Math.max(0, this.#buffered - gone);
  }

  async idle(): Promise<void> {
    if (this.#timer) this.clock.clearTimeout(this.#timer);
  }

  async close(): Promise<void> {
    if (this.#timer) this.clock.clearTimeout(this.#timer);
  }
}
withInjections(Card, TOKENS.Options, TOKENS.Clock, TOKENS.Events, TOKENS.Context);

const tape = definePlugin({
  manifest: { name: 'tape', version: '1.0.0', sdk: '*' },
  options,
  backend: Tape,
});
const card = definePlugin({
  manifest: { name: 'card', version: '1.0.0', sdk: '*' },
  options,
  backend: Card,
});

function withFault(fault: Fault, extra: ConformanceOptions = {}): ConformanceOptions {
  return { options: { fault }, output, failingOptions: { fault: 'coded-error' }, timeoutMs: 3000, ...extra };
}

const failed = (results: { rule: string; status: string }[]) =>
  results.filter((r) => r.status === 'fail').map((r) => r.rule);

describe('the conformance suite on correct backends', () => {
  it('a clock-paced backend passes every rule (wake is for device-paced ones)', async () => {
    const results = await checkBackend(tape, withFault('none', { commands: { seek: { to: 3 } } }));
    expect(results.map((r) => r.rule)).toEqual([...CONFORMANCE_RULES]);
    expect(results.filter((r) => r.status !== 'pass')).toEqual([
      { rule: 'wake', status: 'skip', message: 'a clock-paced backend is filled on the host’s tick' },
    ]);
  });

  it('a device-paced backend passes every rule on the real clock', async () => {
    const results = await checkBackend(card, { output, failingOptions: undefined });
    expect(results.filter((r) => r.status === 'fail')).toEqual([]);
    expect(results.find((r) => r.rule === 'wake')!.status).toBe('pass');
    // what it cannot check without being told is skipped, with the reason
    expect(results.filter((r) => r.status === 'skip').map((r) => [r.rule, r.message])).toEqual([
      ['errors', 'no failingOptions given (a normal run threw nothing uncoded)'],
      ['commands', 'the backend has no commands'],
    ]);
  });

  it('a command refusing a message without its fields with a coded error is right; refusing the example is not', async () => {
    expect((await checkRule(tape, 'commands', withFault('none'))).status).toBe('pass');
    const r = await checkRule(tape, 'commands', withFault('none', { commands: { seek: { too: 3 } } }));
    expect(r).toMatchObject({
      status: 'fail',
      message: 'commands: seek refused the example message: bad-command: seek needs "to"',
    });
  });
});

/** Each broken backend fails the rule it breaks, with a message that starts with the rule's name. */
const BROKEN: [Fault, ConformanceRule, RegExp, SpeakerdPlugin?][] = [
  ['partial-frames', 'frames', /writable\(\) returned \d+\.5, not a whole number of frames/],
  ['bytes-for-frames', 'frames', /write\(\) returned \d+ for \d+ frames offered \(bytes instead of frames\?\)/],
  ['nan-write', 'frames', /write\(\) returned NaN, not a whole number of frames/],
  ['ignores-back-pressure', 'back-pressure', /took over \d+ ms of audio at one instant/],
  ['negative-delay', 'delay', /delay\(\) returned -1, not a whole number of frames ≥ 0/],
  ['delay-in-bytes', 'delay', /faster than 44100 frames\/s: count frames, not bytes/],
  ['stuck-delay', 'delay', /it must fall at the sample rate/],
  ['keeps-buffer', 'copies-data', /first difference at byte \d+ .*must copy it/],
  ['writable-has-side-effect', 'queries', /the queries set 3 timer\(s\) on the clock/],
  ['uncoded-error', 'errors', /init\(\) threw an Error without a code \(Error: no tape\)/],
  ['throws-in-write', 'errors', /write\(\) threw an TypeError without a code/],
  ['hangs', 'lifecycle', /did not finish within 3000 ms/],
  ['bad-command-reply', 'commands', /status answered an object: a reply is a plain object of JSON values/],
  ['timer-after-close', 'close-final', /\d timer\(s\) still set on the clock after close\(\)/],
  ['bad-format', 'negotiate', /negotiate\(\) returned a format with rate 0/],
  ['no-wake', 'wake', /no wake\(\) came in \d+ ms: a device-paced backend must call events.wake\(\)/, card],
];

describe('the conformance suite on broken backends', () => {
  for (const [fault, rule, re, plugin = tape] of BROKEN)
    it(`${fault}: fails "${rule}"`, async () => {
      const r = await checkRule(plugin, rule, withFault(fault));
      expect(r.status).toBe('fail');
      expect(r.message.startsWith(`${rule}: `)).toBe(true);
      expect(r.message).toMatch(re);
    });

  it('a whole run over a broken backend ends, in bounded time, with the broken rule among the failures', async () => {
    const t0 = performance.now();
    const results = await checkBackend(tape, withFault('partial-frames'));
    expect(failed(results)).toContain('frames');
    // the other rules that write fail too, each naming the rule actually broken
    for (const r of results.filter((x) => x.status === 'fail' && x.rule !== 'frames'))
      expect(r.message).toMatch(/^frames: /);
    expect(performance.now() - t0).toBeLessThan(60_000); // generous: the point is that it ends
  });

  it('no manifest: every rule fails "manifest"', async () => {
    const broken = { ...tape, manifest: undefined } as unknown as SpeakerdPlugin;
    const results = await checkBackend(broken, withFault('none'));
    expect(results.every((r) => r.status === 'fail' && r.message === 'manifest: the plugin has no manifest')).toBe(
      true,
    );
  });

  it('an options schema that takes anything fails "options"', async () => {
    const loose = { ...tape, options: z.any() } as unknown as SpeakerdPlugin;
    const r = await checkRule(loose, 'options', {});
    expect(r).toEqual({
      rule: 'options',
      status: 'fail',
      message: 'options: the schema accepts 42 as a section: it must take an object',
    });
  });

  it('failingOptions that work, or that the schema refuses, fail "errors"', async () => {
    expect(await checkRule(tape, 'errors', { failingOptions: { fault: 'none' } })).toMatchObject({
      status: 'fail',
      message: 'errors: with failingOptions, init() … activate() all succeeded',
    });
    expect((await checkRule(tape, 'errors', { failingOptions: { fault: 'nope' } })).message).toMatch(
      /^errors: the schema refuses failingOptions/,
    );
  });
});

describe('feed() from the kit checks returns as the host does, and never hangs', () => {
  const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
  for (const [fault, re] of [
    ['partial-frames', /writable\(\) returned \d+\.5, not a whole number of frames/],
    ['bytes-for-frames', /write\(\) returned \d+ for \d+ frames offered \(bytes instead of frames\?\)/],
  ] as const)
    it(fault, async () => {
      const t = createTestBackend(tape, { options: { fault }, clock: new VirtualClock() });
      await t.backend.activate(CD);
      await expect(feed(t, new Uint8Array(44100 * 4), CD)).rejects.toThrow(re);
      await t.backend.close();
    });

  it('a backend that takes nothing fails after stallMs of virtual time', async () => {
    const t = createTestBackend(tape, { clock: new VirtualClock() });
    await t.backend.activate(CD);
    t.backend.pause!();
    await expect(feed(t, new Uint8Array(4000), CD, { stallMs: 200 })).rejects.toThrow(/took nothing for 200 ms/);
    await t.backend.close();
  });
});

// describeBackend itself: the suite registered as tests of this file
describeBackend(tape, { options: {}, output, failingOptions: { fault: 'coded-error' } });
