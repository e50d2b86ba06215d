import { isIPv6 } from 'node:net';
import type { Payload } from './payload.js';

export interface SdpParams {
  payload: Payload;
  /** Where the stream goes (the `c=` line). */
  destination: string;
  port: number;
  /** Multicast TTL (IPv4 multicast needs it in the `c=` line). */
  ttl: number;
  multicast: boolean;
  /** The sender's own address for the `o=` line. */
  origin: string;
  sessionId: number;
  version: number;
  /** Packet duration in ms (`a=ptime`). */
  ptimeMs: number;
  name?: string;
  /** RFC 3190 `channel-order` (an `a=fmtp` line), for more than 2 channels. */
  channelOrder?: string | undefined;
}

/**
 * An SDP (RFC 4566) session description of exactly what is sent: one audio stream over RTP/AVP, with an rtpmap
 * even for the static payload types 10/11 (ffmpeg, GStreamer, VLC, PulseAudio and PipeWire read it).
 */
export function buildSdp(p: SdpParams): string {
  const destFamily = isIPv6(p.destination) ? 'IP6' : 'IP4';
  const originFamily = isIPv6(p.origin) ? 'IP6' : 'IP4';
  const conn = p.multicast && destFamily === 'IP4' ? `${p.destination}/${p.ttl}` : p.destination;
  const { payload } = p;
  const ch = payload.format.channels;
  const lines = [
    'v=0',
    `o=- ${p.sessionId} ${p.version} IN ${originFamily} ${p.origin}`,
    `s=${p.name ?? 'speakerd'}`,
    `c=IN ${destFamily} ${conn}`,
    't=0 0',
    `m=audio ${p.port} RTP/AVP ${payload.payloadType}`,
    `a=rtpmap:${payload.payloadType} ${payload.encodingName}/${payload.format.rate}/${ch}`,
    ...(p.channelOrder ? [`a=fmtp:${payload.payloadType} channel-order=${p.channelOrder}`] : []),
    `a=ptime:${Math.max(1, Math.round(p.ptimeMs))}`,
    'a=recvonly',
  ];
  return lines.join('\r\n') + '\r\n';
}
