// @speakerd/host/client against the built binary (and an in-process Engine): spawn, ready, seq-correlated
// answers, error answers as typed rejections, decoders that wait for the answer line, close and kill.
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';
import {
  SpeakerdClient,
  SpeakerdCommandError,
  SpeakerdDecoderError,
  defaultSocketPath,
  type Event,
} from '../packages/host/src/client/index.js';
import { SPEAKERD, tempDir } from './helpers/cli.js';
import { firstDifference, testSignal } from './helpers/pcm.js';

const OUT: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

/** speakerd with the command backend writing out.raw in a fresh temp dir, through the client. */
async function start(config: Record<string, unknown> = {}) {
  const { dir, cleanup } = tempDir('speakerd-client-');
  writeFileSync(
    join(dir, 'speakerrc.json'),
    JSON.stringify({
      backend: 'command',
      command: { run: 'cat > out.raw' },
      socket: join(dir, 'run', 'decoders.sock'),
      format: OUT,
      ...config,
    }),
  );
  const client = await SpeakerdClient.spawn({
    bin: SPEAKERD,
    config: join(dir, 'speakerrc.json'),
    args: ['--allow-root', '--log-level', 'debug'],
    cwd: dir,
  });
  cleanups.push(async () => {
    client.kill();
    await Promise.race([client.exited, new Promise((r) => setTimeout(r, 5000))]);
    cleanup();
  });
  return { client, dir, out: join(dir, 'out.raw') };
}

async function untilSize(file: string, bytes: number, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (existsSync(file) && statSync(file).size >= bytes) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Wait until status says the decoder for `id` has delivered everything (so no silence precedes its play). */
async function untilEof(client: SpeakerdClient, id: string) {
  for (let i = 0; i < 250; i++) {
    if ((await client.status()).tracks.some((t) => t.id === id && t.eof)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`decoder for ${id} never reached EOF`);
}

/** Write `pcm` into a decoder socket and end it. */
async function stream(sock: NodeJS.WritableStream & { end(cb?: () => void): unknown }, pcm: Uint8Array) {
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.write(pcm);
    sock.end(() => resolve());
  });
}

