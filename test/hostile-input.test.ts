// Issue 11's findings 1 and 8 (ids), through the built binary: a control line or a decoder header of any shape
// gets a bounded, coded error and never takes speakerd down; ids must be well-formed Unicode sent as UTF-8.
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hasStackTrace, runSpeakerd, tempDir } from './helpers/cli.js';
import { decoder, Speakerd } from './helpers/speakerd.js';

const CD = { encoding: 's16le', rate: 44100, channels: 2 } as const;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(): Promise<Speakerd> {
  const s = await Speakerd.start({ backend: 'command', command: { run: 'cat > /dev/null' } });
  cleanups.push(() => s.dispose());
  return s;
}

/** `[[[…1…]]]` nested `depth` deep (JSON.parse takes it; a recursive JSON.stringify of it overflows the stack). */
const nestedArray = (depth: number) => '['.repeat(depth) + '1' + ']'.repeat(depth);
const nestedObject = (depth: number) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);

/** Send raw bytes as a decoder's header line; resolves with the answer line. */
function rawHeader(socket: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let raw = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (raw += d));
    c.on('error', reject);
    c.on('close', () => resolve(raw.split('\n')[0]!));
    c.on('connect', () => c.end(bytes));
  });
}

describe('control lines of any shape', () => {
  const depth = 10_000; // 20 KB: inside the 64 KiB line limit, far past what a recursive stringify survives
  const cases: [string, string, string][] = [
    ['volume', `{"type":"volume","seq":1,"volume":${nestedArray(depth)}}`, 'bad-command'],
    ['volume (objects)', `{"type":"volume","seq":2,"volume":${nestedObject(3000)}}`, 'bad-command'],
    ['seq', `{"type":"status","seq":${nestedArray(depth)}}`, 'bad-command'],
    ['play id', `{"type":"play","seq":4,"id":${nestedObject(3000)}}`, 'bad-command'],
    ['cancel id', `{"type":"cancel","seq":5,"id":${nestedArray(depth)}}`, 'bad-command'],
    ['type', `{"type":${nestedArray(depth)},"seq":6}`, 'bad-command'],
    ['a plugin command', `{"type":"command.restart","seq":7,"x":${nestedArray(depth)}}`, ''],
  ];
  it('deep nesting in every field: a coded error each (seq echoed where it is one), and speakerd plays on', async () => {
    const s = await start();
    for (const [what, line, code] of cases) {
      const from = s.events.length;
      s.send(line);
      const status = await s.request({ type: 'status' });
      const answers = s.events.slice(from).filter((e) => e !== status);
      if (code) {
        expect(answers, what).toHaveLength(1);
        expect(answers[0], what).toMatchObject({ type: 'error', code });
        expect(answers[0]!.message.length, `${what}: a bounded message`).toBeLessThan(300);
      } else expect(answers.length, what).toBeLessThanOrEqual(1);
      expect(s.exitCode, what).toBeUndefined();
    }
    // the seq of a line whose seq is itself the hostile value cannot be echoed; the others are
    const seqs = s.events.filter((e) => e.type === 'error').map((e) => e.seq);
    expect(seqs).toEqual(expect.arrayContaining([1, 2, 4, 5, 6]));
    // and a track still plays through
    const pcm = Buffer.alloc(44100, 7);
    expect((await decoder(s.socket, { id: 'after', ...CD }, pcm)).reply).toEqual({ ok: true });
    s.send({ type: 'play', id: 'after' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'after');
    expect(await s.close()).toBe(0);
  });

  it('a control line that is not valid UTF-8: bad-json, not an id quietly changed to U+FFFD', async () => {
    const s = await start();
    s.child.stdin.write(
      Buffer.concat([Buffer.from('{"type":"play","id":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]),
    );
    const e = await s.waitFor((x) => x.type === 'error');
    expect(e).toMatchObject({ code: 'bad-json' });
    expect(e.message).toContain('UTF-8');
    expect((await s.status()).tracks).toEqual([]);
  });

  it('an id with a lone surrogate is refused on play, cancel and in a header (a pair is fine)', async () => {
    const s = await start();
    s.send('{"type":"play","seq":1,"id":"a\\ud800b"}');
    expect(await s.waitFor((e) => e.seq === 1)).toMatchObject({ type: 'error', code: 'bad-command' });
    s.send('{"type":"cancel","seq":2,"id":"\\udc00"}');
    expect(await s.waitFor((e) => e.seq === 2)).toMatchObject({ type: 'error', code: 'bad-command' });
    const lone = await decoder(s.socket, '{"id":"x\\udfff","encoding":"s16le","rate":44100,"channels":2}\n');
    expect(lone.reply).toMatchObject({ ok: false, code: 'bad-header' });
    const pair = await decoder(s.socket, { id: 'note \u{1d11e}', ...CD }, Buffer.alloc(4000));
    expect(pair.reply).toEqual({ ok: true });
  });
});

describe('decoder headers of any shape', () => {
  it('deep nesting in a header field, invalid UTF-8 in the id: bad-header each, and speakerd carries on', async () => {
    const s = await start();
    for (const field of ['id', 'encoding', 'rate', 'channels', 'extra']) {
      const r = await decoder(s.socket, `{"${field}":${nestedArray(20_000)}}\n`);
      expect(r.reply, field).toMatchObject({ ok: false, code: 'bad-header' });
      expect(String(r.reply!.message).length, field).toBeLessThan(300);
    }
    const utf8 = await rawHeader(
      s.socket,
      Buffer.concat([Buffer.from('{"id":"a'), Buffer.from([0xc3, 0x28]), Buffer.from('","encoding":"wav"}\n')]),
    );
    expect(JSON.parse(utf8)).toMatchObject({ ok: false, code: 'bad-header' });
    expect(utf8).toContain('UTF-8');
    expect(s.exitCode).toBeUndefined();
    expect((await s.status()).type).toBe('status');
  });
});

describe('the socket directory (PROTOCOL.md section 3)', () => {
  for (const [what, prepare, expected] of [
    [
      'sticky and world-writable, like /tmp',
      (d: string) => chmodSync(d, 0o1777),
      'writable by other users (mode 1777)',
    ],
    ['group-writable', (d: string) => chmodSync(d, 0o770), 'writable by other users (mode 770)'],
    ['owned by another user (0700)', (d: string) => chownSync(d, 65534, 65534), 'belongs to uid 65534'],
  ] as const)
    it(`${what}: speakerd refuses to start, saying why`, async () => {
      const { dir, cleanup } = tempDir('speakerd-sockdir-');
      cleanups.push(cleanup);
      const run = join(dir, 'run');
      mkdirSync(run, { mode: 0o700 });
      if (what.startsWith('owned') && process.getuid?.() !== 0) {
        console.log('skipped: only root can give a directory to another user here');
        return;
      }
      prepare(run);
      const config = join(dir, 'speakerrc.json');
      writeFileSync(
        config,
        JSON.stringify({ backend: 'command', command: { run: 'cat > /dev/null' }, socket: join(run, 'd.sock') }),
      );
      const r = await runSpeakerd(['--allow-root', '--config', config]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(expected);
      expect(hasStackTrace(r.stderr)).toBe(false);
      expect(existsSync(join(run, 'd.sock'))).toBe(false);
    });
});
