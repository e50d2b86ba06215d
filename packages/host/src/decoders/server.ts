import { isUtf8 } from 'node:buffer';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import {
  ENCODINGS,
  ErrorCodes,
  SpeakerdError,
  MAX_CHANNELS,
  MAX_RATE,
  MIN_CHANNELS,
  MIN_RATE,
  describeValue,
  isEncoding,
  type Clock,
  type Logger,
  type SampleFormat,
} from '@speakerd/plugin-sdk';
import { guardMessage } from '../protocol/control.js';
import { idProblem } from '../protocol/ids.js';

/** Longest header line, not counting the newline (PROTOCOL.md section 3). */
export const MAX_HEADER_BYTES = 4096;

export type RefusalCode = 'bad-header' | 'header-timeout' | 'duplicate-id' | 'too-many-tracks';

/** A decoder connection whose header has been accepted (the `{"ok":true}` line is sent). */
export interface AcceptedDecoder {
  id: string;
  /** The format from the header, or `wav`: the payload is a RIFF/WAVE stream whose `fmt ` chunk gives it. */
  encoding: SampleFormat | 'wav';
  socket: Socket;
  /** Payload bytes that arrived together with the header line. */
  initial: Buffer;
}

/** What the engine decides about a validated header: accept (returns the sink for its PCM) or refuse. */
export interface DecoderHandler {
  /** Check id and limits before anything is allocated for the track. */
  admit(id: string): { ok: true } | { ok: false; code: RefusalCode; message: string };
  /** The connection is accepted (the `{"ok":true}` line has been sent). */
  accepted(decoder: AcceptedDecoder): void;
  /** A connection was refused; report it on the control channel. */
  refused(code: RefusalCode, message: string, id: string | undefined): void;
}

export interface DecoderServerOptions {
  path: string;
  headerTimeoutMs: () => number;
}

type Header = { id: string; format: SampleFormat | 'wav' };

/** Validate a header object; a string is the problem. Nothing is allocated from its numbers. */
export function validateHeader(value: unknown): Header | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the header must be a JSON object';
  const h = value as Record<string, unknown>;
  for (const key of Object.keys(h))
    if (!['id', 'encoding', 'rate', 'channels'].includes(key)) return `unknown header field ${describeValue(key)}`;
  const idWhy = idProblem(h.id);
  if (idWhy) return idWhy;
  const id = h.id as string;
  if (h.encoding === 'wav') {
    if (h.rate !== undefined || h.channels !== undefined)
      return 'with encoding "wav", omit rate and channels (the fmt chunk gives them)';
    return { id, format: 'wav' };
  }
  if (!isEncoding(h.encoding))
    return `encoding must be one of ${ENCODINGS.join(', ')} or wav, got ${describeValue(h.encoding ?? null)}`;
  const { rate, channels } = h;
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < MIN_RATE || rate > MAX_RATE)
    return `rate must be an integer ${MIN_RATE}..${MAX_RATE}, got ${describeValue(rate ?? null)}`;
  if (typeof channels !== 'number' || !Number.isInteger(channels) || channels < MIN_CHANNELS || channels > MAX_CHANNELS)
    return `channels must be an integer ${MIN_CHANNELS}..${MAX_CHANNELS}, got ${describeValue(channels ?? null)}`;
  return { id, format: { encoding: h.encoding, rate, channels } };
}

/**
 * The decoder socket: a Unix stream socket, one track per connection. Reads each header line without blocking
 * anything else, under a deadline, answers it exactly once and at once (for every encoding, `wav` included: a bad
 * RIFF header is the engine's to report afterwards), and hands accepted connections to the engine.
 */
export class DecoderServer {
  #server: Server | undefined;
  #sockets = new Set<Socket>();
  #listening = false;