describe('SpeakerdClient against the built binary', () => {
  it('spawns speakerd, waits for ready, and plays two tracks gaplessly: out.raw is exactly A + B', async () => {
    const { client, out, dir } = await start();
    expect(client.ready).toMatchObject({ type: 'ready', protocol: 1, backend: 'command', format: OUT });
    // the socket is the one ready names (or the configured one where ready does not carry it)
    expect(client.socket).toBe(client.ready.socket ?? join(dir, 'run', 'decoders.sock'));
    const a = testSignal(OUT, 22050, 1);
    const b = testSignal(OUT, 13230, 2);
    const arrived: string[] = [];
    client.on('arrived', (e) => arrived.push(e.id));
    // the decoder waits for the answer line before it streams: openDecoder resolves only once it has come
    const da = await client.openDecoder('a', OUT);
    const db = await client.openDecoder('b', OUT);
    await Promise.all([stream(da, a), stream(db, b)]);
    await untilEof(client, 'a');
    await untilEof(client, 'b');
    const finishedA = client.waitFor('finished', (e) => e.id === 'a', { timeoutMs: 15000 });
    const finishedB = client.waitFor('finished', (e) => e.id === 'b', { timeoutMs: 15000 });
    client.play('a');
    client.play('b');
    await finishedA;
    await finishedB;
    const expected = Buffer.concat([a, b]);
    await untilSize(out, expected.length);
    expect(await client.close()).toBe(0);
    const got = readFileSync(out);
    expect(firstDifference(got, expected)).toBe(-1);
    expect(got.length).toBe(expected.length);
    expect(arrived.sort()).toEqual(['a', 'b']);
    expect(existsSync(client.socket), 'speakerd removed its socket').toBe(false);
  });

  it('correlates answers by seq with several commands in flight', async () => {
    const { client } = await start();
    const seen: Event[] = [];
    client.on('event', (e) => seen.push(e));
    const [s1, v, c, s2, u] = await Promise.all([
      client.status(),
      client.volume(42.5),
      client.cancel('nobody'),
      client.status(),
      client.request({ type: 'cancel', id: 'other' }),
    ]);
    expect(s1.type).toBe('status');
    expect(s1.volume).toBe(100);
    expect(v).toMatchObject({ type: 'volume', volume: 42.5 });
    expect(c).toMatchObject({ type: 'unknown', id: 'nobody' });
    expect(s2.type).toBe('status');
    // the second status was sent after the volume command, and says so
    expect(s2.volume).toBe(42.5);
    expect(u).toMatchObject({ type: 'unknown', id: 'other' });
    const seqs = [s1, v, c, s2, u].map((e) => e.seq);
    expect(new Set(seqs).size).toBe(5);
    expect(seen.filter((e) => e.seq !== undefined).map((e) => e.seq)).toEqual(seqs);
  });

  it('rejects an error answer with a SpeakerdCommandError carrying its code', async () => {
    const { client } = await start();
    const err = await client.command('nosuch.thing', { x: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpeakerdCommandError);
    expect((err as SpeakerdCommandError).code).toBe('unknown-command');
    const bad = await client.volume(170).catch((e: unknown) => e);
    expect((bad as SpeakerdCommandError).code).toBe('bad-command');
    // an error answer to play (busy) is an event echoing the seq play returned; without an 'error' listener
    // nothing throws
    const errors: Event[] = [];
    client.on('event', (e) => e.type === 'error' && errors.push(e));
    client.play('x');
    const seq = client.play('x');
    const busy = await client.waitFor('error', (e) => e.seq === seq, { timeoutMs: 5000 });
    expect(busy).toMatchObject({ code: 'busy', id: 'x' });
    // and still answers afterwards
    expect((await client.status()).current).toBe('x');
    expect(errors.length).toBe(1);
  });

  it('rejects a refused decoder with its code (duplicate-id, bad-header)', async () => {
    const { client } = await start();
    const first = await client.openDecoder('dup', OUT);
    const err = await client.openDecoder('dup', OUT).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpeakerdDecoderError);
    expect((err as SpeakerdDecoderError).code).toBe('duplicate-id');
    const bad = await client
      .openDecoder('r', { encoding: 's16le', rate: 1, channels: 2 })
      .catch((e: unknown) => e as SpeakerdDecoderError);
    expect((bad as SpeakerdDecoderError).code).toBe('bad-header');
    first.end();
  });

  it('close() ends speakerd with exit 0 and its socket removed; kill() ends it at once', async () => {
    const one = await start();
    const socket = one.client.socket;
    expect(existsSync(socket)).toBe(true);
    expect(await one.client.close()).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(one.client.closed).toBe(true);
    await expect(one.client.status()).rejects.toMatchObject({ code: 'closed' });

    const two = await start();
    const pending = two.client.request({ type: 'reload' }, {}).then(
      () => 'answered',
      (e: unknown) => (e as { code: string }).code,
    );
    two.client.kill();
    expect(await two.client.exited).toBe(null);
    expect(two.client.child?.signalCode).toBe('SIGKILL');
    // an answer that can never come rejects instead of hanging
    expect(['answered', 'closed']).toContain(await pending);
  });

  it('fails to spawn with the reason when speakerd exits before ready (a bad config: exit 2)', async () => {
    const { dir, cleanup } = tempDir('speakerd-client-');
    cleanups.push(cleanup);
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ rtp: { port: 'abc' } }));
    const err = await SpeakerdClient.spawn({
      bin: SPEAKERD,
      config: join(dir, 'bad.json'),
      args: ['--allow-root'],
      cwd: dir,
    }).catch((e: unknown) => e as Error);
    expect((err as Error).message).toMatch(/exit code 2/);
    expect((err as Error).message).toContain('rtp.port');
  });

  it('knows the default socket rule of PROTOCOL.md', () => {
    expect(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' })).toBe('/run/user/1000/speakerd/decoders.sock');
    expect(defaultSocketPath({})).toMatch(/\/speakerd-[^/]+\/decoders\.sock$/);
  });
});

describe('SpeakerdClient.attach on an in-process Engine', () => {
  it('drives an Engine through PassThrough streams: ready, a track, status, close', async () => {
    const { Engine } = await import('../packages/host/src/engine.js');
    const { loadConfig } = await import('../packages/host/src/config.js');
    const { createLogger } = await import('../packages/host/src/logger.js');
    const { dir, cleanup } = tempDir('speakerd-client-');
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cleanups.push(cleanup);
    const file = join(dir, 'speakerrc.json');
    writeFileSync(
      file,
      JSON.stringify({
        backend: 'command',
        command: { run: 'cat > out.raw' },
        socket: join(dir, 'run', 'decoders.sock'),
        format: OUT,
      }),
    );
    const config = await loadConfig(file, dir);
    const input = new PassThrough();
    const output = new PassThrough();
    let stopped!: () => void;
    const done = new Promise<void>((r) => (stopped = r));
    const engine = new Engine(config, createLogger('error', false), {
      configArg: file,
      cwd: dir,
      input,
      output,
      onStopped: () => {
        output.end();
        stopped();
      },
    });
    const started = engine.start();
    const client = await SpeakerdClient.attach({ input, output });
    await started;
    const pcm = testSignal(OUT, 8820, 3);
    const fin = client.waitFor('finished', (e) => e.id === 't', { timeoutMs: 15000 });
    await stream(await client.openDecoder('t', OUT), pcm);
    await untilEof(client, 't');
    client.play('t');
    await fin;
    await untilSize(join(dir, 'out.raw'), pcm.length);
    await client.close();
    await done;
    const got = readFileSync(join(dir, 'out.raw'));
    expect(got.length / bytesPerFrame(OUT)).toBe(8820);
    expect(firstDifference(got, pcm)).toBe(-1);
  });
});
