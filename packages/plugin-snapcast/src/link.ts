import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { Socket, connect, createServer, type Server } from 'node:net';
import { SpeakerdError, type Clock, type Logger, type TimerHandle } from '@speakerd/plugin-sdk';
import { PLUGIN, SnapcastErrorCodes } from './format.js';

/** What a link tells the backend. */
export interface LinkListener {
  /** The stream can be written now (connected, accepted, the fifo opened). */
  up(where: string): void;
  /** It went away (or an attempt failed); `wasUp` says whether it had been up. */
  down(why: string, wasUp: boolean): void;
  /** The socket's buffer emptied after a write returned false. */
  drain(): void;
}

/** What every link is made with. */
export interface LinkDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly opts: LinkOptions;
  readonly listener: LinkListener;
}

export interface LinkOptions {
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly stallMs: number;
}

/** How long start-up waits for the first connection to snapserver's tcp source. */
export const FIRST_ATTEMPT_MS = 1000;

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code
    ? `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ''}`
    : String(e.message ?? e);
}

/**
 * The byte stream into snapserver: a TCP connection (made by speakerd, or accepted from snapserver) or a fifo
 * opened for writing. It keeps itself up: after a failure it tries again with a doubling back-off (a listening
 * link just waits for snapserver to connect again).
 */
export abstract class Link {
  protected socket: Socket | undefined;
  #up = false;
  #closed = false;
  #retry: TimerHandle | undefined;
  #backoff: number;

  protected readonly clock: Clock;
  protected readonly log: Logger;
  protected readonly opts: LinkOptions;
  protected readonly listener: LinkListener;

  constructor(deps: LinkDeps) {
    ({ clock: this.clock, log: this.log, opts: this.opts, listener: this.listener } = deps);
    this.#backoff = deps.opts.reconnectMinMs;
  }

  /** Where it writes, for messages. */
  abstract readonly where: string;

  /**
   * How long a link that came back must stay up, not backed up, before it counts as working again: a TCP
   * connection works once made; a fifo opened read-write opens whether snapserver reads it or not.
   */
  get confirmMs(): number {
    return 0;
  }

  /** Bind or make the first attempt. A listening link throws a coded error when it cannot listen. */
  abstract start(): Promise<void>;

  /** One attempt to get a socket (connect, open the fifo); calls {@link attach} or {@link failed}. */
  protected abstract attempt(): void;

  get up(): boolean {
    return this.#up;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** True while the socket's buffer is over its high-water mark (a 'drain' will follow). */
  get backedUp(): boolean {
    return this.#up && this.socket !== undefined && this.socket.writableNeedDrain;
  }

  /** Bytes written and still in our own buffer (not yet taken by the kernel). */
  get buffered(): number {
    return this.#up && this.socket ? this.socket.writableLength : 0;
  }

  /** Write if up; returns false when nothing was written (the link is down). */
  write(bytes: Uint8Array): boolean {
    if (!this.#up || !this.socket) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Drop the current socket as failed (snapserver stopped reading) and make a new one after the back-off. */
  drop(why: string): void {
    const socket = this.socket;
    if (!socket) return;
    this.#lost(socket, why);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelRetry();
    const socket = this.socket;
    this.socket = undefined;
    this.#up = false;
    if (socket && !socket.destroyed) {
      await new Promise<void>((done) => {
        const t = setTimeout(() => socket.destroy(), 1000);
        t.unref();
        socket.once('close', () => (clearTimeout(t), done()));
        socket.end();
      });
    }
  }

  /** Take `socket` as the stream. */
  protected attach(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    this.#up = true;
    socket.on('drain', () => {
      if (this.socket === socket) this.listener.drain();
    });
    socket.on('error', (err) => this.#lost(socket, errText(err)));
    socket.on('close', () => this.#lost(socket, 'the connection was closed'));
    socket.on('data', () => undefined); // snapserver sends nothing; never let a reader back up
    this.listener.up(this.where);
  }

  /** An attempt failed before a socket was up. */
  protected failed(why: string): void {
    if (this.#closed) return;
    this.listener.down(why, false);
    this.scheduleRetry();
  }

  /** Whether a lost socket is followed by a retry of our own (a listening link waits instead). */
  protected retries = true;

  #lost(socket: Socket, why: string): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    const wasUp = this.#up;
    this.#up = false;
    socket.destroy();
    if (this.#closed) return;
    this.listener.down(why, wasUp);
    if (this.retries) this.scheduleRetry();
  }

  protected scheduleRetry(): void {
    if (this.#closed || this.#retry !== undefined) return;
    const delay = this.#backoff;
    this.#backoff = Math.min(delay * 2, this.opts.reconnectMaxMs);
    this.log.debug({ delayMs: delay }, `trying ${this.where} again in ${delay} ms`);
    this.#retry = this.clock.setTimeout(() => {
      this.#retry = undefined;
      if (!this.#closed && !this.#up) this.attempt();
    }, delay);
  }

  /** Up and working: the next failure starts the back-off from its minimum again. */
  resetBackoff(): void {
    this.#backoff = this.opts.reconnectMinMs;
  }

  #cancelRetry(): void {
    if (this.#retry !== undefined) this.clock.clearTimeout(this.#retry);
    this.#retry = undefined;
  }
}

/** speakerd connects to snapserver's `tcp://HOST:PORT?mode=server` source. */
export class ConnectLink extends Link {
  readonly where: string;

  constructor(
    deps: LinkDeps,
    private readonly host: string,
    private readonly port: number,
  ) {
    super(deps);
    this.where = `tcp://${host}:${port}`;
  }

  /**
   * The first attempt, waited for (at most `FIRST_ATTEMPT_MS` of real time), so that a snapserver that is there
   * is connected before speakerd says it is ready; one that is not is tried again in the background.
   */
  async start(): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, FIRST_ATTEMPT_MS);
      t.unref();
      this.attempt(() => (clearTimeout(t), resolve()));
    });
  }

  protected attempt(settled?: () => void): void {
    if (this.closed) return settled?.();
    const socket = connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    const onError = (err: Error): void => {
      socket.destroy();
      this.failed(errText(err));
      settled?.();
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      this.attach(socket);
      settled?.();
    });
  }
}

/** speakerd listens; snapserver's `tcp://HOST:PORT?mode=client` source connects (and reconnects) to it. */
export class ListenLink extends Link {
  readonly where: string;
  #server: Server | undefined;

