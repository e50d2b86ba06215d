// The machinery behind player.property.test.ts: a scripted backend that can misbehave, decoders that deliver on
// the virtual clock, a small music server that sends commands through an Outbox the way the engine does, a model
// of what the music server can know from the events, and the checks of the invariants.
//
// How the backends are modelled (the record is the output):
// - a write that throws or returns a broken value (a fraction, NaN, < 0, more than offered) accepts nothing: the
//   host counts 0 frames for it, so recording them would duplicate them;
// - idle() (also the one after a failure) stops the pacer and keeps the record: what the backend held plays out,
//   as with the pipe, and as ALSA's idle() does (it drains). Only flush() takes frames out of the record;
// - resume() without a pause() before it changes nothing (like the command plugin); it is reported as misuse [B].
import { RealtimePacer, VirtualClock, type Backend, type BackendMethod, type SampleFormat } from '@speakerd/plugin-sdk';
import { MemoryLogger } from '@speakerd/plugin-sdk/testing';
import { applyVolume, createConverter } from '../../src/convert/index.js';
import { BackendDriver } from '../../src/playback/driver.js';
import { Player, type PlayerEvent } from '../../src/playback/player.js';
import { Track } from '../../src/playback/track.js';
import { Outbox, type Event } from '../../src/protocol/outbox.js';
import { F, FB, OPTS, dropTail } from './helpers.js';

/** The other input rate: tracks at it go through the resampler. */
export const R: SampleFormat = { encoding: 's16le', rate: 11025, channels: 1 };

// ------------------------------------------------------------------ scenarios (what the generators make)

export interface TrackPlan {
  /** Length in ms at the track's own rate. */
  ms: number;
  resampled: boolean;
  /** Delivery speed in percent of real time (50..400). */
  speed: number;
  /** Bytes per socket read (any size: odd sizes split frames). */
  chunkBytes: number;
  connectAtMs: number;
  /** The decoder stops for `ms` once `atPermille` of its bytes are delivered. */
  stall: { atPermille: number; ms: number } | undefined;
  /** The decoder closes after this many bytes (possibly inside a frame), if fewer than the track has. */
  cutBytes: number | undefined;
}

export type Target =
  | { kind: 'track'; index: number }
  | { kind: 'ghost'; index: number }
  | { kind: 'current' }
  | { kind: 'next' }
  | { kind: 'unknown' }
  | { kind: 'answered'; index: number };

export type Op =
  | { type: 'play'; target: Target }
  | { type: 'cancel'; target: Target }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'volume'; volume: number };

export interface CommandPlan {
  atMs: number;
  op: Op;
}

export type FaultMethod = 'write' | 'writable' | 'delay' | 'activate' | 'pause' | 'resume';
export type FaultKind = 'throw' | 'reject' | 'fraction' | 'negative' | 'nan' | 'more';

export interface FaultPlan {
  atMs: number;
  method: FaultMethod;
  kind: FaultKind;
}

export interface BackendPlan {
  kind: 'pipe' | 'flush';
  leadMs: number;
  /** Cycled per write() call: -1 takes all it is offered, k ≥ 0 at most k frames. */
  writeCaps: number[];
  /** 0: at once; else the promise resolves this much later on the virtual clock. */
  activateMs: number;
  /** -1: the backend has no such hook; 0: synchronous; else a promise resolved this much later. */
  pauseMs: number;
  resumeMs: number;
  faults: FaultPlan[];
  /** The flushing kind's flush is seamless (a send queue): the host flushes on volume changes too. */
  seamless: boolean;
  /** From this time on every write/writable/activate fails: the backend is gone for good. */
  deadAtMs: number | undefined;
}

export interface Scenario {
  tracks: TrackPlan[];
  /** Ids played that no decoder ever connects for. */
  ghosts: number;
  commands: CommandPlan[];
  /** The music server plays the lowest track not yet played at `startAtMs`, and again on every `finished`. */
  autoplay: boolean;
  startAtMs: number;
  /** How long the music server takes to answer a `finished` with the next `play`. */
  latencyMs: number;
  bufferMs: number;
  backend: BackendPlan;
}

// ------------------------------------------------------------------ track data

