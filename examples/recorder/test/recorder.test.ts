import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bytesPerFrame, type SampleFormat } from '@speakerd/plugin-sdk';
import { VirtualClock, createTestBackend, feed, noise } from '@speakerd/plugin-sdk/testing';
import plugin, { type RecorderBackend } from '../src/index.js';
import { maxDataBytes, wavHeader } from '../src/wav.js';

const CD: SampleFormat = { encoding: 's16le', rate: 44100, channels: 2 };
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function make(options: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'recorder-test-'));
  dirs.push(dir);
  const clock = new VirtualClock(0, Date.UTC(2026, 11, 2, 1, 38, 0));
  const t = createTestBackend<RecorderBackend>(plugin, { options, clock, configDir: dir });
  return { ...t, dir, out: join(dir, 'recordings') };
}

/** The fields of a WAV file's header, read the way a player reads them. */
function parseWav(file: Buffer) {
  expect(file.toString('latin1', 0, 4)).toBe('RIFF');
  expect(file.toString('latin1', 8, 12)).toBe('WAVE');
  expect(file.readUInt32LE(4)).toBe(file.length - 8); // the RIFF size covers the whole file
  let off = 12;
  let fmt: Buffer | undefined;
  for (;;) {
    const id = file.toString('latin1', off, off + 4);
    const size = file.readUInt32LE(off + 4);
    if (id === 'fmt ') fmt = file.subarray(off + 8, off + 8 + size);
    if (id === 'data') {
      const f = fmt!;
      return {
        tag: f.readUInt16LE(0),
        channels: f.readUInt16LE(2),
        rate: f.readUInt32LE(4),
        byteRate: f.readUInt32LE(8),
        blockAlign: f.readUInt16LE(12),
        bits: f.readUInt16LE(14),
        subformat: f.length >= 40 ? f.subarray(24, 40).toString('hex') : undefined,
        mask: f.length >= 40 ? f.readUInt32LE(20) : undefined,
        data: file.subarray(off + 8, off + 8 + size),
      };
    }
    off += 8 + size + (size & 1);
  }
}

const files = (dir: string) => readdirSync(dir).sort();

