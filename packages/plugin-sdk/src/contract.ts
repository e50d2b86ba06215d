/**
 * The rules a backend's return values must keep, in one place: the host's backend driver checks every return
 * with these, and a plugin's own tests can use them too. Each check returns why a value breaks the rule, or
 * undefined when it keeps it.
 */
import { ENCODINGS, MAX_CHANNELS, MAX_RATE, MIN_CHANNELS, MIN_RATE, type SampleFormat } from './format.js';
import { ErrorCodes, SpeakerdError } from './errors.js';

/** The methods of {@link Backend} the host calls, by name (for error messages and the failure report). */
export type BackendMethod =
  | 'init'
  | 'negotiate'
  | 'configure'
  | 'formatFor'
  | 'activate'
  | 'writable'
  | 'write'
  | 'endFill'
  | 'delay'
  | 'flush'
  | 'pause'
  | 'resume'
  | 'idle'
  | 'close'
  | 'setVolume'
  | 'pacing'
  | 'tickMs';

/**
 * A short, bounded description of any value for an error message: never recursive, so a hostile or deeply nested
 * value cannot exhaust the stack, and never longer than about 60 characters.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'nothing';
    case 'number':
      return Number.isNaN(value) ? 'NaN' : String(value);
    case 'string': {
      const s = value.length > 40 ? `${value.slice(0, 40)}…` : value;
      return JSON.stringify(s);
    }
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'symbol':
      return value.toString();
    case 'function':
      return 'a function';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return `an array of ${value.length}`;
      if (value instanceof Uint8Array) return `a byte array of ${value.length}`;
      if (typeof (value as { then?: unknown }).then === 'function') return 'a promise';
      return 'an object';
  }
}

/** Why `value` is not a whole number of frames ≥ 0 (and ≤ `max` when given), or undefined. */
export function frameCountProblem(value: unknown, max?: number): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    return `returned ${describeValue(value)}, not a whole number of frames ≥ 0`;
  if (max !== undefined && value > max) return `returned ${value}, more than the ${max} frames it may`;
  return undefined;
}

/**
 * Why a `write()` return breaks the rule, or undefined. `offered` is the frames offered, `bytesPerFrame` the frame
 * size (to name the usual mistake: returning bytes instead of frames).
 */
export function writeProblem(value: unknown, offered: number, bytesPerFrame: number): string | undefined {
  const why = frameCountProblem(value);
  if (why) return `${why} (offered ${offered})`;
  const n = value as number;
  if (n > offered) {
    const hint = bytesPerFrame > 1 && n === offered * bytesPerFrame ? ' (bytes instead of frames?)' : '';
    return `returned ${n} for ${offered} frames offered${hint}`;
  }
  return undefined;
}

/** Why `value` is not a valid {@link SampleFormat}, or undefined. */
export function formatProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return `returned ${describeValue(value)}, not a format`;
  const f = value as Partial<Record<keyof SampleFormat, unknown>>;
  if (typeof f.encoding !== 'string' || !(ENCODINGS as readonly string[]).includes(f.encoding))
    return `returned a format with encoding ${describeValue(f.encoding)}`;
  if (typeof f.rate !== 'number' || !Number.isInteger(f.rate) || f.rate < MIN_RATE || f.rate > MAX_RATE)
    return `returned a format with rate ${describeValue(f.rate)}`;
  if (
    typeof f.channels !== 'number' ||
    !Number.isInteger(f.channels) ||
    f.channels < MIN_CHANNELS ||
    f.channels > MAX_CHANNELS
  )
    return `returned a format with channels ${describeValue(f.channels)}`;
  return undefined;
}

/** A backend broke a rule of the contract: code `SPEAKERD_ERR_BACKEND_CONTRACT`, with the method. */
export class ContractViolation extends SpeakerdError {
  readonly method: BackendMethod;
  constructor(plugin: string, method: BackendMethod, problem: string) {
    super(ErrorCodes.BACKEND_CONTRACT, `${method}() ${problem}`, { plugin });
    this.method = method;
  }
}
