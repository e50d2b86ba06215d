import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { SPEAKERD, tempDir } from './cli.js';

export type Event = Record<string, any> & { type: string };

/** Now, in ms on the scale every helper uses for arrival times (test/helpers/stamp.mjs too): wall time with fractions. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A running `speakerd`, driven the way a music server drives it. */
export class Speakerd {
  readonly events: Event[] = [];
  /** When each event's line arrived ({@link wallNow} scale), parallel to `events`. */
  readonly eventTimes: number[] = [];
  stderr = '';
  exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;
  #waiters: { pred: (e: Event) => boolean; resolve: (e: Event) => void }[] = [];
  #buf = '';

  constructor(
    readonly child: ChildProcessWithoutNullStreams,
    readonly dir: string,
    readonly socket: string,
  ) {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.#buf += d;
      let nl: number;
      while ((nl = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const e = JSON.parse(line) as Event;
        this.events.push(e);
        this.eventTimes.push(wallNow());
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.pred(e)) return true;
          w.resolve(e);
          return false;
        });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      }),
    );
  }

  /**
   * Wait until stderr contains `text` (logs are written asynchronously: a line logged before `ready` may arrive
   * after it). Resolves to stderr; throws after `timeoutMs`.
   */
  async untilLogged(text: string, timeoutMs = 5000): Promise<string> {
    const end = Date.now() + timeoutMs;
    while (!this.stderr.includes(text)) {
      if (Date.now() > end) throw new Error(`"${text}" was not logged within ${timeoutMs} ms; stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.stderr;
  }

  /** Start speakerd with `config` (the socket is put in a fresh temp dir unless given). */
  static async start(
    config: Record<string, unknown>,
    opts: { waitReady?: boolean; args?: string[]; dir?: string } = {},
  ) {
    const dir = opts.dir ?? tempDir('speakerd-e2e-').dir;
    const socket = (config.socket as string | undefined) ?? join(dir, 'run', 'decoders.sock');
    const cfg = { socket, ...config };
    writeFileSync(join(dir, 'speakerrc.json'), JSON.stringify(cfg, null, 2));
    const child = spawn(
      process.execPath,
      [SPEAKERD, '--allow-root', '--config', join(dir, 'speakerrc.json'), '--log-level', 'debug', ...(opts.args ?? [])],
      { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const s = new Speakerd(child, dir, socket);
    if (opts.waitReady !== false) await s.ready();
    return s;
  }

  /** Wait for `ready`; if it does not come, the error carries what speakerd wrote on stderr. */
  async ready(ms = 15000): Promise<void> {
    await this.waitFor((e) => e.type === 'ready', ms).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${this.stderr}`);
    });
  }

  /** When `event` (one of `events`) arrived, on the {@link wallNow} scale. */
  timeOf(event: Event): number {
    const i = this.events.indexOf(event);
    if (i < 0) throw new Error(`not an event of this speakerd: ${JSON.stringify(event)}`);
    return this.eventTimes[i]!;
  }

  send(command: Record<string, unknown> | string): void {
    this.child.stdin.write((typeof command === 'string' ? command : JSON.stringify(command)) + '\n');
  }

  /** The first event (already seen, after `from`, or future) matching `pred`. */
  waitFor(pred: (e: Event) => boolean, timeoutMs = 10000, from = 0): Promise<Event> {
    const seen = this.events.slice(from).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (e: Event) => (clearTimeout(t), resolve(e)) };
      const t = setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(
          new Error(
            `timed out waiting for an event; saw:\n${this.events.map((e) => JSON.stringify(e)).join('\n')}\nstderr:\n${this.stderr.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(w);
    });
  }

  /** Send a command with a fresh seq and wait for the reply that echoes it. */
  private seq = 1000;
  async request(command: Record<string, unknown>, timeoutMs = 10000): Promise<Event> {
    const seq = this.seq++;
    const from = this.events.length;
    this.send({ ...command, seq });
    return this.waitFor((e) => e.seq === seq, timeoutMs, from);
  }

  async status(): Promise<Event> {
    return this.request({ type: 'status' });
  }

  /** Close stdin (EOF on the control channel) and wait for the exit code. */
  async close(timeoutMs = 10000): Promise<number | null> {
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  kill(): void {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
  }

  /** For a test's cleanup: kill it if it still runs, wait until it has exited, remove its temp dir. */
  async dispose(): Promise<void> {
    this.kill();
    if (this.exitCode === undefined) await Promise.race([this.exited, new Promise((r) => setTimeout(r, 5000))]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface DecoderResult {
  reply: Record<string, any> | undefined;
  /** Raw text the server sent back. */
  raw: string;
}

/**
 * Connect a decoder: send `header` (an object, or a raw string line), then `pcm` in `chunk`-byte writes, then close.
 * Resolves with speakerd's answer line once the connection ends.
 */
export function decoder(
  socket: string,
  header: Record<string, unknown> | string,
  pcm: Uint8Array = new Uint8Array(0),
  opts: { chunk?: number; end?: boolean; waitReply?: boolean } = {},
): Promise<DecoderResult> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let raw = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (raw += d));
    c.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return;
      reject(err);
    });
    c.on('close', () => {
      const line = raw.split('\n')[0];
      resolve({ reply: line ? (JSON.parse(line) as Record<string, any>) : undefined, raw });
    });
    c.on('connect', async () => {
      c.write(typeof header === 'string' ? header : JSON.stringify(header) + '\n');
      const chunk = opts.chunk ?? 65536;
      for (let i = 0; i < pcm.length; i += chunk) {
        if (!c.write(pcm.subarray(i, i + chunk))) await new Promise((r) => c.once('drain', r));
        if (c.destroyed) return;
      }
      if (opts.end !== false) c.end();
    });
  });
}
