// A typed client of speakerd's wire protocols (docs/PROTOCOL.md) for music servers written in TypeScript or
// JavaScript: spawn speakerd (or attach to the streams of one, e.g. an in-process Engine), send commands with
// automatic `seq` and get their answers as promises, hear events, open decoder connections.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type {
  AnswerOf,
  AnswerTo,
  CancelCommand,
  Command,
  DecoderAnswer,
  DecoderFormat,
  DecoderRefusalCode,
  ErrorCode,
  ErrorEvent,
  Event,
  EventOf,
  EventType,
  PluginCommand,
  ReadyEvent,
  StatusEvent,
  VolumeEvent,
  ReloadedEvent,
} from './protocol-types.js';

/** The `speakerd` launcher of this package (bin/speakerd.js), run with the current Node.js by default. */
export const SPEAKERD_BIN = fileURLToPath(new URL('../../bin/speakerd.js', import.meta.url));

/** The longest control line speakerd reads (PROTOCOL.md section 2), not counting the newline. */
const MAX_LINE = 65536;

/** An `error` event that answered a command: `code` is the protocol's error code. */
export class SpeakerdCommandError extends Error {
  override readonly name = 'SpeakerdCommandError';
  readonly code: ErrorCode;
  readonly event: ErrorEvent;
  constructor(
    event: ErrorEvent,
    readonly command: Command,
  ) {
    super(`speakerd: ${command.type}: ${event.code}: ${event.message}`);
    this.code = event.code;
    this.event = event;
  }
}

/** A decoder connection speakerd refused (its answer line said `ok: false`). */
export class SpeakerdDecoderError extends Error {
  override readonly name = 'SpeakerdDecoderError';
  constructor(
    readonly code: DecoderRefusalCode | 'no-answer',
    message: string,
    readonly id: string,
  ) {
    super(`speakerd: decoder ${JSON.stringify(id)}: ${code}: ${message}`);
  }
}

/** speakerd went away (its control channel ended, or it exited) before it answered, or before `ready`. */
export class SpeakerdClosedError extends Error {
  override readonly name = 'SpeakerdClosedError';
  readonly code = 'closed';
}

/** A command that got no answer within its timeout. */
export class SpeakerdTimeoutError extends Error {
  override readonly name = 'SpeakerdTimeoutError';
  readonly code = 'timeout';
}

export interface SpawnOptions {
  /** `--config FILE`. */
  config?: string;
  /** More arguments (`--log-level debug`, `--allow-root`…). */
  args?: readonly string[];
  /**
   * What to run: a `.js`/`.mjs`/`.cjs` file is run with this Node.js (default: this package's bin/speakerd.js),
   * anything else as an executable (`speakerd` on the PATH).
   */
  bin?: string;
  /** The child's environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Its working directory (a speakerrc is searched from there). */
  cwd?: string;
  /** speakerd's log (stderr): collected (`pipe`, the default; see {@link SpeakerdClient.stderr}) or `inherit`ed. */
  stderr?: 'pipe' | 'inherit' | 'ignore';
  /** How long to wait for `ready` (default 15000 ms). */
  readyTimeoutMs?: number;
}

export interface AttachOptions {
  /** speakerd's control input (its stdin; an Engine's `input`). */
  input: Writable;
  /** speakerd's control output (its stdout; an Engine's `output`). */
  output: Readable;
  /** Where decoders connect, when `ready` does not say (default: PROTOCOL.md's rule). */
  socket?: string;
  /** How long to wait for `ready` (default 15000 ms). */
  readyTimeoutMs?: number;
}

export interface RequestOptions {
  /** Reject with {@link SpeakerdTimeoutError} after this long (default: wait as long as speakerd runs). */
  timeoutMs?: number;
}

/** The decoder socket PROTOCOL.md section 4 names when the configuration does not. */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return join(runtime, 'speakerd', 'decoders.sock');
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return join(tmpdir(), `speakerd-${uid}`, 'decoders.sock');
}

/** Commands whose success has an answer that echoes `seq` (every other command only gets `error` answers). */
export type AnsweredCommand = Exclude<Command, { type: 'play' | 'pause' | 'resume' }>;