/** Track `index`'s samples at frame n: never 0, in a range of its own (2001 + 2000·index ..). */
export function sampleOf(index: number, n: number): number {
  return 2000 * (index + 1) + 1 + (n % 2000);
}

export function trackInput(plan: TrackPlan, index: number): Buffer {
  const format = plan.resampled ? R : F;
  const frames = Math.round((plan.ms * format.rate) / 1000);
  const b = Buffer.alloc(frames * 2);
  for (let i = 0; i < frames; i++) b.writeInt16LE(sampleOf(index, i), i * 2);
  return plan.cutBytes !== undefined && plan.cutBytes < b.length ? b.subarray(0, plan.cutBytes) : b;
}

/** What the track must sound like at the output: its input (whole frames) converted as one stream. */
export function expectedOutput(plan: TrackPlan, input: Buffer): Int16Array {
  const whole = input.subarray(0, input.length - (input.length % 2));
  let out: Buffer;
  if (!plan.resampled) out = Buffer.from(whole);
  else {
    const c = createConverter(R, F);
    out = Buffer.concat([Buffer.from(c.convert(whole)), Buffer.from(c.end())]);
  }
  return new Int16Array(out.buffer, out.byteOffset, out.length / 2);
}

// ------------------------------------------------------------------ the backend

class Injected extends Error {}

/**
 * A clock-paced backend (RealtimePacer on the virtual clock) that records exactly the frames it accepts, with the
 * volume in force when they were written. It follows its plan: short writes, slow hooks, scripted failures and
 * contract-breaking returns. A write that throws or returns a broken value accepts (records) nothing.
 */
export class ScriptedBackend implements Backend {
  readonly pacing = 'clock' as const;
  pacer: RealtimePacer;
  /** What was accepted (and, for the flushing kind, not taken back), in order. */
  record: { bytes: Uint8Array; volume: number }[] = [];
  /** The failures injected so far (for the failure message). */
  failures: { at: number; method: FaultMethod; kind: FaultKind }[] = [];
  /** Calls the host made that the lifecycle does not allow (resume without pause, …). */
  misuse: string[] = [];
  #faults: (FaultPlan & { used: boolean })[];
  #writes = 0;
  /** pause() was called and no resume() since (a backend stays paused through idle() and activate(): backend.ts). */
  #paused = false;

  constructor(
    readonly clock: VirtualClock,
    readonly plan: BackendPlan,
    readonly volumeNow: () => number,
  ) {
    this.pacer = new RealtimePacer(clock, F.rate, Math.max(1, plan.leadMs * (F.rate / 1000)));
    this.#faults = plan.faults.map((f) => ({ ...f, used: false }));
    if (plan.pauseMs >= 0)
      this.pause = () => {
        if (this.#paused) this.misuse.push(`pause() at ${this.clock.now()} ms while already paused`);
        this.#paused = true;
        return this.#hook('pause', plan.pauseMs, () => {});
      };
    if (plan.resumeMs >= 0)
      this.resume = () => {
        const was = this.#paused;
        if (!was) this.misuse.push(`resume() at ${this.clock.now()} ms without a pause() before it`);
        this.#paused = false;
        // like the command plugin: a resume without a pause changes nothing (the misuse is reported on its own)
        return this.#hook('resume', plan.resumeMs, () => (was ? this.resumed() : undefined));
      };
  }

  pause?: () => void | Promise<void>;
  resume?: () => void | Promise<void>;

  /** What resume does once it takes effect. */
  protected resumed(): void {}

  get dead(): boolean {
    return this.plan.deadAtMs !== undefined && this.clock.now() >= this.plan.deadAtMs;
  }

  #fault(method: FaultMethod): FaultKind | undefined {
    const now = this.clock.now();
    if (this.dead && (method === 'write' || method === 'writable' || method === 'activate')) {
      this.failures.push({ at: now, method, kind: 'throw' });
      return method === 'activate' ? 'reject' : 'throw';
    }
    const f = this.#faults.find((x) => !x.used && x.method === method && x.atMs <= now);
    if (!f) return undefined;
    f.used = true;
    this.failures.push({ at: now, method, kind: f.kind });
    return f.kind;
  }

