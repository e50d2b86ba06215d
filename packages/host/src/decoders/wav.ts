import { MAX_CHANNELS, MAX_RATE, MIN_CHANNELS, MIN_RATE, type Encoding, type SampleFormat } from '@speakerd/plugin-sdk';

/** How far into a stream the `data` chunk may start (other chunks, such as LIST, are skipped up to this). */
export const MAX_WAV_HEADER_BYTES = 65536;

export type WavHeader =
  | { kind: 'more' }
  | { kind: 'error'; message: string }
  | {
      kind: 'ok';
      format: SampleFormat;
      /** Offset of the first PCM byte. */
      dataOffset: number;
      /** Bytes of PCM the header announces, or undefined for a streamed WAV (size 0 or 0xFFFFFFFF). */
      dataBytes: number | undefined;
    };

const KSDATAFORMAT_PCM = '0100000000001000800000aa00389b71';
const KSDATAFORMAT_FLOAT = '0300000000001000800000aa00389b71';

/**
 * Parse a RIFF/WAVE header from the first bytes of a stream: `fmt ` gives the format, PCM starts at `data`.
 * Handles WAVE_FORMAT_PCM (8/16/24/32-bit), WAVE_FORMAT_IEEE_FLOAT (32-bit) and WAVE_FORMAT_EXTENSIBLE with
 * those sub-formats; a size of 0 or 0xFFFFFFFF (as streaming writers such as ffmpeg emit) means "until EOF".
 */
export function parseWavHeader(buf: Buffer): WavHeader {
  if (buf.length < 12) return { kind: 'more' };
  const riff = buf.toString('latin1', 0, 4);
  if (riff !== 'RIFF' && riff !== 'RF64') return { kind: 'error', message: 'not a RIFF/WAVE stream (no RIFF tag)' };
  if (buf.toString('latin1', 8, 12) !== 'WAVE')
    return { kind: 'error', message: 'not a RIFF/WAVE stream (no WAVE tag)' };
  let off = 12;
  let format: SampleFormat | undefined;
  for (;;) {
    if (off > MAX_WAV_HEADER_BYTES)
      return { kind: 'error', message: `no data chunk in the first ${MAX_WAV_HEADER_BYTES} bytes` };
    if (buf.length < off + 8) return { kind: 'more' };
    const id = buf.toString('latin1', off, off + 4);
    const size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'data') {
      if (!format) return { kind: 'error', message: 'data chunk before the fmt chunk' };
      return { kind: 'ok', format, dataOffset: body, dataBytes: size === 0 || size === 0xffffffff ? undefined : size };
    }
    if (id === 'fmt ') {
      if (size < 16 || size > 1024) return { kind: 'error', message: `fmt chunk of ${size} bytes` };
      if (buf.length < body + size) return { kind: 'more' };
      const parsed = parseFmt(buf.subarray(body, body + size));
      if (typeof parsed === 'string') return { kind: 'error', message: parsed };
      format = parsed;
    } else if (body + size + (size & 1) > MAX_WAV_HEADER_BYTES) {
      return { kind: 'error', message: `chunk "${id.replace(/[^\x20-\x7e]/g, '?')}" too large before the data chunk` };
    }
    off = body + size + (size & 1);
  }
}

function parseFmt(fmt: Buffer): SampleFormat | string {
  let tag = fmt.readUInt16LE(0);
  const channels = fmt.readUInt16LE(2);
  const rate = fmt.readUInt32LE(4);
  const blockAlign = fmt.readUInt16LE(12);
  const bits = fmt.readUInt16LE(14);
  if (tag === 0xfffe) {
    if (fmt.length < 40) return 'WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes';
    const sub = fmt.subarray(24, 40).toString('hex');
    if (sub === KSDATAFORMAT_PCM) tag = 1;
    else if (sub === KSDATAFORMAT_FLOAT) tag = 3;
    else return `unsupported WAVE_FORMAT_EXTENSIBLE sub-format ${sub}`;
  }
  if (channels < MIN_CHANNELS || channels > MAX_CHANNELS)
    return `${channels} channels (speakerd takes ${MIN_CHANNELS}..${MAX_CHANNELS})`;
  if (rate < MIN_RATE || rate > MAX_RATE) return `sample rate ${rate} (speakerd takes ${MIN_RATE}..${MAX_RATE})`;
  let encoding: Encoding;
  if (tag === 1) {
    if (bits === 8) encoding = 'u8';
    else if (bits === 16) encoding = 's16le';
    else if (bits === 24) encoding = 's24le';
    else if (bits === 32) encoding = 's32le';
    else return `${bits}-bit PCM is not supported`;
  } else if (tag === 3) {
    if (bits !== 32) return `${bits}-bit float is not supported (only 32-bit)`;
    encoding = 'f32le';
  } else {
    return `WAV format tag ${tag} is not PCM or float`;
  }
  if (blockAlign !== (bits / 8) * channels)
    return `block align ${blockAlign} does not match ${channels} channels of ${bits} bits`;
  return { encoding, rate, channels };
}
