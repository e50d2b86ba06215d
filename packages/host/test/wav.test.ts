/** The WAV header reader: one parse however the bytes are split, bounded memory, the errors a bad header gets. */
import { describe, expect, it } from 'vitest';
import { MAX_WAV_HEADER_BYTES, WavHeaderReader, parseWavHeader } from '../src/decoders/wav.js';

function chunk(id: string, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.write(id, 0, 'latin1');
  h.writeUInt32LE(body.length, 4);
  return Buffer.concat([h, body, body.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function fmt(tag: number, channels: number, rate: number, bits: number, extra = 0): Buffer {
  const b = Buffer.alloc(16 + extra);
  b.writeUInt16LE(tag, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * channels * bits) / 8, 8);
  b.writeUInt16LE((channels * bits) / 8, 12);
  b.writeUInt16LE(bits, 14);
  return b;
}

function wav(chunks: Buffer[], dataBytes: number, pcm: Buffer): Buffer {
  const data = Buffer.alloc(8);
  data.write('data', 0, 'latin1');
  data.writeUInt32LE(dataBytes, 4);
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...chunks, data, pcm]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

/** Push `buf` in pieces of `size` bytes; the result once the header is complete, and the PCM that followed it. */
function drip(buf: Buffer, size: number) {
  const r = new WavHeaderReader();
  let maxRetained = 0;
  for (let at = 0; at < buf.length; at += size) {
    const out = r.push(buf.subarray(at, at + size));
    maxRetained = Math.max(maxRetained, r.retainedBytes);
    if (out.kind !== 'more') {
      const pcm = out.kind === 'ok' ? Buffer.concat([out.rest, buf.subarray(at + size)]) : undefined;
      return { out, pcm, maxRetained };
    }
  }
  return { out: { kind: 'more' as const }, pcm: undefined, maxRetained };
}

const pcm = Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]);
const list = chunk('LIST', Buffer.alloc(40_001, 7)); // odd: a pad byte follows
const odd = fmt(1, 2, 44100, 16, 3); // a 19-byte fmt body (and its pad byte)
const stream = wav([list, chunk('fmt ', odd), chunk('fact', Buffer.alloc(4))], pcm.length, pcm);

describe('WavHeaderReader', () => {
  it.each([1, 2, 3, 7, 8, 13, 4096, stream.length])(
    'in pieces of %i bytes: the same format, data size and first PCM',
    (size) => {
      const { out, pcm: first } = drip(stream, size);
      expect(out).toMatchObject({ kind: 'ok', format: { encoding: 's16le', rate: 44100, channels: 2 }, dataBytes: 8 });
      expect(first).toEqual(pcm);
    },
  );

  it('keeps at most one fmt body between pushes, never the header whole (a 40 KB LIST chunk dripped byte by byte)', () => {
    const { out, maxRetained } = drip(stream, 1);
    expect(out.kind).toBe('ok');
    expect(maxRetained).toBeLessThanOrEqual(19);
  });

  it('agrees with the one-piece parse on the data offset', () => {
    const h = parseWavHeader(stream);
    expect(h).toMatchObject({ kind: 'ok', dataOffset: stream.length - pcm.length, dataBytes: 8 });
  });

  it.each([
    ['a size of 0', 0],
    ['a size of 0xFFFFFFFF', 0xffffffff],
  ])('%s means "until EOF"', (_name, size) => {
    const out = new WavHeaderReader().push(wav([chunk('fmt ', fmt(3, 1, 48000, 32))], size, Buffer.alloc(0)));
    expect(out).toMatchObject({ kind: 'ok', format: { encoding: 'f32le', rate: 48000, channels: 1 } });
    expect(out.kind === 'ok' && out.dataBytes).toBeUndefined();
  });

  it.each<[string, Buffer, RegExp]>([
    ['no RIFF tag', Buffer.from('RIFX\0\0\0\0WAVE'), /no RIFF tag/],
    ['no WAVE tag', Buffer.from('RIFF\0\0\0\0AVI '), /no WAVE tag/],
    ['data before fmt', wav([], 0, Buffer.alloc(0)), /data chunk before the fmt chunk/],
    ['a 12-byte fmt', wav([chunk('fmt ', Buffer.alloc(12))], 0, Buffer.alloc(0)), /fmt chunk of 12 bytes/],
    ['an ADPCM tag', wav([chunk('fmt ', fmt(2, 2, 44100, 16))], 0, Buffer.alloc(0)), /format tag 2/],
    ['0 channels', wav([chunk('fmt ', fmt(1, 0, 44100, 16))], 0, Buffer.alloc(0)), /0 channels/],
    [
      'a chunk larger than the header bound',
      wav([chunk('LIST', Buffer.alloc(MAX_WAV_HEADER_BYTES))], 0, Buffer.alloc(0)),
      /chunk "LIST" too large/,
    ],
  ])('%s is an error, split or not', (_name, buf, message) => {
    for (const size of [1, 5, buf.length]) {
      const { out } = drip(buf, size);
      expect(out.kind).toBe('error');
      expect(out.kind === 'error' && out.message).toMatch(message);
    }
  });

  it('many small chunks that reach past the bound are an error, not a wait', () => {
    const smalls = Array.from({ length: MAX_WAV_HEADER_BYTES / 16 + 1 }, () => chunk('junk', Buffer.alloc(8)));
    const { out } = drip(wav(smalls, 0, Buffer.alloc(0)), 1000);
    expect(out.kind === 'error' && out.message).toMatch(
      /no data chunk in the first 65536 bytes|too large before the data chunk/,
    );
  });

  it('a header that is not complete yet asks for more', () => {
    expect(new WavHeaderReader().push(stream.subarray(0, 30)).kind).toBe('more');
  });
});