  #later(ms: number, fn: () => void): Promise<void> {
    return new Promise((resolve) => this.clock.setTimeout(() => (fn(), resolve()), ms));
  }

  #hook(method: 'pause' | 'resume', ms: number, effect: () => void): void | Promise<void> {
    const k = this.#fault(method);
    if (k === 'throw') throw new Injected(`${method}: injected throw`);
    if (k !== undefined)
      return this.#later(ms, () => {}).then(() => Promise.reject(new Injected(`${method}: injected rejection`)));
    if (ms === 0) return effect();
    return this.#later(ms, effect);
  }

  activate(_format: SampleFormat): Promise<void> {
    const k = this.#fault('activate');
    if (k === 'throw') throw new Injected('activate: injected throw');
    if (k !== undefined)
      return this.#later(this.plan.activateMs, () => {}).then(() =>
        Promise.reject(new Injected('activate: injected rejection')),
      );
    if (this.plan.activateMs === 0) {
      this.pacer.start();
      return Promise.resolve();
    }
    return this.#later(this.plan.activateMs, () => this.pacer.start());
  }

  #bad(k: FaultKind, base: number): number {
    switch (k) {
      case 'fraction':
        return base + 0.5;
      case 'negative':
        return -1;
      case 'nan':
        return NaN;
      default:
        return base + 1; // 'more' (and 'reject' where there is no promise): more than it may
    }
  }

  writable(): number {
    const k = this.#fault('writable');
    if (k === 'throw') throw new Injected('writable: injected throw');
    if (k !== undefined) return this.#bad(k, this.pacer.writable());
    return this.pacer.writable();
  }

  write(data: Uint8Array): number {
    const offered = data.length / FB;
    const k = this.#fault('write');
    if (k === 'throw') throw new Injected('write: injected throw');
    if (k !== undefined) return this.#bad(k, offered);
    const caps = this.plan.writeCaps;
    const cap = caps.length === 0 ? -1 : caps[this.#writes++ % caps.length]!;
    const n = cap < 0 ? offered : Math.min(cap, offered);
    if (n > 0) {
      this.record.push({ bytes: Uint8Array.from(data.subarray(0, n * FB)), volume: this.volumeNow() });
      this.pacer.wrote(n);
    }
    return n;
  }

  delay(): number {
    const k = this.#fault('delay');
    if (k === 'throw') throw new Injected('delay: injected throw');
    if (k !== undefined) return this.#bad(k, this.pacer.queued());
    return this.pacer.queued();
  }

  async idle(): Promise<void> {
    this.pacer.stop();
  }

  async close(): Promise<void> {
    this.pacer.stop();
  }

  /** The output: every frame recorded, with the volume it was written at. */
  output(): { samples: Int16Array; volumes: Float64Array } {
    const all = Buffer.concat(this.record.map((w) => w.bytes));
    const samples = new Int16Array(all.buffer, all.byteOffset, all.length / 2);
    const volumes = new Float64Array(samples.length);
    let i = 0;
    for (const w of this.record) {
      volumes.fill(w.volume, i, i + w.bytes.length / FB);
      i += w.bytes.length / FB;
    }
    return { samples, volumes };
  }
}

/** The same, able to take back what is queued (like ALSA's drop or a send queue): flushed frames leave the record. */
export class ScriptedFlushingBackend extends ScriptedBackend {
  dropped = 0;
  /** A send queue's flush (the host then also flushes to make a volume change heard at once). */
  get flushIsSeamless(): boolean {
    return this.plan.seamless;
  }
  flush(): number {
    const q = this.pacer.queued();
    dropTail(this.record, q * FB);
    this.dropped += q;
    this.pacer.start();
    return q;
  }
  protected override resumed(): void {
    this.pacer.start();
  }
}

// ------------------------------------------------------------------ the run

export type Logged = Event & { at: number; n: number };

export interface Outcome {
  events: Logged[];
  violations: string[];
  /** Lifecycle calls out of turn (resume() without pause(), pause() twice): checked by a property of its own. */
  misuse: string[];
  /** Ids played successfully, in order. */
  played: string[];
  answered: Map<string, { type: 'finished' | 'stillborn'; byCancel: boolean; at: number }>;
  output: { samples: Int16Array; volumes: Float64Array };
  backend: ScriptedBackend;
  dead: boolean;
  endedAt: number;
}

