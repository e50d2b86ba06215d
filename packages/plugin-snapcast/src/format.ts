import { MAX_CHANNELS, MAX_RATE, MIN_CHANNELS, MIN_RATE, SpeakerdError, type SampleFormat } from '@speakerd/plugin-sdk';

export const PLUGIN = 'snapcast';

/** Error codes of this plugin. */
export const SnapcastErrorCodes = {
  /** The stream's sample format cannot be fed, or disagrees with `snapcast.sampleFormat`. */
  FORMAT: 'SPEAKERD_ERR_SNAPCAST_FORMAT',
  /** The stream named in `snapcast.stream` is not what the options say (absent, another source type, port). */
  STREAM: 'SPEAKERD_ERR_SNAPCAST_STREAM',
  /** The listening socket (`mode: "listen"`) cannot be opened. */
  LISTEN: 'SPEAKERD_ERR_SNAPCAST_LISTEN',
  /** The backend is closed, or activated in another format than the stream's. */
  STATE: 'SPEAKERD_ERR_SNAPCAST_STATE',
} as const;

/**
 * snapserver's `RATE:BITS:CHANNELS` as speakerd's format. snapserver takes little-endian signed integers; 16 and
 * 32 bits are s16le and s32le. Its 24-bit format holds each sample in 4 bytes (Snapcast's SampleFormat pads 24 to
 * 32 bits), which no speakerd encoding is, so it is refused, as are 8 bits and anything speakerd cannot play.
 */
export function parseSnapFormat(text: string, where: string): SampleFormat {
  const m = /^(\d+):(\d+):(\d+)$/.exec(text.trim());
  const fail = (why: string) =>
    new SpeakerdError(SnapcastErrorCodes.FORMAT, `${where}: sample format ${JSON.stringify(text)}: ${why}`, {
      plugin: PLUGIN,
    });
  if (!m) throw fail('expected RATE:BITS:CHANNELS such as 48000:16:2');
  const rate = Number(m[1]);
  const bits = Number(m[2]);
  const channels = Number(m[3]);
  if (rate < MIN_RATE || rate > MAX_RATE) throw fail(`rate must be ${MIN_RATE}..${MAX_RATE}`);
  if (channels < MIN_CHANNELS || channels > MAX_CHANNELS)
    throw fail(`channels must be ${MIN_CHANNELS}..${MAX_CHANNELS}`);
  if (bits === 16) return { encoding: 's16le', rate, channels };
  if (bits === 32) return { encoding: 's32le', rate, channels };
  if (bits === 24)
    throw fail('snapserver holds 24-bit samples in 4 bytes, which speakerd does not produce; use 16 or 32 bits');
  throw fail(`${bits} bits cannot be fed (16 or 32)`);
}

/** speakerd's format as snapserver writes it. */
export function snapFormatString(format: SampleFormat): string {
  const bits = format.encoding === 's32le' ? 32 : 16;
  return `${format.rate}:${bits}:${format.channels}`;
}
