import { ErrorCodes, SpeakerdError, bytesPerFrame, encodingInfo, type SampleFormat } from '@speakerd/plugin-sdk';

/** Bytes of IP and UDP header assumed when sizing packets: IPv6 (40) + UDP (8), so a packet fits both families. */
export const IP_UDP_OVERHEAD = 48;
/** Bytes in a fixed RTP header (no CSRCs, no extension). */
export const RTP_HEADER = 12;

/** What goes on the wire for an output format. */
export interface Payload {
  /** The format the host must hand over: big-endian 16- or 24-bit. */
  readonly format: SampleFormat;
  /** `L16` or `L24` (RFC 3551 section 4.5.11, RFC 3190). */
  readonly encodingName: 'L16' | 'L24';
  /** RTP payload type: 10 or 11 (static, RFC 3551 table 4) or the configured dynamic one. */
  readonly payloadType: number;
  /** True for the static payload types 10/11. */
  readonly isStatic: boolean;
}

/**
 * The wire format for `requested`: 24-bit output is sent as L24, everything else as L16 (8-bit is widened by the
 * host, 32-bit integer and float are rounded to 16 bits: L16 is what every receiver understands). Payload type 10
 * or 11 for L16 at 44100 Hz stereo or mono, otherwise `dynamicPt`.
 */
export function payloadFor(requested: SampleFormat, dynamicPt: number | null): Payload {
  const info = encodingInfo(requested.encoding);
  const l24 = info.bits === 24 && !info.float;
  const format: SampleFormat = {
    encoding: l24 ? 's24be' : 's16be',
    rate: requested.rate,
    channels: requested.channels,
  };
  let payloadType = dynamicPt ?? 96;
  let isStatic = false;
  if (!l24 && format.rate === 44100 && (format.channels === 1 || format.channels === 2)) {
    payloadType = format.channels === 2 ? 10 : 11;
    isStatic = true;
  }
  return { format, encodingName: l24 ? 'L24' : 'L16', payloadType, isStatic };
}

/** The largest UDP payload on IPv4 (65,535 − 20 − 8): no datagram is ever larger. */
export const MAX_UDP_PAYLOAD = 65_507;

/** Packet duration bounds in ms (`rtp.minPtimeMs`, `rtp.maxPtimeMs`). */
export interface PtimeBounds {
  readonly minPtimeMs: number;
  readonly maxPtimeMs: number;
}

/** No bounds: the MTU alone sizes the packet. */
const UNBOUNDED: PtimeBounds = { minPtimeMs: 0, maxPtimeMs: Infinity };

/**
 * Whole frames per packet: as many as fit an IP packet of `mtu` bytes (on IPv4 and IPv6 alike), then at most
 * `maxPtimeMs` and at least `minPtimeMs` of audio (the minimum wins over the MTU: such a packet leaves in IP
 * fragments, as PipeWire's module-rtp also clamps), never more than one UDP datagram holds, never less than one
 * frame.
 */
export function framesPerPacket(format: SampleFormat, mtu: number, bounds: PtimeBounds = UNBOUNDED): number {
  const bpf = bytesPerFrame(format);
  const room = mtu - IP_UDP_OVERHEAD - RTP_HEADER;
  const fit = Math.floor(room / bpf);
  if (fit < 1)
    throw new SpeakerdError(
      ErrorCodes.CONFIG,
      `rtp.mtu ${mtu} leaves no room for one frame of ${format.channels} channels`,
      { plugin: 'rtp' },
    );
  if (bounds.minPtimeMs > bounds.maxPtimeMs)
    throw new SpeakerdError(
      ErrorCodes.CONFIG,
      `rtp.minPtimeMs ${bounds.minPtimeMs} is more than rtp.maxPtimeMs ${bounds.maxPtimeMs}`,
      { plugin: 'rtp' },
    );
  const most = Math.max(1, Math.floor((bounds.maxPtimeMs * format.rate) / 1000));
  const least = Math.ceil((bounds.minPtimeMs * format.rate) / 1000);
  const datagram = Math.floor((MAX_UDP_PAYLOAD - RTP_HEADER) / bpf);
  return Math.max(1, Math.min(datagram, Math.max(least, Math.min(fit, most))));
}

/**
 * Write the fixed RTP header (RFC 3550 section 5.1) at the start of `buf`. `timestamp` is the 64-bit count
 * (a JS number, exact to 2^53), truncated here to 32 bits.
 */
export function writeRtpHeader(
  buf: Buffer,
  marker: boolean,
  payloadType: number,
  seq: number,
  timestamp: number,
  ssrc: number,
): void {
  buf[0] = 0x80; // V=2, P=0, X=0, CC=0
  buf[1] = (marker ? 0x80 : 0) | payloadType;
  buf[2] = (seq >>> 8) & 0xff;
  buf[3] = seq & 0xff;
  const ts = timestamp % 4294967296;
  buf.writeUInt32BE(ts, 4);
  buf.writeUInt32BE(ssrc, 8);
}