const trackId = (i: number) => `t${i}`;
const ghostId = (i: number) => `g${i}`;
/** An id no decoder ever comes for (a ghost, or an id only the music server knows): it never ends by itself. */
const neverEnds = (id: string) => !/^t\d+$/.test(id);

function describeErr(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Run one scenario through a real Player on a virtual clock; collect what the invariants need. */
export async function simulate(sc: Scenario): Promise<Outcome> {
  const clock = new VirtualClock();
  const log = new MemoryLogger();
  const violations: string[] = [];
  const events: Logged[] = [];
  let volume = 100;
  const backend =
    sc.backend.kind === 'flush'
      ? new ScriptedFlushingBackend(clock, sc.backend, () => volume)
      : new ScriptedBackend(clock, sc.backend, () => volume);

  /** Every call into the host goes through here: nothing may throw out of it. */
  const guard = <T>(what: string, fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      violations.push(`[6] ${what} threw at ${clock.now()} ms: ${describeErr(err)}`);
      return undefined;
    }
  };

  const late: { player?: Player } = {}; // the driver's hooks need the player, made after it
  const outbox = new Outbox((e) => written(e));
  // as the engine builds it: wake-ups kick the loop in a microtask, failures go to the player, state changes out
  const driver: BackendDriver = new BackendDriver(backend, 'test', {
    clock,
    log,
    report: (r) => outbox.send({ type: 'backend', state: r.state, message: r.message }),
    wake: () => queueMicrotask(() => guard('kick', () => late.player!.kick())),
    failed: (m: BackendMethod, retaken: number | undefined) =>
      guard('backendFailed', () => late.player!.backendFailed(driver, m, retaken)),
  });
  const player = new Player(clock, log, (e: PlayerEvent) => outbox.send({ ...e }), driver, F, {
    ...OPTS,
    bufferMs: sc.bufferMs,
  });
  late.player = player;

  // ---------------------------------------------------------------- the model: what the events say
  const played: string[] = [];
  const answered: Outcome['answered'] = new Map();
  const connected = new Set<string>();
  const eof = new Set<string>();
  const announced = new Set<string>();
  const lastPos = new Map<string, number>();
  const lastType = new Map<string, string>();
  const durations = new Map<string, number>(); // seconds at the output rate
  let reporterFinished = false;
  let autoplayPending = 0;
  let seq = 0;
  let inCommand: { seq: number; first: Logged | undefined } | undefined;
  const answers = new Map<number, number>();

  const unansweredPlayed = () => played.filter((id) => !answered.has(id));
  const current = () => unansweredPlayed()[0];
  const next = () => unansweredPlayed()[1];
  const known = (id: string) => !answered.has(id) && (connected.has(id) || played.includes(id));

  function written(e: Event): void {
    const ev: Logged = { ...e, at: clock.now(), n: events.length };
    events.push(ev);
    if (inCommand && !inCommand.first) inCommand.first = ev;
    if (typeof e.seq === 'number') answers.set(e.seq, (answers.get(e.seq) ?? 0) + 1);
    const id = e.id as string;
    switch (e.type) {
      case 'playing':
      case 'paused': {
        const pos = e.position as number;
        if (answered.has(id))
          violations.push(`[2] ${e.type} for ${id} at ${ev.at} ms after its ${answered.get(id)!.type}`);
        else if (id !== current())
          violations.push(`[5] ${e.type} for ${id} at ${ev.at} ms, which is not current (current: ${current()})`);
        if (!lastPos.has(id) && pos !== 0)
          violations.push(`[5] the first ${e.type} for ${id} (at ${ev.at} ms) has position ${pos}, not 0`);
        const before = lastPos.get(id) ?? 0;
        if (pos < before)
          violations.push(`[3] position of ${id} went back from ${before} to ${pos} (${e.type} at ${ev.at} ms)`);
        const dur = durations.get(id) ?? 0;
        if (pos > dur + 0.0015) violations.push(`[3] position ${pos} of ${id} is beyond its length ${dur} s`);
        // a backend that can take audio back plays nothing of a paused track: its position stands still
        if (sc.backend.kind === 'flush' && e.type === 'paused' && lastType.get(id) === 'paused' && pos > before)
          violations.push(
            `[3] ${id} went on from ${before} to ${pos} while paused (at ${ev.at} ms), on a backend that can take audio back`,
          );
        lastType.set(id, e.type);
        lastPos.set(id, Math.max(before, pos));
        announced.add(id);
        break;
      }
      case 'finished':
      case 'stillborn': {
        const byCancel = typeof e.seq === 'number';
        if (!byCancel) {
          if (e.type !== 'finished') violations.push(`[1] stillborn for ${id} at ${ev.at} ms is no answer to a cancel`);
          else if (answered.has(id)) violations.push(`[2] a second finished for ${id} at ${ev.at} ms`);
          else if (id !== current())
            violations.push(`[5] finished for ${id} at ${ev.at} ms, which is not current (current: ${current()})`);
          else if (!eof.has(id)) violations.push(`[5] finished for ${id} at ${ev.at} ms before its decoder closed`);
          reporterFinished = true;
        }
        if (!answered.has(id)) answered.set(id, { type: e.type as 'finished' | 'stillborn', byCancel, at: ev.at });
        if (e.type === 'finished' && sc.autoplay) {
          autoplayPending++;
          clock.setTimeout(() => {
            autoplayPending--;
            autoplayNext();
          }, sc.latencyMs);
        }
        break;
      }
      default:
        break;
    }
  }

  // ---------------------------------------------------------------- the music server's commands
  const command = (what: string, handle: (answer: (e: Event) => void, seq: number) => void): Logged | undefined => {
    const s = ++seq;
    inCommand = { seq: s, first: undefined };
    const mine = inCommand;
    guard(`Outbox.command(${what})`, () => outbox.command((answer) => handle(answer, s)));
    inCommand = undefined;
    return mine.first;
  };

  const makeTrack = (id: string) => () => new Track(id, 'waiting', sc.bufferMs);

  const play = (id: string) => {
    const cur = current();
    const nxt = next();
    const busy = id === cur || id === nxt || (cur !== undefined && nxt !== undefined);
    let refused: { busy: string } | undefined;
    command(`play ${id}`, (answer, s) => {
      refused = guard(`play(${id})`, () => player.play(id, makeTrack(id)));
      if (refused) answer({ type: 'error', code: 'busy', message: refused.busy, id, seq: s });
      else played.push(id);
    });
    if (busy !== (refused !== undefined))
      violations.push(
        `[1] play ${id} at ${clock.now()} ms: expected ${busy ? 'busy' : 'accepted'} (current ${cur}, next ${nxt}), got ${refused ? `busy (${refused.busy})` : 'accepted'}`,
      );
  };

  const cancel = (id: string) => {
    let expected: string[];
    if (!known(id)) expected = ['unknown'];
    else if (id !== current()) expected = ['stillborn'];
    else if (announced.has(id) || !reporterFinished) expected = ['finished'];
    else expected = ['finished', 'stillborn']; // current behind a finished track that may still be playing out
    const at = clock.now();
    let mySeq = 0;
    const first = command(`cancel ${id}`, (answer, s) => {
      mySeq = s;
      const r = guard(`cancel(${id})`, () => player.cancel(id));
      if (r !== undefined) answer({ type: r, id, seq: s });
    });
    const n = answers.get(mySeq) ?? 0;
    if (n !== 1) violations.push(`[1] cancel ${id} at ${at} ms was answered ${n} times`);
    if (!first || first.seq !== mySeq)
      violations.push(
        `[1] cancel ${id} at ${at} ms: the first event sent was ${JSON.stringify(first)}, not the cancel's answer`,
      );
    else if (!expected.includes(first.type as string))
      violations.push(`[1] cancel ${id} at ${at} ms answered ${String(first.type)}, expected ${expected.join(' or ')}`);
  };

  const setVolume = (v: number) => {
    command(`volume ${v}`, (answer, s) => {
      volume = v;
      guard(`setVolume(${v})`, () => player.setVolume(v));
      answer({ type: 'volume', volume: v, seq: s });
    });
  };

  let paused = false;
  const resolveTarget = (t: Target): string => {
    switch (t.kind) {
      case 'track':
        return trackId(t.index % sc.tracks.length);
      case 'ghost':
        return ghostId(t.index % Math.max(1, sc.ghosts));
      case 'current':
        return current() ?? 'nothing-current';
      case 'next':
        return next() ?? 'nothing-next';
      case 'unknown':
        return 'nobody';
      case 'answered': {
        const ids = [...answered.keys()];
        return ids.length > 0 ? ids[t.index % ids.length]! : 'nobody-yet';
      }
    }
  };

  const run = (op: Op) => {
    switch (op.type) {
      case 'play': {
        const id = resolveTarget(op.target);
        // ids are not reused: a play for an id already answered would be a new track
        if (answered.has(id) || id.startsWith('nothing-')) return;
        return play(id);
      }
      case 'cancel':
        return cancel(resolveTarget(op.target));
      case 'pause':
        paused = true;
        return command('pause', () => guard('pause()', () => player.pause()));
      case 'resume':
        paused = false;
        return command('resume', () => guard('resume()', () => player.resume()));
      case 'volume':
        return setVolume(op.volume);
    }
  };

  /** The lowest track the music server has not played yet (and that is not answered). */
  const nextToAutoplay = (): string | undefined => {
    for (let i = 0; i < sc.tracks.length; i++) {
      const id = trackId(i);
      if (!played.includes(id) && !answered.has(id)) return id;
    }
    return undefined;
  };
  function autoplayNext(): void {
    const id = nextToAutoplay();
    if (id !== undefined) play(id);
  }

  // ---------------------------------------------------------------- decoders
  const decodersDone = new Set<number>();
  /** Decoders held back by back-pressure (they go on when the track is read). */
  const decodersWaiting = new Set<number>();
  const inputs = sc.tracks.map((p, i) => trackInput(p, i));
  sc.tracks.forEach((plan, i) => {
    const id = trackId(i);
    const format = plan.resampled ? R : F;
    const data = inputs[i]!;
    durations.set(id, Math.floor(data.length / 2) / format.rate);
    let off = 0;
    let flowPaused = false;
    let waiting = false;
    let destroyed = false;
    let stalled = false;
    let track: Track | undefined;
    const stallAt = plan.stall ? Math.floor((data.length * plan.stall.atPermille) / 1000) : -1;
    const bytesPerMs = (format.rate * 2 * (plan.speed / 100)) / 1000;
    const conn = {
      pause: () => {
        flowPaused = true;
      },
      resume: () => {
        flowPaused = false;
        if (waiting) {
          waiting = false;
          decodersWaiting.delete(i);
          clock.setTimeout(deliver, 0);
        }
      },
      destroy: () => {
        destroyed = true;
        decodersWaiting.delete(i);
        decodersDone.add(i);
      },
    };
    const deliver = () => {
      if (destroyed) return;
      if (flowPaused) {
        waiting = true;
        decodersWaiting.add(i);
        return;
      }
      const t = track!;
      // at least 5 ms of delivery per wake-up: several reads at once when they are small
      const budget = Math.max(plan.chunkBytes, Math.ceil(bytesPerMs * 5));
      let sent = 0;
      while (sent < budget && off < data.length && !destroyed && !flowPaused) {
        let n = Math.min(plan.chunkBytes, data.length - off);
        if (!stalled && stallAt >= off && stallAt < off + n) n = Math.max(0, stallAt - off);
        if (n > 0) {
          guard('pushInput', () => t.pushInput(Buffer.from(data.subarray(off, off + n))));
          off += n;
          sent += n;
          guard('inputChanged', () => player.inputChanged(t));
        }
        if (!stalled && off === stallAt && plan.stall) {
          stalled = true;
          clock.setTimeout(deliver, plan.stall.ms);
          return;
        }
      }
      if (destroyed) return;
      if (off >= data.length) {
        guard('endInput', () => t.endInput());
        eof.add(id);
        decodersDone.add(i);
        guard('inputChanged', () => player.inputChanged(t));
        return;
      }
      if (flowPaused) {
        waiting = true;
        decodersWaiting.add(i);
        return;
      }
      clock.setTimeout(deliver, Math.max(1, sent / bytesPerMs));
    };
    clock.setTimeout(() => {
      if (answered.has(id)) {
        decodersDone.add(i); // the id was answered before its decoder came: it would be a new track
        return;
      }
      guard('connect', () => {
        let t = player.queue.get(id);
        if (!t) {
          t = new Track(id, 'connected', sc.bufferMs);
          player.add(t);
        }
        t.setInput(format, conn);
        track = t;
      });
      connected.add(id);
      if (!track) return void decodersDone.add(i);
      deliver();
    }, plan.connectAtMs);
  });

  // ---------------------------------------------------------------- commands on the clock
  let commandsLeft = sc.commands.length + (sc.autoplay ? 1 : 0);
  for (const c of sc.commands)
    clock.setTimeout(() => {
      commandsLeft--;
      run(c.op);
    }, c.atMs);
  if (sc.autoplay)
    clock.setTimeout(() => {
      commandsLeft--;
      autoplayNext();
    }, sc.startAtMs);

  // ---------------------------------------------------------------- drive the clock
  const settleMicrotasks = () => new Promise<void>((r) => setImmediate(r));
  /** Advance timer by timer, letting promises settle in between, until `done` or `until` ms. */
  let livelock = false;
  let stuck = 0;
  let stuckAt = -1;
  const runUntil = async (until: number, done: () => boolean) => {
    for (;;) {
      await settleMicrotasks();
      if (done() || livelock) return;
      const at = clock.nextDeadline();
      // the loop waking again and again without time moving is a livelock: give up and say so
      if (at === stuckAt) {
        if (++stuck > 20_000) {
          livelock = true;
          violations.push(`[6] livelock: timers keep firing at ${at} ms without the clock moving`);
          return;
        }
      } else {
        stuck = 0;
        stuckAt = at ?? -1;
      }
      if (at === undefined || at > until) {
        clock.advanceTo(until);
        await settleMicrotasks();
        return;
      }
      clock.advanceTo(at);
    }
  };

  const activityDone = () => commandsLeft === 0 && decodersDone.size + decodersWaiting.size === sc.tracks.length;
  await runUntil(120_000, activityDone);
  // the tail: no more commands (a paused player never finishes: the music server resumes it once)
  if (paused) run({ type: 'resume' });
  const settled = () => {
    if (autoplayPending > 0) return false;
    if (decodersDone.size + decodersWaiting.size < sc.tracks.length) return false;
    for (const id of played) {
      if (answered.has(id)) continue;
      if (neverEnds(id)) break; // a ghost never ends: what follows it waits for ever
      return false;
    }
    return player.draining.length === 0 && driver.failure === undefined;
  };
  await runUntil(clock.now() + 90_000, settled);
  await runUntil(clock.now() + 1000, () => false); // late events would show here
  const dead = backend.dead;
  for (const e of log.entries)
    if (e.level === 'error' && /play loop failed|a task failed/.test(e.msg))
      violations.push(`[6] the host caught its own exception: ${e.msg} ${JSON.stringify(e.fields.err ?? '')}`);
  if (!dead) {
    for (const id of played) {
      if (answered.has(id)) continue;
      if (neverEnds(id)) break;
      violations.push(
        `[6] ${id} was played and not cancelled, and never reported finished (current ${current()}, ended at ${clock.now()} ms)`,
      );
      break;
    }
  }
  const endedAt = clock.now();
  // close() waits for a backend call in progress, which may wait on the virtual clock: keep it moving
  let closed = false;
  void guard('close', () => player.close())?.then(() => (closed = true));
  await runUntil(clock.now() + 5000, () => closed);
  if (!closed) violations.push(`[6] Player.close() had not finished 5 s after it was called`);
  for (const [s, n] of answers) if (n > 1) violations.push(`[1] seq ${s} answered ${n} times`);

  // ---------------------------------------------------------------- the output
  checkOutput(sc, inputs, played, answered, backend.output(), dead, violations);
  const misuse = backend.misuse.map((m) => `[B] the host called the backend out of turn: ${m}`);
  return { events, violations, misuse, played, answered, output: backend.output(), backend, dead, endedAt };
}

