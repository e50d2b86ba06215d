import { describeValue } from '@speakerd/plugin-sdk';

/** Longest id, in Unicode code points (PROTOCOL.md section 3). */
export const MAX_ID_CODE_POINTS = 64;

// C0 controls, DEL and C1 controls
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
// with the u flag a surrogate pair is one code point, so this matches only a surrogate that is not in a pair
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/** Why `value` is not a valid track id, or undefined when it is. */
export function idProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `id must be a string, got ${describeValue(value)}`;
  let n = 0;
  for (const _ of value) n++;
  if (n === 0) return 'id must not be empty';
  if (n > MAX_ID_CODE_POINTS) return `id is ${n} code points long, more than ${MAX_ID_CODE_POINTS}`;
  if (CONTROL.test(value)) return 'id must not contain control characters';
  if (LONE_SURROGATE.test(value)) return 'id must be well-formed Unicode (it has a lone surrogate)';
  return undefined;
}
