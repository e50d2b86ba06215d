import { isUtf8 } from 'node:buffer';
import type { Readable, Writable } from 'node:stream';
import type { KnownErrorCode } from '../client/protocol-types.js';
import { describeValue, LineSplitter } from '@speakerd/plugin-sdk';
import { idProblem } from './ids.js';

/** Longest control line, not counting the newline (PROTOCOL.md section 2). */
export const MAX_LINE_BYTES = 65536;

/** The codes of `error` events: the protocol's list, shared with the client library. */
export type ErrorCode = KnownErrorCode;

export type Command =
  | { type: 'play'; id: string; seq?: number }
  | { type: 'cancel'; id: string; seq?: number }
  | { type: 'pause' | 'resume' | 'reload' | 'status'; seq?: number }
  | { type: 'volume'; volume: number; seq?: number }
  | { type: 'plugin'; name: string; message: Record<string, unknown>; seq?: number };

export type Parsed =
  { ok: true; command: Command } | { ok: false; code: ErrorCode; message: string; seq?: number; id?: string };

const BUILTIN = new Set(['play', 'cancel', 'pause', 'resume', 'reload', 'status', 'volume']);

/** Parse and validate one control line. `isPluginCommand` says whether a `<plugin>.<name>` type exists. */
export function parseCommand(line: string, isPluginCommand: (type: string) => boolean): Parsed {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { ok: false, code: 'bad-json', message: `not JSON: ${(err as Error).message}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { ok: false, code: 'bad-command', message: 'a command must be a JSON object' };
  const o = value as Record<string, unknown>;
  let seq: number | undefined;
  if (o.seq !== undefined) {
    if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq))
      return { ok: false, code: 'bad-command', message: `seq must be an integer, got ${describeValue(o.seq)}` };
    seq = o.seq;
  }
  const withSeq = <T extends object>(x: T) => (seq === undefined ? x : { ...x, seq });
  if (typeof o.type !== 'string')
    return withSeq({ ok: false as const, code: 'bad-command' as const, message: 'a command needs a string "type"' });
  const type = o.type;
  if (!BUILTIN.has(type)) {
    if (isPluginCommand(type))
      return { ok: true, command: withSeq({ type: 'plugin' as const, name: type, message: o }) };
    return withSeq({
      ok: false as const,
      code: 'unknown-command' as const,
      message: `unknown command ${describeValue(type)}`,
    });
  }
  switch (type) {
    case 'play':
    case 'cancel': {
      const why = idProblem(o.id);
      if (why) return withSeq({ ok: false as const, code: 'bad-command' as const, message: `${type}: ${why}` });
      return { ok: true, command: withSeq({ type, id: o.id as string }) };
    }
    case 'volume': {
      const v = o.volume;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100)
        return withSeq({
          ok: false as const,
          code: 'bad-command' as const,
          message: `volume: expected a number 0..100, got ${describeValue(v ?? null)}`,
        });
      return { ok: true, command: withSeq({ type: 'volume' as const, volume: v }) };
    }
    default:
      return { ok: true, command: withSeq({ type: type as 'pause' | 'resume' | 'reload' | 'status' }) };
  }
}

/**
 * The control channel: newline-delimited JSON commands in, events out. Lines are at most 64 KiB; a longer one is
 * answered with `line-too-long` and skipped without being buffered.
 */
export class ControlChannel {
  #closed = false;

  constructor(
    private readonly input: Readable,
    private readonly output: Writable,
    private readonly onLine: (line: string) => void,
    private readonly onEnd: () => void,
  ) {}

  start(): void {
    const splitter = new LineSplitter(
      MAX_LINE_BYTES,
      (line) => {
        if (!isUtf8(line)) {
          this.send({ type: 'error', code: 'bad-json', message: 'not JSON: the line is not valid UTF-8' });
          return;
        }
        const text = line.toString('utf8').replace(/\r$/, '');
        if (text.trim() === '') return;
        try {
          this.onLine(text);
        } catch (err) {
          // the guard: whatever a line holds, nothing it causes escapes the line handler
          this.send({
            type: 'error',
            code: 'bad-command',
            message: `the command could not be handled: ${guardMessage(err)}`,
          });
        }
      },
      () => this.send({ type: 'error', code: 'line-too-long', message: `line longer than ${MAX_LINE_BYTES} bytes` }),
    );
    this.input.on('data', (chunk: Buffer | string) =>
      splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk),
    );
    this.input.on('end', () => this.onEnd());
    this.input.on('error', () => this.onEnd());
    this.output.on('error', () => {
      // the music server went away; stdin EOF will follow
    });
  }

  /** Send one event line. */
  send(event: Record<string, unknown>): void {
    if (this.#closed) return;
    this.output.write(JSON.stringify(event) + '\n');
  }

  close(): void {
    this.#closed = true;
    this.input.pause();
  }
}

/** A thrown value's message, bounded (a message built from hostile input must not be the next problem). */
export function guardMessage(err: unknown): string {
  const m = err instanceof Error ? err.message : describeValue(err);
  return m.length > 200 ? `${m.slice(0, 200)}…` : m;
}
