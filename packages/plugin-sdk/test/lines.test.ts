import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../src/lines.js';

/** Feed `chunks`, then end: what came out, in order. */
function split(max: number, chunks: Buffer[]): { lines: string[]; tooLong: string[]; maxPending: number } {
  const out = { lines: [] as string[], tooLong: [] as string[], maxPending: 0 };
  const s = new LineSplitter(
    max,
    (l) => out.lines.push(l.toString('latin1')),
    (h) => out.tooLong.push(h.toString('latin1')),
  );
  for (const c of chunks) {
    s.push(c);
    out.maxPending = Math.max(out.maxPending, s.pending);
  }
  s.end();
  return out;
}

/** The same, computed the plain way: split on \n, each line either whole or cut. */
function reference(max: number, text: string): { lines: string[]; tooLong: string[] } {
  const parts = text.split('\n');
  const last = parts.pop()!;
  const lines: string[] = [];
  const tooLong: string[] = [];
  for (const [i, p] of [...parts, last].entries()) {
    if (i === parts.length && p === '') break; // nothing after the last newline
    if (p.length > max) tooLong.push(p.slice(0, max));
    else lines.push(p);
  }
  return { lines, tooLong };
}

const cuts = (buf: Buffer, at: number[]): Buffer[] => {
  const points = [...new Set(at.map((x) => x % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...points, buf.length]) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out;
};

describe('LineSplitter', () => {
  it('gives the same lines however the stream is cut into chunks, and never holds more than maxBytes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.constantFrom('a', 'b', '\n', '\r', 'é'), { maxLength: 120 }).map((a) => a.join('')),
        fc.array(fc.nat(), { maxLength: 10 }),
        (max, text, at) => {
          const buf = Buffer.from(text, 'latin1');
          const got = split(max, cuts(buf, at));
          expect({ lines: got.lines, tooLong: got.tooLong }).toEqual(reference(max, text));
          expect(got.maxPending).toBeLessThanOrEqual(max);
        },
      ),
    );
  });

  it('a line of exactly maxBytes is whole; one byte more is cut to maxBytes and reported once', () => {
    const got = split(4, [Buffer.from('abcd\nabcde'), Buffer.from('fgh\nok\n')]);
    expect(got).toEqual({ lines: ['abcd', 'ok'], tooLong: ['abcd'], maxPending: 0 });
  });

  it('a multi-byte UTF-8 character split across chunks arrives whole', () => {
    const euro = Buffer.from('€\n');
    const lines: string[] = [];
    const s = new LineSplitter(16, (l) => lines.push(l.toString('utf8')));
    s.push(euro.subarray(0, 1));
    s.push(euro.subarray(1, 2));
    s.push(euro.subarray(2));
    expect(lines).toEqual(['€']);
  });

  it('end(): an unfinished last line is a line, one being discarded is not; nothing after a final newline', () => {
    expect(split(8, [Buffer.from('one\ntwo')]).lines).toEqual(['one', 'two']);
    expect(split(2, [Buffer.from('one\ntwo')])).toMatchObject({ lines: [], tooLong: ['on', 'tw'] });
    expect(split(8, [Buffer.from('one\n')]).lines).toEqual(['one']);
  });

  it('refuses a maxBytes that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new LineSplitter(bad, () => {})).toThrow(RangeError);
  });
});
