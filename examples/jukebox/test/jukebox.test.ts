// The jukebox plays three WAV files through speakerd's command backend (`cat > out.raw`): the output is exactly
// the three tracks' PCM, back to back, with no silence between them and no byte lost.
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { SpeakerdClient } from '@speakerd/host/client';
import { Jukebox } from '../src/jukebox.js';
import { SPEAKERD, tempDir } from '../../../test/helpers/cli.js';
import { firstDifference, testSignal, wavHeader } from '../../../test/helpers/pcm.js';
import { describeSilence, insertedSilence } from '../../../test/helpers/peers.js';
import { haveTool } from '../../../test/helpers/tools.js';

const OUT: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

describe('examples/jukebox', () => {
  it('plays three files gaplessly: out.raw is exactly A + B + C', async () => {
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const { dir, cleanup } = tempDir('speakerd-jukebox-');
    cleanups.push(cleanup);
    // three tracks of different lengths, as 16-bit WAV files (what ffmpeg decodes to f32 and speakerd back to
    // s16, bit-exact)
    const frames = [30870, 11025, 52920];
    const pcm = frames.map((n, i) => testSignal(OUT, n, i + 1));
    const files = pcm.map((p, i) => {
      const file = join(dir, `track-${i + 1}.wav`);
      writeFileSync(file, Buffer.concat([wavHeader(OUT, p.length), p]));
      return file;
    });
    writeFileSync(
      join(dir, 'speakerrc.json'),
      JSON.stringify({
        backend: 'command',
        command: { run: 'cat > out.raw' },
        socket: join(dir, 'run', 'decoders.sock'),
        format: OUT,
      }),
    );
    const client = await SpeakerdClient.spawn({
      bin: SPEAKERD,
      config: join(dir, 'speakerrc.json'),
      args: ['--allow-root'],
      cwd: dir,
    });
    cleanups.push(async () => {
      client.kill();
      await Promise.race([client.exited, new Promise((r) => setTimeout(r, 5000))]);
    });
    const printed: string[] = [];
    const jukebox = new Jukebox(client, { print: (l) => printed.push(l) });
    cleanups.push(() => jukebox.stop());
    jukebox.enqueue(...files);
    const failed = await jukebox.run();
    expect(failed).toEqual([]);
    expect(printed).toEqual(files.map((f) => `playing ${f}`));
    const expected = Buffer.concat(pcm);
    const out = join(dir, 'out.raw');
    for (let i = 0; i < 200 && !(existsSync(out) && statSync(out).size >= expected.length); i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(await client.close()).toBe(0);
    const got = readFileSync(out);
    const report = insertedSilence(got, expected, 4);
    expect(report.exact, describeSilence(report, OUT.rate)).toBe(true);
    expect(report.leadingZeroFrames).toBe(0);
    expect(firstDifference(got, expected)).toBe(-1);
    expect(got.length).toBe(expected.length);
  });
});