  constructor(
    private readonly opts: DecoderServerOptions,
    private readonly handler: DecoderHandler,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  get path(): string {
    return this.opts.path;
  }

  /** Create the directory (0700) if needed, replace a stale socket, refuse a live one, listen (0600). */
  async listen(): Promise<void> {
    const path = this.opts.path;
    const dir = dirname(path);
    const fix = 'set "socket" in speakerrc to a path in a directory of your own (PROTOCOL.md section 3)';
    makeDirs(dir, fix);
    const problem = socketDirProblem(dir, statSync(dir));
    if (problem) throw socketError(`${problem.why}: ${problem.fix}, or ${fix}`);
    if (exists(path)) {
      if (!lstatSync(path).isSocket())
        throw socketError(`${path} exists and is not a socket; not replacing it: ${fix}`);
      if (await isLive(path))
        throw socketError(`another process is listening on ${path} (another speakerd?): stop it, or ${fix}`);
      this.log.info({ path }, 'replacing a stale decoder socket');
      unlinkSync(path);
    }
    const server = createServer({ allowHalfOpen: false }, (s) => this.#connection(s));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const old = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(old);
      }
    });
    chmodSync(path, 0o600);
    this.#listening = true;
    server.on('error', (err) => this.log.error({ err }, 'decoder socket error'));
  }

  /** Stop listening, hang up on every decoder, remove the socket file. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.#listening) {
      this.#listening = false;
      try {
        unlinkSync(this.opts.path);
      } catch {
        // already gone
      }
    }
  }

  #connection(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', (err) => this.log.debug({ err }, 'decoder connection error'));
    let parts: Buffer[] = [];
    let size = 0;
    let done = false;
    let headerId: string | undefined;

    const timer = this.clock.setTimeout(() => {
      if (!done) refuse('header-timeout', `no complete header within ${this.opts.headerTimeoutMs()} ms`);
    }, this.opts.headerTimeoutMs());

    const finish = () => {
      done = true;
      this.clock.clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    const refuse = (code: RefusalCode, message: string) => {
      if (done) return;
      finish();
      answer(socket, { ok: false, code, message });
      socket.end();
      // a peer that never reads its answer must not hold the connection open
      const kill = this.clock.setTimeout(() => socket.destroy(), 1000);
      socket.once('close', () => this.clock.clearTimeout(kill));
      this.handler.refused(code, message, headerId);
    };

    const onEnd = () =>
      refuse('bad-header', size === 0 ? 'connection closed before a header' : 'connection closed inside the header');
    const handle = (chunk: Buffer) => {
      parts.push(chunk);
      size += chunk.length;
      const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
      parts = [buf];
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        if (size > MAX_HEADER_BYTES) refuse('bad-header', `header line longer than ${MAX_HEADER_BYTES} bytes`);
        return;
      }
      if (nl > MAX_HEADER_BYTES) return refuse('bad-header', `header line longer than ${MAX_HEADER_BYTES} bytes`);
      if (!isUtf8(buf.subarray(0, nl)))
        return refuse(
          'bad-header',
          'header is not valid UTF-8 (an id must be matched byte for byte by the music server)',
        );
      let value: unknown;
      try {
        value = JSON.parse(buf.toString('utf8', 0, nl));
      } catch (err) {
        return refuse('bad-header', `header is not JSON: ${(err as Error).message}`);
      }
      const header = validateHeader(value);
      if (typeof header === 'string') {
        if (typeof value === 'object' && value !== null && !idProblem((value as { id?: unknown }).id))
          headerId = (value as { id: string }).id;
        return refuse('bad-header', header);
      }
      headerId = header.id;
      const admitted = this.handler.admit(header.id);
      if (!admitted.ok) return refuse(admitted.code, admitted.message);
      finish();
      answer(socket, { ok: true });
      this.handler.accepted({
        id: header.id,
        encoding: header.format,
        socket,
        initial: Buffer.from(buf.subarray(nl + 1)),
      });
    };
    const onData = (chunk: Buffer) => {
      try {
        handle(chunk);
      } catch (err) {
        // the guard: whatever a header holds, nothing it causes escapes the connection's handler
        refuse('bad-header', `the header could not be handled: ${guardMessage(err)}`);
      }
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
  }
}

function answer(socket: Socket, value: unknown): void {
  if (!socket.writable) return;
  socket.write(JSON.stringify(value) + '\n');
}

function socketError(message: string): SpeakerdError {
  return new SpeakerdError(ErrorCodes.SOCKET, message);
}

/**
 * Create `dir` (0700) and its missing parents one at a time. Not `mkdirSync(…, { recursive: true })`: under /proc
 * or /sys that loops for ever (it takes the kernel's ENOENT for a race and retries); one level at a time, a
 * directory that cannot be made fails at once, with the reason.
 */
export function makeDirs(dir: string, fix: string): void {
  const missing: string[] = [];
  for (let d = dir; ;) {
    try {
      if (!statSync(d).isDirectory()) throw socketError(`cannot use ${dir}: ${d} is not a directory: ${fix}`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        if (err instanceof SpeakerdError) throw err;
        throw socketError(`cannot use ${dir}: ${(err as Error).message}: ${fix}`);
      }
      missing.push(d);
      const up = dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // made meanwhile
      throw socketError(`cannot create the directory ${d}: ${(err as Error).message}: ${fix}`);
    }
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Why `dir` (with its `stat`) may not hold the decoder socket, or undefined (PROTOCOL.md section 3): it must be
 * owned by this process's user and writable by nobody else, sticky or not. Otherwise its owner, or anyone who may
 * write it, could move the socket away and listen in its place, and decoders would send their tracks to them.
 */
export function socketDirProblem(
  dir: string,
  st: { uid: number; mode: number },
  uid: number | undefined = typeof process.getuid === 'function' ? process.getuid() : undefined,
): { why: string; fix: string } | undefined {
  const mode = (st.mode & 0o7777).toString(8).padStart(3, '0');
  if (uid !== undefined && st.uid !== uid)
    return {
      why: `the socket directory ${dir} belongs to uid ${st.uid}, not to speakerd's user (uid ${uid})`,
      fix: `use a directory of your own (run "chown ${uid} ${dir}" if it should be)`,
    };
  if ((st.mode & 0o022) !== 0)
    return {
      why: `the socket directory ${dir} is writable by other users (mode ${mode})`,
      fix: `run "chmod go-w ${dir}"`,
    };
  return undefined;
}
