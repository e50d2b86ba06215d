/**
 * RTCP (RFC 3550 section 6) for a sender: SR or empty RR, SDES with CNAME, BYE, and the transmission interval.
 */

/** Seconds between 1900-01-01 (NTP epoch) and 1970-01-01 (Unix epoch). */
const NTP_OFFSET = 2_208_988_800;

export interface SenderInfo {
  ssrc: number;
  /** Wall-clock time of the report, ms since the Unix epoch. */
  wallMs: number;
  /** RTP timestamp for the same instant (the 64-bit count; truncated here). */
  rtpTimestamp: number;
  packets: number;
  octets: number;
}

/** Sender report (PT 200) with no report blocks. Returns bytes written. */
export function writeSr(buf: Buffer, off: number, s: SenderInfo): number {
  buf[off] = 0x80; // V=2, P=0, RC=0
  buf[off + 1] = 200;
  buf.writeUInt16BE(6, off + 2); // 7 words - 1
  buf.writeUInt32BE(s.ssrc, off + 4);
  const secs = s.wallMs / 1000 + NTP_OFFSET;
  const msw = Math.floor(secs);
  const lsw = Math.floor((secs - msw) * 4294967296);
  buf.writeUInt32BE(msw % 4294967296, off + 8);
  buf.writeUInt32BE(Math.min(lsw, 4294967295), off + 12);
  buf.writeUInt32BE(s.rtpTimestamp % 4294967296, off + 16);
  buf.writeUInt32BE(s.packets % 4294967296, off + 20);
  buf.writeUInt32BE(s.octets % 4294967296, off + 24);
  return 28;
}

/** Receiver report (PT 201) with no report blocks: what a participant that has stopped sending sends. */
export function writeEmptyRr(buf: Buffer, off: number, ssrc: number): number {
  buf[off] = 0x80;
  buf[off + 1] = 201;
  buf.writeUInt16BE(1, off + 2);
  buf.writeUInt32BE(ssrc, off + 4);
  return 8;
}

/** SDES (PT 202) with one chunk: CNAME. Returns bytes written (a multiple of 4). */
export function writeSdes(buf: Buffer, off: number, ssrc: number, cname: Buffer): number {
  // chunk: SSRC(4) + type(1) + len(1) + text + END(1), padded to 4
  const chunk = 4 + 2 + cname.length + 1;
  const padded = (chunk + 3) & ~3;
  const total = 4 + padded;
  buf[off] = 0x81; // V=2, SC=1
  buf[off + 1] = 202;
  buf.writeUInt16BE(total / 4 - 1, off + 2);
  buf.writeUInt32BE(ssrc, off + 4);
  buf[off + 8] = 1; // CNAME
  buf[off + 9] = cname.length;
  cname.copy(buf, off + 10);
  buf.fill(0, off + 10 + cname.length, off + total); // END + padding
  return total;
}

/** BYE (PT 203) for one SSRC, with an optional reason. */
export function writeBye(buf: Buffer, off: number, ssrc: number, reason?: Buffer): number {
  let len = 8;
  if (reason && reason.length > 0) len += (1 + reason.length + 3) & ~3;
  buf[off] = 0x81;
  buf[off + 1] = 203;
  buf.writeUInt16BE(len / 4 - 1, off + 2);
  buf.writeUInt32BE(ssrc, off + 4);
  if (reason && reason.length > 0) {
    buf[off + 8] = reason.length;
    reason.copy(buf, off + 9);
    buf.fill(0, off + 9 + reason.length, off + len);
  }
  return len;
}

/** Longest CNAME that fits an SDES item. */
export const MAX_CNAME = 255;

/**
 * The RTCP transmission interval in ms for a session with one member that sends (RFC 3550 section 6.3.1 and
 * appendix A.7): at least Tmin (2.5 s before the first report, 5 s after), scaled by the share of 5% of the
 * session bandwidth that senders get, randomised over [0.5, 1.5] and divided by e - 3/2 to compensate for timer
 * reconsideration.
 */
export function rtcpIntervalMs(opts: {
  members: number;
  senders: number;
  weSent: boolean;
  /** Session bandwidth in bytes per second (the payload rate). */
  sessionBandwidth: number;
  avgRtcpSize: number;
  initial: boolean;
  random: number;
}): number {
  const rtcpBw = 0.05 * opts.sessionBandwidth;
  const senderShare = 0.25;
  let n = opts.members;
  let bw = rtcpBw;
  if (opts.senders <= opts.members * senderShare) {
    if (opts.weSent) {
      bw = rtcpBw * senderShare;
      n = opts.senders;
    } else {
      bw = rtcpBw * (1 - senderShare);
      n = opts.members - opts.senders;
    }
  }
  const tmin = opts.initial ? 2.5 : 5;
  const td = Math.max(tmin, (opts.avgRtcpSize * n) / bw);
  const t = td * (opts.random + 0.5);
  return (t / (Math.E - 1.5)) * 1000;
}