  constructor(
    deps: LinkDeps,
    private readonly host: string,
    private readonly port: number,
  ) {
    super(deps);
    this.where = `tcp://${host}:${port} (listening)`;
    this.retries = false;
  }

  async start(): Promise<void> {
    const server = createServer((socket) => this.#accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new SpeakerdError(
            SnapcastErrorCodes.LISTEN,
            `cannot listen on ${this.host}:${this.port} for snapserver: ${errText(err)}`,
            { plugin: PLUGIN, cause: err },
          ),
        ),
      );
      server.listen({ host: this.host, port: this.port }, () => resolve());
    });
    server.on('error', (err) => this.log.warn(`listening socket: ${errText(err)}`));
    this.#server = server;
  }

  protected attempt(): void {
    // nothing to do: snapserver connects
  }

  #accept(socket: Socket): void {
    socket.setNoDelay(true);
    const old = this.socket;
    if (old) {
      this.log.info('snapserver connected again: the new connection replaces the old one');
      this.drop('replaced by a new connection');
    }
    this.attach(socket);
  }

  override async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    const closed = server ? new Promise<void>((done) => server.close(() => done())) : Promise.resolve();
    await super.close();
    await closed;
  }
}

/** speakerd writes into the fifo of snapserver's `pipe://PATH` source (opened non-blocking, never waiting). */
export class PipeLink extends Link {
  readonly where: string;

  constructor(
    deps: LinkDeps,
    private readonly path: string,
  ) {
    super(deps);
    this.where = `pipe://${path}`;
  }

  override get confirmMs(): number {
    return this.opts.stallMs + 500;
  }

  async start(): Promise<void> {
    this.attempt();
  }

  protected attempt(): void {
    if (this.closed) return;
    let fd: number;
    try {
      // O_RDWR, not O_WRONLY: a fifo opened so always has a writer and never blocks the open. snapserver's pipe
      // source opens the fifo non-blocking, and on reading an end of file (no writer at that instant) closes it
      // and opens it again later, so a non-blocking O_WRONLY open (ENXIO without a reader) nearly never meets
      // it open. The price: no EPIPE tells us that snapserver stopped reading; the stall check does (the fifo
      // fills, writes back up for stallMs), and closing our descriptor discards what nobody read.
      fd = openSync(this.path, constants.O_RDWR | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      this.failed(
        code === 'ENOENT'
          ? `${this.path} does not exist (snapserver's pipe source makes it with mode=create)`
          : `${this.path}: ${errText(err)}`,
      );
      return;
    }
    try {
      if (!fstatSync(fd).isFIFO()) {
        closeSync(fd);
        this.failed(`${this.path} is not a fifo (snapserver's pipe source reads a named pipe)`);
        return;
      }
    } catch (err) {
      closeSync(fd);
      this.failed(`${this.path}: ${errText(err)}`);
      return;
    }
    this.attach(new Socket({ fd, readable: false, writable: true }));
  }
}
