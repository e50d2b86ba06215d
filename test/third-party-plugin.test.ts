// A backend written outside the repo, in plain JavaScript, against @speakerd/plugin-sdk only, and named by path:
// speakerd loads it through the same mechanism as the built-ins and plays through it.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { REPO, tempDir } from './helpers/cli.js';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { testSignal } from './helpers/pcm.js';

const PLUGIN = `
import { appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  definePlugin, withInjections, TOKENS, RealtimePacer, bytesPerFrame, framesForMs, nonEmptyString, z,
} from '@speakerd/plugin-sdk';

/** Appends PCM to a file at real time plus 20 ms, like a pipe would take it. */
class FileBackend {
  pacing = 'clock';
  #pacer; #format; #file; #writes = 0;
  constructor(options, log, clock, context) {
    this.options = options; this.log = log; this.clock = clock;
    this.#file = resolve(context.configDir, options.file);
    this.commands = { stats: () => ({ writes: this.#writes, file: this.options.file }) };
  }
  negotiate(requested) { return { ...requested, encoding: 's16le' }; }
  async activate(format) {
    this.#format = format;
    this.#pacer = new RealtimePacer(this.clock, format.rate, framesForMs(20, format));
    this.#pacer.start();
    this.log.info('outside backend active');
  }
  writable() { return this.#pacer ? this.#pacer.writable() : 0; }
  write(data) {
    appendFileSync(this.#file, data);
    this.#writes++;
    const frames = data.length / bytesPerFrame(this.#format);
    this.#pacer.wrote(frames);
    return frames;
  }
  delay() { return this.#pacer ? this.#pacer.queued() : 0; }
  async idle() { this.#pacer?.stop(); }
  async close() {}
}
withInjections(FileBackend, TOKENS.Options, TOKENS.Logger, TOKENS.Clock, TOKENS.Context);

export default definePlugin({
  manifest: { name: 'outfile', version: '0.0.1', sdk: '^0.1.0', description: 'PCM into a file' },
  options: z.strictObject({ file: nonEmptyString('a file name').default('outside.raw') }).prefault({}),
  backend: FileBackend,
});
`;

let running: Speakerd[] = [];
let cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const s of running) await s.dispose();
  for (const c of cleanups) c();
  running = [];
  cleanups = [];
});

describe('a third-party backend', () => {
  it('written in plain JS outside the repo, named by path, plays tracks and answers its own commands', async () => {
    const { dir, cleanup } = tempDir('speakerd-outside-');
    cleanups.push(cleanup);
    const pdir = join(dir, 'speakerd-plugin-outfile');
    mkdirSync(join(pdir, 'node_modules', '@speakerd'), { recursive: true });
    symlinkSync(join(REPO, 'packages/plugin-sdk'), join(pdir, 'node_modules', '@speakerd', 'plugin-sdk'));
    writeFileSync(
      join(pdir, 'package.json'),
      JSON.stringify({ name: 'speakerd-plugin-outfile', type: 'module', main: 'index.js' }),
    );
    writeFileSync(join(pdir, 'index.js'), PLUGIN);

    const F: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
    const s = await Speakerd.start({
      backend: join(pdir),
      outfile: { file: join(dir, 'got.raw') },
      format: F,
    });
    running.push(s);
    expect(s.events[0]).toMatchObject({ type: 'ready', backend: 'outfile', format: F });
    const a = testSignal(F, 8820, 61);
    const b = testSignal({ encoding: 's16be', rate: 44100, channels: 2 }, 4410, 62);
    await decoder(s.socket, { id: 'a', ...F }, a);
    await decoder(s.socket, { id: 'b', encoding: 's16be', rate: 44100, channels: 2 }, b);
    s.send({ type: 'play', id: 'a' });
    s.send({ type: 'play', id: 'b' });
    await s.waitFor((e) => e.type === 'finished' && e.id === 'b');
    const stats = await s.request({ type: 'outfile.stats' });
    expect(stats.type).toBe('outfile.stats');
    expect(stats.writes).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(await s.close()).toBe(0);
    const swapped = Buffer.from(b);
    swapped.swap16();
    expect(Buffer.compare(readFileSync(join(dir, 'got.raw')), Buffer.concat([Buffer.from(a), swapped]))).toBe(0);
    expect(s.stderr).toContain('outside backend active');
  });
});