interface Pending {
  command: Command;
  resolve: (e: Event) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

type Listener<T extends string> = (event: EventOf<T>) => void;

/**
 * The events a {@link SpeakerdClient} emits: `'event'` for every event, then the event's own type (`'playing'`,
 * `'finished'`, `'rtp.add-recipient'`…); `'error'` (an `error` event of speakerd's) only when something listens
 * for it, so that an error answer never throws; `'exit'` (code, signal) when speakerd has gone.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- only narrows EventEmitter's on/once/off to speakerd's events
export interface SpeakerdClient {
  on(name: 'event', listener: (event: Event) => void): this;
  on(name: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  on<T extends EventType>(name: T, listener: Listener<T>): this;
  once(name: 'event', listener: (event: Event) => void): this;
  once(name: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once<T extends EventType>(name: T, listener: Listener<T>): this;
  off(name: 'event', listener: (event: Event) => void): this;
  off(name: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  off<T extends EventType>(name: T, listener: Listener<T>): this;
}

/** A music server's handle on one speakerd. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- only narrows EventEmitter's on/once/off to speakerd's events
export class SpeakerdClient extends EventEmitter {
  /** The `ready` event (set once {@link spawn}/{@link attach} has resolved). */
  ready!: ReadyEvent;
  /** The child process, for a spawned speakerd. */
  readonly child: ChildProcess | undefined;
  /** Everything speakerd wrote on stderr (the last 256 KiB), when spawned with `stderr: 'pipe'`. */
  stderr = '';
  /** Exit code (undefined while it runs; null when killed by a signal); for attached streams, 0 once they end. */
  exitCode: number | null | undefined;
  /** Resolves when speakerd has exited (or the attached output has ended). */
  readonly exited: Promise<number | null>;

  readonly #input: Writable;
  readonly #fallbackSocket: string;
  #seq = 1;
  #pending = new Map<number, Pending>();
  #buf = '';
  #closed = false;
  #queue: Event[] = [];
  #wake: (() => void) | undefined;
  #iterating = 0;
  #gone: (code: number | null, signal: NodeJS.Signals | null) => void;

  private constructor(input: Writable, output: Readable, child: ChildProcess | undefined, socket: string) {
    super();
    this.#input = input;
    this.child = child;
    this.#fallbackSocket = socket;
    input.on('error', () => {}); // EPIPE after speakerd died: reported as its exit
    output.setEncoding('utf8');
    output.on('data', (d: string) => this.#data(d));
    let markExited!: (code: number | null) => void;
    this.exited = new Promise((r) => (markExited = r));
    const gone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.exitCode !== undefined) return;
      this.exitCode = code;
      this.#end();
      markExited(code);
      this.emit('exit', code, signal);
    };
    this.#gone = gone;
    if (child) {
      child.on('exit', (code, signal) => gone(code, signal));
      child.on('error', (err) => {
        this.stderr += `${err.message}\n`;
        gone(null, null);
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        this.stderr = (this.stderr + d).slice(-262144);
      });
    } else {
      output.on('end', () => gone(0, null));
      output.on('close', () => gone(0, null));
    }
    output.on('end', () => this.#end());
  }

  /** Launch speakerd as a child (stdin/stdout its control channel) and wait for `ready`. */
  static async spawn(opts: SpawnOptions = {}): Promise<SpeakerdClient> {
    const bin = opts.bin ?? SPEAKERD_BIN;
    const args = [...(opts.config === undefined ? [] : ['--config', opts.config]), ...(opts.args ?? [])];
    const [file, argv] = /\.[cm]?js$/.test(bin) ? [process.execPath, [bin, ...args]] : [bin, args];
    const env = opts.env ?? process.env;
    const child = spawn(file, argv, {
      cwd: opts.cwd,
      env,
      stdio: ['pipe', 'pipe', opts.stderr ?? 'pipe'],
    });
    const client = new SpeakerdClient(child.stdin!, child.stdout!, child, defaultSocketPath(env));
    await client.#waitReady(opts.readyTimeoutMs);
    return client;
  }

  /** Drive a speakerd through given streams (an in-process Engine's PassThroughs) and wait for `ready`. */
  static async attach(opts: AttachOptions): Promise<SpeakerdClient> {
    const client = new SpeakerdClient(opts.input, opts.output, undefined, opts.socket ?? defaultSocketPath());
    await client.#waitReady(opts.readyTimeoutMs);
    return client;
  }

