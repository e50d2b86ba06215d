import { bytesPerSample, type SampleFormat } from '@speakerd/plugin-sdk';

/** The encodings a WAV file holds as they are (WAV is little-endian; 8-bit is unsigned). */
export const WAV_ENCODINGS = new Set(['u8', 's16le', 's24le', 's32le', 'f32le']);

/** The WAV encoding closest to `encoding`: the little-endian twin, s8 as s16le (WAV has no signed 8-bit). */
export function wavEncodingFor(format: SampleFormat): SampleFormat {
  if (WAV_ENCODINGS.has(format.encoding)) return format;
  const encoding =
    format.encoding === 's8' ? 's16le' : (format.encoding.replace(/be$/, 'le') as SampleFormat['encoding']);
  return { ...format, encoding };
}

/** Speaker positions for WAVE_FORMAT_EXTENSIBLE, by channel count (mono, stereo, 3.0, quad, 5.0, 5.1, 6.1, 7.1). */
const CHANNEL_MASKS = [0, 0x4, 0x3, 0x7, 0x33, 0x37, 0x3f, 0x70f, 0x63f];

const SUBTYPE_PCM = Buffer.from('0100000000001000800000aa00389b71', 'hex');
const SUBTYPE_FLOAT = Buffer.from('0300000000001000800000aa00389b71', 'hex');

/** Sizes in a header written before the data is known: "unknown", read up to the end of the file. */
export const UNKNOWN_SIZE = 0xffffffff;

/** Largest data chunk a RIFF file can describe (its sizes are 32-bit), in whole frames of `format`. */
export function maxDataBytes(format: SampleFormat, headerBytes: number): number {
  const frame = bytesPerSample(format.encoding) * format.channels;
  const max = 0xffffffff - (headerBytes - 8) - 1;
  return max - (max % frame);
}

/**
 * A RIFF/WAVE header for `format` with `dataBytes` of PCM (or {@link UNKNOWN_SIZE} while recording). 8- and 16-bit
 * mono or stereo PCM is written as plain WAVE_FORMAT_PCM; more channels, more bits or float as
 * WAVE_FORMAT_EXTENSIBLE (with the speaker positions of the channel count), as Microsoft's rules for WAV ask.
 * Returns the header and the offsets of its two size fields, to fill in once the data's length is known.
 */
export function wavHeader(
  format: SampleFormat,
  dataBytes: number,
): { header: Buffer; riffSizeAt: number; dataSizeAt: number } {
  const bits = bytesPerSample(format.encoding) * 8;
  const float = format.encoding === 'f32le';
  const extensible = float || bits > 16 || format.channels > 2;
  const fmtBytes = extensible ? 40 : 16;
  const header = Buffer.alloc(12 + 8 + fmtBytes + 8);
  const blockAlign = (bits / 8) * format.channels;
  header.write('RIFF', 0, 'latin1');
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(fmtBytes, 16);
  header.writeUInt16LE(extensible ? 0xfffe : 1, 20);
  header.writeUInt16LE(format.channels, 22);
  header.writeUInt32LE(format.rate, 24);
  header.writeUInt32LE(format.rate * blockAlign, 28);
  header.writeUInt16LE(blockAlign, 32);
  header.writeUInt16LE(bits, 34);
  if (extensible) {
    header.writeUInt16LE(22, 36); // cbSize
    header.writeUInt16LE(bits, 38); // valid bits per sample
    header.writeUInt32LE(CHANNEL_MASKS[format.channels] ?? 0, 40);
    (float ? SUBTYPE_FLOAT : SUBTYPE_PCM).copy(header, 44);
  }
  const dataAt = 20 + fmtBytes;
  header.write('data', dataAt, 'latin1');
  writeSizes(header, 4, dataAt + 4, dataBytes);
  return { header, riffSizeAt: 4, dataSizeAt: dataAt + 4 };
}

/** Fill in the two sizes of a header of `header.length` bytes for `dataBytes` of data (into `into`, at offsets). */
export function writeSizes(into: Buffer, riffSizeAt: number, dataSizeAt: number, dataBytes: number): void {
  const headerBytes = dataSizeAt + 4;
  if (dataBytes === UNKNOWN_SIZE) {
    into.writeUInt32LE(UNKNOWN_SIZE, riffSizeAt);
    into.writeUInt32LE(UNKNOWN_SIZE, dataSizeAt);
    return;
  }
  const pad = dataBytes % 2; // chunks are word-aligned: an odd data chunk is followed by a pad byte
  into.writeUInt32LE(headerBytes - 8 + dataBytes + pad, riffSizeAt);
  into.writeUInt32LE(dataBytes, dataSizeAt);
}