/**
 * Invariant 4: the record without its zero frames (silence) is, in play order, each played track's converted
 * audio — whole for a track reported finished, a prefix for one cancelled or never finished — at the volume in
 * force when each frame was written.
 */
export function checkOutput(
  sc: Scenario,
  inputs: Buffer[],
  played: string[],
  answered: Outcome['answered'],
  output: { samples: Int16Array; volumes: Float64Array },
  dead: boolean,
  violations: string[],
): void {
  const scaled = new Map<number, Map<string, Int16Array>>();
  const expectedAt = (id: string, vol: number): Int16Array => {
    let m = scaled.get(vol);
    if (!m) scaled.set(vol, (m = new Map()));
    let a = m.get(id);
    if (!a) {
      const i = Number(id.slice(1));
      const raw = !neverEnds(id) ? expectedOutput(sc.tracks[i]!, inputs[i]!) : new Int16Array(0);
      a = Int16Array.from(raw);
      if (vol !== 100) applyVolume(new Uint8Array(a.buffer), F, vol);
      m.set(id, a);
    }
    return a;
  };
  const { samples, volumes } = output;
  const N = samples.length;
  const wholeRequired = (id: string) => {
    const a = answered.get(id);
    return !dead && a !== undefined && a.type === 'finished' && !a.byCancel;
  };
  // Where a cancelled track's prefix ends is not always clear from the samples alone (at a low volume the end of one
  // track and the start of the next can scale to the same values): try every prefix length, longest first.
  const failed = new Set<number>();
  let work = 0;
  const alignFrom = (ti: number, r0: number): boolean => {
    let r = r0;
    if (ti === played.length) {
      while (r < N && samples[r] === 0) r++;
      return r === N;
    }
    const key = ti * (N + 1) + r0;
    if (failed.has(key) || ++work > 2_000_000) return false;
    const id = played[ti]!;
    const len = expectedAt(id, 100).length;
    const ends = [r]; // record position after m matched frames
    let j = 0;
    for (;;) {
      while (r < N && samples[r] === 0) r++;
      const exp = expectedAt(id, r < N ? volumes[r]! : 100);
      while (j < len && exp[j] === 0) j++;
      if (j >= len || r >= N || samples[r] !== exp[j]) break;
      r++;
      j++;
      ends.push(r);
    }
    if (wholeRequired(id)) {
      if (j >= len && alignFrom(ti + 1, r)) return true;
    } else {
      for (let m = ends.length - 1; m >= 0; m--) if (alignFrom(ti + 1, ends[m]!)) return true;
    }
    failed.add(key);
    return false;
  };
  if (alignFrom(0, 0)) return;
  // no way to read the record as the played tracks: say where the straightforward reading breaks
  let r = 0; // position in the record
  const skipSilence = () => {
    while (r < samples.length && samples[r] === 0) r++;
  };
  for (const id of played) {
    const whole = wholeRequired(id);
    const len = expectedAt(id, 100).length;
    let j = 0;
    for (;;) {
      skipSilence();
      // skip expected frames that are 0 at the volume the next frame was written at (they look like silence)
      const vol = r < samples.length ? volumes[r]! : 100;
      const exp = expectedAt(id, vol);
      while (j < len && exp[j] === 0) j++;
      if (j >= len || r >= samples.length || samples[r] !== exp[j]) break;
      r++;
      j++;
    }
    if (whole && j < len) {
      const vol = r < samples.length ? volumes[r]! : 100;
      violations.push(
        `[4] ${id} (reported finished) is not whole in the output: frame ${j} of ${len} expected ${expectedAt(id, vol)[j]}, ` +
          `the record has ${r < samples.length ? samples[r] : 'nothing more'} at frame ${r} of ${samples.length} (volume ${vol})`,
      );
      return;
    }
  }
  skipSilence();
  if (r >= samples.length) violations.push(`[4] the record cannot be read as the played tracks (${played.join(',')})`);
  else {
    const owner = ownerOf(samples[r]!);
    violations.push(
      `[4] the record has ${samples.length - r} frames more than the played tracks account for: frame ${r} is ${samples[r]}` +
        ` (${owner}; played ${played.join(',')})`,
    );
  }
}

/** Which track a sample at volume 100 looks like it came from, for messages. */
function ownerOf(v: number): string {
  if (v <= 2000) return 'no track';
  const i = Math.floor((v - 1) / 2000) - 1;
  return `looks like t${i} frame ≡ ${(v - 1) % 2000} mod 2000`;
}
