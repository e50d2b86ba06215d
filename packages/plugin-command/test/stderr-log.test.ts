// The stderr line logger on its own: a stream whose chunks the test cuts, and a real child process (execa).
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { VirtualClock } from '@speakerd/plugin-sdk';
import { MemoryLogger } from '@speakerd/plugin-sdk/testing';
import { MAX_STDERR_LINE, STDERR_INTERVAL_MS, STDERR_LINES, StderrLog } from '../src/stderr-log.js';
import { waitFor } from './helpers.js';

function setup(pid: number | undefined = 42) {
  const clock = new VirtualClock();
  const log = new MemoryLogger();
  const stderr = new StderrLog(log, () => clock.now());
  const stream = new PassThrough();
  stderr.follow(stream, () => pid);
  const lines = () => log.entries.filter((e) => e.fields.stream === 'stderr' && e.fields.suppressed === undefined);
  const msgs = () => lines().map((e) => e.msg);
  /** Write the chunks one by one, each its own 'data' event. */
  const put = (...chunks: (string | Buffer)[]) => {
    for (const c of chunks) stream.write(typeof c === 'string' ? Buffer.from(c) : c);
  };
  const end = () => new Promise<void>((r) => stream.end(r));
  return { clock, log, stderr, stream, lines, msgs, put, end };
}

/** Let the PassThrough deliver what was written (its 'data' events come on the next ticks). */
const flush = () => new Promise<void>((r) => setImmediate(r));

describe('stderr lines', () => {
  it('are joined across chunks, split at every newline, \\r\\n taken as one; empty lines are skipped', async () => {
    const s = setup();
    s.put('he', 'llo', '\nwor', 'ld\r', '\n\n\r\nthree\nfour\n');
    await flush();
    expect(s.msgs()).toEqual(['hello', 'world', 'three', 'four']);
    expect(s.lines().every((e) => e.level === 'warn' && e.fields.pid === 42)).toBe(true);
  });

  it('decode UTF-8 split across chunks', async () => {
    const s = setup();
    const text = Buffer.from('läuft: ♪ 🎵\n');
    // cut inside every multi-byte character
    s.put(text.subarray(0, 2), text.subarray(2, 10), text.subarray(10, 13), text.subarray(13));
    await flush();
    expect(s.msgs()).toEqual(['läuft: ♪ 🎵']);
  });

  it('an unterminated last line is logged when the stream ends, not before', async () => {
    const s = setup();
    s.put('first\n', 'no newline');
    await flush();
    expect(s.msgs()).toEqual(['first']);
    await s.end();
    await flush();
    expect(s.msgs()).toEqual(['first', 'no newline']);
  });

  it(`a line longer than ${MAX_STDERR_LINE} bytes is cut, the rest of it not logged; a line of exactly that length is whole`, async () => {
    const s = setup();
    const whole = 'w'.repeat(MAX_STDERR_LINE);
    s.put(`${whole}\n`);
    // one chunk a byte longer, without a newline: cut at once
    s.put('x'.repeat(MAX_STDERR_LINE + 1));
    await flush();
    expect(s.msgs()).toEqual([whole, `${'x'.repeat(MAX_STDERR_LINE)}…`]);
    // the rest of that line, up to its newline, is not logged; the next line is
    s.put('y'.repeat(10), 'z\nnext\n');
    // a long line that grows over several chunks: cut once it passes the limit, its tail dropped
    s.put('a'.repeat(3000), 'b'.repeat(3000), 'c'.repeat(10), '\n');
    // cut inside a 3-byte character: the cut keeps whole characters only
    s.put(`${'d'.repeat(MAX_STDERR_LINE - 1)}€€\n`);
    await flush();
    expect(s.msgs().slice(2)).toEqual([
      'next',
      `${'a'.repeat(3000)}${'b'.repeat(MAX_STDERR_LINE - 3000)}…`,
      `${'d'.repeat(MAX_STDERR_LINE - 1)}…`,
    ]);
  });

  it(`at most ${STDERR_LINES} lines per ${STDERR_INTERVAL_MS} ms, then one line that counts what was not logged`, async () => {
    const s = setup();
    const second = new PassThrough(); // a later run of the command: the limit is shared
    s.stderr.follow(second, () => 43);
    s.put(Array.from({ length: 25 }, (_, i) => `line ${i}\n`).join(''));
    await flush();
    second.write('from the next run\n');
    await flush();
    expect(s.msgs()).toEqual(Array.from({ length: STDERR_LINES }, (_, i) => `line ${i}`));
    s.clock.advance(STDERR_INTERVAL_MS - 1);
    s.put('still too soon\n');
    await flush();
    expect(s.msgs()).toHaveLength(STDERR_LINES);
    s.clock.advance(1);
    second.write('again\n');
    await flush();
    const after = s.log.entries.slice(-2);
    expect(after[0]).toMatchObject({ level: 'warn', msg: '(7 stderr lines not logged)', fields: { suppressed: 7 } });
    expect(after[1]).toMatchObject({ level: 'warn', msg: 'again', fields: { stream: 'stderr', pid: 43 } });
  });
});

describe('stderr of a real process', () => {
  it('is logged line by line as it comes, with its pid, the last line when the process ends', async () => {
    const clock = new VirtualClock();
    const log = new MemoryLogger();
    const child = execa(
      'sh',
      ['-c', "printf 'ab' >&2; sleep 0.2; printf 'c\\nsec' >&2; sleep 0.2; printf 'ond\\nlast' >&2"],
      {
        stdin: 'ignore',
        stdout: 'ignore',
        stderr: 'pipe',
        buffer: false,
        reject: false,
      },
    );
    new StderrLog(log, () => clock.now()).follow(child.stderr!, () => child.pid);
    const msgs = () => log.entries.map((e) => e.msg);
    await waitFor(() => msgs().length === 1, 'the first line');
    expect(msgs()).toEqual(['abc']);
    await child;
    await waitFor(() => msgs().length === 3, 'every line');
    expect(msgs()).toEqual(['abc', 'second', 'last']);
    expect(log.entries.every((e) => e.fields.pid === child.pid && e.fields.stream === 'stderr')).toBe(true);
  });
});
