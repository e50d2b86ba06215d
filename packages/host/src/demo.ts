import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '@speakerd/plugin-sdk';
import { runPlay, type PlayOptions } from './play.js';

/** The demo's tracks: a chord each (Hz), 2.5 s, 44.1 kHz 16-bit stereo — played back to back, gapless. */
export const DEMO_TRACKS = [
  { name: '1-c-major.wav', tones: [261.63, 329.63, 392.0] },
  { name: '2-f-major.wav', tones: [349.23, 440.0, 523.25] },
  { name: '3-g-major.wav', tones: [392.0, 493.88, 587.33] },
] as const;
export const DEMO_RATE = 44100;
export const DEMO_SECONDS = 2.5;

/** One demo track as 16-bit stereo PCM: the chord, left and right a little apart, 30 ms fades at both ends. */
export function demoPcm(tones: readonly number[]): Buffer {
  const frames = Math.round(DEMO_RATE * DEMO_SECONDS);
  const fade = Math.round(DEMO_RATE * 0.03);
  const pcm = Buffer.alloc(frames * 4);
  for (let i = 0; i < frames; i++) {
    const t = i / DEMO_RATE;
    const env = Math.min(1, i / fade, (frames - 1 - i) / fade);
    let l = 0;
    let r = 0;
    tones.forEach((f, k) => {
      const v = Math.sin(2 * Math.PI * f * t);
      l += v * (k === 2 ? 0.6 : 1);
      r += v * (k === 0 ? 0.6 : 1);
    });
    pcm.writeInt16LE(Math.round(((l * env) / tones.length) * 0.5 * 32767), i * 4);
    pcm.writeInt16LE(Math.round(((r * env) / tones.length) * 0.5 * 32767), i * 4 + 2);
  }
  return pcm;
}

/** A canonical 44-byte WAV header for 16-bit stereo PCM of `bytes` bytes. */
function wavHeader(bytes: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + bytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(2, 22);
  h.writeUInt32LE(DEMO_RATE, 24);
  h.writeUInt32LE(DEMO_RATE * 4, 28);
  h.writeUInt16LE(4, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(bytes, 40);
  return h;
}

/** One demo track as a WAV file's bytes. */
export function demoWav(tones: readonly number[]): Buffer {
  const pcm = demoPcm(tones);
  return Buffer.concat([wavHeader(pcm.length), pcm]);
}

/** `speakerd demo` (what `npm start` runs): the demo tracks written to a temporary directory and played. */
export async function runDemo(opts: PlayOptions): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'speakerd-demo-'));
  try {
    const files = DEMO_TRACKS.map(({ name, tones }) => {
      const file = join(dir, name);
      writeFileAtomic(file, demoWav(tones));
      return file;
    });
    process.stderr.write(
      `speakerd demo: three chords of ${DEMO_SECONDS} s, back to back (speakerd play ${files.length} files)\n`,
    );
    const code = await runPlay(files, opts);
    if (code === 0) process.stderr.write('speakerd demo: done. Next: README.md, "Play your own music"\n');
    return code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
