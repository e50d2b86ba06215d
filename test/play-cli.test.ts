import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runSpeakerd, tempDir } from './helpers/cli.js';
import { haveTool } from './helpers/tools.js';

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});

describe('speakerd play FILE…', () => {
  it('decodes files with ffmpeg and plays them in order, skipping one that does not decode', async () => {
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const { dir, cleanup: c } = tempDir('speakerd-play-');
    cleanup.push(c);
    const ff = (args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args], { cwd: dir });
    ff([
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=440:duration=0.6:sample_rate=44100',
      '-ac',
      '2',
      '-c:a',
      'pcm_s16le',
      'a.wav',
    ]);
    ff([
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=660:duration=0.4:sample_rate=44100',
      '-ac',
      '2',
      '-sample_fmt',
      's16',
      'b.flac',
    ]);
    writeFileSync(join(dir, 'bad.mp3'), 'not audio');
    writeFileSync(
      join(dir, '.speakerrc.json'),
      JSON.stringify({ backend: 'command', command: { run: 'cat >> out.raw' }, socket: join(dir, 'd.sock') }),
    );
    const r = await runSpeakerd(['play', 'a.wav', 'bad.mp3', 'b.flac', '--allow-root'], { cwd: dir, timeoutMs: 30000 });
    expect(r.stderr).toContain('bad.mp3');
    expect(r.code).toBe(1); // one file failed
    const expected = Buffer.concat(
      ['a.wav', 'b.flac'].map((f) =>
        execFileSync('ffmpeg', ['-v', 'error', '-i', f, '-f', 's16le', '-'], { cwd: dir }),
      ),
    );
    const out = readFileSync(join(dir, 'out.raw'));
    // the stream may open with a little silence while the first decoder starts; then exactly a, then b
    const lead = out.length - expected.length;
    expect(lead).toBeGreaterThanOrEqual(0);
    expect(lead).toBeLessThan(44100 * 4 * 0.5);
    expect(out.subarray(0, lead).every((b) => b === 0)).toBe(true);
    expect(Buffer.compare(out.subarray(lead), expected)).toBe(0);
  });

  it('EOF on a non-terminal stdin does not stop playback; exit 0 after the last file', async () => {
    if (!haveTool('ffmpeg', ['ffmpeg', '-version'])) return;
    const { dir, cleanup: c } = tempDir('speakerd-play-');
    cleanup.push(c);
    execFileSync(
      'ffmpeg',
      ['-v', 'error', '-f', 'lavfi', '-i', 'sine=duration=0.5', '-ac', '2', '-ar', '48000', 'x.wav'],
      { cwd: dir },
    );
    writeFileSync(
      join(dir, '.speakerrc.json'),
      JSON.stringify({ backend: 'command', command: { run: 'cat > /dev/null' }, socket: join(dir, 'd.sock') }),
    );
    const r = await runSpeakerd(['play', 'x.wav', '--allow-root'], { cwd: dir, input: '', timeoutMs: 30000 });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('playing x.wav');
  });
});
