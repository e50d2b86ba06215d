import { z } from 'zod';

/**
 * Helpers for writing a plugin's options schema with messages that read well after the key path the host
 * puts in front of them (`rtp.port: expected an integer 1..65535, got "abc"`).
 */

function shown(input: unknown): string {
  if (input === undefined) return 'nothing';
  try {
    return JSON.stringify(input) ?? String(input);
  } catch {
    return String(input);
  }
}

/** An integer in `min..max` inclusive; the message names the range and what was given. */
export function intRange(min: number, max: number) {
  const error = (issue: { input?: unknown }) => `expected an integer ${min}..${max}, got ${shown(issue.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A finite number in `min..max` inclusive. */
export function numberRange(min: number, max: number) {
  const error = (issue: { input?: unknown }) => `expected a number ${min}..${max}, got ${shown(issue.input)}`;
  return z.number({ error }).min(min, { error }).max(max, { error });
}

/** A non-empty string. */
export function nonEmptyString(what = 'a non-empty string') {
  const error = (issue: { input?: unknown }) => `expected ${what}, got ${shown(issue.input)}`;
  return z.string({ error }).min(1, { error });
}

/** One of the given string literals. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (issue) => `expected one of ${values.map((v) => JSON.stringify(v)).join(', ')}, got ${shown(issue.input)}`,
  });
}

/** A boolean. */
export function bool() {
  return z.boolean({ error: (issue) => `expected true or false, got ${shown(issue.input)}` });
}

/** One problem found while validating options: where (`['rtp','port']`) and what. */
export interface OptionIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** The key path as written in messages: `rtp.port`, `plugins[1]`. */
export function formatKeyPath(path: readonly (string | number | symbol)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(top level)' : out;
}

/**
 * Turn zod issues into {@link OptionIssue}s under `prefix`. Unknown keys become one issue per key, so that the
 * message names the key itself (`rtp.prot: unknown key`).
 */
export function issuesFromZod(error: z.ZodError, prefix: readonly (string | number)[] = []): OptionIssue[] {
  const out: OptionIssue[] = [];
  for (const issue of error.issues) {
    const base = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...base, key], message: 'unknown key' });
    } else {
      out.push({ path: base, message: issue.message });
    }
  }
  return out;
}