describe('recorder', () => {
  it('one session is one WAV file: its header says the format and the size, its data is exactly what was written', async () => {
    const t = make();
    const format = t.backend.negotiate(CD);
    await t.backend.configure(format);
    await t.backend.activate(format);
    const pcm = noise(44100 * 4, 5); // 1 s
    await feed(t, pcm, format, { chunkFrames: 4096 });
    await t.backend.idle();
    expect(files(t.out)).toEqual(['speakerd-20261202T013800Z.wav']);
    const wav = parseWav(readFileSync(join(t.out, files(t.out)[0]!)));
    expect(wav).toMatchObject({ tag: 1, channels: 2, rate: 44100, byteRate: 176400, blockAlign: 4, bits: 16 });
    expect(Buffer.compare(wav.data, Buffer.from(pcm))).toBe(0);
    await t.backend.close();
  });

  it('is paced at real time: it takes the lead, then what real time allows, and says what is not heard yet', async () => {
    const t = make({ leadMs: 20 });
    await t.backend.activate(CD);
    expect(t.backend.writable()).toBe(882);
    expect(t.backend.write(noise(882 * 4))).toBe(882);
    expect(t.backend.writable()).toBe(0);
    expect(t.backend.delay()).toBe(882);
    (t.clock as VirtualClock).advance(10);
    expect(t.backend.writable()).toBe(441);
    expect(t.backend.delay()).toBe(441);
    await t.backend.close();
  });

  it('a new session (after idle) or recorder.split starts a new file; status names them', async () => {
    const t = make({ pace: 'fast' });
    await t.backend.activate(CD);
    await feed(t, noise(4000 * 4, 1), CD);
    const first = (await t.backend.commands.split!({ type: 'recorder.split' })) as { files: string[] };
    expect(first.files).toHaveLength(1);
    (t.clock as VirtualClock).advance(1000);
    await feed(t, noise(2000 * 4, 2), CD);
    await t.backend.idle();
    await t.backend.activate(CD);
    (t.clock as VirtualClock).advance(1000);
    await feed(t, noise(1000 * 4, 3), CD);
    await t.backend.close();
    expect(files(t.out)).toEqual([
      'speakerd-20261202T013800Z.wav',
      'speakerd-20261202T013801Z.wav',
      'speakerd-20261202T013802Z.wav',
    ]);
    const sizes = files(t.out).map((f) => parseWav(readFileSync(join(t.out, f))).data.length / 4);
    expect(sizes).toEqual([4000, 2000, 1000]);
  });

  it('big-endian and signed 8-bit are recorded as the WAV encodings they map to', () => {
    const t = make();
    expect(t.backend.negotiate({ encoding: 's16be', rate: 48000, channels: 2 }).encoding).toBe('s16le');
    expect(t.backend.negotiate({ encoding: 's24be', rate: 48000, channels: 2 }).encoding).toBe('s24le');
    expect(t.backend.negotiate({ encoding: 'f32be', rate: 48000, channels: 1 }).encoding).toBe('f32le');
    expect(t.backend.negotiate({ encoding: 's8', rate: 8000, channels: 1 }).encoding).toBe('s16le');
    expect(t.backend.negotiate({ encoding: 'u8', rate: 8000, channels: 1 }).encoding).toBe('u8');
  });

  const headers: [SampleFormat, number, string | undefined, number | undefined][] = [
    [{ encoding: 's24le', rate: 96000, channels: 6 }, 0xfffe, '01000000', 0x3f],
    [{ encoding: 'f32le', rate: 48000, channels: 2 }, 0xfffe, '03000000', 0x3],
    [{ encoding: 's32le', rate: 192000, channels: 8 }, 0xfffe, '01000000', 0x63f],
    [{ encoding: 'u8', rate: 8000, channels: 1 }, 1, undefined, undefined],
  ];
  for (const [format, tag, sub, mask] of headers) {
    it(`${format.encoding} ${format.channels} ch: a header players read (tag ${tag.toString(16)}), an odd data size padded`, async () => {
      const t = make({ pace: 'fast' });
      await t.backend.activate(format);
      const frames = 1001; // odd: u8 mono data is an odd number of bytes
      const pcm = noise(frames * bytesPerFrame(format), 9);
      await feed(t, pcm, format);
      await t.backend.close();
      const file = readFileSync(join(t.out, files(t.out)[0]!));
      const wav = parseWav(file);
      const bits = (bytesPerFrame(format) / format.channels) * 8;
      expect(wav).toMatchObject({ tag, channels: format.channels, rate: format.rate, bits });
      expect(wav.blockAlign).toBe(bytesPerFrame(format));
      if (sub) expect(wav.subformat!.startsWith(sub)).toBe(true);
      if (mask !== undefined) expect(wav.mask).toBe(mask);
      expect(Buffer.compare(wav.data, Buffer.from(pcm))).toBe(0);
      expect(file.length % 2).toBe(0);
    });
  }

  it('a RIFF file holds at most 4 GiB: the limit leaves room for the header and ends on a whole frame', () => {
    const { header } = wavHeader(CD, 0);
    const max = maxDataBytes(CD, header.length);
    expect(max % 4).toBe(0);
    expect(max + header.length - 8).toBeLessThanOrEqual(0xffffffff);
    expect(max + 4 + header.length - 8).toBeGreaterThan(0xffffffff - 4);
  });

  it('a directory it cannot make fails activate(), with the reason (the host reports the backend lost)', async () => {
    const t = make({ dir: 'file/sub' });
    writeFileSync(join(t.dir, 'file'), 'a file, not a directory');
    await expect(t.backend.activate(CD)).rejects.toThrow(/ENOTDIR|EEXIST/);
  });

  it('options: {} is valid; a bad value names the key', () => {
    expect(plugin.options.parse({})).toEqual({ dir: 'recordings', prefix: 'speakerd-', pace: 'realtime', leadMs: 20 });
    const bad = plugin.options.safeParse({ pace: 'slow', prefix: 'a/b' });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error!.issues.map((i) => i.path))).toBe('[["prefix"],["pace"]]');
  });
});