  async #waitReady(timeoutMs = 15000): Promise<void> {
    const ready = new Promise<ReadyEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new SpeakerdTimeoutError(`speakerd sent no ready within ${timeoutMs} ms${this.#stderrTail()}`));
      }, timeoutMs);
      const onReady = (e: ReadyEvent) => (cleanup(), resolve(e));
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        cleanup();
        reject(
          new SpeakerdClosedError(
            `speakerd ended before ready (${signal ? `signal ${signal}` : `exit code ${code}`})${this.#stderrTail()}`,
          ),
        );
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('exit', onExit);
      };
      this.on('ready', onReady);
      this.on('exit', onExit);
    });
    try {
      this.ready = await ready;
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  #stderrTail(): string {
    const tail = this.stderr.trim().split('\n').slice(-5).join('\n');
    return tail ? `; stderr:\n${tail}` : '';
  }

  /** The decoder socket: from `ready` when it says, else the configured or default path. */
  get socket(): string {
    return this.ready?.socket ?? this.#fallbackSocket;
  }

  /** Is the control channel still open? */
  get closed(): boolean {
    return this.#closed;
  }

  #data(d: string): void {
    this.#buf += d;
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      if (line.trim() === '') continue;
      let event: Event;
      try {
        event = JSON.parse(line) as Event;
      } catch {
        continue; // stdout carries nothing but events; a torn line is no event
      }
      this.#dispatch(event);
    }
  }

  #dispatch(event: Event): void {
    if (typeof event.seq === 'number') {
      const p = this.#pending.get(event.seq);
      if (p) {
        this.#pending.delete(event.seq);
        clearTimeout(p.timer);
        if (event.type === 'error') p.reject(new SpeakerdCommandError(event, p.command));
        else p.resolve(event);
      }
    }
    if (this.#iterating > 0) {
      this.#queue.push(event);
      this.#wake?.();
    }
    this.emit('event', event);
    if (event.type !== 'error' || this.listenerCount('error') > 0) this.emit(event.type, event);
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new SpeakerdClosedError(`speakerd went away before it answered ${p.command.type}`));
    }
    this.#pending.clear();
    this.#wake?.();
  }

  #write(command: Command, seq: number): void {
    if (this.#closed) throw new SpeakerdClosedError(`speakerd has gone; cannot send ${command.type}`);
    const line = JSON.stringify({ ...command, seq });
    if (Buffer.byteLength(line) > MAX_LINE) throw new RangeError(`${command.type}: the line is over ${MAX_LINE} bytes`);
    this.#input.write(line + '\n');
  }

  /**
   * Send a command with the next `seq` and return that seq, not waiting for anything: for `play`, `pause` and
   * `resume`, whose success has no answer (a refusal, e.g. `busy`, is an `error` event with this seq).
   */
  send(command: Command): number {
    const seq = this.#seq++;
    this.#write(command, seq);
    return seq;
  }

  /**
   * Send a command with the next `seq` and resolve with the event that answers it (the one echoing the seq:
   * `status`, `volume`, `reloaded`, `finished`/`stillborn`/`unknown` for cancel, a plugin command's reply).
   * An `error` answer rejects with a {@link SpeakerdCommandError} carrying its `code`; speakerd going away
   * rejects with {@link SpeakerdClosedError}.
   */
  request<C extends AnsweredCommand>(command: C, opts: RequestOptions = {}): Promise<AnswerTo<C>> {
    return new Promise<AnswerTo<C>>((resolve, reject) => {
      const seq = this.#seq++;
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.#pending.delete(seq);
              reject(new SpeakerdTimeoutError(`speakerd did not answer ${command.type} within ${opts.timeoutMs} ms`));
            }, opts.timeoutMs);
      this.#pending.set(seq, { command, resolve: resolve as (e: Event) => void, reject, timer });
      try {
        this.#write(command, seq);
      } catch (err) {
        this.#pending.delete(seq);
        clearTimeout(timer);
        reject(err as Error);
      }
    });
  }

  /** `play` (no answer on success; a `busy` refusal is an `error` event echoing the returned seq). */
  play(id: string): number {
    return this.send({ type: 'play', id });
  }
  pause(): number {
    return this.send({ type: 'pause' });
  }
  resume(): number {
    return this.send({ type: 'resume' });
  }
  cancel(id: string, opts?: RequestOptions): Promise<AnswerOf['cancel']> {
    return this.request<CancelCommand>({ type: 'cancel', id }, opts);
  }
  status(opts?: RequestOptions): Promise<StatusEvent> {
    return this.request({ type: 'status' }, opts);
  }
  volume(volume: number, opts?: RequestOptions): Promise<VolumeEvent> {
    return this.request({ type: 'volume', volume }, opts);
  }
  reload(opts?: RequestOptions): Promise<ReloadedEvent> {
    return this.request({ type: 'reload' }, opts);
  }
  /** A backend plugin's command (`rtp.add-recipient`…). */
  command(type: `${string}.${string}`, fields: Record<string, unknown> = {}, opts?: RequestOptions) {
    return this.request({ ...fields, type } as PluginCommand, opts);
  }

  /** The next event of `type` (matching `pred`), from now on. */
  waitFor<T extends EventType>(
    type: T,
    pred: (e: EventOf<T>) => boolean = () => true,
    opts: RequestOptions = {},
  ): Promise<EventOf<T>> {
    return new Promise((resolve, reject) => {
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              cleanup();
              reject(new SpeakerdTimeoutError(`no ${type} event within ${opts.timeoutMs} ms`));
            }, opts.timeoutMs);
      const onEvent = (e: Event) => {
        if (e.type !== type || !pred(e as EventOf<T>)) return;
        cleanup();
        resolve(e as EventOf<T>);
      };
      const onExit = () => {
        cleanup();
        reject(new SpeakerdClosedError(`speakerd went away before a ${type} event`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('exit', onExit);
      };
      this.on('event', onEvent);
      this.on('exit', onExit);
    });
  }

  /** Every event from now on, until speakerd goes away: `for await (const e of client.events()) …`. */
  async *events(): AsyncGenerator<Event, void, undefined> {
    this.#iterating++;
    try {
      for (;;) {
        const e = this.#queue.shift();
        if (e) {
          yield e;
          continue;
        }
        if (this.#closed) return;
        await new Promise<void>((r) => (this.#wake = r));
        this.#wake = undefined;
      }
    } finally {
      this.#iterating--;
      if (this.#iterating === 0) this.#queue = [];
    }
  }

  /**
   * Open a decoder connection for track `id`: connect to the decoder socket, send the header line, wait for
   * speakerd's answer line, and resolve with the socket to write the PCM (or WAV stream) into, then `end()` it.
   * A refusal rejects with {@link SpeakerdDecoderError} carrying its code.
   */
  openDecoder(id: string, format: DecoderFormat, opts: { socket?: string; timeoutMs?: number } = {}): Promise<Socket> {
    const path = opts.socket ?? this.socket;
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      let raw = '';
      let settled = false;
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => fail(new SpeakerdTimeoutError(`no answer to decoder ${id} within ${opts.timeoutMs} ms`)));
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      };
      const onData = (d: string) => {
        raw += d;
        const nl = raw.indexOf('\n');
        if (nl < 0) return;
        settled = true;
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('close', onClose);
        let answer: DecoderAnswer;
        try {
          answer = JSON.parse(raw.slice(0, nl)) as DecoderAnswer;
        } catch {
          sock.destroy();
          return reject(new SpeakerdDecoderError('no-answer', `unparsable answer ${raw.slice(0, nl)}`, id));
        }
        if (answer.ok) {
          // nothing more comes on it; a refusal after the answer cannot happen
          sock.on('error', () => {});
          return resolve(sock);
        }
        sock.destroy();
        reject(new SpeakerdDecoderError(answer.code, answer.message, id));
      };
      const onClose = () =>
        fail(new SpeakerdDecoderError('no-answer', 'the connection closed before the answer line', id));
      sock.setEncoding('utf8');
      sock.on('data', onData);
      sock.on('close', onClose);
      sock.on('error', (err) => fail(err));
      sock.on('connect', () => sock.write(JSON.stringify({ id, ...format }) + '\n'));
    });
  }

  /**
   * Close the control channel (EOF on speakerd's stdin: it stops the backend, removes its socket and exits 0)
   * and wait for the exit; after `timeoutMs` (default 10000) it is killed. Resolves with the exit code.
   */
  async close(timeoutMs = 10000): Promise<number | null> {
    if (this.exitCode !== undefined) return this.exitCode;
    this.#input.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Stop it at once: SIGKILL for a child (no clean-up: its socket file stays); for attached streams, the streams
   * are destroyed.
   */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitCode !== undefined) return;
    if (this.child) {
      this.child.kill(signal);
    } else {
      this.#input.destroy();
      this.#gone(null, signal);
    }
  }
}

/** Wait for `client` to have exited, with an upper bound (for a test's or a service's shutdown). */
export async function exitedWithin(client: SpeakerdClient, ms: number): Promise<boolean> {
  if (client.exitCode !== undefined) return true;
  const t = new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
  return Promise.race([client.exited.then(() => true), t]);
}
