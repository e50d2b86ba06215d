// The worked third-party plugin (examples/recorder), installed as its README says — packed, `npm install`ed into a
// fresh directory beside the speakerrc, named `recorder` — records two tracks, gapless, into one WAV file that
// sox and ffmpeg read back bit-exact.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SampleFormat } from '@speakerd/plugin-sdk';
import { REPO, tempDir } from './helpers/cli.js';
import { npm, pack } from './helpers/npm.js';
import { testSignal } from './helpers/pcm.js';
import { decoder, Speakerd } from './helpers/speakerd.js';
import { haveTool } from './helpers/tools.js';

let work: { dir: string; cleanup: () => void };
let tgz: string;
let cleanups: (() => void | Promise<void>)[] = [];
beforeAll(() => {
  work = tempDir('speakerd-recorder-');
  // `npm pack` builds it first (its prepack script runs tsc)
  tgz = pack(join(REPO, 'examples/recorder'), work.dir);
}, 120_000);
afterAll(() => work?.cleanup());
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function record(format: SampleFormat, tracks: Uint8Array[]): Promise<{ dir: string; wav: string }> {
  const { dir, cleanup } = tempDir('speakerd-recording-');
  cleanups.push(cleanup);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-speakerd', private: true }));
  npm(['install', '--prefer-offline', tgz], dir);
  const s = await Speakerd.start({ backend: 'recorder', format, recorder: { dir: 'rec' } }, { dir });
  cleanups.push(() => s.dispose());
  expect(s.events[0]).toMatchObject({ type: 'ready', backend: 'recorder', format });
  const ids = tracks.map((_, i) => `t${i}`);
  await Promise.all(tracks.map((pcm, i) => decoder(s.socket, { id: ids[i], ...format }, pcm)));
  s.send({ type: 'play', id: ids[0] });
  for (let i = 0; i < ids.length; i++) {
    await s.waitFor((e) => e.type === 'finished' && e.id === ids[i], 15000);
    if (i + 1 < ids.length) s.send({ type: 'play', id: ids[i + 1] });
  }
  const status = await s.request({ type: 'recorder.status' });
  expect(status.recording).toBe(true);
  // once everything has played out the session ends (idle) and the file gets its real sizes
  const total = tracks.reduce((n, t) => n + t.length, 0);
  const file = status.file as string;
  for (
    let i = 0;
    i < 200 && !(existsSync(file) && statSync(file).size >= total && readFileSync(file).readUInt32LE(4) !== 0xffffffff);
    i++
  )
    await new Promise((r) => setTimeout(r, 50));
  expect(await s.close()).toBe(0);
  expect(readdirSync(join(dir, 'rec'))).toHaveLength(1);
  return { dir, wav: file };
}

describe('examples/recorder, installed by name', () => {
  it('two CD tracks played on finished: one WAV, exactly both tracks, that sox and ffmpeg read', async () => {
    const F: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
    const a = testSignal(F, 44100, 41);
    const b = testSignal(F, 22050, 42);
    const { wav } = await record(F, [a, b]);
    const file = readFileSync(wav);
    expect(file.subarray(44).equals(Buffer.concat([a, b]))).toBe(true); // 44-byte PCM header, then the data
    if (haveTool('sox')) {
      const info = spawnSync('sox', ['--i', wav], { encoding: 'utf8' });
      expect(info.status).toBe(0);
      expect(info.stdout).toMatch(/Channels\s*: 2/);
      expect(info.stdout).toMatch(/Sample Rate\s*: 44100/);
      expect(info.stdout).toMatch(/Precision\s*: 16-bit/);
      expect(info.stdout).toMatch(/Duration\s*: 00:00:01\.50 = 66150 samples/);
    }
    if (haveTool('ffmpeg', ['ffmpeg', '-version'])) {
      const raw = spawnSync('ffmpeg', ['-v', 'error', '-i', wav, '-f', 's16le', '-'], { maxBuffer: 1 << 24 });
      expect(raw.status).toBe(0);
      expect(Buffer.compare(raw.stdout, Buffer.concat([a, b]))).toBe(0);
    }
  });

  it('24-bit 6-channel 48 kHz (WAVE_FORMAT_EXTENSIBLE): ffmpeg reads it bit-exact with its 5.1 layout', async () => {
    const F: SampleFormat = { encoding: 's24le', rate: 48000, channels: 6 };
    const a = testSignal(F, 12000, 43);
    const b = testSignal(F, 9001, 44); // an odd number of bytes of data: a pad byte follows
    const { wav } = await record(F, [a, b]);
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const probe = spawnSync(
      'ffprobe',
      ['-v', 'error', '-show_entries', 'stream=sample_rate,channels,channel_layout,codec_name', '-of', 'json', wav],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(probe.stdout).streams[0]).toMatchObject({
      codec_name: 'pcm_s24le',
      sample_rate: '48000',
      channels: 6,
      channel_layout: '5.1',
    });
    const raw = spawnSync('ffmpeg', ['-v', 'error', '-i', wav, '-f', 's24le', '-c:a', 'pcm_s24le', '-'], {
      maxBuffer: 1 << 24,
    });
    expect(raw.status).toBe(0);
    expect(Buffer.compare(raw.stdout, Buffer.concat([a, b]))).toBe(0);
  });
});
